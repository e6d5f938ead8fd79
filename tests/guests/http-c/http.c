// http-c: a WASI 0.2 wasi:http/incoming-handler component written in C, with no SDK and no bindings generator: the
// imports and the export are declared below in the canonical ABI's flattened form (one i32 per handle, pointer+length
// per string or list, a return area when a result flattens to more than one value). build.sh compiles it with
// clang-14 for freestanding wasm32, embeds the WIT world (jco embed) and wraps it as a component (jco new).
//
// The handler looks at the last segment of the path only, so it works under any route (/http-c/hello, /hello):
//   /hello               200 text/plain "Hello from C on WarpGrid (wasi:http)!\n": the component hello of the benchmarks
//   /trap-mid            sends the head (200) and part of the body, then traps (unreachable)
//   /no-response         returns without calling response-outparam.set
//   /write-after-finish  writes to the body stream after outgoing-body.finish (before any response is set)
//   /host-panic          asks wasi:random for 2 MiB at once: the host function throws (more than it allows per call)
//   /bad-handle          calls fields.append on a handle the guest does not own (Wasmtime traps on the lift)
//   /trap                traps (unreachable) before any response: a deployment sent only this traps on every request
//   /log                 logs through wasi:logging/logging (info "http-c" "hello from wasi:logging <path>", then
//                        warn with an empty context), then answers 200 "logged\n"
//   /spin                never answers: loops until the host interrupts it at its deadline (a slow probe)
//   anything else        404 text/plain "http-c: unknown path <path>"
#include <stdint.h>
#include <stddef.h>

#define IMPORT(module, name) __attribute__((import_module(module), import_name(name)))
#define HTTP "wasi:http/types@0.2.12"
#define STREAMS "wasi:io/streams@0.2.12"

IMPORT(HTTP, "[constructor]fields") int32_t fields_new(void);
IMPORT(HTTP, "[method]fields.append") void fields_append(int32_t self, const char *name, size_t name_len, const char *value, size_t value_len, void *ret);
IMPORT(HTTP, "[method]incoming-request.path-with-query") void request_path_with_query(int32_t self, void *ret);
IMPORT(HTTP, "[constructor]outgoing-response") int32_t response_new(int32_t headers);
IMPORT(HTTP, "[method]outgoing-response.set-status-code") int32_t response_set_status(int32_t self, int32_t status);
IMPORT(HTTP, "[method]outgoing-response.body") void response_body(int32_t self, void *ret);
IMPORT(HTTP, "[method]outgoing-body.write") void body_write(int32_t self, void *ret);
IMPORT(HTTP, "[static]outgoing-body.finish") void body_finish(int32_t body, int32_t has_trailers, int32_t trailers, void *ret);
// response-outparam.set(param, result<own<outgoing-response>, error-code>): error-code flattens to 7 values
// (case, then i32, i64, i32 x4), the result to 8 (is-err, then the join of the handle and the error code).
IMPORT(HTTP, "[static]response-outparam.set") void outparam_set(int32_t param, int32_t is_err, int32_t v0, int32_t v1, int64_t v2, int32_t v3, int32_t v4, int32_t v5, int32_t v6);
IMPORT(STREAMS, "[method]output-stream.blocking-write-and-flush") void stream_write_and_flush(int32_t self, const char *bytes, size_t len, void *ret);
IMPORT(STREAMS, "[resource-drop]output-stream") void stream_drop(int32_t self);
IMPORT("wasi:random/random@0.2.12", "get-random-bytes") void random_bytes(int64_t len, void *ret);
// log(level: level, context: string, message: string): the enum flattens to its case index.
IMPORT("wasi:logging/logging@0.1.0-draft", "log") void log_record(int32_t level, const char *context, size_t context_len, const char *message, size_t message_len);

enum { LEVEL_TRACE, LEVEL_DEBUG, LEVEL_INFO, LEVEL_WARN, LEVEL_ERROR, LEVEL_CRITICAL };

// A bump allocator is enough: every request runs on a fresh instance.
static _Alignas(8) unsigned char heap[64 * 1024];
static size_t heap_used;

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *old, size_t old_size, size_t align, size_t new_size)
{
    (void)old_size;
    if (old != NULL || new_size > sizeof heap) {
        __builtin_trap();
    }
    size_t start = (heap_used + align - 1) & ~(align - 1);
    if (start + new_size > sizeof heap) {
        __builtin_trap();
    }
    heap_used = start + new_size;
    return heap + start;
}

static _Alignas(8) unsigned char ret[64];

static size_t length(const char *s)
{
    size_t n = 0;
    while (s[n] != 0) {
        n++;
    }
    return n;
}

static int equals(const char *a, size_t a_len, const char *b)
{
    size_t b_len = length(b);
    if (a_len != b_len) {
        return 0;
    }
    for (size_t i = 0; i < a_len; i++) {
        if (a[i] != b[i]) {
            return 0;
        }
    }
    return 1;
}

// result<own<T>, _> in the return area: case byte at 0, handle at 4.
static int32_t expect_handle(void)
{
    if (ret[0] != 0) {
        __builtin_trap();
    }
    return *(int32_t *)(ret + 4);
}

static void write_all(int32_t stream, const char *bytes, size_t len)
{
    stream_write_and_flush(stream, bytes, len, ret);
    if (ret[0] != 0) {
        __builtin_trap();
    }
}

struct response {
    int32_t response;
    int32_t body;
    int32_t stream;
};

static struct response start(int32_t status)
{
    struct response r;
    int32_t headers = fields_new();
    static const char name[] = "content-type";
    static const char value[] = "text/plain";
    fields_append(headers, name, sizeof name - 1, value, sizeof value - 1, ret);
    if (ret[0] != 0) {
        __builtin_trap();
    }
    r.response = response_new(headers);
    if (response_set_status(r.response, status) != 0) {
        __builtin_trap();
    }
    response_body(r.response, ret);
    r.body = expect_handle();
    body_write(r.body, ret);
    r.stream = expect_handle();
    return r;
}

static void finish(int32_t body)
{
    body_finish(body, 0, 0, ret);
    if (ret[0] != 0) {
        __builtin_trap();
    }
}

static void respond(int32_t outparam, int32_t status, const char *prefix, const char *path, size_t path_len)
{
    struct response r = start(status);
    outparam_set(outparam, 0, r.response, 0, 0, 0, 0, 0, 0);
    write_all(r.stream, prefix, length(prefix));
    if (path_len > 0) {
        write_all(r.stream, path, path_len);
    }
    stream_drop(r.stream);
    finish(r.body);
}

__attribute__((export_name("wasi:http/incoming-handler@0.2.12#handle"))) void handle(int32_t request, int32_t outparam)
{
    request_path_with_query(request, ret);
    const char *path = "";
    size_t path_len = 0;
    if (ret[0] != 0) {
        path = *(const char **)(ret + 4);
        path_len = *(size_t *)(ret + 8);
    }
    const char *name = path;
    size_t name_len = path_len;
    for (size_t i = 0; i < path_len; i++) {
        if (path[i] == '/') {
            name = path + i;
            name_len = path_len - i;
        }
    }

    if (equals(name, name_len, "/hello")) {
        respond(outparam, 200, "Hello from C on WarpGrid (wasi:http)!\n", "", 0);
    } else if (equals(name, name_len, "/trap-mid")) {
        struct response r = start(200);
        outparam_set(outparam, 0, r.response, 0, 0, 0, 0, 0, 0);
        static const char part[] = "partial body, then a trap\n";
        write_all(r.stream, part, sizeof part - 1);
        __builtin_trap();
    } else if (equals(name, name_len, "/no-response")) {
        return;
    } else if (equals(name, name_len, "/write-after-finish")) {
        struct response r = start(200);
        write_all(r.stream, "before finish\n", 14);
        finish(r.body);
        write_all(r.stream, "after finish\n", 13);
        outparam_set(outparam, 0, r.response, 0, 0, 0, 0, 0, 0);
    } else if (equals(name, name_len, "/host-panic")) {
        random_bytes(2 * 1024 * 1024, ret);
        respond(outparam, 200, "the host gave 2 MiB of random bytes at once\n", "", 0);
    } else if (equals(name, name_len, "/bad-handle")) {
        fields_append(0x7fff, "x", 1, "y", 1, ret);
        respond(outparam, 200, "appended to a handle that does not exist\n", "", 0);
    } else if (equals(name, name_len, "/trap")) {
        __builtin_trap();
    } else if (equals(name, name_len, "/log")) {
        static const char context[] = "http-c";
        static const char message[] = "hello from wasi:logging ";
        static char text[sizeof message + 256];
        size_t n = 0;
        for (; n < sizeof message - 1; n++) {
            text[n] = message[n];
        }
        for (size_t i = 0; i < path_len && i < 256; i++) {
            text[n++] = path[i];
        }
        log_record(LEVEL_INFO, context, sizeof context - 1, text, n);
        static const char warning[] = "a warning without context";
        log_record(LEVEL_WARN, "", 0, warning, sizeof warning - 1);
        respond(outparam, 200, "logged\n", "", 0);
    } else if (equals(name, name_len, "/spin")) {
        for (volatile uint32_t i = 0;; i++) {
        }
    } else {
        respond(outparam, 404, "http-c: unknown path ", path, path_len);
    }
}
