/* A C guest of the data ABI: the example in async_wasm::data's documentation, built by
 * guests/build.sh and run by the tests (tests/tests/integration/c_guests.rs). */
#include <string.h>
#include "async_wasm.h"

AW_IMPORT("env", "greet") uint64_t greet(const char *name, size_t name_len, int times);
AW_IMPORT("env", "find") uint64_t find(const char *key, size_t key_len);

AW_EXPORT("run") int run(void) {
    aw_bytes reply = aw_bytes_from(greet("wasm", 4, 2));
    int ok = reply.len == 24 && memcmp(reply.ptr, "hello, wasm!hello, wasm!", 24) == 0;
    aw_bytes_free(reply);
    return ok;
}

/* An error value: `find` gives code 404 for a key it does not have. */
AW_EXPORT("missing") int missing(void) {
    aw_bytes value = aw_bytes_from(find("nope", 4));
    aw_error err;
    if (!aw_error_take(&err)) {
        aw_bytes_free(value);
        return 0;
    }
    int ok = err.code == 404 && value.len == 0;
    aw_error_free(err);
    return ok;
}
