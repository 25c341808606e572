/*
 * wasi_guest.c: a C guest that uses WASI (printf, a clock) and async-wasm's async imports
 * together, as a plugin does. Built by ../build.sh into wasi_guest.wasm.
 */
#include <stdio.h>
#include <time.h>

#include "async_wasm.h"

/* The host looks `key` up (it takes a while: the host awaits a timer) and returns text. */
AW_IMPORT("env", "lookup") uint64_t lookup(const char *key, size_t len);

static long elapsed_ms(const struct timespec *from, const struct timespec *to) {
    return (long)(to->tv_sec - from->tv_sec) * 1000 + (to->tv_nsec - from->tv_nsec) / 1000000;
}

/* Looks up `answer`, prints the value and how long the lookup took; returns that time. */
AW_EXPORT("run") long run(void) {
    struct timespec before, after;
    clock_gettime(CLOCK_MONOTONIC, &before);
    aw_bytes value = aw_bytes_from(lookup("answer", 6));
    clock_gettime(CLOCK_MONOTONIC, &after);
    long ms = elapsed_ms(&before, &after);
    printf("lookup(answer) = %.*s after %ld ms\n", (int)value.len, (const char *)value.ptr, ms);
    fflush(stdout);
    aw_bytes_free(value);
    return ms;
}
