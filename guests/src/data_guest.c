/*
 * data_guest.c: a C guest that moves strings, bytes and JSON through async host functions,
 * for async-wasm's tests. Built by ../build.sh into data_guest.wasm.
 *
 * It counts what the host allocates in it (through cabi_realloc) and what it frees, so that
 * a test can see that a cancelled call left nothing behind, and its allocator can be told
 * to misbehave (return memory outside the guest, trap, fail, or spin until the host gives
 * up), so that a test can see the host survive each. It also takes error values from the
 * host (aw_error_take), next to traps, and checks the header's allocator at its edges.
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
/* Fallible host functions: a string, and a number, each with an error value or a trap. */
AW_IMPORT("env", "lookup") uint64_t lookup(const char *key, size_t len);
AW_IMPORT("env", "checked_half") int32_t checked_half(int32_t n);

/* How cabi_realloc behaves: see set_alloc_mode. */
enum alloc_mode {
    ALLOC_OK = 0,
    ALLOC_OUT_OF_BOUNDS = 1,
    ALLOC_TRAP = 2,
    ALLOC_NULL = 3,
    /* Allocates, marks itself inside, then spins while the mode stays ALLOC_SPIN. */
    ALLOC_SPIN = 4,
};
static volatile int alloc_mode = ALLOC_OK;
static volatile int32_t in_allocator = 0;
static int32_t host_allocations = 0;
static int32_t host_frees = 0;

/* The allocator the host calls for results (replaces the header's weak one). */
AW_EXPORT("cabi_realloc")
void *cabi_realloc(void *old_ptr, size_t old_len, size_t align, size_t new_len) {
    switch (alloc_mode) {
    case ALLOC_OUT_OF_BOUNDS:
        return (void *)(uintptr_t)0xfffff000u;
    case ALLOC_TRAP:
        __builtin_trap();
    case ALLOC_NULL:
        return NULL;
    case ALLOC_SPIN: {
        in_allocator = 1;
        void *p = aw_realloc(old_ptr, old_len, align, new_len);
        host_allocations += 1;
        while (alloc_mode == ALLOC_SPIN) {
        }
        in_allocator = 0;
        return p;
    }
    default: {
        void *p = aw_realloc(old_ptr, old_len, align, new_len);
        if (p != NULL && old_ptr == NULL) {
            host_allocations += 1;
        }
        return p;
    }
    }
}

/* Frees an error value's message, which the host placed with cabi_realloc. */
static void free_error(aw_error err) {
    if (err.message != NULL) {
        host_frees += 1;
    }
    aw_error_free(err);
}

static void free_result(aw_bytes result) {
    if (result.ptr != NULL) {
        host_frees += 1;
    }
    aw_bytes_free(result);
}

AW_EXPORT("set_alloc_mode") void set_alloc_mode(int mode) { alloc_mode = mode; }

/* 1 while cabi_realloc is in ALLOC_SPIN's loop, or was left there by a cancelled call. */
AW_EXPORT("in_allocator") int32_t get_in_allocator(void) { return in_allocator; }

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

/*
 * Looks `key` up through the fallible host function `lookup`: returns the value's length,
 * or minus the error value's code, after checking that the message is `expected_message`
 * (-1000 when it is not). An error value leaves a zero result: {NULL, 0}.
 */
AW_EXPORT("lookup_len")
int32_t lookup_len(const char *key, size_t len, const char *expected_message, size_t expected_len) {
    aw_bytes value = aw_bytes_from(lookup(key, len));
    aw_error err;
    if (aw_error_take(&err)) {
        int same = value.ptr == NULL && value.len == 0 && err.len == expected_len &&
                   memcmp(err.message, expected_message, expected_len) == 0;
        int32_t code = err.code;
        free_error(err);
        return same ? -code : -1000;
    }
    int32_t n = (int32_t)value.len;
    free_result(value);
    return n;
}

/* checked_half(n), or the error value's code + 1000 (the result must then be 0, or -1). */
AW_EXPORT("half_or_code") int32_t half_or_code(int32_t n) {
    int32_t half = checked_half(n);
    aw_error err;
    if (aw_error_take(&err)) {
        int32_t code = err.code;
        free_error(err);
        return half == 0 ? code + 1000 : -1;
    }
    return half;
}

/*
 * The header's aw_realloc at its edges: growing a block aligned above malloc's keeps its
 * bytes and its alignment; a size that would overflow, and an alignment that is not a
 * power of two, give NULL. Returns 1 when all hold.
 */
AW_EXPORT("realloc_edges") int realloc_edges(void) {
    uint8_t *p = aw_realloc(NULL, 0, 64, 10);
    if (p == NULL || (uintptr_t)p % 64 != 0) {
        return 0;
    }
    memcpy(p, "0123456789", 10);
    uint8_t *q = aw_realloc(p, 10, 64, 1000);
    if (q == NULL || (uintptr_t)q % 64 != 0 || memcmp(q, "0123456789", 10) != 0) {
        return 0;
    }
    free(q);
    if (aw_realloc(NULL, 0, 64, SIZE_MAX - 10) != NULL) {
        return 0;
    }
    if (aw_realloc(NULL, 0, 48, 10) != NULL || aw_realloc(NULL, 0, 0, 10) != NULL) {
        return 0;
    }
    return 1;
}
