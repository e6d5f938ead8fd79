#!/usr/bin/env bash
# Packs the WarpGrid library packages (Core, Hosting, Proxy, Raft) with their READMEs into artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf artifacts
dotnet pack WarpGrid.sln -c Release -o artifacts "$@"
ls -1 artifacts/*.nupkg
