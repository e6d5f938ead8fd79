# Shared by the end-to-end bench scripts (bench-telemetry.sh, bench-components.sh); sourced, not run.
#
# bench_pinning: with PIN=1 (the default) and 2+ CPUs, warpd runs on CPU 0 and wrk on CPU 1 (SERVER_CPU, CLIENT_CPU:
# taskset prefixes), wrk with WRK_THREADS=1 and warpd's thread pool bounded to TP_MAX=4 workers (TP_ENV: an env
# prefix; TP_LABEL for the report). Pinned to one core under load, .NET's starvation heuristic keeps adding worker
# threads that spin and context-switch; see docs/benchmarks.md. Otherwise WRK_THREADS=2 and TP_MAX=0 (the runtime's
# default). Caller-set WRK_THREADS and TP_MAX win.
bench_pinning() {
  PIN="${PIN:-1}" SERVER_CPU=() CLIENT_CPU=()
  if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    SERVER_CPU=(taskset -c 0) CLIENT_CPU=(taskset -c 1)
    WRK_THREADS="${WRK_THREADS:-1}" TP_MAX="${TP_MAX:-4}"
  else
    WRK_THREADS="${WRK_THREADS:-2}" TP_MAX="${TP_MAX:-0}"
  fi
  [[ "$TP_MAX" =~ ^[0-9]+$ ]] || { echo "TP_MAX must be a whole number of threads (0 = the runtime's default), not '$TP_MAX'" >&2; exit 1; }
  TP_ENV=() TP_LABEL=default
  if [ "$TP_MAX" -gt 0 ]; then TP_ENV=(env "DOTNET_ThreadPool_ForceMaxWorkerThreads=$TP_MAX") TP_LABEL="$TP_MAX"; fi
}

# cpu_ticks PID: utime + stime of the process, in clock ticks (getconf CLK_TCK a second).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# wait_serving URL PID LOG TRIES: polls URL every 0.1 s, at most TRIES times, while PID lives; on failure prints LOG
# and exits 1.
wait_serving() {
  local url="$1" pid="$2" log="$3" tries="$4"
  for _ in $(seq 1 "$tries"); do
    if curl -sf "$url" >/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "warpd did not serve $url; its log:" >&2
  cat "$log" >&2
  exit 1
}
