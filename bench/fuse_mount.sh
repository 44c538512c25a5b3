#!/usr/bin/env bash
# bench/fuse_mount.sh — a 100,000-member tar (100 directories of 1,000
# empty files, made by Python's tarfile) mounted by kvfuse and by
# archivemount, in one run:
#  1. time from starting the mounter to the first successful `ls` of the
#     root (median of RUNS; the tar's pages warm);
#  2. `find MNT -type f | xargs stat` over the fresh mount (every entry
#     looked up and stat'ed once).
# Also kvro_open alone (`mkkv stat TAR ""`), which is most of 1, and the
# cost of starting any process here (`/bin/true`), which every figure
# includes. The archivemount column is skipped when it is not installed.
# KVFUSE=path, MKKV=path pick the binaries (default: Release ones built in
# build-bench/, bench/lib.sh); WORK=dir the scratch
# directory (kept; default a temporary one, removed); RUNS=n (default 5).
set -euo pipefail
name=fuse_mount
. "$(dirname "$0")/lib.sh"
root=$bench_root
bench_mkkv
bench_kvfuse
runs=${RUNS:-5}
bench_fuse_work /tmp/kvfuse-mount.XXXXXX

ms() { awk -v n="$1" 'BEGIN {printf "%.1f", n / 1e6}'; }

many=$work/many.tar
[ -f "$many" ] || python3 -c '
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT) as t:
    for i in range(100000):
        t.addfile(tarfile.TarInfo("d%03d/f%06d" % (i % 100, i)), io.BytesIO())
' "$many"
cat "$many" > /dev/null
echo "== 100,000-member tar ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"

# A mounter's command line for $many on $mnt.
mount_cmd() {
  case $1 in
    kvfuse) "$kvfuse" "$many" "$mnt" ;;
    archivemount) archivemount -o ro,readonly "$many" "$mnt" > /dev/null ;;
  esac
}
tools=(kvfuse)
if command -v archivemount > /dev/null; then
  tools+=(archivemount)
else
  echo "(archivemount column skipped: apt-get install archivemount)"
fi

ts=(); for _ in $(seq "$runs"); do t0=$(bench_now); /bin/true; t1=$(bench_now); ts+=($((t1 - t0))); done
printf '%-28s %10s ms\n' "start a process (/bin/true)" "$(ms "$(bench_median "${ts[@]}")")"
if [ -x "$mkkv" ]; then
  ts=(); for _ in $(seq "$runs"); do t0=$(bench_now); "$mkkv" stat "$many" "" > /dev/null; t1=$(bench_now); ts+=($((t1 - t0))); done
  printf '%-28s %10s ms\n' "kvro_open (mkkv stat TAR '')" "$(ms "$(bench_median "${ts[@]}")")"
fi

declare -A first find
for tool in "${tools[@]}"; do
  ts=()
  for _ in $(seq "$runs"); do
    t0=$(bench_now); mount_cmd "$tool"
    until ls "$mnt" > /dev/null 2>&1 && [ -n "$(ls "$mnt")" ]; do :; done
    t1=$(bench_now)
    ts+=($((t1 - t0)))
    fusermount3 -u "$mnt"
  done
  first[$tool]=$(bench_median "${ts[@]}")
  mount_cmd "$tool"
  until [ -n "$(ls "$mnt" 2> /dev/null)" ]; do :; done
  t0=$(bench_now)
  n=$(cd "$mnt" && find . -type f | xargs stat -c %s | wc -l)
  t1=$(bench_now)
  fusermount3 -u "$mnt"
  [ "$n" = 100000 ] || { echo "$tool: find saw $n files, want 100000" >&2; exit 1; }
  find[$tool]=$((t1 - t0))
done

printf '\n%-14s %22s %24s\n' tool "start to first ls, ms" "find | xargs stat, ms"
for tool in "${tools[@]}"; do
  printf '%-14s %22s %24s\n' "$tool" "$(ms "${first[$tool]}")" "$(ms "${find[$tool]}")"
done
echo "(target: kvfuse start to first ls <= 300 ms)"
