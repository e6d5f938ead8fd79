/*
 * Hello world for WarpGrid, WAGI convention (WASI preview 1 command).
 *
 * The whole response (CGI header, blank line, body) is one static buffer
 * written with a single write(2) to stdout: no stdio, no environment parsing,
 * no allocation, so a request costs one fd_write host call.
 */
#include <unistd.h>

static const char response[] =
    "Content-Type: text/plain\n"
    "\n"
    "Hello from WarpGrid!\n";

int main(void) {
    const char *p = response;
    size_t left = sizeof response - 1;
    while (left > 0) { /* one iteration unless the host does a short write */
        ssize_t n = write(1, p, left);
        if (n <= 0) return 1;
        p += n;
        left -= (size_t)n;
    }
    return 0;
}
