#!/usr/bin/env bash
# Builds echo-js.wasm (test guest) from app.js with componentize-js, like samples/hello-js/build.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
REPO="$(cd ../../.. && pwd)"
NM="$REPO/.tools/node_modules"
SHIM="$NM/@bytecodealliance/preview2-shim/dist/nodejs/filesystem.js"
node --import "data:text/javascript,import{_setPreopens}from'file://$(realpath "$SHIM")';_setPreopens({'/':'/'});" \
  "$NM/@bytecodealliance/componentize-js/src/cli.js" --wit wit --world-name handler -o echo-js.wasm app.js
chmod 644 echo-js.wasm
echo "echo-js.wasm: $(stat -c %s echo-js.wasm) bytes"
