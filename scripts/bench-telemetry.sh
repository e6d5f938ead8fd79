#!/usr/bin/env bash
# Request-path cost of metrics + tracing, end to end: warpd serving samples/hello under wrk, telemetry off
# (WarpGrid:Telemetry:Metrics=false, no tracing) vs on (metrics collected, WarpGrid:Telemetry:Tracing=true with the
# default sampler, ParentBased(TraceIdRatioBased(0.1)); wrk sends no traceparent) vs on100 (SamplingRatio=1: every
# request traced and recorded). No exporter, so export cost is not included. Rounds alternate the modes. Prints
# req/s, p50 and warpd's CPU time per request (utime + stime from /proc over the measured run).
#   scripts/bench-telemetry.sh [rounds=3] [duration=10s] [connections=32]
#   MODES="off metrics trace on on100" scripts/bench-telemetry.sh   (metrics = metrics collected, no tracing;
#   trace = tracing with the default sampler, no metrics)
# Needs wrk and a Release build of warpd. Binds 127.0.0.1 only; each round is bounded by wrk's duration.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-3}" DURATION="${2:-10s}" CONNECTIONS="${3:-32}"
WARPD="$REPO/src/WarpGrid.Daemon/bin/Release/net10.0/warpd.dll"
[ -f "$WARPD" ] || { echo "build warpd first: dotnet build src/WarpGrid.Daemon -c Release" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk not found (scripts/install-deps.sh)" >&2; exit 1; }
API=19391 INGRESS=18391
pid=""
HZ="$(getconf CLK_TCK)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime of the process, in clock ticks
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; }
trap cleanup EXIT
run() { # run off|on
  local data; data="$(mktemp -d)"
  local args=(--WarpGrid:Telemetry:Metrics=false)
  [ "$1" = on ] && args=(--WarpGrid:Telemetry:Metrics=true --WarpGrid:Telemetry:Tracing=true)
  [ "$1" = metrics ] && args=(--WarpGrid:Telemetry:Metrics=true)
  [ "$1" = trace ] && args=(--WarpGrid:Telemetry:Metrics=false --WarpGrid:Telemetry:Tracing=true)
  [ "$1" = on100 ] && args=(--WarpGrid:Telemetry:Metrics=true --WarpGrid:Telemetry:Tracing=true --WarpGrid:Telemetry:SamplingRatio=1)
  dotnet "$WARPD" --data-dir "$data" --api 127.0.0.1:$API --ingress 127.0.0.1:$INGRESS --deploy "$REPO/samples/hello" "${args[@]}" >"$data/warpd.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$INGRESS/hello" >/dev/null && break; sleep 0.1; done
  wrk -t2 -c"$CONNECTIONS" -d2s "http://127.0.0.1:$INGRESS/hello" >/dev/null   # warm-up
  local before; before="$(cpu_ticks "$pid")"
  local out; out="$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$INGRESS/hello")"
  local after; after="$(cpu_ticks "$pid")"
  local rps p50 requests; rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"; p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
  requests="$(awk '/requests in/ {print $1}' <<<"$out")"
  # warpd's own CPU time (user + system) per request: far less sensitive to other load on the machine than req/s.
  local cpu_us; cpu_us="$(awk -v t="$((after - before))" -v hz="$HZ" -v n="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')"
  echo "$1 $rps $p50 $cpu_us"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  rm -rf "$data"
}
echo "mode req/s p50 warpd-cpu-us/request"
MODES="${MODES:-off on}"
for _ in $(seq 1 "$ROUNDS"); do for m in $MODES; do run "$m"; done; done
