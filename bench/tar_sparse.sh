#!/usr/bin/env bash
# bench/tar_sparse.sh — random reads of a sparse member: a 4 GiB logical
# file with 64 data regions of 1 MiB (one every 64 MiB), archived by GNU
# tar -S (old GNU 'S' members; FORMAT="--format=posix --sparse-version=1.0"
# etc. for the others). Ours: one process opens the tar with libkvro and
# makes N=1000 reads of 4 KiB at random offsets (holes and data alike),
# through Python's ctypes, so process start is paid once as in a program
# that links kvro. The peer, which must expand the holes: `tar -xOf x.tar
# big.img | dd` of one range, a few times (PEER_RUNS=3), and once for all N
# ranges in a single pass (the stream read once, the ranges picked in
# order). Every range's bytes are compared between the two.
#
# Usage: bench/tar_sparse.sh [N [PEER_RUNS]]   (LIBKVRO=path/to/libkvro.so)
# Needs bash 5, python3, GNU tar, a file system with holes in $TMPDIR, and
# about 70 MB of it. Not part of the test suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lib=${LIBKVRO:-$root/build/libkvro.so}
n=${1:-1000}
peer_runs=${2:-3}
format=${FORMAT:--S --format=gnu}
for tool in python3 tar dd; do
  command -v "$tool" >/dev/null || { echo "tar_sparse: needs $tool" >&2; exit 1; }
done
[ -e "$lib" ] || { echo "tar_sparse: no $lib (LIBKVRO=...)" >&2; exit 1; }
[ -n "${EPOCHREALTIME:-}" ] || { echo "tar_sparse: needs bash 5 (EPOCHREALTIME)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/kvro-bench-sparse-XXXXXX")
trap 'rm -rf "$work"' EXIT
stamp() { local t=${EPOCHREALTIME//[!0-9]/}; printf -v "$1" '%s' "${t}000"; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

mkdir "$work/src"
python3 - "$work/src/big.img" <<'PY'
import os, sys
with open(sys.argv[1], "wb") as f:
    f.truncate(4 << 30)
    for i in range(64):
        f.seek(i * (64 << 20) + (i * 4096) % (63 << 20))
        f.write(os.urandom(1 << 20))
PY
# shellcheck disable=SC2086 # FORMAT is a list of options
tar $format -cf "$work/x.tar" -C "$work/src" big.img
rm -f "$work/src/big.img"
echo "archive: $(stat -c %s "$work/x.tar") bytes ($format), member 4 GiB logical" >&2

# N ranges, the same for every run of this script.
python3 -c "
import random
r = random.Random(7)
for _ in range($n): print(r.randrange(0, (4 << 30) - 4096))" > "$work/offsets"

# Ours: open + N reads in one process; prints the time in ns and writes
# every range's bytes, in the offsets' order, to ours.bin.
ours=$(python3 - "$lib" "$work/x.tar" "$work/offsets" "$work/ours.bin" <<'PY'
import ctypes, sys, time
lib = ctypes.CDLL(sys.argv[1])
lib.kvro_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
lib.kvro_read.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64,
                          ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64), ctypes.c_void_p]
lib.kvro_close.argtypes = [ctypes.c_void_p]
offsets = [int(x) for x in open(sys.argv[3])]
buf = ctypes.create_string_buffer(4096)
got = ctypes.c_int64()
kv = ctypes.c_void_p()
out = open(sys.argv[4], "wb")
chunks = []
t0 = time.perf_counter_ns()
if lib.kvro_open(sys.argv[2].encode(), ctypes.byref(kv), None) != 0:
    sys.exit("kvro_open failed")
for off in offsets:
    if lib.kvro_read(kv, b"big.img", off, 4096, buf, ctypes.byref(got), None) != 0 or \
            got.value != 4096:
        sys.exit(f"kvro_read failed at {off}")
    chunks.append(buf.raw)
t1 = time.perf_counter_ns()
lib.kvro_close(kv)
out.write(b"".join(chunks))
print(t1 - t0)
PY
)

# The peer, one range: expand the member and cut 4 KiB out of it.
peer=()
for ((i = 0; i < peer_runs && i < n; i++)); do
  x=$(sed -n "$((i + 1))p" "$work/offsets")
  stamp t0
  # dd stops the pipe early (SIGPIPE upstream): not a failure here.
  (set +o pipefail
   tar -xOf "$work/x.tar" big.img |
     dd of="$work/peer.$i" bs=4096 iflag=skip_bytes,fullblock skip="$x" count=1 status=none)
  stamp t1
  peer+=($(((t1 - t0) / 1000)))
  cmp -s <(tail -c +$((i * 4096 + 1)) "$work/ours.bin" | head -c 4096) "$work/peer.$i" ||
    { echo "bytes differ at offset $x" >&2; exit 1; }
done

# The peer, all N ranges in one pass over the expanded stream (the picker
# stops reading after the last range: SIGPIPE upstream is not a failure).
stamp t0
(set +o pipefail
 tar -xOf "$work/x.tar" big.img | python3 -c "
import sys
offs = [int(x) for x in open('$work/offsets')]
want = sorted(set(offs))
got, pos, i, buf, f = {}, 0, 0, b'', sys.stdin.buffer
while i < len(want):
    chunk = f.read(1 << 20)
    if not chunk:
        sys.exit('stream ended')
    buf += chunk
    while i < len(want) and want[i] + 4096 <= pos + len(buf):
        got[want[i]] = buf[want[i] - pos:want[i] - pos + 4096]
        i += 1
    keep = want[i] if i < len(want) else pos + len(buf)
    drop = min(keep - pos, len(buf))
    buf, pos = buf[drop:], pos + drop
open('$work/peer.bin', 'wb').write(b''.join(got[o] for o in offs))
")
stamp t1
t_pass=$(((t1 - t0) / 1000))
cmp -s "$work/ours.bin" "$work/peer.bin" || { echo "bytes differ (one pass)" >&2; exit 1; }

m_peer=$(printf '%s\n' "${peer[@]}" | median)
python3 - "$ours" "$m_peer" "$t_pass" "$n" "${#peer[@]}" <<'PY'
import sys
ours = int(sys.argv[1]) / 1e9  # ns
m_peer, t_pass = (int(v) / 1e6 for v in sys.argv[2:4])  # us
n, np = int(sys.argv[4]), sys.argv[5]
print(f"{n} random 4 KiB reads of a 4 GiB sparse member (64 x 1 MiB of data) in a tar:")
print(f"  kvro: open + {n} reads, one process      {ours*1000:9.1f} ms "
      f"({ours/n*1e6:.1f} us a read)")
print(f"  tar -xOf | dd, one range, median of {np}  {m_peer:9.2f} s")
print(f"  tar -xOf, one pass for all {n} ranges   {t_pass:9.2f} s")
print(f"  ours / one pass = {ours / t_pass:.4f}   ours per read / dd per read = "
      f"{ours / n / m_peer:.6f} (the peer is {m_peer * n / ours:.0f}x slower for {n} reads)")
PY
