#!/usr/bin/env bash
# Builds hello-cpp.wasm (WASI preview 1 command) from main.cpp with clang++-14 and libc++ for wasm32-wasi.
# Needs clang-14, lld, wasi-libc, libc++-14-dev-wasm32, libc++abi-14-dev-wasm32 (scripts/install-toolchains.sh);
# wasm-opt optional. `warp pack samples/hello-cpp` runs the same compiler (without wasm-opt).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
clang++-14 --target=wasm32-wasi -O2 -fno-exceptions -Wall -Wextra -Werror \
  -Wl,--strip-all -Wl,-z,stack-size=65536 \
  -o hello-cpp.wasm main.cpp
if command -v wasm-opt >/dev/null 2>&1; then
  wasm-opt -O2 --strip-debug --strip-producers hello-cpp.wasm -o hello-cpp.wasm
fi
chmod 644 hello-cpp.wasm
wasm-validate hello-cpp.wasm
wasm-objdump -x -j Export hello-cpp.wasm | grep -q '"_start"' || { echo "hello-cpp: _start not exported" >&2; exit 1; }
echo "hello-cpp.wasm: $(stat -c %s hello-cpp.wasm) bytes"
