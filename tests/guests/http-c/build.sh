#!/usr/bin/env bash
# Builds http-c.wasm: a wasi:http/incoming-handler@0.2.12 component from http.c (no SDK, no bindings generator) that
# also imports wasi:logging/logging@0.1.0-draft (logging.wit); and hello-c.wasm, the same source with -DHELLO_ONLY
# (the /hello path alone, for the benchmarks).
#   1. clang-14 --target=wasm32 (freestanding, no libc): a core module whose imports and export are the canonical
#      ABI's flattened signatures, written by hand in http.c;
#   2. `jco embed`: adds the component-type section of wit/world.wit (WASI 0.2.12 WIT from jco's builtin copy);
#   3. `jco new`: wit-component checks every import and export against the WIT and wraps the module as a component.
# Toolchains: clang-14 + lld (scripts/install-deps.sh), jco (scripts/install-toolchains.sh). Offline.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
REPO="$(cd ../../.. && pwd)"
NM="$REPO/.tools/node_modules"
SHIM="$NM/@bytecodealliance/preview2-shim/dist/nodejs/filesystem.js"
BUILTIN="$NM/@bytecodealliance/jco/lib/wit/builtin/0.2.12"
[ -d "$BUILTIN" ] && [ -f "$SHIM" ] || { echo "http-c: jco not found; run scripts/install-toolchains.sh" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/wit/deps"
cp wit/world.wit "$work/wit/"
for p in cli clocks filesystem http io random sockets; do
  mkdir -p "$work/wit/deps/$p"
  cp "$BUILTIN/wasi-$p/package.wit" "$work/wit/deps/$p/"
done
mkdir -p "$work/wit/deps/logging"
cp logging.wit "$work/wit/deps/logging/package.wit"

# jco runs wasm-tools on Node's WASI shim, which preopens nothing by default: preopen / so it can read the files.
jco() {
  node --import "data:text/javascript,import{_setPreopens}from'file://$(realpath "$SHIM")';_setPreopens({'/':'/'});" \
    "$NM/@bytecodealliance/jco/dist/jco.js" "$@"
}
for out in http-c hello-c; do
  defines=()
  [ "$out" = hello-c ] && defines=(-DHELLO_ONLY)
  clang-14 --target=wasm32 -O2 -Wall -Wextra -Werror -nostdlib -Wl,--no-entry -Wl,--strip-all "${defines[@]}" \
    -o "$work/core.wasm" http.c
  jco embed --wit "$work/wit" -n handler -o "$work/embedded.wasm" "$work/core.wasm"
  jco new "$work/embedded.wasm" -o "$PWD/$out.wasm"
  chmod 644 "$out.wasm"
  jco wit "$PWD/$out.wasm" | grep -q 'export wasi:http/incoming-handler@0.2.12' \
    || { echo "http-c: $out.wasm does not export wasi:http/incoming-handler@0.2.12" >&2; exit 1; }
  echo "$out.wasm: $(stat -c %s "$out.wasm") bytes"
done
