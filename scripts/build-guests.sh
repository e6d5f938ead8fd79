#!/usr/bin/env bash
# Rebuilds every guest (samples and test guests) from source.
# Run scripts/install-deps.sh first. Fails on the first error.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

export PATH="$REPO/.tools/bin:$PATH"   # zig from install-deps.sh

for tool in clang-14 wasm-ld wat2wasm wasm-validate wasm-objdump zig; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "build-guests: $tool not found; run scripts/install-deps.sh" >&2
    exit 1
  }
done

scripts=(
  samples/hello/build.sh
  samples/hello-zig/build.sh
  samples/echo-wat/build.sh
  samples/hello-cpp/build.sh
  samples/hello-rust/build.sh
  samples/hello-go/build.sh
  samples/hello-ts/build.sh
  samples/hello-js/build.sh
  tests/guests/build.sh
  tests/guests/echo-js/build.sh
  tests/guests/hello-cli/build.sh
  tests/guests/http-c/build.sh
)

for s in "${scripts[@]}"; do
  echo "== $s"
  bash "$REPO/$s" || { echo "build-guests: FAILED: $s" >&2; exit 1; }
done

# Every module must be a WASI preview 1 command: imports only from
# wasi_snapshot_preview1, and `_start` exported.
for w in samples/hello/hello.wasm samples/hello-zig/hello-zig.wasm \
         samples/echo-wat/echo-wat.wasm tests/guests/testbed.wasm \
         samples/hello-cpp/hello-cpp.wasm samples/hello-rust/hello-rust.wasm \
         samples/hello-go/hello-go.wasm samples/hello-ts/hello-ts.wasm; do
  f="$REPO/$w"
  bad="$(wasm-objdump -x -j Import "$f" | grep ' <- ' | grep -v ' <- wasi_snapshot_preview1\.' || true)"
  [ -z "$bad" ] || { echo "build-guests: $w has non-WASI imports:" >&2; echo "$bad" >&2; exit 1; }
  wasm-objdump -x -j Export "$f" | grep -q '"_start"' \
    || { echo "build-guests: $w does not export _start" >&2; exit 1; }
done
echo "build-guests: all guests built and checked"
