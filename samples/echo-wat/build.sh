#!/usr/bin/env bash
# Builds echo-wat.wasm from echo.wat with wabt's wat2wasm (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
wat2wasm echo.wat -o echo-wat.wasm
wasm-validate echo-wat.wasm
echo "echo-wat.wasm: $(stat -c %s echo-wat.wasm) bytes"
