#!/usr/bin/env bash
# Builds the integration-test guests in this folder from source.
# Needs clang-14 + wasi-libc + lld + wabt (scripts/install-deps.sh); wasm-opt optional.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

CFLAGS=(--target=wasm32-wasi -O2 -Wall -Wextra -Werror)
LDFLAGS=(-Wl,--strip-all -Wl,--stack-first -Wl,-z,stack-size=65536)

build_c() { # build_c src.c out.wasm
  clang-14 "${CFLAGS[@]}" "${LDFLAGS[@]}" -o "$2" "$1"
  if command -v wasm-opt >/dev/null 2>&1; then
    wasm-opt -O2 --strip-debug --strip-producers "$2" -o "$2"
  fi
  chmod 644 "$2"
  wasm-validate "$2"
  wasm-objdump -x -j Export "$2" | grep -q '"_start"' \
    || { echo "$2: _start not exported" >&2; exit 1; }
  echo "$2: $(stat -c %s "$2") bytes"
}

build_c testbed.c testbed.wasm
build_c logbed.c logbed.wasm

# Deliberately not a wasm module (bad magic), for the "garbage bytes" tests.
printf 'this is not a wasm module\n' > not-wasm.wasm
echo "not-wasm.wasm: $(stat -c %s not-wasm.wasm) bytes (not wasm, on purpose)"
