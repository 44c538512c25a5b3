#!/usr/bin/env bash
# The main job on the bundled sample tree, examples/site: build mkkv, then
# list it, read a value and verify it through kvro.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/build.sh build
mkkv=build/cli/mkkv
site=examples/site

step() { printf '\n$ %s\n' "$*"; "$@"; }
step "$mkkv" ls -l -R "$site"
step "$mkkv" stat "$site" index.html
step "$mkkv" cat --length 120 "$site" index.html; echo
step "$mkkv" verify "$site" "$site"
echo
echo "demo: ok"
