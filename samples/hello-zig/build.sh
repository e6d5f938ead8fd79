#!/usr/bin/env bash
# Builds hello-zig.wasm (WASI preview 1 command, exports _start) from main.zig.
# Needs Zig 0.11: on PATH, in $ZIG, or at <repo>/.tools/bin/zig (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
REPO="$(cd ../.. && pwd)"
ZIG="${ZIG:-}"
if [ -z "$ZIG" ]; then
  if [ -x "$REPO/.tools/bin/zig" ]; then ZIG="$REPO/.tools/bin/zig"
  elif command -v zig >/dev/null 2>&1; then ZIG="$(command -v zig)"
  else echo "hello-zig: zig 0.11 not found; run scripts/install-deps.sh" >&2; exit 1
  fi
fi
# Keep zig's caches out of the source tree.
export ZIG_LOCAL_CACHE_DIR="${ZIG_LOCAL_CACHE_DIR:-$REPO/.tools/zig-cache}"
export ZIG_GLOBAL_CACHE_DIR="${ZIG_GLOBAL_CACHE_DIR:-$REPO/.tools/zig-global-cache}"
"$ZIG" build-exe main.zig -target wasm32-wasi -O ReleaseSmall -fstrip --stack 65536 \
  -femit-bin=hello-zig.wasm
rm -f hello-zig.wasm.o
chmod 644 hello-zig.wasm
wasm-validate hello-zig.wasm
wasm-objdump -x -j Export hello-zig.wasm | grep -q '"_start"' \
  || { echo "hello-zig: _start not exported" >&2; exit 1; }
echo "hello-zig.wasm: $(stat -c %s hello-zig.wasm) bytes"
