/*
 * plugin.c: the demo's plugin, a request handler as a plugin host runs them. Built by
 * ../build.sh into plugin.wasm; examples/src/bin/demo/ is its host.
 *
 * For each request the host makes a fresh instance, calls `_initialize`, then `handle`,
 * which:
 *   1. asks the host for its request, JSON: {"id": 17, "user": "user-3"};
 *   2. waits 10 ms on a host timer;
 *   3. sends a 64-byte message made from the request through its connection (the host
 *      writes it to an echo server and hands back what came back);
 *   4. answers with JSON naming the request and the hash of what came back:
 *      {"id":17,"user":"user-3","echoed":64,"hash":"89ab..."}
 * The host knows the request, so it can check every answer.
 *
 * Every import is an async host function: the plugin calls them as plain functions, and its
 * stack is suspended while the host awaits. It needs no WASI: it formats its text itself
 * rather than with snprintf, whose stdio would import WASI's file functions.
 */
#include <stdint.h>
#include <string.h>

#include "async_wasm.h"

AW_IMPORT("host", "request") uint64_t host_request(void);
AW_IMPORT("host", "sleep_ms") void host_sleep_ms(int32_t ms);
AW_IMPORT("host", "echo") uint64_t host_echo(const uint8_t *message, size_t len);
AW_IMPORT("host", "respond") void host_respond(const char *json, size_t len);

enum { MESSAGE_LEN = 64, MAX_USER = 32 };

/* What handle returns besides 0, for the host's error message. */
enum { BAD_REQUEST = 1, NO_REPLY = 2 };

/*
 * The value after `"key":` in the JSON object `json`, skipping spaces; NULL if absent.
 * Enough for the host's requests, which are flat objects of numbers and plain strings.
 */
static const char *json_value(aw_bytes json, const char *key) {
    size_t key_len = strlen(key);
    const char *text = (const char *)json.ptr;
    for (size_t i = 0; i + key_len + 3 <= json.len; i++) {
        if (text[i] == '"' && memcmp(text + i + 1, key, key_len) == 0 &&
            text[i + 1 + key_len] == '"') {
            size_t at = i + key_len + 2;
            while (at < json.len && (text[at] == ' ' || text[at] == ':')) {
                at++;
            }
            return at < json.len ? text + at : NULL;
        }
    }
    return NULL;
}

/* Reads the request's id and user (a string without escapes, at most MAX_USER bytes). */
static int parse_request(aw_bytes json, uint32_t *id, char user[MAX_USER + 1]) {
    const char *end = (const char *)json.ptr + json.len;
    const char *at = json_value(json, "id");
    if (at == NULL || *at < '0' || *at > '9') {
        return 0;
    }
    for (*id = 0; at < end && *at >= '0' && *at <= '9'; at++) {
        *id = *id * 10 + (uint32_t)(*at - '0');
    }
    at = json_value(json, "user");
    if (at == NULL || *at != '"') {
        return 0;
    }
    size_t len = 0;
    for (at++; at < end && *at != '"' && *at != '\\' && len < MAX_USER; at++) {
        user[len++] = *at;
    }
    user[len] = '\0';
    return at < end && *at == '"';
}

/* Text in a fixed buffer. Appending past its end sets `overflow` instead of writing. */
typedef struct text {
    char *buf;
    size_t len, cap;
    int overflow;
} text;

static void put(text *t, const char *s, size_t n) {
    if (n > t->cap - t->len) {
        t->overflow = 1;
        return;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
}

static void put_str(text *t, const char *s) { put(t, s, strlen(s)); }

static void put_decimal(text *t, uint64_t n) {
    char digits[20];
    size_t at = sizeof digits;
    do {
        digits[--at] = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    put(t, digits + at, sizeof digits - at);
}

static void put_hex64(text *t, uint64_t n) {
    char digits[16];
    for (int i = 15; i >= 0; i--, n >>= 4) {
        digits[i] = "0123456789abcdef"[n & 15];
    }
    put(t, digits, sizeof digits);
}

/* FNV-1a, 64 bits: the host computes the same over the message it expects back. */
static uint64_t fnv1a(const uint8_t *bytes, size_t len) {
    uint64_t hash = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++) {
        hash = (hash ^ bytes[i]) * 0x100000001b3u;
    }
    return hash;
}

/* The message for a request: a greeting padded with dots to exactly MESSAGE_LEN bytes. */
static int build_message(char message[MESSAGE_LEN], uint32_t id, const char *user) {
    text m = {message, 0, MESSAGE_LEN, 0};
    put_str(&m, "hello from ");
    put_str(&m, user);
    put_str(&m, ", request ");
    put_decimal(&m, id);
    put_str(&m, " ");
    memset(message + m.len, '.', MESSAGE_LEN - m.len);
    return !m.overflow;
}

AW_EXPORT("handle") int32_t handle(void) {
    aw_bytes request = aw_bytes_from(host_request());
    uint32_t id;
    char user[MAX_USER + 1];
    int ok = parse_request(request, &id, user);
    aw_bytes_free(request);
    if (!ok) {
        return BAD_REQUEST;
    }

    host_sleep_ms(10);

    char message[MESSAGE_LEN];
    if (!build_message(message, id, user)) {
        return BAD_REQUEST;
    }
    aw_bytes echoed = aw_bytes_from(host_echo((const uint8_t *)message, MESSAGE_LEN));
    uint64_t hash = fnv1a(echoed.ptr, echoed.len);
    size_t echoed_len = echoed.len;
    aw_bytes_free(echoed);

    char buf[128];
    text reply = {buf, 0, sizeof buf, 0};
    put_str(&reply, "{\"id\":");
    put_decimal(&reply, id);
    put_str(&reply, ",\"user\":\"");
    put_str(&reply, user);
    put_str(&reply, "\",\"echoed\":");
    put_decimal(&reply, echoed_len);
    put_str(&reply, ",\"hash\":\"");
    put_hex64(&reply, hash);
    put_str(&reply, "\"}");
    if (reply.overflow) {
        return NO_REPLY;
    }
    host_respond(reply.buf, reply.len);
    return 0;
}
