#!/usr/bin/env bash
# bench/fat_build.sh — `mkkv fat` against `mkfs.fat -C` + `mcopy -s` (the
# usual way to fill an image) and against `mkkv tar` of the same tree, in
# one run: 2,000 files / 50 MB of random data, and 20,000 small files.
# Targets: mkkv fat >= 3x faster than mkfs.fat + mcopy, and <= 1.3x the
# time of mkkv tar. Neither mcopy nor mkkv (without --fsync) syncs its
# output, so that is the comparison; a second pair times both made
# durable: mkkv fat --fsync against the peer followed by `sync FILE`.
# bench/copy_floor.c only copies the same files into one file (synced in
# the durable pair): no builder does less, so peer/floor bounds the
# speed-up any builder could show. Then a sequential read of a 200 MB
# file through the FAT backend (`mkkv cat`) against `cat` of the whole
# image (target >= 0.8x cat's speed), and 20,000 random 4 KiB reads in that file through
# the FAT backend against the same reads in a plain tar of it (target: no
# slower; bench/targz_read.c over libkvro.a, in one process each, the
# open not counted, checksums compared).
#
# Usage: bench/fat_build.sh [RUNS]   (default 5; MKKV=path/to/mkkv to pick a
# binary, else a Release build is made in build-bench/)
# Not part of the test suite.
set -euo pipefail
name=fat_build
. "$(dirname "$0")/lib.sh"
runs=${1:-5}
bench_mkkv
bench_needs "$mkkv" mkfs.fat mcopy python3 cc
work=$(mktemp -d "${TMPDIR:-/tmp}/kvro-bench-fat-XXXXXX")
trap 'rm -rf "$work"' EXIT
reader=$work/targz_read
bench_reader "$reader"
cc -O2 -o "$work/copy_floor" "$(dirname "$0")/copy_floor.c"

# Long names with spaces: in the image each takes long-name slots and a
# made 8.3 name, which tar_build.sh's f0001.bin would not.
bench_tree big "$work/big" 'file number %04d.bin'
bench_tree small "$work/small" 'small file %05d.txt'
bench_tree one "$work/one"

now_ns() { date +%s%N; }
# median seconds of RUNS runs of a shell command (after one warm-up run):
# the median, because a run now and then meets the disk's write-back of
# an earlier one, and a mean would charge it to whoever
# met it
loop_time() {
  local cmd=$1 t0 t1 ts=()
  bash -c "$cmd" >/dev/null 2>&1
  for ((i = 0; i < runs; i++)); do
    t0=$(now_ns)
    bash -c "$cmd" >/dev/null 2>&1
    t1=$(now_ns)
    ts+=($((t1 - t0)))
  done
  python3 -c "import statistics, sys; print(statistics.median(map(int, sys.argv[1:])) / 1e9)" "${ts[@]}"
}

for tree in big small; do
  src=$work/$tree img=$work/$tree.img
  "$mkkv" fat -q "$src" "$img"
  kib=$(( $(stat -c %s "$img") / 1024 ))
  peer="rm -f '$work/peer.img' && mkfs.fat -C '$work/peer.img' $kib && cd '$src' && \
MTOOLS_SKIP_CHECK=1 mcopy -s -i '$work/peer.img' * ::"
  # The floor of any builder: the same files' bytes copied into one file
  # and renamed into place, with no filesystem to lay out.
  floor="cd '$src' && find . -type f -print0 | '$work/copy_floor'"
  t_ours=$(loop_time "'$mkkv' fat -q '$src' '$img'") t_peer=$(loop_time "$peer")
  t_tar=$(loop_time "'$mkkv' tar -q '$src' '$work/$tree.tar'")
  t_floor=$(loop_time "$floor '$work/floor'")
  t_ours_s=$(loop_time "'$mkkv' fat -q --fsync '$src' '$img'")
  t_peer_s=$(loop_time "$peer && sync '$work/peer.img'")
  t_tar_s=$(loop_time "'$mkkv' tar -q --fsync '$src' '$work/$tree.tar'")
  t_floor_s=$(loop_time "$floor --fsync '$work/floor'")
  python3 - "$tree" "$kib" "$t_ours" "$t_peer" "$t_tar" "$t_floor" \
    "$t_ours_s" "$t_peer_s" "$t_tar_s" "$t_floor_s" <<'PY'
import sys
name, kib = sys.argv[1], int(sys.argv[2])
t = list(map(float, sys.argv[3:]))
label = {"big": "2,000 files / 50 MB", "small": "20,000 small files"}[name]
print(f"{label} (a {kib} KiB image):")
for (ours, peer, tar, floor), how, sync in ((t[:4], "as the tools leave it", ""),
                                            (t[4:], "made durable", " + sync")):
    flag = " --fsync" if sync else ""
    print(f"  {how}:")
    print(f"    {'mkkv fat' + flag:22} {ours*1000:9.1f} ms")
    print(f"    {'mkfs+mcopy' + sync:22} {peer*1000:9.1f} ms   speed-up   {peer/ours:5.1f}x "
          f"({'OK' if peer >= 3 * ours else 'below 3x'})")
    print(f"    {'mkkv tar' + flag:22} {tar*1000:9.1f} ms   fat/tar    {ours/tar:5.2f} "
          f"({'OK' if ours <= 1.3 * tar else 'above 1.3'})")
    print(f"    {'copy floor' + sync:22} {floor*1000:9.1f} ms   peer/floor {peer/floor:5.1f}x "
          "(what no builder can beat)")
PY
done

# Sequential read of a 200 MB file through the FAT backend vs cat of the image.
img=$work/one.img
"$mkkv" fat -q "$work/one" "$img"
t_kv=$(loop_time "'$mkkv' cat '$img' big.bin > /dev/null")
t_cat=$(loop_time "cat '$img' > /dev/null")
python3 - "$t_kv" "$t_cat" <<'PY'
import sys
kv, cat = map(float, sys.argv[1:3])
mb = 200.0
print("sequential read of a 200 MB file (page cache warm):")
print(f"  mkkv cat IMG big.bin  {kv*1000:8.1f} ms  {mb/kv:7.0f} MB/s")
print(f"  cat IMG               {cat*1000:8.1f} ms  {mb/cat:7.0f} MB/s   "
      f"ratio {cat/kv:5.2f} ({'OK' if cat/kv >= 0.8 else 'below 0.8'})")
PY

# Random 4 KiB reads in the same file: the FAT image against a plain tar.
"$mkkv" tar -q "$work/one" "$work/one.tar"
rand() { # IMAGE: "seconds checksum", best of RUNS
  local best= sum= out
  for ((i = 0; i < runs; i++)); do
    out=$("$reader" random "$1" "" big.bin 20000 4096)
    local t=$(sed -n 's/^seconds //p' <<<"$out")
    sum=$(sed -n 's/^checksum //p' <<<"$out")
    if [ -z "$best" ] || python3 -c "import sys; sys.exit(not $t < $best)"; then best=$t; fi
  done
  echo "$best $sum"
}
read -r r_fat s_fat < <(rand "$img")
read -r r_tar s_tar < <(rand "$work/one.tar")
[ "$s_fat" = "$s_tar" ] || { echo "fat_build: the FAT image and the tar read differently" >&2; exit 1; }
python3 - "$r_fat" "$r_tar" <<'PY'
import sys
fat, tar = map(float, sys.argv[1:3])
print("20,000 random 4 KiB reads of that file (page cache warm, best run):")
print(f"  FAT image   {fat*1000:8.1f} ms  {fat/20000*1e6:6.2f} us a read")
print(f"  plain tar   {tar*1000:8.1f} ms  {tar/20000*1e6:6.2f} us a read   "
      f"fat/tar {fat/tar:5.2f} ({'OK' if fat <= tar * 1.05 else 'slower'})")
PY
