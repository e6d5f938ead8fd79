#!/usr/bin/env bash
# Builds hello-ts.wasm (WASI preview 1 command) from index.ts with AssemblyScript 0.28.20 and
# @assemblyscript/wasi-shim 0.1.0, from ./node_modules (npm install here) or <repo>/.tools/node_modules
# (scripts/install-toolchains.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
REPO="$(cd ../.. && pwd)"
if [ -x node_modules/.bin/asc ]; then NM="$PWD/node_modules"; else NM="$REPO/.tools/node_modules"; fi
[ -x "$NM/.bin/asc" ] && [ -f "$NM/@assemblyscript/wasi-shim/asconfig.json" ] \
  || { echo "hello-ts: assemblyscript/wasi-shim not found; run scripts/install-toolchains.sh" >&2; exit 1; }
# asc 0.28 resolves the config's "lib" wrongly when --config is absolute: pass it relative.
"$NM/.bin/asc" index.ts --config "$(realpath --relative-to=. "$NM/@assemblyscript/wasi-shim/asconfig.json")" -O3 --noAssert --outFile hello-ts.wasm
chmod 644 hello-ts.wasm
wasm-validate hello-ts.wasm
wasm-objdump -x -j Export hello-ts.wasm | grep -q '"_start"' || { echo "hello-ts: _start not exported" >&2; exit 1; }
echo "hello-ts.wasm: $(stat -c %s hello-ts.wasm) bytes"
