#!/usr/bin/env bash
# WarpGrid performance suite.
#
#   scripts/bench.sh [e2e] [driver options...]   end to end: warpd vs a plain ASP.NET Core app under wrk, and
#                                                deploy-to-first-200 latency (benchmarks/WarpGrid.LoadDriver)
#   scripts/bench.sh micro [BenchmarkDotNet args] the BenchmarkDotNet suite (default: --filter '*')
#   scripts/bench.sh ci                           the BenchmarkDotNet suite in its dry CI mode (< 1 min)
#   scripts/bench.sh cluster [options]            3-member warpd Raft store vs 3-member etcd 3.4 on loopback (writes at
#                                                1 and 64 writers, p50/p99, leader failover); installs etcd-server if missing
#
# e2e builds warpd, PlainHello and the driver in Release first, writes the results to
# artifacts/bench/e2e-<UTC time>.json and prints medians. Options: see `scripts/bench.sh e2e --help`
# (e.g. --rounds 5 --duration 20s --connections 64, --only throughput|deploy|plain).
# Needs wrk (scripts/install-deps.sh). Everything listens on 127.0.0.1; every run is bounded in time
# (--time-limit, default 20 min; this script adds a hard timeout on top) and kills its children on exit.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

mode="e2e"
if [ $# -gt 0 ]; then
  case "$1" in
    e2e|micro|ci|cluster) mode="$1"; shift ;;
  esac
fi

build() {
  echo "bench: dotnet build -c Release $1" >&2
  if ! out="$(dotnet build -c Release -nologo -v q "$1" 2>&1)"; then
    echo "$out" >&2
    echo "bench: build of $1 failed" >&2
    exit 1
  fi
}

case "$mode" in
  micro)
    [ $# -gt 0 ] || set -- --filter '*'
    exec timeout --foreground -k 30 3600 \
      dotnet run -c Release --project benchmarks/WarpGrid.Benchmarks -- "$@"
    ;;
  cluster)
    command -v etcd >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq etcd-server etcd-client >/dev/null; }
    build src/WarpGrid.Daemon/WarpGrid.Daemon.csproj
    build benchmarks/WarpGrid.ClusterBench/WarpGrid.ClusterBench.csproj
    mkdir -p artifacts/bench
    exec timeout --foreground -k 15 1800 \
      dotnet benchmarks/WarpGrid.ClusterBench/bin/Release/net10.0/WarpGrid.ClusterBench.dll \
        --json "artifacts/bench/cluster-$(date -u +%Y%m%dT%H%M%SZ).json" "$@"
    ;;
  ci)
    exec timeout --foreground -k 30 600 \
      dotnet run -c Release --project benchmarks/WarpGrid.Benchmarks -- --ci "$@"
    ;;
  e2e)
    for arg in "$@"; do
      case "$arg" in
        -h|--help)
          build benchmarks/WarpGrid.LoadDriver/WarpGrid.LoadDriver.csproj
          exec dotnet benchmarks/WarpGrid.LoadDriver/bin/Release/net10.0/WarpGrid.LoadDriver.dll --help ;;
      esac
    done
    command -v wrk >/dev/null 2>&1 || { echo "bench: wrk not found; run scripts/install-deps.sh" >&2; exit 1; }
    only=""
    prev=""
    for arg in "$@"; do
      [ "$prev" = "--only" ] && only="$arg"
      prev="$arg"
    done
    [ "$only" = "plain" ] || build src/WarpGrid.Daemon/WarpGrid.Daemon.csproj
    [ "$only" = "deploy" ] || build benchmarks/PlainHello/PlainHello.csproj
    build benchmarks/WarpGrid.LoadDriver/WarpGrid.LoadDriver.csproj
    mkdir -p artifacts/bench
    json="artifacts/bench/e2e-$(date -u +%Y%m%dT%H%M%SZ).json"
    echo "bench: load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    # The driver enforces its own --time-limit (default 20 min) and kills its children; the outer timeout is a backstop.
    status=0
    timeout --foreground -k 15 2700 \
      dotnet benchmarks/WarpGrid.LoadDriver/bin/Release/net10.0/WarpGrid.LoadDriver.dll --repo "$REPO" --json "$json" "$@" || status=$?
    echo "bench: load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    exit "$status"
    ;;
esac
