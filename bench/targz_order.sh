#!/usr/bin/env bash
# bench/targz_order.sh — every regular file of a .tar.gz of a real tree
# (default /usr/include: ~8,000 files, ~130 MB, ~25 MB gzip'd) read whole
# through one handle, in name order, in archive order and in random order
# (kvro_read, bench/targz_read.c over libkvro.a; the index loaded, nothing
# inflated at open), against the peer's one pass, `tar -xzOf x.tgz >
# /dev/null`, and `gzip -dc` alone. Best of REPS runs each, with ratios;
# the three orders must read the same bytes (checksums compared). Then name
# order again with the read cache held to 4 MiB (KVRO_READ_CACHE), to show
# what a small budget costs.
# Target: name order close to archive order (before the read cache, each
# small file re-inflated up to a spacing from its access point: 29x slower
# on a 55 MB archive of 1,190 files).
#
# Usage: bench/targz_order.sh [REPS]       (default 3)
# SRC=dir picks the tree (e.g. /usr/share/doc); BUILD=dir the build
# directory (as bench/targz_streams.sh). The archive is made once in
# $TMPDIR/kvro-bench-targz-order-v1 (WORK=dir for another place), per SRC.
# Not part of the test suite.
set -euo pipefail
name=targz_order
. "$(dirname "$0")/lib.sh"
root=$bench_root
reps=${1:-3}
src=${SRC:-/usr/include}
work=${WORK:-${TMPDIR:-/tmp}/kvro-bench-targz-order-v1}
bench_needs cmake cc python3 gzip tar
mkdir -p "$work"
bin=$work/targz_read
bench_reader "$bin"
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")

tag=$(printf '%s' "$src" | tr -c 'A-Za-z0-9' _)
arch=$work/$tag.tar.gz
if [ ! -f "$arch.done" ]; then
  # GNU tar's order: each directory as readdir gives it, not by name.
  tar -czf "$arch" -C "$(dirname "$src")" "$(basename "$src")" 2>/dev/null || [ -s "$arch" ]
  touch "$arch.done"
fi
# Regular files, as kvro names them (tarfile's names carry no './').
python3 - "$arch" "$work/archive.list" "$work/name.list" "$work/random.list" <<'PY'
import random, sys, tarfile
names = [m.name for m in tarfile.open(sys.argv[1]) if m.isreg()]
open(sys.argv[2], "w").write("".join(n + "\n" for n in names))
open(sys.argv[3], "w").write("".join(n + "\n" for n in sorted(names, key=lambda s: s.encode())))
random.Random(7).shuffle(names)
open(sys.argv[4], "w").write("".join(n + "\n" for n in names))
PY
idx=$work/$tag.idx
rm -f "$idx"
"$bin" files "$arch" "$idx" /dev/null >/dev/null   # builds and saves the index

best() { sort -n | head -1; }
declare -A sec sum
for order in archive name random; do
  s=()
  for ((r = 0; r < reps; r++)); do
    "$bin" files "$arch" "$idx" "$work/$order.list" >"$work/out"
    s+=("$(awk '$1 == "seconds" {print $2}' "$work/out")")
    sum[$order]=$(awk '$1 == "checksum" {print $2}' "$work/out")
    files=$(awk '$1 == "files" {print $2}' "$work/out")
    bytes=$(awk '$1 == "bytes" {print $2}' "$work/out")
  done
  sec[$order]=$(printf '%s\n' "${s[@]}" | best)
done
[ "${sum[name]}" = "${sum[archive]}" ] && [ "${sum[random]}" = "${sum[archive]}" ] \
  || { echo "targz_order: the orders read different bytes" >&2; exit 1; }
s=()
for ((r = 0; r < reps; r++)); do
  KVRO_READ_CACHE=4M "$bin" files "$arch" "$idx" "$work/name.list" >"$work/out"
  s+=("$(awk '$1 == "seconds" {print $2}' "$work/out")")
done
sec[small]=$(printf '%s\n' "${s[@]}" | best)
peer() {
  local t=() t0 t1
  for ((r = 0; r < reps; r++)); do
    t0=${EPOCHREALTIME/[.,]/}
    "$@" >/dev/null
    t1=${EPOCHREALTIME/[.,]/}
    t+=("$(awk -v d=$((t1 - t0)) 'BEGIN {printf "%.6f", d / 1e6}')")
  done
  printf '%s\n' "${t[@]}" | best
}
sec[tar]=$(peer tar -xzOf "$arch")
sec[gzip]=$(peer gzip -dc "$arch")

python3 - "$btype" "$src" "$(stat -c %s "$arch")" "$files" "$bytes" "$reps" \
  "${sec[archive]}" "${sec[name]}" "${sec[random]}" "${sec[small]}" "${sec[tar]}" \
  "${sec[gzip]}" <<'PY'
import sys
btype, src, gz, files, nbytes, reps = sys.argv[1:7]
a, n, r, small, tar, gzip = (float(v) for v in sys.argv[7:13])
print(f"{int(files):,} files ({int(nbytes) / 1e6:.0f} MB) of {src}, a {int(gz) / 1e6:.1f} MB "
      f".tar.gz; {btype} build; best of {reps}, seconds")
print(f"  archive order   {a:7.3f}")
print(f"  name order      {n:7.3f}   name/archive {n / a:5.2f} "
      f"{'OK' if n <= 1.5 * a else 'MISSES TARGET (1.5x)'}")
print(f"  random order    {r:7.3f}   random/archive {r / a:5.2f}")
print(f"  name order, read cache 4 MiB {small:7.3f}   {small / a:5.2f}x archive order")
print(f"  tar -xzOf       {tar:7.3f}   name order/tar {n / tar:5.2f}")
print(f"  gzip -dc        {gzip:7.3f}   name order/gzip {n / gzip:5.2f}")
PY
