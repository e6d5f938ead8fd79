/*
 * testbed: one WAGI guest (WASI preview 1 command) for WarpGrid's integration
 * tests. PATH_INFO (the request path after the deployment's route prefix)
 * picks the behaviour; see README.md beside this file for the exact outputs.
 *
 * Built by build.sh: clang-14 --target=wasm32-wasi -O2, linked with
 * --stack-first so a shadow-stack overflow traps (out of bounds) instead of
 * silently overwriting static data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- helpers --------------------------------------------------------------- */

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) exit(1);
        p += w;
        n -= (size_t)w;
    }
}

static void out(const char *s) { fputs(s, stdout); }

/* Decimal without printf (keeps vfprintf, and so ~20 KB, out of the module). */
static void out_u(unsigned long long v) {
    char buf[24], *p = buf + sizeof buf;
    *--p = '\0';
    do { *--p = (char)('0' + v % 10); v /= 10; } while (v);
    out(p);
}

/* Compare "NAME=value" strings by NAME first, then by value. */
static int cmp_env(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t nx = strcspn(x, "="), ny = strcspn(y, "=");
    size_t n = nx < ny ? nx : ny;
    int c = memcmp(x, y, n);
    if (c != 0) return c;
    if (nx != ny) return nx < ny ? -1 : 1;
    return strcmp(x + nx, y + ny);
}

/* ---- modes ------------------------------------------------------------------ */

static int mode_env(void) {
    size_t count = 0;
    while (environ && environ[count]) count++;
    char **vars = malloc((count + 1) * sizeof *vars);
    if (!vars) abort();
    for (size_t i = 0; i < count; i++) vars[i] = environ[i];
    qsort(vars, count, sizeof *vars, cmp_env);
    out("Content-Type: text/plain\n\n");
    for (size_t i = 0; i < count; i++) {
        out(vars[i]);
        out("\n");
    }
    free(vars);
    return 0;
}

static int mode_echo(void) {
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    if (!buf) abort();
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf) abort();
        }
        ssize_t n = read(0, buf + len, cap - len);
        if (n < 0) return 1;
        if (n == 0) break;
        len += (size_t)n;
    }
    const char *method = getenv("REQUEST_METHOD");
    out("Content-Type: application/octet-stream\nX-Echo-Length: ");
    out_u(len);
    out("\nX-Request-Method: ");
    out(method ? method : "");
    out("\n\n");
    fflush(stdout);
    write_all(1, buf, len);
    free(buf);
    return 0;
}

static int mode_status(void) {
    out("Status: 418 I'm a teapot\n"
        "X-Custom: yes\n"
        "Content-Type: text/plain\n"
        "\n"
        "short and stout");
    return 0;
}

static int mode_bytes_header(void) {
    /* Header values are bytes: a UTF-8 file name (RFC 6266 style) and one obs-text byte (0xE9, Latin-1 e-acute). */
    out("Content-Type: text/plain\n"
        "Content-Disposition: attachment; filename=\"caf\xc3\xa9.txt\"\n"
        "X-Latin1: caf\xe9\n"
        "\n"
        "bytes");
    return 0;
}

static int mode_bad_header_name(void) {
    out("Content-Type: text/plain\n"
        "X Bad: 1\n"
        "\n"
        "never sent");
    return 0;
}

static int mode_redirect(void) {
    /* Location without Status: CGI/WAGI says the server answers 302. */
    out("Location: /testbed/env\n\n");
    return 0;
}

static int mode_log(void) {
    fputs("first log line\n", stderr);
    fputs("second log line\n", stderr);
    fputs("third log line\n", stderr);
    out("Content-Type: text/plain\n\nlogged");
    return 0;
}

static volatile unsigned long loop_counter;

static int mode_loop(void) {
    for (;;) loop_counter++; /* volatile: the loop cannot be removed */
}

static void *volatile oom_sink;

static int mode_oom(void) {
    const size_t chunk = 1024 * 1024;
    void *head = NULL;
    for (;;) {
        char *p = malloc(chunk);
        if (!p) abort(); /* wasm `unreachable` trap once memory cannot grow */
        memset(p, 0xA5, chunk);
        *(void **)p = head; /* keep every chunk reachable */
        head = p;
        oom_sink = head;
    }
}

/*
 * Unbounded recursion that uses only the engine's native stack: the call goes
 * through a volatile function pointer (so it cannot be inlined, turned into a
 * loop or removed) and its result is used after the call (so it is not a tail
 * call). No locals live in linear memory, so the wasm call stack overflows
 * (Wasmtime: TrapCode.StackOverflow) rather than the 64 KiB shadow stack.
 */
static int recurse(int depth);
static int (*volatile recurse_ptr)(int) = recurse;

__attribute__((noinline)) static int recurse(int depth) {
    return recurse_ptr(depth + 1) + 1;
}

static int mode_recurse(void) {
    int r = recurse(0);
    out("Content-Type: text/plain\n\nunreachable ");
    out_u((unsigned)r);
    return 0;
}

static int mode_trap(void) {
    __builtin_trap(); /* wasm `unreachable` */
}

static int mode_exit3(void) {
    out("Content-Type: text/plain\n\nexiting");
    fflush(stdout);
    exit(3); /* proc_exit(3) */
}

static int mode_big(void) {
    static const char pattern[] = "abcdefghijklmnop"; /* 16 bytes */
    const size_t total = 1024 * 1024, block = 64 * 1024;
    char *buf = malloc(block);
    if (!buf) abort();
    for (size_t i = 0; i < block; i += 16) memcpy(buf + i, pattern, 16);
    out("Content-Type: text/plain\n\n");
    fflush(stdout);
    for (size_t done = 0; done < total; done += block) write_all(1, buf, block);
    free(buf);
    return 0;
}

/* Busy for ?ms=N milliseconds of wall-clock time (default 200): a slow request for load and scaling tests. */
static int mode_spin(void) {
    const char *q = getenv("QUERY_STRING");
    unsigned long ms = 200;
    if (q && strncmp(q, "ms=", 3) == 0) ms = strtoul(q + 3, NULL, 10);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long elapsed = (long long)(now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed >= (long long)ms) break;
    }
    out("Content-Type: text/plain\n\nspun ");
    out_u(ms);
    return 0;
}

/* The instance serving the request (WARPGRID_INSTANCE_ID). */
static int mode_whoami(void) {
    const char *id = getenv("WARPGRID_INSTANCE_ID");
    out("Content-Type: text/plain\n\n");
    out(id ? id : "");
    return 0;
}

/*
 * Health endpoint: 503 when HEALTH=fail (every instance, a crash loop) or when this instance's id is listed in
 * UNHEALTHY_INSTANCES (comma-separated; one instance going bad), else 200.
 */
static int mode_healthz(void) {
    const char *id = getenv("WARPGRID_INSTANCE_ID");
    const char *all = getenv("HEALTH");
    const char *list = getenv("UNHEALTHY_INSTANCES");
    int bad = all && strcmp(all, "fail") == 0;
    if (!bad && id && list) {
        size_t n = strlen(id);
        for (const char *p = list; *p;) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            if (len == n && strncmp(p, id, n) == 0) bad = 1;
            if (!end) break;
            p = end + 1;
        }
    }
    if (bad) {
        fputs("health check failing\n", stderr);
        out("Status: 503 Service Unavailable\nContent-Type: text/plain\n\nunhealthy");
    } else {
        out("Content-Type: text/plain\n\nok");
    }
    return 0;
}

static int mode_unknown(const char *path) {
    out("Status: 404 Not Found\n"
        "Content-Type: text/plain\n"
        "\n"
        "testbed: unknown path ");
    out(path);
    return 0;
}

/* ---- dispatch --------------------------------------------------------------- */

int main(void) {
    const char *path = getenv("PATH_INFO");
    if (!path) path = "";

    if (strcmp(path, "/env") == 0) return mode_env();
    if (strcmp(path, "/echo") == 0) return mode_echo();
    if (strcmp(path, "/status") == 0) return mode_status();
    if (strcmp(path, "/redirect") == 0) return mode_redirect();
    if (strcmp(path, "/bytes-header") == 0) return mode_bytes_header();
    if (strcmp(path, "/bad-header-name") == 0) return mode_bad_header_name();
    if (strcmp(path, "/log") == 0) return mode_log();
    if (strcmp(path, "/loop") == 0) return mode_loop();
    if (strcmp(path, "/oom") == 0) return mode_oom();
    if (strcmp(path, "/recurse") == 0) return mode_recurse();
    if (strcmp(path, "/trap") == 0) return mode_trap();
    if (strcmp(path, "/exit3") == 0) return mode_exit3();
    if (strcmp(path, "/big") == 0) return mode_big();
    if (strcmp(path, "/spin") == 0) return mode_spin();
    if (strcmp(path, "/whoami") == 0) return mode_whoami();
    if (strcmp(path, "/healthz") == 0) return mode_healthz();
    return mode_unknown(path);
}
