/*
 * logbed: a WAGI guest (WASI preview 1 command) that logs through WarpGrid's
 * log import, wasi:logging/logging's log(level, context, message) lowered to
 * core wasm: (i32 level, i32 context_ptr, i32 context_len, i32 message_ptr,
 * i32 message_len) -> (). See README.md beside this file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((import_module("wasi:logging/logging@0.1.0-draft"), import_name("log")))
void wasi_logging_log(int level, const char *context, size_t context_len, const char *message, size_t message_len);

enum { TRACE, DEBUG, INFO, WARN, ERROR, CRITICAL };

static void log_str(int level, const char *context, const char *message) {
    wasi_logging_log(level, context, strlen(context), message, strlen(message));
}

int main(void) {
    const char *path = getenv("PATH_INFO");
    if (!path) path = "";
    if (strcmp(path, "/log") == 0) {
        log_str(INFO, "", "hello from wasi:logging");
        log_str(WARN, "checkout", "payment provider slow");
        fputs("Content-Type: text/plain\n\nlogged", stdout);
        return 0;
    }
    if (strcmp(path, "/bad-level") == 0) {
        log_str(9, "", "not a level");
        fputs("Content-Type: text/plain\n\nunreachable", stdout);
        return 0;
    }
    fputs("Status: 404 Not Found\nContent-Type: text/plain\n\nlogbed: unknown path ", stdout);
    fputs(path, stdout);
    return 0;
}
