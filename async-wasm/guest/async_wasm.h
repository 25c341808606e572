/*
 * async_wasm.h: the guest side of async-wasm's data ABI, for guests written in C.
 *
 * A host function registered with async-wasm that takes or returns strings, bytes or JSON
 * (`String`, `Vec<u8>`, `Json<T>` in Rust) passes them through this guest's linear memory:
 *
 *   - each such parameter is two wasm i32s, a pointer and a length, which the host copies
 *     before it starts the host function; the guest keeps ownership;
 *   - each such result is one wasm i64: the pointer in the low 32 bits, the length in the high
 *     32 bits. The host placed the bytes in memory it got from this guest's `cabi_realloc`,
 *     so the guest owns them and frees them with free() (aw_bytes_free). An empty result is
 *     {NULL, 0} and allocated nothing.
 *
 * The guest exports its memory as "memory" (clang does) and an allocator as "cabi_realloc",
 * which this header defines (see below to write your own). Strings are UTF-8, without a
 * terminating NUL; JSON is UTF-8 JSON text.
 *
 * Build a reactor, and call its `_initialize` export before anything else:
 *   clang --target=wasm32-wasi -O2 -mexec-model=reactor guest.c -o guest.wasm
 */
#ifndef ASYNC_WASM_H
#define ASYNC_WASM_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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
 * The allocator the host calls to place a result: cabi_realloc(NULL, 0, 1, len), the same
 * name and type as the component model's canonical ABI, so guests made by wit-bindgen fit
 * as they are. It returns NULL when there is no memory, which fails the host call with an
 * error the host can tell apart. It is weak, so the header can be included in several
 * files; to write your own, define ASYNC_WASM_OWN_REALLOC before including this header and
 * export yours as "cabi_realloc".
 */
#ifndef ASYNC_WASM_OWN_REALLOC
__attribute__((weak, export_name("cabi_realloc")))
void *cabi_realloc(void *old_ptr, size_t old_len, size_t align, size_t new_len) {
    (void)old_len;
    if (old_ptr == NULL && align > 16) {
        return aligned_alloc(align, (new_len + align - 1) / align * align);
    }
    return realloc(old_ptr, new_len);
}
#endif

#ifdef __cplusplus
}
#endif

#endif /* ASYNC_WASM_H */
