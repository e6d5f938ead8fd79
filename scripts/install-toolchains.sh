#!/usr/bin/env bash
# Installs the guest toolchains `warp pack` drives beyond C, Zig and WAT (those come from scripts/install-deps.sh,
# which this script runs first unless --no-base is given):
#   apt: libc++-14-dev-wasm32 libc++abi-14-dev-wasm32        C++ -> wasm32-wasi (clang++-14)
#        rustc cargo libstd-rust-dev-wasm32                  Debian's Rust 1.63 with the wasm32-wasi std
#                                                            (call /usr/bin/rustc and /usr/bin/cargo: rustup's shims
#                                                            come first on PATH and have no wasm target)
#        golang-1.23-go from bookworm-backports              Go 1.23 GOOS=wasip1 (at /usr/lib/go-1.23/bin/go)
#   npm (into $REPO/.tools/node_modules, binaries in $REPO/.tools/node_modules/.bin):
#        assemblyscript@0.28.20 @assemblyscript/wasi-shim@0.1.0          TypeScript (AssemblyScript) -> WASI p1
#        @bytecodealliance/jco@1.35.0 @bytecodealliance/componentize-js@0.23.0   JavaScript -> WASI 0.2 component
#        @bytecodealliance/preview2-shim@0.26.1   imported by componentize-js 0.23 but not declared by it, so npm
#                                                 does not hoist it; installed explicitly
# Python: nothing installs here (no componentize-py or CPython wasm32-wasi build on apt/npm); warp pack says so.
#
# Idempotent: checks what is present first; runs apt-get update only when a package is missing and npm only when a
# package is missing or at another version. A re-run with everything present takes a few seconds (--no-base: ~1 s).
# Usage: scripts/install-toolchains.sh [--no-base]
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$REPO/.tools"
start=$SECONDS

base=1
for arg in "$@"; do
  case "$arg" in
    --no-base) base=0 ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "install-toolchains: unknown argument '$arg' (use --no-base or --help)" >&2; exit 1 ;;
  esac
done

if [ "$base" -eq 1 ]; then
  bash "$REPO/scripts/install-deps.sh"
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo env DEBIAN_FRONTEND=noninteractive)
else
  echo "install-toolchains: not root and sudo not found" >&2
  exit 1
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

apt_updated=0
apt_install() { # apt_install [-t suite] pkg...
  local log
  log="$(mktemp)"
  if [ "$apt_updated" -eq 0 ]; then
    "${SUDO[@]}" apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; echo "install-toolchains: apt-get update failed" >&2; exit 1; }
    apt_updated=1
  fi
  echo "install-toolchains: apt-get install $*"
  if ! "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$@" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"
    echo "install-toolchains: apt-get install $* failed" >&2
    exit 1
  fi
  rm -f "$log"
}

# ---- bookworm-backports (Go 1.23) -------------------------------------------------------------------------------
BACKPORTS=/etc/apt/sources.list.d/warpgrid-bookworm-backports.sources
if ! installed golang-1.23-go; then
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "install-toolchains: adding bookworm-backports ($BACKPORTS)"
    uris="$(sed -n 's/^URIs: *\(.*debian\/*\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)"
    uris="${uris:-http://deb.debian.org/debian}"
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$uris" | "${SUDO[@]}" tee "$BACKPORTS" >/dev/null
    apt_updated=0
  fi
fi

# ---- apt packages -------------------------------------------------------------------------------------------------
missing=()
for p in libc++-14-dev-wasm32 libc++abi-14-dev-wasm32 rustc cargo libstd-rust-dev-wasm32; do
  installed "$p" || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] || apt_install "${missing[@]}"
installed golang-1.23-go || apt_install -t bookworm-backports golang-1.23-go

# ---- npm packages -------------------------------------------------------------------------------------------------
NPM_PKGS=(
  "assemblyscript@0.28.20"
  "@assemblyscript/wasi-shim@0.1.0"
  "@bytecodealliance/jco@1.35.0"
  "@bytecodealliance/componentize-js@0.23.0"
  "@bytecodealliance/preview2-shim@0.26.1"   # imported by componentize-js 0.23 but not declared: npm does not hoist it
)
pkg_version() { [ -f "$1" ] && sed -n 's/^  "version": *"\([^"]*\)".*/\1/p' "$1" | head -n1 || true; }
npm_missing=()
for spec in "${NPM_PKGS[@]}"; do
  name="${spec%@*}"; version="${spec##*@}"
  pj="$TOOLS/node_modules/$name/package.json"
  have="$(pkg_version "$pj")"
  [ "$have" = "$version" ] || npm_missing+=("$spec")
done
if [ "${#npm_missing[@]}" -gt 0 ]; then
  command -v npm >/dev/null 2>&1 || apt_install npm
  echo "install-toolchains: npm install ${npm_missing[*]} into $TOOLS"
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error --save-exact "${npm_missing[@]}" >/dev/null
fi

# ---- sanity checks ------------------------------------------------------------------------------------------------
fail() { echo "install-toolchains: $*" >&2; exit 1; }
[ -f /usr/lib/wasm32-wasi/c++/v1/iostream ] || [ -n "$(find /usr/lib -path '*wasm32-wasi*' -name 'libc++.a' -print -quit 2>/dev/null)" ] \
  || fail "libc++ for wasm32-wasi missing after install"
[ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] || fail "Debian rustc/cargo missing after install"
[ -d "$(/usr/bin/rustc --print sysroot)/lib/rustlib/wasm32-wasi" ] || fail "Rust std for wasm32-wasi missing (libstd-rust-dev-wasm32)"
[ -x /usr/lib/go-1.23/bin/go ] || fail "Go 1.23 missing at /usr/lib/go-1.23/bin/go"
for b in asc componentize-js jco; do
  [ -x "$TOOLS/node_modules/.bin/$b" ] || fail "$b missing in $TOOLS/node_modules/.bin"
done

echo "install-toolchains: ok in $((SECONDS - start))s (clang++ $(clang++-14 --version | sed -n 's/.*version \([0-9.]*\).*/\1/p;q'), $(/usr/bin/rustc --version | awk '{print $1, $2}'), $(/usr/lib/go-1.23/bin/go version | awk '{print $3}'), assemblyscript $(pkg_version "$TOOLS/node_modules/assemblyscript/package.json"), jco $(pkg_version "$TOOLS/node_modules/@bytecodealliance/jco/package.json"), componentize-js $(pkg_version "$TOOLS/node_modules/@bytecodealliance/componentize-js/package.json"))"
