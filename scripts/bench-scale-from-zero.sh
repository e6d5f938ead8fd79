#!/usr/bin/env bash
# Scale-from-zero to first response byte over HTTP, with the module compiled and cached: warpd serves a copy of
# samples/hello with min_instances = 0 and a 1 s scale-down window; each round waits (polling the API) until the
# deployment is at zero instances (as the node's admin, with <data-dir>/admin-token), then times one request with curl
# (time_starttransfer), against a warm request.
#   scripts/bench-scale-from-zero.sh [rounds=15]
# Needs curl and a Release build of warpd. Binds 127.0.0.1 only; bounded by rounds and a 30 s wait each.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-15}"
WARPD="$REPO/src/WarpGrid.Daemon/bin/Release/net10.0/warpd.dll"
[ -f "$WARPD" ] || { echo "build warpd first: dotnet build src/WarpGrid.Daemon -c Release" >&2; exit 1; }
API=19392 INGRESS=18392
work="$(mktemp -d)"; pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/zero"
cp "$REPO/samples/hello/hello.wasm" "$work/zero/"
cat > "$work/zero/warp.toml" <<'TOML'
[package]
name = "zero"

[build]
output = "hello.wasm"

[runtime]
route = "/zero"
min_instances = 0
max_instances = 4

[runtime.scaling]
target_value = 1
scale_down_window = "1s"
TOML
dotnet "$WARPD" --data-dir "$work/data" --api 127.0.0.1:$API --ingress 127.0.0.1:$INGRESS --deploy "$work/zero" \
  --WarpGrid:Supervisor:ScalingInterval=00:00:00.100 >"$work/warpd.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$INGRESS/zero" >/dev/null && break; sleep 0.1; done
# The API needs a credential: warpd writes its bootstrap admin token to <data-dir>/admin-token (atomically) after start.
for _ in $(seq 1 300); do [ -s "$work/data/admin-token" ] && break; sleep 0.1; done
[ -s "$work/data/admin-token" ] || { echo "warpd did not write $work/data/admin-token; its log:" >&2; cat "$work/warpd.log" >&2; exit 1; }
live() { curl -s -H "Authorization: Bearer $(cat "$work/data/admin-token")" "http://127.0.0.1:$API/v1/deployments/zero" | python3 -c 'import json,sys; print(json.load(sys.stdin)["instances"]["live"])'; }
cold=() warm=()
for _ in $(seq 1 "$ROUNDS"); do
  for _ in $(seq 1 300); do [ "$(live)" = 0 ] && break; sleep 0.1; done
  [ "$(live)" = 0 ] || { echo "did not scale to zero" >&2; exit 1; }
  cold+=("$(curl -s -o /dev/null -w '%{time_starttransfer}' "http://127.0.0.1:$INGRESS/zero")")
  warm+=("$(curl -s -o /dev/null -w '%{time_starttransfer}' "http://127.0.0.1:$INGRESS/zero")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f ms", m*1000}'; }
echo "rounds=$ROUNDS from-zero first byte median $(median "${cold[@]}"), warm median $(median "${warm[@]}") (curl, new connection each)"
