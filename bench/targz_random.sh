#!/usr/bin/env bash
# bench/targz_random.sh — random reads inside a .tar.gz of more than 1 GiB:
# after one `mkkv ls` has built (and saved) the access index, N=21 reads of
# 64 KiB at random offsets of a 1.2 GiB member, each a whole
# `mkkv cat --offset X --length 65536 -q` process; their median against the
# peer way, `tar -xzOf x.tar.gz member | tail -c +X | head -c 65536`, at a
# few offsets. Target for mkkv: median <= 20 ms. Each mkkv read is also
# compared with the peer's bytes where both were taken.
#
# Usage: bench/targz_random.sh [N [PEER_RUNS]]   (MKKV=path/to/mkkv)
# WORK=dir keeps the archive in DIR and reuses it on the next run (to
# compare two builds without making it again); the index is always rebuilt.
# Everything is single-shot and timed with bash's $EPOCHREALTIME: hyperfine
# would repeat each offset, and a repeat is not a random read. (Timing with
# `$(date +%s%N)` put the start of a `date` process, 5-10 ms here, inside
# every interval.) Also shown: the median of `mkkv stat` on the member (open
# + index load, no data read), to tell the cost of opening from that of
# reading, and of `mkkv --help`, the cost of starting the process at all.
# Needs bash 5, mkkv's tar reader, about 2.5 GB in $TMPDIR, and about a
# minute to make the archive.
# Not part of the test suite.
set -euo pipefail
name=targz_random
. "$(dirname "$0")/lib.sh"
root=$bench_root
bench_mkkv
n=${1:-21}
peer_runs=${2:-3}
mib=${MIB:-1216}   # member size; 1216 MiB makes the .tar.gz pass 1 GiB
for tool in "$mkkv" python3 tar gzip; do
  command -v "$tool" >/dev/null || { echo "targz_random: needs $tool" >&2; exit 1; }
done
"$mkkv" --help | sed -n '/A SOURCE is any of/,$p' | grep -q '^  tar ' \
  || { echo "targz_random: this mkkv has no tar reader" >&2; exit 1; }
if [ -n "${WORK:-}" ]; then
  work=$WORK
  mkdir -p "$work"
  rm -f "$work/x.idx" "$work"/ours.* "$work"/peer.*
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/kvro-bench-targz-XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi
[ -n "${EPOCHREALTIME:-}" ] || { echo "targz_random: needs bash 5 (EPOCHREALTIME)" >&2; exit 1; }
# Sets the named variable to the time in ns, without a subshell or a
# process (its decimal separator follows the locale: keep the digits).
stamp() { local t=${EPOCHREALTIME//[!0-9]/}; printf -v "$1" '%s' "${t}000"; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# The member: 8 MiB stretches of raw random bytes (incompressible)
# alternating with 6 MiB of it in base64 (text, ~75% after gzip), 1.1 GiB in
# all (MIB=... to change it), so that the gzip stream itself passes 1 GiB. gzip -1 keeps the
# compression quick; the reader does not care how hard the writer tried.
if [ ! -s "$work/x.tar.gz" ] || [ ! -s "$work/m/member.bin" ]; then
  mkdir -p "$work/m"
  python3 - "$work/m/member.bin" "$mib" <<'PY'
import base64, os, sys
size = int(sys.argv[2]) << 20
with open(sys.argv[1], "wb") as f:
    done, raw = 0, True
    while done < size:
        chunk = os.urandom(8 << 20) if raw else base64.encodebytes(os.urandom(6 << 20))
        chunk = chunk[:size - done]
        f.write(chunk)
        done, raw = done + len(chunk), not raw
PY
  stamp t0
  tar -cf - -C "$work/m" member.bin | gzip -1 > "$work/x.tar.gz"
  stamp t1
  made="made in $(((t1 - t0) / 1000000)) ms"
else
  made="reused"
fi
size=$(stat -c %s "$work/m/member.bin")
gzsize=$(stat -c %s "$work/x.tar.gz")
echo "archive: $gzsize bytes compressed, member $size bytes" \
  "($made)" >&2

# The first open inflates everything once and saves the index.
idx=$work/x.idx
stamp t0
"$mkkv" ls -q --index "$idx" "$work/x.tar.gz" >/dev/null
stamp t1
t_index=$(((t1 - t0) / 1000))
echo "index: $(stat -c %s "$idx") bytes" >&2

# N offsets, the same for every run of this script.
mapfile -t offsets < <(python3 -c "
import random
r = random.Random(7)
for _ in range($n): print(r.randrange(0, $size - 65536))")

ours=()
for x in "${offsets[@]}"; do
  stamp t0
  "$mkkv" cat -q --index "$idx" --offset "$x" --length 65536 "$work/x.tar.gz" member.bin \
    > "$work/ours.$x"
  stamp t1
  ours+=($(((t1 - t0) / 1000)))
  [ "$(stat -c %s "$work/ours.$x")" -eq 65536 ] || { echo "short read at $x" >&2; exit 1; }
done

opens=() starts=()
for ((i = 0; i < 5; i++)); do
  stamp t0
  "$mkkv" stat -q --index "$idx" "$work/x.tar.gz" member.bin >/dev/null
  stamp t1
  opens+=($(((t1 - t0) / 1000)))
  stamp t0
  "$mkkv" --help >/dev/null
  stamp t1
  starts+=($(((t1 - t0) / 1000)))
done

peer=()
for ((i = 0; i < peer_runs && i < n; i++)); do
  x=${offsets[$i]}
  stamp t0
  # head stops the pipe early (SIGPIPE upstream): not a failure here.
  (set +o pipefail
   tar -xzOf "$work/x.tar.gz" member.bin | tail -c +$((x + 1)) | head -c 65536 > "$work/peer.$x")
  stamp t1
  peer+=($(((t1 - t0) / 1000)))
  cmp -s "$work/ours.$x" "$work/peer.$x" || { echo "bytes differ at offset $x" >&2; exit 1; }
done

m_ours=$(printf '%s\n' "${ours[@]}" | median)
m_peer=$(printf '%s\n' "${peer[@]}" | median)
m_open=$(printf '%s\n' "${opens[@]}" | median)
m_start=$(printf '%s\n' "${starts[@]}" | median)
python3 - "$t_index" "$m_ours" "$m_peer" "$m_open" "$m_start" "$n" "${#peer[@]}" "$gzsize" <<'PY'
import sys
t_index, m_ours, m_peer, m_open, m_start = (int(v) / 1e6 for v in sys.argv[1:6])
n, np, gz = sys.argv[6], sys.argv[7], int(sys.argv[8])
print(f"random 64 KiB reads in a {gz / (1 << 30):.2f} GiB .tar.gz:")
print(f"  first open (index build)      {t_index:8.2f} s")
print(f"  mkkv cat, median of {n:>3}      {m_ours*1000:8.1f} ms  "
      f"{'OK' if m_ours <= 0.020 else 'MISSES TARGET (20 ms)'}")
print(f"  of which open (mkkv stat), median of 5 {m_open*1000:.1f} ms")
print(f"  of which process start (mkkv --help), median of 5 {m_start*1000:.1f} ms")
print(f"  tar -xzO | tail | head, of {np} {m_peer*1000:8.1f} ms")
print(f"  ours/peer = {m_ours / m_peer:.4f}  (peer is {m_peer / m_ours:.0f}x slower)")
PY
