#!/usr/bin/env bash
# Installs everything the tests need (apt/npm toolchains, via scripts/install-deps.sh), rebuilds every guest from
# source, then builds the solution and runs every test. This is the README's test command and what CI runs.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

bash scripts/install-deps.sh
bash scripts/install-toolchains.sh
bash scripts/build-guests.sh
dotnet build WarpGrid.sln -c Release
dotnet test WarpGrid.sln -c Release --no-build --logger "console;verbosity=normal" "$@"
