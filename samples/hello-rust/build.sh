#!/usr/bin/env bash
# Builds hello-rust.wasm (WASI preview 1 command) with Debian's Rust 1.63 and its wasm32-wasi std
# (rustc cargo libstd-rust-dev-wasm32: scripts/install-toolchains.sh). rustup's shims come first on PATH and have no
# wasm target here, so Debian's rustc and cargo are called by full path. std only, built offline.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
REPO="$(cd ../.. && pwd)"
[ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] || { echo "hello-rust: Debian rustc/cargo not found; run scripts/install-toolchains.sh" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/.tools/cargo-target/hello-rust}"   # out of the source tree
RUSTC=/usr/bin/rustc /usr/bin/cargo build --release --target wasm32-wasi --offline --quiet
cp "$CARGO_TARGET_DIR/wasm32-wasi/release/hello-rust.wasm" hello-rust.wasm
if command -v wasm-opt >/dev/null 2>&1; then
  wasm-opt -Oz --strip-debug --strip-producers hello-rust.wasm -o hello-rust.wasm
fi
chmod 644 hello-rust.wasm
wasm-validate hello-rust.wasm
wasm-objdump -x -j Export hello-rust.wasm | grep -q '"_start"' || { echo "hello-rust: _start not exported" >&2; exit 1; }
echo "hello-rust.wasm: $(stat -c %s hello-rust.wasm) bytes"
