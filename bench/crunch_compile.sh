#!/usr/bin/env bash
# bench/crunch_compile.sh — 20 MB of random data compiled into a program:
# `mkkv crunch` + compiling its C, side by side with `xxd -i` + compiling
# that, with gcc -O2 (and clang-14 when present): wall time and peak memory
# (/usr/bin/time -v), and the ratios. Also random 4 KiB reads per second
# from the crunched file, plain and --compress, and through kvro_map.
#   MKKV=path  the mkkv to use (default build/cli/mkkv)
#   MB=N       megabytes of data (default 20)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
mkkv=${MKKV:-$here/build/cli/mkkv}
lib=${LIBKVRO_A:-$(dirname "$(dirname "$mkkv")")/libkvro.a}
mb=${MB:-20}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvro-bench-crunch-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/tree"
head -c $((mb * 1024 * 1024)) /dev/urandom >"$tmp/tree/data.bin"

measure() { # LABEL CMD...: prints "LABEL  SECONDS  PEAK_MB", sets $secs $peak_kb
  local label=$1; shift
  /usr/bin/time -v -o "$tmp/time" "$@" >/dev/null
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0;
    for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$tmp/time")
  peak_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$tmp/time")
  printf '%-34s %8.2f s %8.1f MB\n' "$label" "$secs" "$(echo "$peak_kb / 1024" | bc -l)"
}
ratio() { echo "scale=1; $1 / $2" | bc -l; }

echo "== ${mb} MB of random data"
(cd "$tmp" && measure "mkkv crunch" "$mkkv" crunch -q tree data_c.c)
(cd "$tmp" && measure "xxd -i" sh -c "xxd -i tree/data.bin > data_x.c")
ls -l "$tmp/data_c.c" "$tmp/data_x.c" | awk '{ printf "  %s: %.1f MB\n", $NF, $5 / 1048576 }'
for cc in gcc clang-14; do
  command -v $cc >/dev/null || continue
  cd "$tmp"
  measure "$cc -O2 crunch .c" $cc -O2 -I"$here/kvro/include" -c data_c.c -o c.o
  cs=$secs ck=$peak_kb
  measure "$cc -O2 xxd -i .c" $cc -O2 -c data_x.c -o x.o
  echo "  $cc: crunch is $(ratio "$secs" "$cs")x faster, $(ratio "$peak_kb" "$ck")x leaner" \
    "(target >= 30x, >= 10x)"
done

# Random 4 KiB reads per second, plain and compressed, and kvro_map.
cat >"$tmp/reads.c" <<'C'
#include "data.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(void)
{
    kvro *kv; kvro_error err; static char buf[4096]; int64_t n, size; unsigned long sum = 0;
    if (kvro_open_crunch(&data, &kv, &err)) { kvro_error_print(stderr, "reads", &err); return 1; }
    kvro_size(kv, "data.bin", &size, &err);
    srand(1);
    int reps = 200000; double t0 = now();
    for (int i = 0; i < reps; i++) {
        int64_t off = (int64_t)(((double)rand() / RAND_MAX) * (double)(size - 4096));
        if (kvro_read(kv, "data.bin", off, 4096, buf, &n, &err)) return 1;
        sum += (unsigned char)buf[0];
    }
    double t = now() - t0;
    printf("  kvro_read 4 KiB: %.0f reads/s\n", reps / t);
    const void *p; int64_t len;
    if (kvro_map(kv, "data.bin", &p, &len, &err) == KVRO_OK) {
        t0 = now();
        for (int i = 0; i < reps; i++) {
            int64_t off = (int64_t)(((double)rand() / RAND_MAX) * (double)(size - 4096));
            if (kvro_map(kv, "data.bin", &p, &len, &err)) return 1;
            memcpy(buf, (const char *)p + off, 4096);
            sum += (unsigned char)buf[0];
        }
        printf("  kvro_map + 4 KiB memcpy: %.0f reads/s\n", reps / (now() - t0));
    } else {
        printf("  kvro_map: %s\n", err.detail);
    }
    kvro_close(kv);
    return sum == 42 ? 2 : 0;
}
C
for mode in plain compress; do
  echo "== reads, $mode"
  flag=; [ $mode = compress ] && flag=--compress
  # Half random, half compressible, so that --compress has work to do.
  mkdir -p "$tmp/r-$mode"
  { head -c $((mb * 512 * 1024)) /dev/urandom; head -c $((mb * 512 * 1024)) < <(yes 'kvro crunch'); } \
    >"$tmp/r-$mode/data.bin"
  "$mkkv" crunch -q $flag "$tmp/r-$mode" "$tmp/data.c"
  gcc -O2 -I"$here/kvro/include" -I"$tmp" "$tmp/reads.c" "$tmp/data.c" "$lib" -lz -lpthread \
    -o "$tmp/reads"
  "$tmp/reads"
done
