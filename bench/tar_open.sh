#!/usr/bin/env bash
# bench/tar_open.sh — opening a tar of 100,000 members: wall time and peak
# RSS of `mkkv ls -R x.tar` and `mkkv cat x.tar LAST` (each opens the archive
# and indexes every header) against archivemount (mount, read the last
# member, unmount). Targets for mkkv: <= 0.25 s and <= 40 MB.
# Then kvro_open alone (`mkkv stat x.tar ""`: scan every header, build the
# index) next to a peer that reads the same headers, a listing by GNU tar
# (`tar -tf`) and by bsdtar (`bsdtar -tf`), each when installed, and the
# ratio (below 1: kvro opens faster than the peer lists).
#
# Usage: bench/tar_open.sh [RUNS]     (MKKV=path/to/mkkv to pick a binary)
# Times with hyperfine when installed, else a loop timed with `date +%s%N`;
# peak RSS with GNU time (/usr/bin/time). Needs mkkv's tar reader.
# Not part of the test suite.
set -euo pipefail
name=tar_open
. "$(dirname "$0")/lib.sh"
root=$bench_root
bench_mkkv
runs=${1:-10}
bench_needs "$mkkv" python3 /usr/bin/time
"$mkkv" --help | sed -n '/A SOURCE is any of/,$p' | grep -q '^  tar ' \
  || { echo "tar_open: this mkkv has no tar reader" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/kvro-bench-open-XXXXXX")
mnt=$work/mnt
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && fusermount -u "$mnt"
  rm -rf "$work"
}
trap cleanup EXIT

# 100 directories of 1,000 members of 0-2 KiB, straight from memory.
last=$(python3 - "$work/x.tar" <<'PY'
import io, random, sys, tarfile
rnd = random.Random(1)
text = b"lorem ipsum dolor sit amet, consectetur adipiscing elit\n" * 40
with tarfile.open(sys.argv[1], "w", format=tarfile.USTAR_FORMAT) as t:
    for d in range(100):
        for j in range(1000):
            data = text[:rnd.randrange(0, 2048)]
            m = tarfile.TarInfo("d%03d/f%04d.txt" % (d, j))
            m.size, m.mtime = len(data), 1700000000
            t.addfile(m, io.BytesIO(data))
print(m.name)
PY
)
echo "archive: $(du -h "$work/x.tar" | cut -f1), 100,000 members, last: $last" >&2

now_ns() { date +%s%N; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# mean seconds of a shell command over RUNS runs
time_cmd() {
  if command -v hyperfine >/dev/null; then
    hyperfine -w 1 -r "$runs" --export-json "$work/h.json" "$1" >/dev/null 2>&1
    python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][0]['mean'])" \
      "$work/h.json"
  else
    bash -c "$1" >/dev/null || { echo "tar_open: failed: $1" >&2; exit 1; }
    local t0 t1
    t0=$(now_ns)
    for ((i = 0; i < runs; i++)); do bash -c "$1" >/dev/null 2>&1; done
    t1=$(now_ns)
    python3 -c "print(($t1 - $t0) / 1e9 / $runs)"
  fi
}

# peak RSS in MB of a command (the largest of 3 runs); a failed run aborts
rss_cmd() {
  for _ in 1 2 3; do
    /usr/bin/time -f %M -o "$work/rss" bash -c "exec $1" >/dev/null 2>"$work/rss.err" || {
      echo "tar_open: failed: $1" >&2; cat "$work/rss.err" >&2; exit 1; }
    tail -1 "$work/rss"
  done | sort -n | tail -1 | awk '{printf "%.1f", $1 / 1024}'
}

ls_cmd="'$mkkv' ls -R '$work/x.tar' >/dev/null"
cat_cmd="'$mkkv' cat '$work/x.tar' '$last' >/dev/null"
t_ls=$(time_cmd "$ls_cmd") m_ls=$(rss_cmd "$ls_cmd")
t_cat=$(time_cmd "$cat_cmd") m_cat=$(rss_cmd "$cat_cmd")
open_cmd="'$mkkv' stat '$work/x.tar' '' >/dev/null"
t_open=$(time_cmd "$open_cmd") m_open=$(rss_cmd "$open_cmd")
t_gnu=- t_bsd=-
if command -v tar >/dev/null; then t_gnu=$(time_cmd "tar -tf '$work/x.tar' >/dev/null"); fi
if command -v bsdtar >/dev/null; then t_bsd=$(time_cmd "bsdtar -tf '$work/x.tar' >/dev/null"); fi

# archivemount: mount (in the foreground, so GNU time sees its peak RSS),
# read the last member, unmount.
am_once() {
  mkdir -p "$mnt"
  /usr/bin/time -f %M -o "$work/am-rss" archivemount -f -o ro "$work/x.tar" "$mnt" \
    >/dev/null 2>&1 &
  local pid=$!
  until mountpoint -q "$mnt"; do sleep 0.001; done
  cat "$mnt/$last" >/dev/null
  fusermount -u "$mnt"
  wait "$pid" || true
}
t_am=- m_am=-
if command -v archivemount >/dev/null && [ -e /dev/fuse ]; then
  am_once
  times=$(for ((i = 0; i < runs; i++)); do
    t0=$(now_ns); am_once; t1=$(now_ns); echo $(((t1 - t0) / 1000))
  done)
  t_am=$(echo "$times" | median | awk '{print $1 / 1e6}')
  m_am=$(awk '{printf "%.1f", $1 / 1024}' "$work/am-rss")
else
  echo "tar_open: archivemount or /dev/fuse missing: no peer figures" >&2
fi

python3 - "$t_ls" "$m_ls" "$t_cat" "$m_cat" "$t_am" "$m_am" "$t_open" "$m_open" "$t_gnu" \
  "$t_bsd" <<'PY'
import sys
t_ls, m_ls, t_cat, m_cat = map(float, sys.argv[1:5])
t_am, m_am = sys.argv[5:7]
t_open, m_open = map(float, sys.argv[7:9])
peers = [("GNU tar -tf", sys.argv[9]), ("bsdtar -tf", sys.argv[10])]
def verdict(t, m):
    return "OK" if t <= 0.25 and m <= 40 else "MISSES TARGET (0.25 s, 40 MB)"
print("open a 100,000-member tar:")
print(f"  mkkv ls -R       {t_ls*1000:8.1f} ms  {m_ls:6.1f} MB  {verdict(t_ls, m_ls)}")
print(f"  mkkv cat LAST    {t_cat*1000:8.1f} ms  {m_cat:6.1f} MB  {verdict(t_cat, m_cat)}")
if t_am != "-":
    t_am, m_am = float(t_am), float(m_am)
    print(f"  archivemount     {t_am*1000:8.1f} ms  {m_am:6.1f} MB  (mount + read last + unmount)")
    print(f"  ours/archivemount: ls -R {t_ls/t_am:5.2f}, cat {t_cat/t_am:5.2f} (time);"
          f" cat {m_cat/m_am:5.2f} (RSS)")
print("kvro_open alone against a listing of the same archive:")
print(f"  mkkv stat X ''   {t_open*1000:8.1f} ms  {m_open:6.1f} MB")
for name, t in peers:
    if t != "-":
        t = float(t)
        print(f"  {name:<16} {t*1000:8.1f} ms           kvro_open/peer {t_open/t:5.2f}")
PY
