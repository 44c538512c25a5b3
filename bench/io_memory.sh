#!/usr/bin/env bash
# bench/io_memory.sh — opening and reading a tar from memory against the
# same from its path (in the page cache), in one run over one archive of
# 100,000 members (0-4 KiB each, 100 x 10 nested directories, ~290 MB):
#   path  kvro_open(path), then kvro_read of every member
#   mem   the file read into a malloc'd buffer; kvro_io_from_memory +
#         kvro_open_io, then kvro_read of every member
#   map   the same memory open, then kvro_map of every member
# Every mode sums the bytes it gets (mapping does real work too) and the
# three checksums must agree; the member list is made once, untimed. Open
# and read-all are reported apart, each the median of REPS rounds (after one
# untimed warm-up round), with min-max, and the ratios mem/path, map/path,
# map/mem.
# Target: mem <= path (open and read-all), map < both for read-all.
#
# Usage: bench/io_memory.sh [REPS]       (default 7)
# BUILD=dir picks the build directory (default build-bench): one already
# configured is brought up to date (only libkvro.a), otherwise a Release
# build of the library alone is configured there (with
# -Wno-error=maybe-uninitialized: at -O3 GCC 12 warns falsely in kvro/io.c
# and tar/, which broke the build while -Werror was the default). The
# archive is made once and kept in $TMPDIR/kvro-bench-io-memory-v1
# (WORK=dir for another place). For a profiler, run the program alone on
# one mode: $WORK/io_memory $WORK/x.tar 3 map (path, mem or map).
# Not part of the test suite.
#
# Last measured here (2 vCPUs, AMD EPYC VM, Debian 12, GCC 12, Release, at
# the Sources issue's close, load average 1.6; medians of 7 rounds, ms):
#   open      path 87.4   mem 46.7   (mem/path 0.53)
#   read all  path 253.3  mem 63.9   map 60.0
#             mem/path 0.25, map/path 0.24, map/mem 0.94
# Memory beats the path (no syscall per read, no staging copy at open: the
# scan reads an in-memory image in place); kvro_map beats kvro_read from
# memory by the copy it saves, a little, since both look the key up once.
# An earlier run, before kvro_map stopped looking keys up twice and the
# scan stopped copying the image, had map/mem 1.02-1.41.
set -euo pipefail
name=io_memory
. "$(dirname "$0")/lib.sh"
root=$bench_root
reps=${1:-7}
work=${WORK:-${TMPDIR:-/tmp}/kvro-bench-io-memory-v1}
bench_needs cmake cc python3
mkdir -p "$work"
bench_build kvro_static
lib=$build/libkvro.a
[ -f "$lib" ] || { echo "io_memory: no $lib" >&2; exit 1; }
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")

bin=$work/io_memory
cc -std=c11 -O2 -Wall -Wextra -I "$root/kvro/include" "$root/bench/io_memory.c" "$lib" \
  -lz -lpthread -o "$bin"

# The archive: 100 directories of 10 subdirectories of 100 members, each
# 0-4 KiB of random bytes, with explicit directory members (as GNU tar
# writes them). Made once; a .done stamp marks a complete one.
tarf=$work/x.tar
if [ ! -f "$work/x.done" ]; then
  rm -f "$tarf"
  python3 - "$tarf" <<'PY'
import io, os, random, sys, tarfile
rnd = random.Random(7)
blob = rnd.randbytes(1 << 20)
with tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT) as t:
    def d(name):
        m = tarfile.TarInfo(name)
        m.type, m.mode, m.mtime = tarfile.DIRTYPE, 0o755, 1700000000
        t.addfile(m)
    for a in range(100):
        d("a%02d" % a)
        for b in range(10):
            d("a%02d/b%d" % (a, b))
            for c in range(100):
                n = rnd.randrange(0, 4097)
                at = rnd.randrange(0, len(blob) - n)
                m = tarfile.TarInfo("a%02d/b%d/f%05d.bin" % (a, b, (a * 10 + b) * 100 + c))
                m.size, m.mtime = n, 1700000000
                t.addfile(m, io.BytesIO(blob[at:at + n]))
PY
  touch "$work/x.done"
fi

# Into the page cache, and say so.
cat "$tarf" >/dev/null
cached=?
if command -v fincore >/dev/null; then
  read -r res size < <(fincore -b -n -o RES,SIZE "$tarf")
  cached=$((res * 100 / size))
fi

"$bin" "$tarf" "$reps" >"$work/out"
python3 - "$work/out" "$reps" "$cached" "$btype" <<'PY'
import sys
v, info = {}, {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) == 4:
        v[f[0]] = tuple(int(x) / 1e6 for x in f[1:])
    else:
        info[f[0]] = f[1]
reps, cached, btype = sys.argv[2:5]
print(f"{int(info['members']):,} members, {int(info['bytes']) / 1e6:.1f} MB of data, "
      f"{int(info['image']) / 1e6:.1f} MB tar, {cached}% in page cache; "
      f"{btype} build; median (min-max) of {reps} rounds, ms")
print(f"  (reading the file into the buffer, once: {v['load'][0]:.1f} ms, not counted)")
def cell(k):
    m, lo, hi = v[k]
    return f"{m:8.1f} ({lo:6.1f}-{hi:6.1f})"
print(f"  {'':5} {'open':>24}  {'read all':>24}")
for mode in ("path", "mem", "map"):
    print(f"  {mode:5} {cell(mode + '.open')}  {cell(mode + '.read')}")
def ratio(a, b, what, want):
    r = v[a][0] / v[b][0]
    ok = r <= 1.0 if want == "<=" else r < 1.0
    return f"{r:5.2f} {'OK' if ok else 'SLOWER'}"
print(f"  mem/path  open {ratio('mem.open', 'path.open', 'open', '<=')}   "
      f"read {ratio('mem.read', 'path.read', 'read', '<=')}")
print(f"  map/path  read {ratio('map.read', 'path.read', 'read', '<')}   "
      f"map/mem read {ratio('map.read', 'mem.read', 'read', '<')}")
print(f"  checksum {info['checksum']} (path, mem and map agree)")
PY
