#!/usr/bin/env bash
# Builds hello-js.wasm, a WASI 0.2 component exporting wasi:http/incoming-handler@0.2.10, from app.js with
# componentize-js 0.23.0 (SpiderMonkey/StarlingMonkey), from ./node_modules or <repo>/.tools/node_modules
# (scripts/install-toolchains.sh). Offline: `jco componentize` needs the network, componentize-js does not.
#   --refresh-wit   regenerate wit/deps from jco's builtin 0.2.12 WIT, pinned to 0.2.10 (the version the engine exports)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
REPO="$(cd ../.. && pwd)"
if [ -d node_modules/@bytecodealliance/componentize-js ]; then NM="$PWD/node_modules"; else NM="$REPO/.tools/node_modules"; fi
CJS="$NM/@bytecodealliance/componentize-js/src/cli.js"
SHIM="$NM/@bytecodealliance/preview2-shim/dist/nodejs/filesystem.js"
[ -f "$CJS" ] && [ -f "$SHIM" ] || { echo "hello-js: componentize-js/preview2-shim not found; run scripts/install-toolchains.sh" >&2; exit 1; }

if [ "${1:-}" = "--refresh-wit" ]; then
  BUILTIN="$NM/@bytecodealliance/jco/lib/wit/builtin/0.2.12"
  for p in cli clocks filesystem http io random sockets; do
    mkdir -p "wit/deps/$p"
    sed 's/0\.2\.12/0.2.10/g' "$BUILTIN/wasi-$p/package.wit" > "wit/deps/$p/package.wit"
  done
fi

# componentize-js 0.23 runs its splicer on preview2-shim 0.26, which preopens no directory by default:
# preopen / so it can read the WIT and the source.
node --import "data:text/javascript,import{_setPreopens}from'file://$(realpath "$SHIM")';_setPreopens({'/':'/'});" \
  "$CJS" --wit wit --world-name handler -o hello-js.wasm app.js
chmod 644 hello-js.wasm
"$NM/.bin/jco" wit hello-js.wasm | grep -q 'export wasi:http/incoming-handler@0.2.10' \
  || { echo "hello-js: the component does not export wasi:http/incoming-handler@0.2.10" >&2; exit 1; }
echo "hello-js.wasm: $(stat -c %s hello-js.wasm) bytes"
