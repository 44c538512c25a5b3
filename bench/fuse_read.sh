#!/usr/bin/env bash
# bench/fuse_read.sh — kvfuse side by side with its peers, in one run:
#  1. sequential read of a large member (SIZE_MIB, default 256) of an
#     uncompressed tar through kvfuse, the first read after mounting, vs
#     `cat` of the tar itself and vs squashfuse_ll reading the same bytes
#     from an uncompressed squashfs image (page cache warm for all: the
#     image's pages, never the mount's); archivemount too with
#     ARCHIVEMOUNT=1 (it re-reads the archive from its start: minutes).
# Mount-to-first-ls and find|stat of a 100,000-member tar: fuse_mount.sh;
# random reads and parallel readers of a .tar.gz: fuse_targz.sh.
# Columns whose tool is missing (squashfs-tools, squashfuse, archivemount)
# are skipped with a note. Needs /dev/fuse and root or fuse3's fusermount3.
# KVFUSE=path picks the binary (default a Release one, bench/lib.sh); WORK=dir the
# scratch directory (default a temporary one, removed at the end);
# RUNS=n the repetitions (median reported).
set -euo pipefail
name=fuse_read
. "$(dirname "$0")/lib.sh"
root=$bench_root
bench_kvfuse
size_mib=${SIZE_MIB:-256}
runs=${RUNS:-3}
bench_fuse_work /tmp/kvfuse-bench.XXXXXX
mkdir -p "$work/tree"

# MiB/s for SIZE_MIB in NS nanoseconds
rate() { awk -v ns="$1" -v m="$size_mib" 'BEGIN {printf "%.0f", m / (ns / 1e9)}'; }

echo "== sequential read of a $size_mib MiB member ($(nproc) cores, $(uname -r))"
big=$work/tree/big.bin
[ -f "$big" ] || head -c $((size_mib * 1024 * 1024)) /dev/urandom > "$big"
[ -f "$work/big.tar" ] || tar -cf "$work/big.tar" -C "$work/tree" big.bin

declare -A result
time_cat() { # FILE: ns for one cat of FILE
  local t0 t1
  t0=$(bench_now); cat "$1" > /dev/null; t1=$(bench_now)
  echo $((t1 - t0))
}

cat "$work/big.tar" > /dev/null # warm
ts=(); for _ in $(seq "$runs"); do ts+=("$(time_cat "$work/big.tar")"); done
result[cat]=$(bench_median "${ts[@]}")

ts=()
for _ in $(seq "$runs"); do
  "$kvfuse" "$work/big.tar" "$mnt"
  ts+=("$(time_cat "$mnt/big.bin")")
  cmp -s "$mnt/big.bin" "$big" || { echo "kvfuse: bytes differ" >&2; exit 1; }
  fusermount3 -u "$mnt"
done
result[kvfuse]=$(bench_median "${ts[@]}")

if command -v mksquashfs > /dev/null && command -v squashfuse_ll > /dev/null; then
  sq=$work/big.sqfs
  [ -f "$sq" ] || mksquashfs "$work/tree" "$sq" -noI -noD -noF -noX -no-xattrs -quiet > /dev/null
  cat "$sq" > /dev/null
  ts=()
  for _ in $(seq "$runs"); do
    squashfuse_ll "$sq" "$mnt"
    ts+=("$(time_cat "$mnt/big.bin")")
    fusermount3 -u "$mnt"
  done
  result[squashfuse_ll]=$(bench_median "${ts[@]}")
else
  echo "(squashfuse_ll column skipped: apt-get install squashfs-tools squashfuse)"
fi

if [ "${ARCHIVEMOUNT:-0}" = 1 ] && command -v archivemount > /dev/null; then
  archivemount -o ro,readonly "$work/big.tar" "$mnt"
  result[archivemount]=$(time_cat "$mnt/big.bin")
  fusermount3 -u "$mnt"
else
  echo "(archivemount column skipped: ARCHIVEMOUNT=1 and apt-get install archivemount)"
fi

printf '%-14s %10s %8s %9s\n' tool ms MiB/s "x of cat"
for tool in cat kvfuse squashfuse_ll archivemount; do
  [ -n "${result[$tool]:-}" ] || continue
  ns=${result[$tool]}
  printf '%-14s %10.1f %8s %9.2f\n' "$tool" "$(awk -v n="$ns" 'BEGIN {print n / 1e6}')" \
    "$(rate "$ns")" "$(awk -v a="${result[cat]}" -v b="$ns" 'BEGIN {print a / b}')"
done

