#!/usr/bin/env bash
# bench/tar_build.sh — `mkkv tar` against GNU tar and bsdtar building an
# archive of the same tree, in one run: a tree of 2,000 files / 50 MB of
# random data, and a tree of 100,000 small files. Prints each tool's time
# and the ratio ours/peer (target: ours <= the faster peer, ratio <= 1).
#
# Usage: bench/tar_build.sh [RUNS]     (MKKV=path/to/mkkv to pick a binary)
# Uses hyperfine when installed, else a loop timed with `date +%s%N`.
# Not part of the test suite.
set -euo pipefail
name=tar_build
. "$(dirname "$0")/lib.sh"
bench_mkkv
runs=${1:-10}
bench_needs "$mkkv" tar bsdtar python3
work=$(mktemp -d "${TMPDIR:-/tmp}/kvro-bench-tar-XXXXXX")
trap 'rm -rf "$work"' EXIT

bench_tree big "$work/big"
bench_tree small "$work/small" f%05d.txt 100000

now_ns() { date +%s%N; }
# mean seconds of RUNS runs of a shell command (after one warm-up run)
loop_time() {
  local cmd=$1 t0 t1
  bash -c "$cmd" >/dev/null 2>&1
  t0=$(now_ns)
  for ((i = 0; i < runs; i++)); do bash -c "$cmd" >/dev/null 2>&1; done
  t1=$(now_ns)
  python3 -c "print(($t1 - $t0) / 1e9 / $runs)"
}

report() { # NAME then OURS TAR BSDTAR (seconds)
  python3 - "$@" <<'PY'
import sys
name, ours, gnu, bsd = sys.argv[1], *map(float, sys.argv[2:5])
best = min(gnu, bsd)
print(f"{name}:")
print(f"  mkkv tar   {ours*1000:9.1f} ms")
print(f"  tar -cf    {gnu*1000:9.1f} ms   ours/tar    = {ours/gnu:5.2f}")
print(f"  bsdtar -cf {bsd*1000:9.1f} ms   ours/bsdtar = {ours/bsd:5.2f}")
print(f"  ours/faster peer = {ours/best:5.2f}  ({'OK' if ours <= best * 1.0 else 'SLOWER'})")
PY
}

for tree in big small; do
  src=$work/$tree out=$work/out-$tree.tar
  ours="'$mkkv' tar -q '$src' '$out'"
  gnu="tar -cf '$out' -C '$src' ."
  bsd="bsdtar -cf '$out' -C '$src' ."
  if command -v hyperfine >/dev/null; then
    hyperfine -S none -w 1 -r "$runs" --export-json "$work/$tree.json" "$ours" "$gnu" "$bsd" >&2 \
      || hyperfine -w 1 -r "$runs" --export-json "$work/$tree.json" "$ours" "$gnu" "$bsd" >&2
    read -r t_ours t_gnu t_bsd < <(python3 -c "
import json,sys
r = json.load(open(sys.argv[1]))['results']
print(*[x['mean'] for x in r])" "$work/$tree.json")
  else
    t_ours=$(loop_time "$ours") t_gnu=$(loop_time "$gnu") t_bsd=$(loop_time "$bsd")
  fi
  case $tree in
    big) label="2,000 files / 50 MB" ;;
    small) label="100,000 small files" ;;
  esac
  report "$label" "$t_ours" "$t_gnu" "$t_bsd"
done
