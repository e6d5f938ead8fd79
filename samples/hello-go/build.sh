#!/usr/bin/env bash
# Builds hello-go.wasm (WASI preview 1 command) with Go 1.23, GOOS=wasip1 GOARCH=wasm.
# Go 1.23 comes from bookworm-backports at /usr/lib/go-1.23/bin/go (scripts/install-toolchains.sh); plain bookworm
# has 1.19, which has no wasip1 port.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
GO="${GO:-/usr/lib/go-1.23/bin/go}"
[ -x "$GO" ] || { echo "hello-go: $GO not found; run scripts/install-toolchains.sh" >&2; exit 1; }
GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-buildvcs=false \
  "$GO" build -trimpath -ldflags='-s -w' -o hello-go.wasm .
chmod 644 hello-go.wasm
wasm-validate hello-go.wasm
wasm-objdump -x -j Export hello-go.wasm | grep -q '"_start"' || { echo "hello-go: _start not exported" >&2; exit 1; }
echo "hello-go.wasm: $(stat -c %s hello-go.wasm) bytes"
