#!/usr/bin/env bash
# Request-path cost of metrics + tracing, end to end: warpd serving samples/hello under wrk, telemetry off
# (WarpGrid:Telemetry:Metrics=false, no tracing) vs on (metrics collected, WarpGrid:Telemetry:Tracing=true with the
# default sampler, ParentBased(TraceIdRatioBased(0.1)); wrk sends no traceparent) vs on100 (SamplingRatio=1: every
# request traced and recorded). No exporter, so export cost is not included.
#   scripts/bench-telemetry.sh [rounds=7] [duration=5s] [connections=32]
#   MODES="off metrics trace on on100" scripts/bench-telemetry.sh   (metrics = metrics collected, no tracing;
#   trace = tracing with the default sampler, no metrics). BASELINE (default: the first mode) is the baseline of the
#   ratios, so MODES="on off" BASELINE=off runs the reverse order against the same baseline.
#   A mode may carry a suffix after a dot (MODES="off off.b"): the same settings in another warpd, so an A/A run shows
#   how far two processes of one mode differ on this machine.
#   PIN=0 turns off CPU pinning; WRK_THREADS sets wrk's threads (default 1 when pinned, else 2).
#   TP_MAX bounds each warpd's thread pool (DOTNET_ThreadPool_ForceMaxWorkerThreads; default 4 when pinned, else 0 =
#   the runtime's default). Pinned to one core under 32 connections, .NET's starvation heuristic keeps adding worker
#   threads (65 within 5 s, 80-100 within 30 s), which then spin in the pool's semaphore and context-switch: that
#   alone put two processes of the same mode 14 % apart. With the bound, an A/A pair agrees (docs/benchmarks.md).
#
# How it measures (so that two modes are compared under the same conditions, see docs/benchmarks.md section 7):
# - one warpd per mode is started up front (each on its own ports) and warmed up (WARMUP, default 10s of wrk each,
#   then 5 s steps until req/s stops rising, at most WARMUP_STEPS=30, so tiered JIT and PGO settle): a round measures
#   a warm process, not a process start;
# - with 2+ CPUs, every warpd is pinned to CPU 0 and wrk to CPU 1 (taskset): server and load generator no longer
#   compete for the same core, and wrk's own CPU never counts against a mode;
# - rounds alternate the order of the modes (forward, then reversed, ...), so no mode always runs first or last;
# - each line is one measured run: mode, req/s, p50, warpd's CPU time (utime + stime from /proc) per request and its
#   thread count after the run;
# - the summary gives, per mode, the median and min..max over the rounds, and the median of the per-round ratios to
#   the baseline (mode / first mode in the same round). CPU time per request is the primary figure: it depends far
#   less on other load on the machine than req/s.
# Needs wrk and a Release build of warpd. Binds 127.0.0.1 only; each run is bounded by wrk's duration.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-7}" DURATION="${2:-5s}" CONNECTIONS="${3:-32}"
WARMUP="${WARMUP:-10s}"
WARPD="$REPO/src/WarpGrid.Daemon/bin/Release/net10.0/warpd.dll"
[ -f "$WARPD" ] || { echo "build warpd first: dotnet build src/WarpGrid.Daemon -c Release" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk not found (scripts/install-deps.sh)" >&2; exit 1; }
read -r -a MODE_LIST <<<"${MODES:-off on}"
[ "${#MODE_LIST[@]}" -ge 1 ] || { echo "MODES is empty" >&2; exit 1; }
for m in "${MODE_LIST[@]}"; do
  case "${m%%.*}" in off|on|metrics|trace|on100) ;; *) echo "unknown mode '$m' in MODES (off, on, metrics, trace, on100, each optionally with a .suffix)" >&2; exit 1 ;; esac
done
BASELINE="${BASELINE:-${MODE_LIST[0]}}"
[[ " ${MODE_LIST[*]} " == *" $BASELINE "* ]] || { echo "BASELINE '$BASELINE' is not one of MODES (${MODE_LIST[*]})" >&2; exit 1; }
# shellcheck source=scripts/bench-lib.sh
source "$REPO/scripts/bench-lib.sh"
bench_pinning
HZ="$(getconf CLK_TCK)"
declare -A PID DATA PORT
cleanup() {
  for m in "${!PID[@]}"; do kill "${PID[$m]}" 2>/dev/null || true; done
  for m in "${!PID[@]}"; do wait "${PID[$m]}" 2>/dev/null || true; rm -rf "${DATA[$m]}"; done
}
trap cleanup EXIT

start() { # start <mode> <index>
  local m="$1" i="$2" data args kind="${1%%.*}"
  data="$(mktemp -d)"
  args=(--WarpGrid:Telemetry:Metrics=false)
  [ "$kind" = on ] && args=(--WarpGrid:Telemetry:Metrics=true --WarpGrid:Telemetry:Tracing=true)
  [ "$kind" = metrics ] && args=(--WarpGrid:Telemetry:Metrics=true)
  [ "$kind" = trace ] && args=(--WarpGrid:Telemetry:Metrics=false --WarpGrid:Telemetry:Tracing=true)
  [ "$kind" = on100 ] && args=(--WarpGrid:Telemetry:Metrics=true --WarpGrid:Telemetry:Tracing=true --WarpGrid:Telemetry:SamplingRatio=1)
  PORT[$m]=$((18391 + i))
  "${TP_ENV[@]}" "${SERVER_CPU[@]}" dotnet "$WARPD" --data-dir "$data" --api 127.0.0.1:$((19391 + i)) --ingress 127.0.0.1:${PORT[$m]} \
    --deploy "$REPO/samples/hello" "${args[@]}" >"$data/warpd.log" 2>&1 &
  PID[$m]=$! DATA[$m]="$data"
}

measure() { # measure <mode>: one run, prints "mode req/s p50 cpu-us/request threads"
  local m="$1" pid="${PID[$1]}" url="http://127.0.0.1:${PORT[$1]}/hello" before after out rps p50 requests cpu_us
  before="$(cpu_ticks "$pid")"
  out="$("${CLIENT_CPU[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url")"
  after="$(cpu_ticks "$pid")"
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"; p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
  requests="$(awk '/requests in/ {print $1}' <<<"$out")"
  cpu_us="$(awk -v t="$((after - before))" -v hz="$HZ" -v n="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')"
  echo "$m $rps $p50 $cpu_us $(ls "/proc/$pid/task" | wc -l)"
}

for i in "${!MODE_LIST[@]}"; do start "${MODE_LIST[$i]}" "$i"; done
for m in "${MODE_LIST[@]}"; do
  wait_serving "http://127.0.0.1:${PORT[$m]}/hello" "${PID[$m]}" "${DATA[$m]}/warpd.log" 300
  "${CLIENT_CPU[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$WARMUP" "http://127.0.0.1:${PORT[$m]}/hello" >/dev/null # JIT warm-up
  # Tiered compilation is still moving hot methods through the instrumented (PGO) tier to tier 1 long after a 10-30 s
  # warm-up when server and load share one core: warm on in 5 s steps until three steps in a row bring no new best
  # req/s (more than 3 % over the best so far), or WARMUP_STEPS steps have run, and print where it settled.
  best=0 stale=0 steps=0
  while [ "$steps" -lt "${WARMUP_STEPS:-30}" ] && [ "$stale" -lt 3 ]; do
    rps="$("${CLIENT_CPU[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d5s "http://127.0.0.1:${PORT[$m]}/hello" | awk '/Requests\/sec/ {print $2}')"
    steps=$((steps + 1))
    if awk -v a="$best" -v b="$rps" 'BEGIN { exit !(b > a * 1.03) }'; then best="$rps" stale=0; else stale=$((stale + 1)); fi
  done
  echo "# warm-up of $m: $WARMUP, then $steps steps of 5 s ($([ "$stale" -ge 3 ] && echo settled || echo 'not settled')), best $best req/s"
done

echo "# $(date -u '+%Y-%m-%d %H:%M:%S') UTC; rounds=$ROUNDS duration=$DURATION connections=$CONNECTIONS wrk-threads=$WRK_THREADS pinned=${SERVER_CPU[*]:-no}${SERVER_CPU:+ (wrk: ${CLIENT_CPU[*]})} thread-pool-max=$TP_LABEL; $(uptime | sed 's/.*load/load/')"
echo "mode req/s p50 warpd-cpu-us/request warpd-threads"
results="$(mktemp)"
for r in $(seq 1 "$ROUNDS"); do
  order=("${MODE_LIST[@]}")
  if [ $((r % 2)) -eq 0 ]; then order=(); for ((j = ${#MODE_LIST[@]} - 1; j >= 0; j--)); do order+=("${MODE_LIST[$j]}"); done; fi
  for m in "${order[@]}"; do
    line="$(measure "$m")"
    echo "$line"
    echo "$r $line" >>"$results"
  done
done
echo "# $(date -u '+%H:%M:%S') UTC; $(uptime | sed 's/.*load/load/')"

# Summary: per mode, medians and min..max over the rounds; ratios are per round (mode / baseline of the same round).
awk -v base="$BASELINE" -v modes="${MODE_LIST[*]}" '
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function spread(a, n,   i, lo, hi) { lo = hi = a[1]; for (i = 2; i <= n; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] } return sprintf("%s..%s", fmt(lo), fmt(hi)) }
  function fmt(x) { return x >= 1000 ? sprintf("%.0f", x) : sprintf("%.3g", x) }
  { rps[$2, $1] = $3; cpu[$2, $1] = $5; round[$1] = 1 }
  END {
    printf "\nsummary over %d rounds (median, min..max; ratios: median of per-round mode/%s)\n", length(round), base
    printf "%-8s %10s %18s %12s %14s %12s %12s\n", "mode", "req/s", "req/s range", "cpu-us/req", "cpu range", "req/s ratio", "cpu ratio"
    n = split(modes, ms, " ")
    for (k = 1; k <= n; k++) {
      m = ms[k]; c = 0
      for (r in round) { c++; a[c] = rps[m, r]; b[c] = cpu[m, r]; x[c] = rps[m, r] / rps[base, r]; y[c] = cpu[m, r] / cpu[base, r] }
      sa = spread(a, c); sb = spread(b, c)
      printf "%-8s %10s %18s %12s %14s %12.3f %12.3f\n", m, fmt(median(a, c)), sa, fmt(median(b, c)), sb, median(x, c), median(y, c)
    }
  }' "$results"
rm -f "$results"
