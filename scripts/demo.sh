#!/usr/bin/env bash
# The main job on the bundled sample tree, examples/site: build mkkv, read
# the tree through kvro, build a tar and a tar.gz image of it, and read each
# back (list, read a value, verify byte for byte against the tree).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/build.sh build
mkkv=build/cli/mkkv
site=examples/site
out=build/demo
rm -rf "$out"
mkdir -p "$out"

step() { printf '\n$ %s\n' "$*"; "$@"; }

# The tree itself.
step "$mkkv" ls -l -R "$site"
step "$mkkv" stat "$site" index.html
step "$mkkv" verify "$site" "$site"

# Images of it: deterministic, so building twice gives the same bytes.
export SOURCE_DATE_EPOCH=1700000000
step "$mkkv" tar "$site" "$out/sample.tar"
step "$mkkv" tar "$site" "$out/sample.tar.gz"
"$mkkv" tar -q "$site" "$out/again.tar"
cmp "$out/sample.tar" "$out/again.tar" && echo "(rebuilt: byte-identical)"

# Read each back: the first open of the .tar.gz builds its access index
# (kept beside it here; by default under ~/.cache/kvro/).
step "$mkkv" ls -R "$out/sample.tar"
step "$mkkv" cat --length 80 "$out/sample.tar" docs/café.md; echo
step "$mkkv" verify "$out/sample.tar" "$site"
gz=(--index "$out/sample.tar.gz.idx")
step "$mkkv" ls -l "${gz[@]}" "$out/sample.tar.gz" docs
step "$mkkv" cat "${gz[@]}" --offset 2 --length 40 "$out/sample.tar.gz" docs/café.md; echo
step "$mkkv" verify "${gz[@]}" "$out/sample.tar.gz" "$site"
# And by the real tools.
step tar -tzf "$out/sample.tar.gz" docs/café.md

# Mounted: kvfuse serves the tar read-only; it is ready when it returns.
kvfuse=build/fuse/kvfuse
if [ ! -x "$kvfuse" ]; then
  echo; echo "(kvfuse skipped: not built — libfuse3-dev missing)"
elif [ ! -w /dev/fuse ] || ! command -v fusermount3 > /dev/null; then
  echo; echo "(kvfuse skipped: /dev/fuse is not usable or fusermount3 is missing)"
else
  mkdir -p "$out/mnt"
  step "$kvfuse" "$out/sample.tar" "$out/mnt"
  trap 'fusermount3 -u "$out/mnt" 2> /dev/null || true' EXIT
  step ls -l "$out/mnt" "$out/mnt/docs"
  step diff -r "$site" "$out/mnt" && echo "(the mount holds the tree, byte for byte)"
  step fusermount3 -u "$out/mnt"
  trap - EXIT
fi
echo
echo "demo: ok"
