#!/usr/bin/env bash
# End to end, WASI 0.2 components against WAGI on one warpd (issue 4): requests/s and warpd's CPU time per request of
#   hello     samples/hello      C WAGI module (the baseline)
#   c         tests/guests/http-c/hello-c.wasm, a C wasi:http component (deployed from a temporary warp.toml, route /c)
#   hello-js  samples/hello-js   componentize-js (StarlingMonkey) wasi:http component, fresh instance per request
# all three served by the same warpd, measured in alternating order each round.
#   scripts/bench-components.sh [rounds=3] [duration=5s] [connections=16]
#   TARGETS="hello hello-js" limits the targets; PIN=0 turns off pinning (default with 2+ CPUs: warpd on CPU 0, wrk
#   on CPU 1, warpd's thread pool bounded to TP_MAX=4 workers; see scripts/bench-telemetry.sh for why);
#   WARPD_ARGS adds warpd arguments (e.g. --WarpGrid:Runtime:KeepResidentBytes=1048576).
# Prints one line per run (target, req/s, p50, warpd CPU µs/request) and a summary: per target the median over the
# rounds and the median of the per-round ratios target/hello. Binds 127.0.0.1 only; every run is bounded by wrk's
# duration, and warpd is stopped on exit.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-3}" DURATION="${2:-5s}" CONNECTIONS="${3:-16}"
WARPD="$REPO/src/WarpGrid.Daemon/bin/Release/net10.0/warpd.dll"
[ -f "$WARPD" ] || { echo "build warpd first: dotnet build src/WarpGrid.Daemon -c Release" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk not found (scripts/install-deps.sh)" >&2; exit 1; }
[ -f "$REPO/samples/hello-js/hello-js.wasm" ] && [ -f "$REPO/tests/guests/http-c/hello-c.wasm" ] || { echo "build the guests first: scripts/build-guests.sh" >&2; exit 1; }
read -r -a TARGET_LIST <<<"${TARGETS:-hello c hello-js}"
declare -A URL=([hello]=/hello [c]=/c/hello [hello-js]=/hello-js)
for t in "${TARGET_LIST[@]}"; do [ -n "${URL[$t]:-}" ] || { echo "unknown target '$t' (hello, c, hello-js)" >&2; exit 1; }; done
[ "${TARGET_LIST[0]}" = hello ] || { echo "TARGETS must start with hello (the baseline)" >&2; exit 1; }
# shellcheck source=scripts/bench-lib.sh
source "$REPO/scripts/bench-lib.sh"
bench_pinning
HZ="$(getconf CLK_TCK)"
WORK="$(mktemp -d)" PID=""
cleanup() { [ -n "$PID" ] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }; rm -rf "$WORK"; }
trap cleanup EXIT

mkdir -p "$WORK/c" "$WORK/data"
cp "$REPO/tests/guests/http-c/hello-c.wasm" "$WORK/c/"
cat >"$WORK/c/warp.toml" <<'TOML'
[package]
name = "hello-c-component"
version = "0.1.0"

[build]
lang = "c"
output = "hello-c.wasm"

[runtime]
route = "/c"
min_instances = 1
max_instances = 4
TOML
read -r -a EXTRA <<<"${WARPD_ARGS:-}"
"${TP_ENV[@]}" "${SERVER_CPU[@]}" dotnet "$WARPD" --data-dir "$WORK/data" --api 127.0.0.1:19491 --ingress 127.0.0.1:18491 \
  --deploy "$REPO/samples/hello" --deploy "$REPO/samples/hello-js" --deploy "$WORK/c" "${EXTRA[@]}" >"$WORK/warpd.log" 2>&1 &
PID=$!
for t in "${TARGET_LIST[@]}"; do
  wait_serving "http://127.0.0.1:18491${URL[$t]}" "$PID" "$WORK/warpd.log" 600
  "${CLIENT_CPU[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${WARMUP:-10s}" "http://127.0.0.1:18491${URL[$t]}" >/dev/null # JIT warm-up
done

echo "# $(date -u '+%Y-%m-%d %H:%M:%S') UTC; $(git -C "$REPO" rev-parse --short HEAD); rounds=$ROUNDS duration=$DURATION connections=$CONNECTIONS wrk-threads=$WRK_THREADS pinned=${SERVER_CPU[*]:-no} thread-pool-max=$TP_LABEL warpd-args='${WARPD_ARGS:-}'; $(uptime | sed 's/.*load/load/')"
echo "target req/s p50 warpd-cpu-us/request"
results="$WORK/results"
for r in $(seq 1 "$ROUNDS"); do
  order=("${TARGET_LIST[@]}")
  if [ $((r % 2)) -eq 0 ]; then order=(); for ((j = ${#TARGET_LIST[@]} - 1; j >= 0; j--)); do order+=("${TARGET_LIST[$j]}"); done; fi
  for t in "${order[@]}"; do
    before="$(cpu_ticks "$PID")"
    out="$("${CLIENT_CPU[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:18491${URL[$t]}")"
    after="$(cpu_ticks "$PID")"
    grep -q "Non-2xx" <<<"$out" && { echo "$t answered non-2xx responses:" >&2; echo "$out" >&2; exit 1; }
    rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"; p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
    n="$(awk '/requests in/ {print $1}' <<<"$out")"
    cpu="$(awk -v t="$((after - before))" -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
    echo "$t $rps $p50 $cpu"
    echo "$r $t $rps $cpu" >>"$results"
  done
done
awk -v targets="${TARGET_LIST[*]}" '
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { rps[$2, $1] = $3; cpu[$2, $1] = $4; round[$1] = 1 }
  END {
    printf "\nsummary over %d rounds (median; ratios: median of per-round target/hello)\n", length(round)
    printf "%-10s %10s %12s %14s %12s\n", "target", "req/s", "cpu-us/req", "req/s ratio", "cpu ratio"
    n = split(targets, ts, " ")
    for (k = 1; k <= n; k++) {
      t = ts[k]; c = 0
      for (r in round) { c++; a[c] = rps[t, r]; b[c] = cpu[t, r]; x[c] = rps[t, r] / rps["hello", r]; y[c] = cpu[t, r] / cpu["hello", r] }
      printf "%-10s %10.0f %12.1f %14.3f %12.2f\n", t, median(a, c), median(b, c), median(x, c), median(y, c)
    }
  }' "$results"
