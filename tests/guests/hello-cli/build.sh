#!/usr/bin/env bash
# Builds hello-cli.wasm: a C WASI preview 1 command (clang-14 --target=wasm32-wasi) wrapped into a wasi:cli/run
# component with `jco new --wasi-command` (jco's bundled preview 1 adapter, works offline).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
REPO="$(cd ../../.. && pwd)"
clang-14 --target=wasm32-wasi -O2 -o core.wasm main.c
"$REPO/.tools/node_modules/.bin/jco" new core.wasm --wasi-command -o hello-cli.wasm
rm -f core.wasm
echo "hello-cli.wasm: $(stat -c %s hello-cli.wasm) bytes"
