#!/usr/bin/env bash
# bench/fuse_targz.sh — a mounted .tar.gz of 8 members (SIZE_MIB in all,
# default 1024; base64 text, so inflating is real work), its index built
# and cached by a first mount, in one run:
#  1. READS random 64 KiB preads (default 200) at random offsets of random
#     members through kvfuse: median and 90th percentile latency; the same
#     through archivemount (it inflates from the archive's start for a
#     read: AM_READS of them, default 3, each under a 600 s limit);
#  2. 8 readers, each reading a different member whole, at once, vs one
#     reader reading one member: aggregate MB/s and the ratio (ideal: the
#     number of cores, here $(nproc)); every mount fresh, so nothing comes
#     from the kernel's page cache of the mount.
# Columns whose tool is missing (archivemount) are skipped with a note.
# KVFUSE=path picks the binary (default a Release one, bench/lib.sh);
# WORK=dir the scratch directory (kept, so the archive is made
# once; default a temporary one, removed at the end).
set -euo pipefail
name=fuse_targz
. "$(dirname "$0")/lib.sh"
root=$bench_root
bench_kvfuse
size_mib=${SIZE_MIB:-1024}
reads=${READS:-200}
am_reads=${AM_READS:-3}
bench_fuse_work /tmp/kvfuse-targz.XXXXXX
mkdir -p "$work/tree"

tgz=$work/big.tar.gz
idx=$work/big.idx
member_mib=$((size_mib / 8))
if [ ! -f "$tgz" ]; then
  for i in 0 1 2 3 4 5 6 7; do
    # 3 bytes become 4: exactly member_mib MiB of text, one line
    head -c $((member_mib * 1024 * 1024 * 3 / 4)) /dev/urandom | base64 -w 0 > "$work/tree/m$i.txt"
  done
  tar -C "$work/tree" -cf - . | gzip -1 > "$tgz"
  rm -rf "$work/tree"
fi
cat "$tgz" > /dev/null
echo "== $(du -m "$tgz" | cut -f1) MiB .tar.gz, 8 members of $member_mib MiB" \
  "($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
mount_ns() { # ns from starting kvfuse to its mount being up (then unmounted)
  local t0 t1
  t0=$(bench_now)
  "$kvfuse" -o index="$idx" "$tgz" "$mnt"
  t1=$(bench_now)
  fusermount3 -u "$mnt"
  echo $((t1 - t0))
}
printf 'first mount (builds the index): %.2f s; ' "$(awk -v n="$(mount_ns)" 'BEGIN {print n / 1e9}')"
printf 'then with the index: %.1f ms\n' "$(awk -v n="$(mount_ns)" 'BEGIN {print n / 1e6}')"

# COUNT random 64 KiB preads over the members in $mnt, each under LIMIT
# seconds; prints "median p90 max" in ms.
random_reads() {
  python3 - "$mnt" "$1" "$2" << 'EOF'
import os, random, sys, time, signal
mnt, count, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(42)
fds = [os.open(os.path.join(mnt, "m%d.txt" % i), os.O_RDONLY) for i in range(8)]
size = os.fstat(fds[0]).st_size
signal.signal(signal.SIGALRM, lambda *a: sys.exit("a read took more than %d s" % limit))
ts = []
for _ in range(count):
    fd, off = rnd.choice(fds), rnd.randrange(size - 65536)
    signal.alarm(limit)
    t = time.perf_counter()
    assert len(os.pread(fd, 65536, off)) == 65536
    ts.append((time.perf_counter() - t) * 1e3)
    signal.alarm(0)
ts.sort()
print("%.2f %.2f %.2f" % (ts[len(ts) // 2], ts[int(len(ts) * 0.9)], ts[-1]))
EOF
}

echo
echo "== random 64 KiB reads"
printf '%-14s %6s %10s %10s %10s\n' tool reads "median ms" "p90 ms" "max ms"
"$kvfuse" -o index="$idx" "$tgz" "$mnt"
read -r med p90 max <<< "$(random_reads "$reads" 60)"
fusermount3 -u "$mnt"
printf '%-14s %6s %10s %10s %10s\n' kvfuse "$reads" "$med" "$p90" "$max"
if command -v archivemount > /dev/null; then
  t0=$(bench_now)
  archivemount -o ro,readonly "$tgz" "$mnt" > /dev/null
  t1=$(bench_now)
  if out=$(random_reads "$am_reads" 600); then
    read -r med p90 max <<< "$out"
    printf '%-14s %6s %10s %10s %10s   (mount %.1f s)\n' archivemount "$am_reads" "$med" "$p90" \
      "$max" "$(awk -v n=$((t1 - t0)) 'BEGIN {print n / 1e9}')"
  else
    echo "archivemount: a read took more than 600 s"
  fi
  fusermount3 -u "$mnt"
else
  echo "(archivemount column skipped: apt-get install archivemount)"
fi

echo
echo "== 1 reader of one member vs 8 readers of 8 members at once (kvfuse)"
# Reads members $@ whole at once; prints the aggregate MB/s.
read_members() {
  "$kvfuse" -o index="$idx" "$tgz" "$mnt"
  local t0 t1 pids=()
  t0=$(bench_now)
  for i in "$@"; do cat "$mnt/m$i.txt" > /dev/null & pids+=($!); done
  wait "${pids[@]}"
  t1=$(bench_now)
  fusermount3 -u "$mnt"
  awk -v n=$((t1 - t0)) -v mb=$(($# * member_mib)) 'BEGIN {printf "%.0f", mb * 1.048576 / (n / 1e9)}'
}
one=$(read_members 0)
eight=$(read_members 0 1 2 3 4 5 6 7)
printf '1 reader: %s MB/s; 8 readers: %s MB/s aggregate; ratio %.2f (%s cores)\n' "$one" "$eight" \
  "$(awk -v a="$eight" -v b="$one" 'BEGIN {print a / b}')" "$(nproc)"
