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
//   /header-checks       exercises wasi:http/types fields (header-error cases, forbidden names, immutability, order and
//                        case of entries, from-list, clone), the status-code check and the outgoing-request setters;
//                        answers 200 with one line per check, "<check> <outcome>" (send it an "x-client: hello" header)
//   /status-<n>          answers status <n> (decimal) with body "status <n>\n"; "refused\n" with 200 when
//                        set-status-code refuses it
//   /obs-text            answers 200 with the header "x-latin1: caf\xe9" (an obs-text byte, valid in a field value)
//   /bad-content-length  builds a response with "content-length: abc" (valid field syntax, not a length); when
//                        outgoing-response.body refuses it, answers 200 "outgoing-response.body refused\n" instead
//   /fields-too-large    appends 1 KiB values to one fields until the host refuses (a trap past its 128 KiB limit)
//   /outbound?to=H:P&mode=M&kib=N
//                        POSTs N KiB (byte i is i % 251) to http://H:P through wasi:http/outgoing-handler and answers
//                        200 with what happened (see outbound() below for the modes: stream, buffered, drop, short,
//                        long, reset); the deployment needs [capabilities] http_outbound for H
//   /content-length?declared=N&write=M
//                        answers 200 with "content-length: N" and M bytes of the same pattern (in writes as large as
//                        check-write allows: M <= 64 KiB is one write), then finishes; logs through wasi:logging what
//                        the host answered: "content-length declared=N write=M: [write-error=<error> after=<offset>]
//                        finished|finish-error=<error>" (a size follows the case of a body-size error)
//   anything else        404 text/plain "http-c: unknown path <path>"
#include <stdint.h>
#include <stddef.h>

#define IMPORT(module, name) __attribute__((import_module(module), import_name(name)))
#define HTTP "wasi:http/types@0.2.12"
#define STREAMS "wasi:io/streams@0.2.12"
#define POLL "wasi:io/poll@0.2.12"
#define OUTGOING "wasi:http/outgoing-handler@0.2.12"

IMPORT(HTTP, "[constructor]fields") int32_t fields_new(void);
IMPORT(HTTP, "[method]fields.append") void fields_append(int32_t self, const char *name, size_t name_len, const char *value, size_t value_len, void *ret);
IMPORT(HTTP, "[static]fields.from-list") void fields_from_list(const void *entries, size_t count, void *ret);
IMPORT(HTTP, "[method]fields.get") void fields_get(int32_t self, const char *name, size_t name_len, void *ret);
IMPORT(HTTP, "[method]fields.has") int32_t fields_has(int32_t self, const char *name, size_t name_len);
IMPORT(HTTP, "[method]fields.set") void fields_set(int32_t self, const char *name, size_t name_len, const void *values, size_t count, void *ret);
IMPORT(HTTP, "[method]fields.delete") void fields_delete(int32_t self, const char *name, size_t name_len, void *ret);
IMPORT(HTTP, "[method]fields.entries") void fields_entries(int32_t self, void *ret);
IMPORT(HTTP, "[method]fields.clone") int32_t fields_clone(int32_t self);
IMPORT(HTTP, "[method]incoming-request.headers") int32_t request_headers(int32_t self);
IMPORT(HTTP, "[method]outgoing-response.headers") int32_t response_headers(int32_t self);
IMPORT(HTTP, "[method]outgoing-response.status-code") int32_t response_status(int32_t self);
IMPORT(HTTP, "[constructor]outgoing-request") int32_t outgoing_request_new(int32_t headers);
IMPORT(HTTP, "[method]outgoing-request.headers") int32_t outgoing_request_headers(int32_t self);
// method and scheme are variants whose one payload is other(string): case, pointer, length; option adds a flag first.
IMPORT(HTTP, "[method]outgoing-request.set-method") int32_t outgoing_request_set_method(int32_t self, int32_t method, const char *other, size_t other_len);
IMPORT(HTTP, "[method]outgoing-request.set-path-with-query") int32_t outgoing_request_set_path(int32_t self, int32_t is_some, const char *path, size_t path_len);
IMPORT(HTTP, "[method]outgoing-request.set-scheme") int32_t outgoing_request_set_scheme(int32_t self, int32_t is_some, int32_t scheme, const char *other, size_t other_len);
IMPORT(HTTP, "[method]outgoing-request.set-authority") int32_t outgoing_request_set_authority(int32_t self, int32_t is_some, const char *authority, size_t authority_len);
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
// The outbound side (see outbound()).
IMPORT(HTTP, "[method]outgoing-request.body") void request_body(int32_t self, void *ret);
IMPORT(HTTP, "[resource-drop]outgoing-body") void body_drop(int32_t self);
IMPORT(HTTP, "[method]future-incoming-response.subscribe") int32_t future_subscribe(int32_t self);
IMPORT(HTTP, "[method]future-incoming-response.get") void future_get(int32_t self, void *ret);
IMPORT(HTTP, "[method]incoming-response.status") int32_t incoming_status(int32_t self);
IMPORT(HTTP, "[method]incoming-response.consume") void incoming_consume(int32_t self, void *ret);
IMPORT(HTTP, "[method]incoming-body.stream") void incoming_body_stream(int32_t self, void *ret);
IMPORT(HTTP, "http-error-code") void http_error_code(int32_t err, void *ret);
IMPORT(OUTGOING, "handle") void outgoing_handle(int32_t request, int32_t has_options, int32_t options, void *ret);
// request-options: option<duration> flattens to (is-some, u64); the setters answer result<_, _> as one i32.
IMPORT(HTTP, "[constructor]request-options") int32_t request_options_new(void);
IMPORT(HTTP, "[method]request-options.set-connect-timeout") int32_t options_set_connect(int32_t self, int32_t is_some, int64_t ns);
IMPORT(HTTP, "[method]request-options.set-first-byte-timeout") int32_t options_set_first_byte(int32_t self, int32_t is_some, int64_t ns);
IMPORT(HTTP, "[method]request-options.set-between-bytes-timeout") int32_t options_set_between_bytes(int32_t self, int32_t is_some, int64_t ns);
IMPORT(POLL, "[method]pollable.block") void pollable_block(int32_t self);
IMPORT(POLL, "[resource-drop]pollable") void pollable_drop(int32_t self);
IMPORT(STREAMS, "[method]output-stream.check-write") void stream_check_write(int32_t self, void *ret);
IMPORT(STREAMS, "[method]output-stream.write") void stream_write(int32_t self, const char *bytes, size_t len, void *ret);
IMPORT(STREAMS, "[method]output-stream.subscribe") int32_t stream_subscribe(int32_t self);
IMPORT(STREAMS, "[method]input-stream.blocking-read") void stream_blocking_read(int32_t self, int64_t len, void *ret);
IMPORT(STREAMS, "[resource-drop]input-stream") void input_stream_drop(int32_t self);
IMPORT(HTTP, "[method]incoming-request.consume") void request_consume(int32_t self, void *ret);
IMPORT(STREAMS, "[method]input-stream.read") void stream_read(int32_t self, int64_t len, void *ret);
IMPORT(STREAMS, "[method]input-stream.subscribe") int32_t input_stream_subscribe(int32_t self);
IMPORT(HTTP, "[static]incoming-body.finish") int32_t incoming_body_finish(int32_t body);
IMPORT(HTTP, "[method]future-trailers.subscribe") int32_t future_trailers_subscribe(int32_t self);
IMPORT(HTTP, "[method]future-trailers.get") void future_trailers_get(int32_t self, void *ret);
IMPORT("wasi:random/random@0.2.12", "get-random-bytes") void random_bytes(int64_t len, void *ret);
// log(level: level, context: string, message: string): the enum flattens to its case index.
IMPORT("wasi:logging/logging@0.1.0-draft", "log") void log_record(int32_t level, const char *context, size_t context_len, const char *message, size_t message_len);

enum { LEVEL_TRACE, LEVEL_DEBUG, LEVEL_INFO, LEVEL_WARN, LEVEL_ERROR, LEVEL_CRITICAL };

// clang lowers copies of the report and of return-area data to these; there is no libc.
__attribute__((no_builtin("memcpy"))) void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    for (size_t i = 0; i < n; i++) {
        d[i] = s[i];
    }
    return dst;
}

__attribute__((no_builtin("memset"))) void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    for (size_t i = 0; i < n; i++) {
        d[i] = (unsigned char)c;
    }
    return dst;
}

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

// ---- /header-checks: a report of "<check> <outcome>" lines ----

static char report[16 * 1024];
static size_t report_len;

static void put(const char *bytes, size_t len)
{
    for (size_t i = 0; i < len && report_len < sizeof report; i++) {
        report[report_len++] = bytes[i];
    }
}

static void puts_(const char *s) { put(s, length(s)); }

// A value byte as is when printable, else \xHH.
static void put_value(const unsigned char *bytes, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        unsigned char b = bytes[i];
        if (b >= 0x21 && b < 0x7f && b != '\\') {
            put((const char *)&b, 1);
        } else {
            char e[4] = {'\\', 'x', hex[b >> 4], hex[b & 15]};
            put(e, 4);
        }
    }
}

static const char *header_error(int32_t code)
{
    switch (code) {
    case 0: return "invalid-syntax";
    case 1: return "forbidden";
    case 2: return "immutable";
    default: return "unknown-error";
    }
}

// result<_, header-error> in the return area: case byte at 0, the error's case byte at 1.
static void line_result(const char *check)
{
    puts_(check);
    puts_(" ");
    puts_(ret[0] == 0 ? "ok" : header_error(ret[1]));
    puts_("\n");
}

static void line_bool(const char *check, int32_t value)
{
    puts_(check);
    puts_(value ? " true\n" : " false\n");
}

// result<_, _> flattened to one i32.
static void line_unit(const char *check, int32_t is_err)
{
    puts_(check);
    puts_(is_err ? " err\n" : " ok\n");
}

static void append_(int32_t fields, const char *name, size_t name_len, const char *value, size_t value_len)
{
    fields_append(fields, name, name_len, value, value_len, ret);
}

#define STR(s) s, sizeof s - 1

static void check_append(const char *check, int32_t fields, const char *name, size_t name_len, const char *value, size_t value_len)
{
    append_(fields, name, name_len, value, value_len);
    line_result(check);
}

// get(name): "<check> v1|v2|..." ("<check> (none)" for an empty list).
static void line_get(const char *check, int32_t fields, const char *name, size_t name_len)
{
    fields_get(fields, name, name_len, ret);
    const uint32_t *items = *(const uint32_t **)(ret + 0);
    size_t count = *(size_t *)(ret + 4);
    puts_(check);
    puts_(" ");
    if (count == 0) {
        puts_("(none)");
    }
    for (size_t i = 0; i < count; i++) {
        if (i > 0) {
            puts_("|");
        }
        put_value((const unsigned char *)(uintptr_t)items[2 * i], items[2 * i + 1]);
    }
    puts_("\n");
}

// entries(): "<check> name=value;name=value".
static void line_entries(const char *check, int32_t fields)
{
    fields_entries(fields, ret);
    const uint32_t *items = *(const uint32_t **)(ret + 0);
    size_t count = *(size_t *)(ret + 4);
    puts_(check);
    puts_(" ");
    for (size_t i = 0; i < count; i++) {
        if (i > 0) {
            puts_(";");
        }
        put((const char *)(uintptr_t)items[4 * i], items[4 * i + 1]);
        puts_("=");
        put_value((const unsigned char *)(uintptr_t)items[4 * i + 2], items[4 * i + 3]);
    }
    puts_("\n");
}

struct bytes {
    const char *ptr;
    size_t len;
};

struct entry {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

// from-list: "<check> ok" (and the entries) or "<check> <header-error>".
static void check_from_list(const char *check, const struct entry *entries, size_t count)
{
    fields_from_list(entries, count, ret);
    puts_(check);
    puts_(" ");
    if (ret[0] != 0) {
        puts_(header_error(ret[4]));
        puts_("\n");
        return;
    }
    puts_("ok\n");
    int32_t fields = *(int32_t *)(ret + 4);
    puts_(check);
    line_entries("-entries", fields);
}

static void header_checks(int32_t request)
{
    // Syntax of names and values on a mutable fields.
    int32_t f = fields_new();
    check_append("append-valid", f, STR("X-Test"), STR("one"));
    check_append("append-name-space", f, STR("bad name"), STR("v"));
    check_append("append-name-empty", f, STR(""), STR("v"));
    check_append("append-name-colon", f, STR("x:y"), STR("v"));
    check_append("append-name-non-ascii", f, STR("caf\xc3\xa9"), STR("v"));
    check_append("append-value-lf", f, STR("x-v"), STR("a\nb"));
    check_append("append-value-cr", f, STR("x-v"), STR("a\rb"));
    check_append("append-value-nul", f, STR("x-v"), "a\0b", 3);
    check_append("append-value-del", f, STR("x-v"), STR("a\x7f" "b"));
    check_append("append-value-ctl", f, STR("x-v"), STR("\x01"));
    check_append("append-value-tab", f, STR("x-tab"), STR("a\tb"));
    check_append("append-value-obs-text", f, STR("x-latin1"), STR("caf\xe9"));
    check_append("append-value-empty", f, STR("x-empty"), "", 0);
    line_get("get-value-empty", f, STR("x-empty"));
    line_get("get-value-obs-text", f, STR("x-latin1"));

    // Forbidden names (any case), for append, set and delete; te is not forbidden in wasi:http 0.2.
    static const char *const forbidden[] = {
        "Connection", "KEEP-ALIVE", "Proxy-Authenticate", "proxy-authorization", "Proxy-Connection",
        "Transfer-Encoding", "upgrade", "Host", "HTTP2-Settings",
    };
    for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++) {
        append_(f, forbidden[i], length(forbidden[i]), STR("x"));
        puts_("append-forbidden-");
        line_result(forbidden[i]);
    }
    static const struct bytes one_value[] = {{STR("x")}};
    fields_set(f, STR("host"), one_value, 1, ret);
    line_result("set-forbidden");
    fields_delete(f, STR("connection"), ret);
    line_result("delete-forbidden");
    check_append("append-te", f, STR("te"), STR("trailers"));

    // set is all or nothing, replaces every value, compares names without case.
    static const struct bytes bad_values[] = {{STR("two")}, {STR("bad\nvalue")}};
    fields_set(f, STR("x-test"), bad_values, 2, ret);
    line_result("set-bad-value");
    line_get("get-after-bad-set", f, STR("x-test"));
    fields_set(f, STR("bad name"), one_value, 1, ret);
    line_result("set-bad-name");
    static const struct bytes two_values[] = {{STR("two")}, {STR("three")}};
    fields_set(f, STR("X-TEST"), two_values, 2, ret);
    line_result("set-valid");
    line_get("get-after-set", f, STR("x-tEsT"));
    line_bool("has-other-case", fields_has(f, STR("x-TEST")));
    line_bool("has-absent", fields_has(f, STR("x-absent")));
    line_bool("has-invalid-name", fields_has(f, STR("bad name")));
    line_get("get-invalid-name", f, STR("bad name"));
    fields_delete(f, STR("bad name"), ret);
    line_result("delete-bad-name");

    // Order and case of entries: values of a name together, names in first-added order, set in place.
    int32_t g = fields_new();
    append_(g, STR("x-a"), STR("1"));
    append_(g, STR("x-b"), STR("2"));
    append_(g, STR("X-A"), STR("3"));
    static const struct bytes four[] = {{STR("4")}};
    fields_set(g, STR("x-c"), four, 1, ret);
    static const struct bytes five_six[] = {{STR("5")}, {STR("6")}};
    fields_set(g, STR("X-B"), five_six, 2, ret);
    line_entries("entries-order", g);
    fields_delete(g, STR("X-a"), ret);
    line_result("delete-valid");
    fields_delete(g, STR("x-missing"), ret);
    line_result("delete-absent");
    fields_set(g, STR("x-c"), four, 0, ret);
    line_result("set-no-values");
    line_entries("entries-after-delete", g);

    // clone is a mutable deep copy.
    int32_t h = fields_clone(g);
    check_append("clone-append", h, STR("x-clone"), STR("7"));
    line_entries("clone-entries", h);
    line_entries("clone-original-entries", g);

    // from-list validates every entry and fails as a whole.
    static const struct entry good[] = {{STR("a"), STR("1")}, {STR("B"), STR("2")}, {STR("a"), STR("3")}};
    check_from_list("from-list-valid", good, 3);
    static const struct entry bad_value[] = {{STR("a"), STR("1")}, {STR("b"), STR("x\ny")}};
    check_from_list("from-list-bad-value", bad_value, 2);
    static const struct entry bad_name[] = {{STR("a"), STR("1")}, {STR("b c"), STR("2")}};
    check_from_list("from-list-bad-name", bad_name, 2);
    static const struct entry forbidden_name[] = {{STR("a"), STR("1")}, {STR("Upgrade"), STR("h2c")}};
    check_from_list("from-list-forbidden", forbidden_name, 2);

    // The incoming request's headers: immutable; forbidden names (host) are not there; name checks come first.
    int32_t in = request_headers(request);
    check_append("request-append", in, STR("x-new"), STR("v"));
    fields_set(in, STR("x-client"), one_value, 1, ret);
    line_result("request-set");
    fields_delete(in, STR("x-client"), ret);
    line_result("request-delete");
    check_append("request-append-forbidden", in, STR("host"), STR("v"));
    check_append("request-append-bad-name", in, STR("bad name"), STR("v"));
    line_get("request-get", in, STR("X-Client"));
    line_bool("request-has-host", fields_has(in, STR("host")));
    int32_t in_copy = fields_clone(in);
    check_append("request-clone-append", in_copy, STR("x-new"), STR("v"));

    // Fields given to an outgoing response or request are immutable from then on.
    int32_t r_fields = fields_new();
    append_(r_fields, STR("x-r"), STR("1"));
    int32_t response = response_new(r_fields);
    int32_t r_headers = response_headers(response);
    check_append("response-headers-append", r_headers, STR("x-r"), STR("2"));
    fields_delete(r_headers, STR("x-r"), ret);
    line_result("response-headers-delete");
    line_get("response-headers-get", r_headers, STR("x-r"));
    int32_t q_fields = fields_new();
    int32_t outgoing = outgoing_request_new(q_fields);
    int32_t q_headers = outgoing_request_headers(outgoing);
    fields_set(q_headers, STR("x-q"), one_value, 1, ret);
    line_result("request-headers-set");

    // set-status-code: 100..999 only (WIT status-code is a u16).
    line_unit("status-99", response_set_status(response, 99));
    line_unit("status-1000", response_set_status(response, 1000));
    line_unit("status-599", response_set_status(response, 599));
    line_unit("status-100", response_set_status(response, 100));
    line_unit("status-0", response_set_status(response, 0));
    line_unit("status-65535", response_set_status(response, 65535));
    puts_("status-after ");
    int32_t status = response_status(response);
    char digits[3] = {(char)('0' + status / 100 % 10), (char)('0' + status / 10 % 10), (char)('0' + status % 10)};
    put(digits, 3);
    puts_("\n");

    // outgoing-request setters refuse what is not a method, path-with-query, scheme or authority.
    enum { METHOD_GET = 0, METHOD_OTHER = 9, SCHEME_HTTP = 0, SCHEME_OTHER = 2 };
    line_unit("method-get", outgoing_request_set_method(outgoing, METHOD_GET, "", 0));
    line_unit("method-other-token", outgoing_request_set_method(outgoing, METHOD_OTHER, STR("PURGE")));
    line_unit("method-other-space", outgoing_request_set_method(outgoing, METHOD_OTHER, STR("BAD METHOD")));
    line_unit("method-other-empty", outgoing_request_set_method(outgoing, METHOD_OTHER, "", 0));
    line_unit("method-other-newline", outgoing_request_set_method(outgoing, METHOD_OTHER, STR("GET\n")));
    line_unit("path-valid", outgoing_request_set_path(outgoing, 1, STR("/a/b?c=d&e=%20")));
    line_unit("path-none", outgoing_request_set_path(outgoing, 0, "", 0));
    line_unit("path-space", outgoing_request_set_path(outgoing, 1, STR("/a b")));
    line_unit("path-newline", outgoing_request_set_path(outgoing, 1, STR("/a\nb")));
    line_unit("path-fragment", outgoing_request_set_path(outgoing, 1, STR("/a#b")));
    line_unit("path-no-leading-slash", outgoing_request_set_path(outgoing, 1, STR("@evil.example/x")));
    line_unit("scheme-http", outgoing_request_set_scheme(outgoing, 1, SCHEME_HTTP, "", 0));
    line_unit("scheme-none", outgoing_request_set_scheme(outgoing, 0, 0, "", 0));
    line_unit("scheme-other-valid", outgoing_request_set_scheme(outgoing, 1, SCHEME_OTHER, STR("git+ssh")));
    line_unit("scheme-other-digit-first", outgoing_request_set_scheme(outgoing, 1, SCHEME_OTHER, STR("1http")));
    line_unit("scheme-other-space", outgoing_request_set_scheme(outgoing, 1, SCHEME_OTHER, STR("ht tp")));
    line_unit("scheme-other-empty", outgoing_request_set_scheme(outgoing, 1, SCHEME_OTHER, "", 0));
    line_unit("authority-valid", outgoing_request_set_authority(outgoing, 1, STR("example.com:8080")));
    line_unit("authority-ipv6", outgoing_request_set_authority(outgoing, 1, STR("[::1]:80")));
    line_unit("authority-userinfo", outgoing_request_set_authority(outgoing, 1, STR("user@example.com")));
    line_unit("authority-none", outgoing_request_set_authority(outgoing, 0, "", 0));
    line_unit("authority-slash", outgoing_request_set_authority(outgoing, 1, STR("example.com/x")));
    line_unit("authority-space", outgoing_request_set_authority(outgoing, 1, STR("exa mple.com")));
    line_unit("authority-port-too-big", outgoing_request_set_authority(outgoing, 1, STR("example.com:99999")));
    line_unit("authority-port-empty", outgoing_request_set_authority(outgoing, 1, STR("example.com:")));
    line_unit("authority-port-letters", outgoing_request_set_authority(outgoing, 1, STR("example.com:8o")));
}

static void fields_too_large(void)
{
    static char value[1024];
    for (size_t i = 0; i < sizeof value; i++) {
        value[i] = 'v';
    }
    int32_t f = fields_new();
    for (int i = 0; i < 1024; i++) {
        append_(f, STR("x-big"), value, sizeof value);
        if (ret[0] != 0) {
            return;
        }
    }
}

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

// ---- /outbound: a streamed outbound request body ------------------------------------------------------------------


// wasi:http error-code cases in WIT order (their index is the variant discriminant).
static const char *const error_cases[] = {
    "DNS-timeout", "DNS-error", "destination-not-found", "destination-unavailable", "destination-IP-prohibited",
    "destination-IP-unroutable", "connection-refused", "connection-terminated", "connection-timeout",
    "connection-read-timeout", "connection-write-timeout", "connection-limit-reached", "TLS-protocol-error",
    "TLS-certificate-error", "TLS-alert-received", "HTTP-request-denied", "HTTP-request-length-required",
    "HTTP-request-body-size", "HTTP-request-method-invalid", "HTTP-request-URI-invalid", "HTTP-request-URI-too-long",
    "HTTP-request-header-section-size", "HTTP-request-header-size", "HTTP-request-trailer-section-size",
    "HTTP-request-trailer-size", "HTTP-response-incomplete", "HTTP-response-header-section-size",
    "HTTP-response-header-size", "HTTP-response-body-size", "HTTP-response-trailer-section-size",
    "HTTP-response-trailer-size", "HTTP-response-transfer-coding", "HTTP-response-content-coding",
    "HTTP-response-timeout", "HTTP-upgrade-failed", "HTTP-protocol-error", "loop-detected", "configuration-error",
    "internal-error",
};
enum { ERROR_REQUEST_BODY_SIZE = 17, ERROR_RESPONSE_BODY_SIZE = 28 };

// The answer of /outbound, built up as the request goes.
static char out[1024];
static size_t out_len;

static void out_put(const char *bytes, size_t len)
{
    for (size_t i = 0; i < len && out_len < sizeof out; i++) {
        out[out_len++] = bytes[i];
    }
}

static void out_puts(const char *s)
{
    out_put(s, length(s));
}

static void put_u64(uint64_t n)
{
    char digits[20];
    size_t count = 0;
    do {
        digits[count++] = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    while (count > 0) {
        out_put(&digits[--count], 1);
    }
}

// An error-code value (discriminant byte at e, payload at e + 8): its case, and the size of a body-size error.
static void put_error_code(const unsigned char *e)
{
    out_puts(e[0] < sizeof error_cases / sizeof error_cases[0] ? error_cases[e[0]] : "unknown");
    if ((e[0] == ERROR_REQUEST_BODY_SIZE || e[0] == ERROR_RESPONSE_BODY_SIZE) && e[8] != 0) {
        out_puts(" size=");
        put_u64(*(const uint64_t *)(e + 16));
    }
}

// A stream-error (discriminant byte at e, io-error handle at e + 4): "closed", or the error code behind it.
static void put_stream_error(const unsigned char *e)
{
    if (e[0] != 0) {
        out_puts("closed");
        return;
    }
    int32_t error = *(const int32_t *)(e + 4);
    http_error_code(error, ret);
    if (ret[0] == 0) {
        out_puts("io-error");
        return;
    }
    put_error_code(ret + 8);
}

static const char *query_value(const char *query, size_t query_len, const char *key, size_t *value_len)
{
    size_t key_len = length(key);
    for (size_t i = 0; i + key_len <= query_len; i++) {
        if ((i == 0 || query[i - 1] == '?' || query[i - 1] == '&') && equals(query + i, key_len, key)) {
            size_t end = i + key_len;
            while (end < query_len && query[end] != '&') {
                end++;
            }
            *value_len = end - i - key_len;
            return query + i + key_len;
        }
    }
    *value_len = 0;
    return "";
}

static uint64_t parse_u64(const char *s, size_t len)
{
    uint64_t n = 0;
    for (size_t i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        n = n * 10 + (uint64_t)(s[i] - '0');
    }
    return n;
}

// An outgoing request to http://<authority><path>, optionally with a content-length header.
static int32_t outbound_request(int32_t method, const char *authority, size_t authority_len, const char *path, int has_length, uint64_t content_length)
{
    int32_t headers = fields_new();
    if (has_length) {
        char digits[24];
        size_t n = 0;
        uint64_t rest = content_length;
        char reversed[20];
        size_t count = 0;
        do {
            reversed[count++] = (char)('0' + rest % 10);
            rest /= 10;
        } while (rest != 0);
        while (count > 0) {
            digits[n++] = reversed[--count];
        }
        static const char name[] = "content-length";
        fields_append(headers, name, sizeof name - 1, digits, n, ret);
        if (ret[0] != 0) {
            __builtin_trap();
        }
    }
    int32_t request = outgoing_request_new(headers);
    if (outgoing_request_set_method(request, method, 0, 0) != 0 || outgoing_request_set_scheme(request, 1, 0, 0, 0) != 0
        || outgoing_request_set_authority(request, 1, authority, authority_len) != 0
        || outgoing_request_set_path(request, 1, path, length(path)) != 0) {
        __builtin_trap();
    }
    return request;
}

static int32_t send(int32_t request)
{
    outgoing_handle(request, 0, 0, ret);
    if (ret[0] != 0) {
        out_puts("handle-error=");
        put_error_code(ret + 8);
        return -1;
    }
    return *(int32_t *)(ret + 8);
}

// Finishes an incoming body whose stream was read to its end: " trailers=name=value;..." (or " trailers=none").
static void out_trailers(int32_t body, int32_t stream)
{
    input_stream_drop(stream);
    int32_t future = incoming_body_finish(body);
    int32_t pollable = future_trailers_subscribe(future);
    pollable_block(pollable);
    pollable_drop(pollable);
    // option<result<result<option<own<trailers>>, error-code>>>: some at 0, outer ok at 8, inner ok at 16, some at 24,
    // the handle at 28.
    future_trailers_get(future, ret);
    out_puts(" trailers=");
    if (ret[0] == 0 || ret[8] != 0 || ret[16] != 0) {
        out_puts("error");
        return;
    }
    if (ret[24] == 0) {
        out_puts("none");
        return;
    }
    int32_t trailers = *(int32_t *)(ret + 28);
    fields_entries(trailers, ret);
    const uint32_t *items = *(const uint32_t **)(ret + 0);
    size_t count = *(size_t *)(ret + 4);
    for (size_t i = 0; i < count; i++) {
        if (i > 0) {
            out_puts(";");
        }
        out_put((const char *)(uintptr_t)items[4 * i], items[4 * i + 1]);
        out_puts("=");
        out_put((const char *)(uintptr_t)items[4 * i + 2], items[4 * i + 3]);
    }
}

// Waits for the response of an outbound request: "status=S body=B", or "error=<case>"; with show_end, the body is
// followed by " end=E" (E: closed, or the error code of the read that ended it) and, when closed, its trailers.
static void put_response(int32_t future, int show_end)
{
    int32_t pollable = future_subscribe(future);
    pollable_block(pollable);
    pollable_drop(pollable);
    // option<result<result<incoming-response, error-code>>>: some at 0, outer ok at 8, inner case at 16, payload at 24.
    future_get(future, ret);
    if (ret[0] == 0 || ret[8] != 0) {
        out_puts("no-response");
        return;
    }
    if (ret[16] != 0) {
        out_puts("error=");
        put_error_code(ret + 24);
        return;
    }
    int32_t response = *(int32_t *)(ret + 24);
    out_puts("status=");
    put_u64((uint64_t)incoming_status(response));
    out_puts(" body=");
    incoming_consume(response, ret);
    int32_t body = expect_handle();
    incoming_body_stream(body, ret);
    int32_t stream = expect_handle();
    for (;;) {
        stream_blocking_read(stream, 256, ret);
        if (ret[0] != 0) {
            if (show_end) {
                out_puts(" end=");
                int closed = ret[4] != 0;
                put_stream_error(ret + 4);
                if (closed) {
                    out_trailers(body, stream);
                }
            }
            break;
        }
        out_put(*(const char **)(ret + 4), *(size_t *)(ret + 8));
    }
}

static char chunk[64 * 1024];

// Writes bytes [from, to) of the pattern the way a non-blocking writer does: check-write, wait on the stream's
// pollable while it reports no room, write what it allows. Returns the offset reached; on a stream error it appends
// "write-error=<error> after=<offset>".
static uint64_t write_pattern(int32_t stream, uint64_t from, uint64_t to)
{
    while (from < to) {
        // result<u64, stream-error>: case at 0, the u64 (or the stream-error) at 8.
        stream_check_write(stream, ret);
        if (ret[0] != 0) {
            out_puts("write-error=");
            put_stream_error(ret + 8);
            break;
        }
        uint64_t permit = *(uint64_t *)(ret + 8);
        if (permit == 0) {
            int32_t pollable = stream_subscribe(stream);
            pollable_block(pollable);
            pollable_drop(pollable);
            continue;
        }
        size_t n = sizeof chunk;
        if (permit < n) {
            n = (size_t)permit;
        }
        if (to - from < n) {
            n = (size_t)(to - from);
        }
        for (size_t i = 0; i < n; i++) {
            chunk[i] = (char)((from + i) % 251);
        }
        // result<_, stream-error>: case at 0, the stream-error at 4.
        stream_write(stream, chunk, n, ret);
        if (ret[0] != 0) {
            out_puts("write-error=");
            put_stream_error(ret + 4);
            break;
        }
        from += n;
    }
    if (from < to) {
        out_puts(" after=");
        put_u64(from);
        out_puts(" ");
    }
    return from;
}

static void finish_outbound(int32_t body)
{
    body_finish(body, 0, 0, ret);
    if (ret[0] != 0) {
        out_puts("finish-error=");
        put_error_code(ret + 8);
        out_puts(" ");
    } else {
        out_puts("finished ");
    }
}

// /outbound?to=H:P&mode=M&kib=N: POSTs N KiB to http://H:P/sink (or /reset) and answers what happened. Modes:
//   stream    handle first, write half, GET /progress (the server answers once it has received body bytes: proof the
//             body streams), write the rest, finish: "progress=<answer> finished status=S body=B"
//   buffered  write all, finish, then handle (the common order): "finished status=S body=B"
//   drop      handle, write half, drop the body without finish: "error=<case>" from the response future
//   short     content-length N KiB, handle, write half, finish: "finish-error=HTTP-request-body-size size=<half> ..."
//   long      content-length N KiB, handle, write N KiB - 5, then 15 bytes in one write:
//             "write-error=HTTP-request-body-size size=<N KiB + 10> after=<N KiB - 5> ..."
//   reset     handle, write to /reset (the server resets the connection mid-body) until a write fails
static void outbound(int32_t outparam, const char *query, size_t query_len)
{
    size_t to_len, mode_len, kib_len;
    const char *to = query_value(query, query_len, "to=", &to_len);
    const char *mode = query_value(query, query_len, "mode=", &mode_len);
    uint64_t total = parse_u64(query_value(query, query_len, "kib=", &kib_len), kib_len) * 1024;
    uint64_t half = total / 2;
    enum { METHOD_GET = 0, METHOD_POST = 2 };
    out_len = 0;
    int with_length = equals(mode, mode_len, "short") || equals(mode, mode_len, "long");
    int32_t request = outbound_request(METHOD_POST, to, to_len, equals(mode, mode_len, "reset") ? "/reset" : "/sink", with_length, total);
    request_body(request, ret);
    int32_t body = expect_handle();
    body_write(body, ret);
    int32_t stream = expect_handle();

    if (equals(mode, mode_len, "buffered")) {
        write_pattern(stream, 0, total);
        stream_drop(stream);
        finish_outbound(body);
        int32_t future = send(request);
        if (future >= 0) {
            put_response(future, 0);
        }
    } else {
        int32_t future = send(request);
        if (future < 0) {
            __builtin_trap();
        }
        if (equals(mode, mode_len, "stream")) {
            write_pattern(stream, 0, half);
            int32_t progress = send(outbound_request(METHOD_GET, to, to_len, "/progress", 0, 0));
            out_puts("progress=");
            put_response(progress, 0);
            out_puts(" ");
            write_pattern(stream, half, total);
            stream_drop(stream);
            finish_outbound(body);
        } else if (equals(mode, mode_len, "drop")) {
            write_pattern(stream, 0, half);
            stream_drop(stream);
            body_drop(body);
        } else if (equals(mode, mode_len, "short")) {
            write_pattern(stream, 0, half);
            stream_drop(stream);
            finish_outbound(body);
        } else if (equals(mode, mode_len, "long")) {
            // One write of 15 bytes crosses the declared length from 5 bytes short of it.
            if (write_pattern(stream, 0, total - 5) == total - 5) {
                write_pattern(stream, total - 5, total + 10);
            }
            stream_drop(stream);
            finish_outbound(body);
        } else {
            write_pattern(stream, 0, total);
            stream_drop(stream);
            finish_outbound(body);
        }
        put_response(future, 0);
    }

    struct response r = start(200);
    outparam_set(outparam, 0, r.response, 0, 0, 0, 0, 0, 0);
    write_all(r.stream, out, out_len);
    stream_drop(r.stream);
    finish(r.body);
}

// /content-length?declared=N&write=M: a response body that declares N bytes and has M (see the list at the top).
static void content_length(int32_t outparam, const char *query, size_t query_len)
{
    size_t declared_len, write_len;
    const char *declared = query_value(query, query_len, "declared=", &declared_len);
    uint64_t total = parse_u64(query_value(query, query_len, "write=", &write_len), write_len);
    int32_t headers = fields_new();
    append_(headers, STR("content-length"), declared, declared_len);
    if (ret[0] != 0) {
        __builtin_trap();
    }
    int32_t response = response_new(headers);
    response_body(response, ret);
    int32_t body = expect_handle();
    body_write(body, ret);
    int32_t stream = expect_handle();
    outparam_set(outparam, 0, response, 0, 0, 0, 0, 0, 0);
    out_len = 0;
    out_puts("content-length declared=");
    out_put(declared, declared_len);
    out_puts(" write=");
    put_u64(total);
    out_puts(": ");
    write_pattern(stream, 0, total);
    stream_drop(stream);
    finish_outbound(body);
    static const char context[] = "http-c";
    log_record(LEVEL_INFO, context, sizeof context - 1, out, out_len);
}

// /fetch?to=H:P&path=p&connect-ms=N&first-byte-ms=N&between-ms=N: GETs http://H:P/p with those request-options
// (each only when given; p without its leading '/') and answers 200 "status=S body=B end=E" (E: closed, or the read's error code) or
// "error=<case>" when the response future fails; the request's own timings are what the test looks at.
static void fetch(int32_t outparam, const char *query, size_t query_len)
{
    size_t to_len, path_len, len;
    const char *to = query_value(query, query_len, "to=", &to_len);
    const char *path = query_value(query, query_len, "path=", &path_len);
    // The path comes without its leading '/' (a '/' in the query would end the route's last segment).
    static char target[256];
    if (path_len >= sizeof target - 1) {
        path_len = 0;
    }
    target[0] = '/';
    for (size_t i = 0; i < path_len; i++) {
        target[i + 1] = path[i];
    }
    target[path_len + 1] = 0;
    int32_t options = request_options_new();
    const char *v;
    if ((v = query_value(query, query_len, "connect-ms=", &len)), len > 0) {
        options_set_connect(options, 1, (int64_t)(parse_u64(v, len) * 1000000));
    }
    if ((v = query_value(query, query_len, "first-byte-ms=", &len)), len > 0) {
        options_set_first_byte(options, 1, (int64_t)(parse_u64(v, len) * 1000000));
    }
    if ((v = query_value(query, query_len, "between-ms=", &len)), len > 0) {
        options_set_between_bytes(options, 1, (int64_t)(parse_u64(v, len) * 1000000));
    }
    int32_t request = outbound_request(0 /* get */, to, to_len, target, 0, 0);
    outgoing_handle(request, 1, options, ret);
    if (ret[0] != 0) {
        out_puts("handle-error=");
        put_error_code(ret + 8);
    } else {
        put_response(*(int32_t *)(ret + 8), 1);
    }
    out[out_len < sizeof out ? out_len : sizeof out - 1] = 0;
    respond(outparam, 200, out, "", 0);
}

// /trailers: reads the request body to its end and answers 200 "read=N trailers=..." (the request's trailer fields).
static void request_trailers(int32_t request, int32_t outparam)
{
    request_consume(request, ret);
    int32_t body = expect_handle();
    incoming_body_stream(body, ret);
    int32_t stream = expect_handle();
    uint64_t total = 0;
    for (;;) {
        stream_blocking_read(stream, 4096, ret);
        if (ret[0] != 0) {
            break;
        }
        total += *(size_t *)(ret + 8);
    }
    out_puts("read=");
    put_u64(total);
    out_trailers(body, stream);
    out[out_len < sizeof out ? out_len : sizeof out - 1] = 0;
    respond(outparam, 200, out, "", 0);
}

// /nonblocking-read: sends its head and "started\n" first, then reads the request body with the non-blocking
// input-stream.read: "empty\n" when a read found nothing there yet (the guest then waits on subscribe), finally
// "read=N\n". A client that sends its body only after it saw "empty" needs read to return without data.
static void nonblocking_read(int32_t request, int32_t outparam)
{
    struct response r = start(200);
    outparam_set(outparam, 0, r.response, 0, 0, 0, 0, 0, 0);
    write_all(r.stream, "started\n", 8);
    request_consume(request, ret);
    int32_t body = expect_handle();
    incoming_body_stream(body, ret);
    int32_t stream = expect_handle();
    uint64_t total = 0;
    int reported = 0;
    for (;;) {
        stream_read(stream, 4096, ret);
        if (ret[0] != 0) {
            break;
        }
        size_t n = *(size_t *)(ret + 8);
        if (n == 0) {
            if (!reported) {
                write_all(r.stream, "empty\n", 6);
                reported = 1;
            }
            int32_t pollable = input_stream_subscribe(stream);
            pollable_block(pollable);
            pollable_drop(pollable);
            continue;
        }
        total += n;
    }
    out_puts("read=");
    put_u64(total);
    out_puts("\n");
    write_all(r.stream, out, out_len);
    stream_drop(r.stream);
    finish(r.body);
}

static int starts_with(const char *a, size_t a_len, const char *prefix)
{
    size_t n = length(prefix);
    return a_len >= n && equals(a, n, prefix);
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

#ifdef HELLO_ONLY
    // hello-c.wasm (build.sh, -DHELLO_ONLY): the /hello path alone, so the linker drops every other path and the
    // imports only they use; the benchmarks' minimal component hello.
    if (equals(name, name_len, "/hello")) {
        respond(outparam, 200, "Hello from C on WarpGrid (wasi:http)!\n", "", 0);
    } else {
        respond(outparam, 404, "hello-c: unknown path\n", "", 0);
    }
    return;
#endif
    if (equals(name, name_len, "/nonblocking-read")) {
        nonblocking_read(request, outparam);
    } else if (equals(name, name_len, "/trailers")) {
        request_trailers(request, outparam);
    } else if (starts_with(name, name_len, "/fetch?")) {
        fetch(outparam, name + 6, name_len - 6);
    } else if (starts_with(name, name_len, "/outbound?")) {
        outbound(outparam, name + 9, name_len - 9);
    } else if (starts_with(name, name_len, "/content-length?")) {
        content_length(outparam, name + 15, name_len - 15);
    } else if (equals(name, name_len, "/hello")) {
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
    } else if (equals(name, name_len, "/header-checks")) {
        header_checks(request);
        struct response r = start(200);
        outparam_set(outparam, 0, r.response, 0, 0, 0, 0, 0, 0);
        // blocking-write-and-flush takes at most 4096 bytes a call.
        for (size_t at = 0; at < report_len; at += 4096) {
            write_all(r.stream, report + at, report_len - at < 4096 ? report_len - at : 4096);
        }
        stream_drop(r.stream);
        finish(r.body);
    } else if (name_len > 8 && equals(name, 8, "/status-")) {
        int32_t status = 0;
        for (size_t i = 8; i < name_len && i < 14; i++) {
            status = status * 10 + (name[i] - '0');
        }
        struct response r = start(200);
        int refused = response_set_status(r.response, status) != 0;
        outparam_set(outparam, 0, r.response, 0, 0, 0, 0, 0, 0);
        if (refused) {
            write_all(r.stream, "refused\n", 8);
        } else {
            write_all(r.stream, "status ", 7);
            write_all(r.stream, name + 8, name_len - 8);
            write_all(r.stream, "\n", 1);
        }
        stream_drop(r.stream);
        finish(r.body);
    } else if (equals(name, name_len, "/obs-text") || equals(name, name_len, "/bad-content-length")) {
        int32_t headers = fields_new();
        if (name_len == 9) {
            append_(headers, STR("x-latin1"), STR("caf\xe9"));
        } else {
            append_(headers, STR("content-length"), STR("abc"));
        }
        if (ret[0] != 0) {
            __builtin_trap();
        }
        int32_t response = response_new(headers);
        response_body(response, ret);
        if (ret[0] != 0) {
            respond(outparam, 200, "outgoing-response.body refused\n", "", 0);
            return;
        }
        int32_t body = *(int32_t *)(ret + 4);
        outparam_set(outparam, 0, response, 0, 0, 0, 0, 0, 0);
        finish(body);
    } else if (equals(name, name_len, "/fields-too-large")) {
        fields_too_large();
        respond(outparam, 200, "the host took more than 1 MiB of fields\n", "", 0);
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
