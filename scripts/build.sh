#!/usr/bin/env bash
# Configures and builds kvro into DIR (default build/), passing any further
# arguments to cmake. Installs the missing Debian packages building needs
# first (the tests are built too when cmocka is there: scripts/deps.sh test).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-build}
shift || true
"$root/scripts/deps.sh" build
cmake -S "$root" -B "$root/$dir" "$@" >/dev/null
cmake --build "$root/$dir" -j "$(nproc)"
