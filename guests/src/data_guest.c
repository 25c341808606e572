/*
 * data_guest.c: a C guest that moves strings, bytes and JSON through async host functions,
 * for async-wasm's tests. Built by ../build.sh into data_guest.wasm.
 *
 * It counts what the host allocates in it (through cabi_realloc) and what it frees, so that
 * a test can see that a cancelled call left nothing behind, and its allocator can be told
 * to misbehave (return memory outside the guest, trap, or fail), so that a test can see the
 * host survive each.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ASYNC_WASM_OWN_REALLOC
#include "async_wasm.h"

AW_IMPORT("env", "echo") uint64_t echo(const char *text, size_t len);
AW_IMPORT("env", "reverse") uint64_t reverse(const uint8_t *bytes, size_t len);
AW_IMPORT("env", "score") uint64_t score(const char *json, size_t len);
AW_IMPORT("env", "tag") uint64_t tag(int32_t id, const char *text, size_t len, int64_t salt);

/* How cabi_realloc behaves: see set_alloc_mode. */
enum alloc_mode { ALLOC_OK = 0, ALLOC_OUT_OF_BOUNDS = 1, ALLOC_TRAP = 2, ALLOC_NULL = 3 };
static int alloc_mode = ALLOC_OK;
static int32_t host_allocations = 0;
static int32_t host_frees = 0;

/* The allocator the host calls for results (replaces the header's weak one). */
AW_EXPORT("cabi_realloc")
void *cabi_realloc(void *old_ptr, size_t old_len, size_t align, size_t new_len) {
    (void)old_len;
    (void)align;
    switch (alloc_mode) {
    case ALLOC_OUT_OF_BOUNDS:
        return (void *)(uintptr_t)0xfffff000u;
    case ALLOC_TRAP:
        __builtin_trap();
    case ALLOC_NULL:
        return NULL;
    default: {
        void *p = realloc(old_ptr, new_len);
        if (p != NULL && old_ptr == NULL) {
            host_allocations += 1;
        }
        return p;
    }
    }
}

static void free_result(aw_bytes result) {
    if (result.ptr != NULL) {
        host_frees += 1;
    }
    aw_bytes_free(result);
}

AW_EXPORT("set_alloc_mode") void set_alloc_mode(int mode) { alloc_mode = mode; }

/* Results the host allocated and the guest has not freed. */
AW_EXPORT("live_host_allocations") int32_t live_host_allocations(void) {
    return host_allocations - host_frees;
}

/* A buffer the tests fill through the guest's memory; returns its address. */
AW_EXPORT("buffer") uint8_t *buffer(size_t len) {
    static uint8_t *buf = NULL;
    static size_t cap = 0;
    if (len > cap) {
        free(buf);
        buf = malloc(len);
        cap = buf ? len : 0;
    }
    return buf;
}

/* The byte at position i of the test pattern for `seed`. */
static uint8_t pattern(uint32_t seed, size_t i) {
    return (uint8_t)('a' + (seed * 7 + i * 13) % 26);
}

/*
 * Sends `len` pattern bytes (seed `seed`) to `echo` and checks that the same come back.
 * Returns 1 when they do, 0 when not, -1 when out of memory.
 */
AW_EXPORT("echo_roundtrip") int echo_roundtrip(size_t len, uint32_t seed) {
    char *text = malloc(len ? len : 1);
    if (text == NULL) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        text[i] = (char)pattern(seed, i);
    }
    aw_bytes back = aw_bytes_from(echo(text, len));
    int same = back.len == len && (len == 0 || memcmp(back.ptr, text, len) == 0);
    free_result(back);
    free(text);
    return same;
}

/* Sends `len` bytes (any value 0..=255) to `reverse` and checks they come back reversed. */
AW_EXPORT("reverse_roundtrip") int reverse_roundtrip(size_t len, uint32_t seed) {
    uint8_t *bytes = malloc(len ? len : 1);
    if (bytes == NULL) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        bytes[i] = (uint8_t)(seed + i * 31);
    }
    aw_bytes back = aw_bytes_from(reverse(bytes, len));
    int same = back.len == len;
    for (size_t i = 0; same && i < len; i++) {
        same = back.ptr[i] == bytes[len - 1 - i];
    }
    free_result(back);
    free(bytes);
    return same;
}

/*
 * Passes the guest's `len` bytes at `ptr` (placed by the test) to `score` and returns the
 * packed JSON reply as it came, for the test to read; it stays allocated until
 * free_reply(ptr).
 */
AW_EXPORT("score_raw") uint64_t score_raw(const char *json, size_t len) { return score(json, len); }

AW_EXPORT("echo_raw") uint64_t echo_raw(const char *text, size_t len) { return echo(text, len); }

AW_EXPORT("free_reply") void free_reply(uint8_t *ptr, size_t len) {
    aw_bytes reply = {ptr, len};
    free_result(reply);
}

/* A mixed signature: numbers around a string; returns the reply's length or -1. */
AW_EXPORT("tag_len") int64_t tag_len(int32_t id, int64_t salt) {
    static const char text[] = "tagged";
    aw_bytes reply = aw_bytes_from(tag(id, text, sizeof text - 1, salt));
    int64_t len = (int64_t)reply.len;
    free_result(reply);
    return len;
}

/*
 * Echoes a string from static memory: nothing is allocated by the guest itself, so after a
 * cancelled call the only allocations left would be the host's.
 */
AW_EXPORT("echo_static") int echo_static(void) {
    static const char text[] = "a string that is in flight when the call is cancelled";
    aw_bytes back = aw_bytes_from(echo(text, sizeof text - 1));
    int same = back.len == sizeof text - 1 && memcmp(back.ptr, text, back.len) == 0;
    free_result(back);
    return same;
}
