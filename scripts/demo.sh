#!/usr/bin/env bash
# The main job on the bundled sample tree, examples/site: build mkkv, read
# the tree through kvro, build a tar and a tar.gz image of it, and read each
# back (list, read a value, verify byte for byte against the tree); compile
# the tree into a program (mkkv crunch, kvro_crunch() from the installed
# package) and run it; build a FAT image of it, read it back and put a
# file into it.
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

# A FAT image of it, in one pass (type, cluster size and image size as
# mkfs.fat would choose them; deterministic too), read back; then written
# to through the FAT backend's write side.
step "$mkkv" fat "$site" "$out/sample.img"
"$mkkv" fat -q "$site" "$out/again.img"
cmp "$out/sample.img" "$out/again.img" && echo "(rebuilt: byte-identical)"
step "$mkkv" ls -R "$out/sample.img"
step "$mkkv" verify "$out/sample.img" "$site"
step "$mkkv" put "$out/sample.img" notes/readme-copy.md README.md
step "$mkkv" cat --length 60 "$out/sample.img" notes/readme-copy.md; echo
if command -v fsck.fat > /dev/null; then
  step fsck.fat -n "$out/sample.img"
fi

# Compiled in: mkkv crunch writes the tree as C (site.c, site.h); then a
# small program (tests/consumer/crunch_site.c) is built against the
# installed CMake package, whose kvro_crunch() crunches the tree at build
# time. It lists every key with its stored SHA-256 (sha256sum checks them
# against the tree) and prints one file.
step "$mkkv" crunch "$site" "$out/site.c"
ls -l "$out/site.c" "$out/site.h"
cmake --install build --prefix "$root/$out/prefix" > /dev/null
cmake -S tests/consumer -B "$out/consumer" -DCMAKE_PREFIX_PATH="$root/$out/prefix" \
  -DEXAMPLES= -DCRUNCH_DIR="$root/$site" > "$out/consumer.log"
cmake --build "$out/consumer" >> "$out/consumer.log"
step "$out/consumer/crunch_site"
(cd "$site" && "$root/$out/consumer/crunch_site" | sha256sum --quiet --strict -c) &&
  echo "(every stored SHA-256 matches the tree)"
step "$out/consumer/crunch_site" index.html

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
