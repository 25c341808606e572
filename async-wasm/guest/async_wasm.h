/*
 * async_wasm.h: the guest side of async-wasm's data ABI (version 1), for guests written in C.
 *
 * A host function registered with async-wasm that takes or returns strings, bytes or JSON
 * (`String`, `Vec<u8>`, `Json<T>` in Rust) passes them through this guest's linear memory:
 *
 *   - each such parameter is two wasm i32s, a pointer and a length, which the host copies
 *     before it starts the host function; the guest keeps ownership. The pointer of a
 *     zero-length parameter is not looked at (NULL is fine);
 *   - each such result is one wasm i64: the pointer in the low 32 bits, the length in the high
 *     32 bits. The host placed the bytes in memory it got from this guest's `cabi_realloc`,
 *     so the guest owns them and frees them with free() (aw_bytes_free). An empty result is
 *     {NULL, 0} and allocated nothing;
 *   - the host caps the bytes one call moves (16 MiB in, all parameters together, and 16 MiB
 *     out, unless the host says otherwise): a call over the cap fails in the host and traps.
 *
 * Errors: a host function either traps the guest (a failure the guest cannot handle) or
 * hands it an error value: then the import returns 0 (an empty result for data), and
 * aw_error_take() returns 1 with the error's code and message, until taken. Check it after
 * a host function that can fail:
 *
 *   aw_bytes value = aw_bytes_from(kv_get("key", 3));
 *   aw_error err;
 *   if (aw_error_take(&err)) { ... err.code, err.message, err.len ...; aw_error_free(err); }
 *
 * The guest exports its memory as "memory" (clang does; not shared, 32-bit), an allocator
 * as "cabi_realloc", the error receiver "async_wasm_set_error" and the version marker
 * "async_wasm_abi_v1", all of which this header defines. Strings are UTF-8, without a
 * terminating NUL; JSON is UTF-8 JSON text.
 *
 * Rules for the exports the host calls (cabi_realloc, async_wasm_set_error): they must not
 * call host functions. A data host function called from inside them fails (the component
 * model's rule for allocators; without it each nested call would take another stack). And
 * when the host's call is cancelled (a timeout) while one of them runs, which can happen
 * with the host's `yield_every`, the guest's heap is left as that function left it, perhaps
 * mid-update: the host then drops the instance.
 *
 * Build a reactor, and call its `_initialize` export before anything else:
 *   clang --target=wasm32-wasi -O2 -mexec-model=reactor guest.c -o guest.wasm
 */
#ifndef ASYNC_WASM_H
#define ASYNC_WASM_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Declares a host function: AW_IMPORT("kv", "get") uint64_t kv_get(const char *key, size_t len); */
#define AW_IMPORT(module, name) __attribute__((import_module(module), import_name(name)))

/* Exports a guest function under `name`. */
#define AW_EXPORT(name) __attribute__((export_name(name)))

/* A result the host gave the guest: `len` bytes at `ptr`, owned by the guest. */
typedef struct aw_bytes {
    uint8_t *ptr;
    size_t len;
} aw_bytes;

/* Unpacks a data result (pointer low, length high). */
static inline aw_bytes aw_bytes_from(uint64_t packed) {
    aw_bytes bytes = {(uint8_t *)(uintptr_t)(uint32_t)packed, (size_t)(packed >> 32)};
    return bytes;
}

/* Frees a data result; an empty one holds no memory. */
static inline void aw_bytes_free(aw_bytes bytes) {
    free(bytes.ptr);
}

/*
 * The version of the data ABI this guest speaks: the host reads this export's name (it is
 * never called) and refuses a guest that speaks only versions it does not.
 */
__attribute__((weak, export_name("async_wasm_abi_v1"))) void async_wasm_abi_v1(void) {}

/*
 * realloc with cabi_realloc's contract: `align` a power of two, NULL when there is no
 * memory (or `align` is not a power of two, or the size overflows). Alignments above 16
 * (malloc's) go through aligned_alloc, also when growing an old block.
 */
static inline void *aw_realloc(void *old_ptr, size_t old_len, size_t align, size_t new_len) {
    if (align == 0 || (align & (align - 1)) != 0) {
        return NULL;
    }
    if (align <= 16) {
        return realloc(old_ptr, new_len);
    }
    if (new_len > SIZE_MAX - (align - 1)) {
        return NULL;
    }
    void *new_ptr = aligned_alloc(align, (new_len + align - 1) / align * align);
    if (new_ptr != NULL && old_ptr != NULL) {
        memcpy(new_ptr, old_ptr, old_len < new_len ? old_len : new_len);
        free(old_ptr);
    }
    return new_ptr;
}

/*
 * The allocator the host calls to place a result: cabi_realloc(NULL, 0, 1, len), the same
 * name and type as the component model's canonical ABI, so guests made by wit-bindgen fit
 * as they are. It returns NULL when there is no memory, which fails the host call with an
 * error the host can tell apart. It is weak, so the header can be included in several
 * files; to write your own, define ASYNC_WASM_OWN_REALLOC before including this header and
 * export yours as "cabi_realloc" (aw_realloc is there to build on). It must not call host
 * functions.
 */
#ifndef ASYNC_WASM_OWN_REALLOC
__attribute__((weak, export_name("cabi_realloc")))
void *cabi_realloc(void *old_ptr, size_t old_len, size_t align, size_t new_len) {
    return aw_realloc(old_ptr, old_len, align, new_len);
}
#endif

/* An error value a host function gave: a code and `len` bytes of UTF-8 message. */
typedef struct aw_error {
    int32_t code;
    uint8_t *message;
    size_t len;
} aw_error;

/* The error given and not yet taken (one per guest, whatever the files including this). */
struct aw_error_slot {
    int pending;
    aw_error error;
};
__attribute__((weak)) struct aw_error_slot aw_error_slot;

/*
 * Called by the host to hand the guest an error value, just before the host function
 * returns; the message was placed with cabi_realloc and is the guest's. An error not taken
 * is freed when the next arrives.
 */
__attribute__((weak, export_name("async_wasm_set_error")))
void async_wasm_set_error(int32_t code, uint8_t *message, size_t len) {
    if (aw_error_slot.pending) {
        free(aw_error_slot.error.message);
    }
    aw_error_slot.error.code = code;
    aw_error_slot.error.message = message;
    aw_error_slot.error.len = len;
    aw_error_slot.pending = 1;
}

/* 1 and the error when a host function gave one since the last take, else 0. */
static inline int aw_error_take(aw_error *out) {
    if (!aw_error_slot.pending) {
        return 0;
    }
    *out = aw_error_slot.error;
    aw_error_slot.pending = 0;
    return 1;
}

/* Frees a taken error's message. */
static inline void aw_error_free(aw_error error) {
    free(error.message);
}

#ifdef __cplusplus
}
#endif

#endif /* ASYNC_WASM_H */
