#!/usr/bin/env bash
# Builds hello.wasm (WASI preview 1 command) from hello.c.
# Needs clang-14 + wasi-libc + lld (scripts/install-deps.sh); wasm-opt optional.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
clang-14 --target=wasm32-wasi -O2 -Wall -Wextra -Werror \
  -Wl,--strip-all -Wl,-z,stack-size=16384 \
  -o hello.wasm hello.c
if command -v wasm-opt >/dev/null 2>&1; then
  wasm-opt -O2 --strip-debug --strip-producers hello.wasm -o hello.wasm
fi
chmod 644 hello.wasm
wasm-validate hello.wasm
echo "hello.wasm: $(stat -c %s hello.wasm) bytes"
