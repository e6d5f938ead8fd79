// Hello world for WarpGrid in Go 1.23 (GOOS=wasip1 GOARCH=wasm), WAGI convention (WASI preview 1 command).
// Reads PATH_INFO from the environment and writes the CGI header, a blank line and the body in one write.
// Only package os: fmt would double the module size.
package main

import "os"

func main() {
	response := "Content-Type: text/plain\n\nHello from Go on WarpGrid! You asked for " + os.Getenv("PATH_INFO") + "\n"
	if _, err := os.Stdout.WriteString(response); err != nil {
		os.Exit(1)
	}
}
