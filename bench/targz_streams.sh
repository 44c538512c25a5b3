#!/usr/bin/env bash
# bench/targz_streams.sh — N sequential streams on one .tar.gz handle: N
# members of 8 MiB each read whole in 16 KiB pieces, for N = 1, 4, 5, 8,
# 32, from one thread round-robin (a piece of each in turn) and from N
# threads (one a member), in one run, through libkvro.a (bench/targz_read.c).
# Each figure is uncompressed MB/s, the best of REPS runs, each on a fresh
# handle (the saved index loaded, so nothing is inflated at open), with its
# ratio to N = 1; the ceiling is `gzip -dc` of the whole archive. Then the
# same 32 streams with the read cache held to 4 MiB (KVRO_READ_CACHE),
# below what 32 streams need (~170 KiB each): how it degrades past the
# budget (SMALL=size for another). All runs must read the same bytes
# (checksums compared).
# Target: N = 32 at least half of N = 1. Before the read cache (four inflate
# cursors a handle) N = 5 fell from ~240 to ~3 MB/s.
#
# Usage: bench/targz_streams.sh [REPS]     (default 3)
# BUILD=dir picks the build directory (default build-bench; configured as
# a Release build of the library alone if it is not yet, as io_memory.sh
# does). The archive (32 members of base64 text, 256 MiB, ~190 MB
# gzip'd) is made once in $TMPDIR/kvro-bench-targz-streams-v1 (WORK=dir
# for another place). Not part of the test suite.
set -euo pipefail
name=targz_streams
. "$(dirname "$0")/lib.sh"
root=$bench_root
reps=${1:-3}
work=${WORK:-${TMPDIR:-/tmp}/kvro-bench-targz-streams-v1}
bench_needs cmake cc python3 gzip tar
mkdir -p "$work"
bin=$work/targz_read
bench_reader "$bin"
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")

# 32 members of base64 text (compresses to ~75%, inflates at a few hundred
# MB/s, like most real data); made once, a .done stamp marks it complete.
arch=$work/x.tar.gz
if [ ! -f "$work/x.done" ]; then
  rm -rf "$work/m" "$arch"
  mkdir -p "$work/m"
  python3 - "$work/m" <<'PY'
import base64, random, sys
r = random.Random(7)
for i in range(32):
    with open(f"{sys.argv[1]}/m{i:02d}.txt", "wb") as f:
        f.write(base64.encodebytes(r.randbytes(6 << 20))[:8 << 20])
PY
  tar -cf - -C "$work/m" . | gzip -6 > "$arch"
  rm -rf "$work/m"
  touch "$work/x.done"
fi
idx=$work/x.idx
rm -f "$idx"
keys=()
for i in $(seq 0 31); do keys+=("$(printf 'm%02d.txt' "$i")"); done
"$bin" streams "$arch" "$idx" 1 "${keys[0]}" >/dev/null   # builds and saves the index

# Best of REPS by the wall clock: "seconds cpu bytes checksum".
run() {
  local best="" out
  for ((r = 0; r < reps; r++)); do
    out=$("$@" | awk '{v[$1]=$2} END {print v["seconds"], v["cpu"], v["bytes"], v["checksum"]}')
    if [ -z "$best" ] || awk -v a="${out%% *}" -v b="${best%% *}" 'BEGIN {exit !(a < b)}'; then
      best=$out
    fi
  done
  echo "$best"
}
out=$work/out
: >"$out"
for n in 1 4 5 8 32; do
  echo "rr $n $(run "$bin" streams "$arch" "$idx" 1 "${keys[@]:0:n}")" >>"$out"
  echo "th $n $(run "$bin" streams "$arch" "$idx" 0 "${keys[@]:0:n}")" >>"$out"
done
echo "small 32 $(KVRO_READ_CACHE=${SMALL:-4M} run "$bin" streams "$arch" "$idx" 1 "${keys[@]}")" >>"$out"
t0=${EPOCHREALTIME/[.,]/}
usz=$(gzip -dc "$arch" | wc -c)
t1=${EPOCHREALTIME/[.,]/}

python3 - "$out" "$btype" "$(stat -c %s "$arch")" "$usz" "$(((t1 - t0)))" "$reps" \
  "${SMALL:-4M}" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    mode, n, sec, cpu, nbytes, ck = line.split()
    rows[(mode, int(n))] = (float(sec), int(nbytes), ck, float(cpu))
btype, gz, usz, gz_us, reps = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
mbs = lambda k: rows[k][1] / rows[k][0] / 1e6
cpu = lambda k: rows[k][1] / rows[k][3] / 1e6
for n in (1, 4, 5, 8, 32):
    if rows[("rr", n)][2] != rows[("th", n)][2]:
        sys.exit(f"checksums differ at N = {n}")
if rows[("small", 32)][2] != rows[("rr", 32)][2]:
    sys.exit("checksums differ with the small budget")
print(f"16 KiB reads of N 8 MiB members of a {gz / 1e6:.0f} MB .tar.gz ({usz / 1e6:.0f} MB "
      f"uncompressed); {btype} build; best of {reps}; uncompressed MB/s")
print(f"  ceiling: gzip -dc of the whole archive {usz / gz_us:8.1f} (wall)")
print(f"  {'N':>3} {'1 thread round-robin':>22} {'N threads':>18}   per CPU second: "
      f"{'1 thread':>8} {'N threads':>9}")
for n in (1, 4, 5, 8, 32):
    rr, th = mbs(("rr", n)), mbs(("th", n))
    print(f"  {n:>3} {rr:10.1f} ({rr / mbs(('rr', 1)):5.2f}x N=1) {th:8.1f} ({th / mbs(('th', 1)):5.2f}x)"
          f"   {cpu(('rr', n)):24.1f} {cpu(('th', n)):9.1f}")
ok = mbs(("rr", 32)) >= 0.5 * mbs(("rr", 1)) and mbs(("th", 32)) >= 0.5 * mbs(("th", 1))
print(f"  target N=32 >= half of N=1: {'OK' if ok else 'MISSED'}")
s = mbs(("small", 32))
print(f"  N=32 round-robin, read cache {sys.argv[7]} (past the budget): {s:.1f} MB/s "
      f"({s / mbs(('rr', 32)):.2f}x the default budget)")
PY
