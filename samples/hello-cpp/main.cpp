// Hello world for WarpGrid in C++ (clang++-14, libc++ for wasm32-wasi), WAGI convention (WASI preview 1 command).
// Reads PATH_INFO from the environment and writes the CGI header, a blank line and the body in one write.
#include <cstdlib>
#include <string>
#include <unistd.h>

int main() {
    const char *path = std::getenv("PATH_INFO");
    std::string response = "Content-Type: text/plain\n\nHello from C++ on WarpGrid! You asked for ";
    response += path != nullptr ? path : "";
    response += '\n';

    const char *p = response.data();
    std::size_t left = response.size();
    while (left > 0) {  // one iteration unless the host does a short write
        ssize_t n = write(1, p, left);
        if (n <= 0) return 1;
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    return 0;
}
