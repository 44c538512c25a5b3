#!/usr/bin/env bash
# bench/crunch_compile.sh — 20 MB of random data compiled into a program:
# `mkkv crunch` + compiling its C, side by side with `xxd -i` + compiling
# that, with gcc -O2 (and clang-14 when present): wall time, CPU time
# (user + system: what to compare when the machine is loaded) and peak
# memory (/usr/bin/time), and the ratios; `mkkv crunch --incbin` side by
# side with `ld -r -b binary`. Then random 4 KiB reads per second from the
# crunched file, plain and --compress, and through kvro_map; and the
# --compress block size: stored size and random 4 KiB reads per second at
# 16, 64 and 256 KiB blocks over a text corpus.
#   MKKV=path    the mkkv to use (default a Release one, bench/lib.sh;
#                its libkvro.a beside it unless LIBKVRO_A says)
#   MB=N         megabytes of data (default 20)
#   ONLY=WHAT    one part: compile (with incbin), incbin, reads or blocks
#   CORPUS=DIR   the block-size corpus (default /usr/share/doc, .gz left out)
set -euo pipefail
name=crunch_compile
. "$(dirname "$0")/lib.sh"
here=$bench_root
bench_mkkv
[ -n "${MKKV:-}" ] || bench_build kvro_static
lib=${LIBKVRO_A:-$(dirname "$(dirname "$mkkv")")/libkvro.a}
mb=${MB:-20}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvro-bench-crunch-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/tree"
head -c $((mb * 1024 * 1024)) /dev/urandom >"$tmp/tree/data.bin"

measure() { # LABEL CMD...: "LABEL  WALL  CPU  PEAK_MB"; sets $secs $cpu $peak_kb
  local label=$1; shift
  /usr/bin/time -f '%e %U %S %M' -o "$tmp/time" "$@" >/dev/null
  read -r secs user sys peak_kb <"$tmp/time"
  cpu=$(echo "$user + $sys" | bc -l)
  printf '%-34s %7.2f s wall %7.2f s cpu %8.1f MB\n' "$label" "$secs" "$cpu" \
    "$(echo "$peak_kb / 1024" | bc -l)"
}
ratio() { echo "scale=1; $1 / $2" | bc -l; }
part() { [ -z "${ONLY:-}" ] || [ "$ONLY" = "$1" ]; }

echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs (compare cpu when loaded)"
if part compile; then
echo "== ${mb} MB of random data"
(cd "$tmp" && measure "mkkv crunch" "$mkkv" crunch -q tree data_c.c)
(cd "$tmp" && measure "xxd -i" sh -c "xxd -i tree/data.bin > data_x.c")
ls -l "$tmp/data_c.c" "$tmp/data_x.c" | awk '{ printf "  %s: %.1f MB\n", $NF, $5 / 1048576 }'
for cc in gcc clang-14; do
  command -v $cc >/dev/null || continue
  cd "$tmp"
  measure "$cc -O2 crunch .c" $cc -O2 -I"$here/kvro/include" -c data_c.c -o c.o
  cs=$secs ck=$peak_kb
  cc_cpu=$cpu
  measure "$cc -O2 xxd -i .c" $cc -O2 -c data_x.c -o x.o
  echo "  $cc: crunch is $(ratio "$secs" "$cs")x faster (cpu $(ratio "$cpu" "$cc_cpu")x)," \
    "$(ratio "$peak_kb" "$ck")x leaner (target >= 30x, >= 10x)"
done
fi

if part compile || part incbin; then
echo "== --incbin vs ld -r -b binary, ${mb} MB"
cd "$tmp"
measure "mkkv crunch --incbin" "$mkkv" crunch -q --incbin tree data_i.c
cp tree/data.bin data.bin
measure "ld -r -b binary" ld -r -b binary data.bin -o b.o
lc=$cpu ls=$secs
# ld's object is of no use until a C file declares its symbols and the
# same compiler compiles it: that file, and the two steps' sum, are the
# whole job to set ours against (a compiler's start alone is 0.04 s for
# gcc, 0.12 s for clang: more than ld's whole run at 20 MB).
cat >"$tmp/use_ld.c" <<'C'
#include <stddef.h>
extern const unsigned char _binary_data_bin_start[], _binary_data_bin_end[];
const unsigned char *data_bytes(size_t *n)
{
    *n = (size_t)(_binary_data_bin_end - _binary_data_bin_start);
    return _binary_data_bin_start;
}
C
# clang twice: with its integrated assembler, and with GNU as, as
# kvro_crunch(... INCBIN) compiles the table (KVRO_CRUNCH_CLANG_GNU_AS).
for cc in gcc clang-14 "clang-14 -fno-integrated-as"; do
  command -v ${cc%% *} >/dev/null || continue
  # shellcheck disable=SC2086
  measure "$cc -O2 use_ld.c (ld's C side)" $cc -O2 -c use_ld.c -o u.o
  job_s=$(echo "$ls + $secs" | bc -l) job_c=$(echo "$lc + $cpu" | bc -l)
  # shellcheck disable=SC2086
  measure "$cc -O2 --incbin .c" $cc -O2 -I"$here/kvro/include" -I. -c data_i.c -o i.o
  echo "  $cc: $(ratio "$secs" "$ls")x the wall time of ld -r -b binary alone," \
    "$(ratio "$secs" "$job_s")x ld + its C side (cpu $(ratio "$cpu" "$job_c")x; target <= 2x)"
done
fi

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
part reads && for mode in plain compress; do
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

part blocks || exit 0
# The block size of --compress (KVRO_CRUNCH_BLOCK): each file of a text
# corpus cut into independent raw deflate blocks as mkkv cuts them, then
# random 4 KiB reads inflating the blocks touched, as crunch.c reads.
corpus=${CORPUS:-/usr/share/doc}
echo "== --compress block size, over $corpus"
cat >"$tmp/blocks.c" <<'C'
/* Block size for crunch --compress: for each candidate, every file of the
 * corpus (paths on stdin) deflated in independent blocks as mkkv does (raw
 * deflate, level 9, a block kept raw when it does not shrink), then random
 * 4 KiB reads inflating the touched blocks as crunch.c does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

typedef struct file { unsigned char *raw; size_t size; unsigned char *z; size_t *off; size_t n; } file;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv)
{
    size_t cap = 0, nf = 0, total = 0;
    file *fs = NULL;
    char path[4096];
    while (fgets(path, sizeof path, stdin)) {
        path[strcspn(path, "\n")] = 0;
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        rewind(f);
        if (n < 4096) { fclose(f); continue; } /* reads of 4 KiB */
        if (nf == cap) fs = realloc(fs, (cap = cap ? 2 * cap : 256) * sizeof *fs);
        file *e = &fs[nf];
        memset(e, 0, sizeof *e);
        e->raw = malloc((size_t)n);
        e->size = fread(e->raw, 1, (size_t)n, f);
        fclose(f);
        total += e->size;
        nf++;
    }
    printf("corpus: %zu files of 4 KiB or more, %.1f MB\n", nf, total / 1048576.0);
    printf("%-10s %12s %8s %14s %14s\n", "block", "stored MB", "ratio", "4K reads/s", "vs plain");
    unsigned char *scratch = malloc(1 << 20), buf[4096];
    unsigned long sum = 0;
    double plain_rate = 0;
    for (int a = 1; a < argc; a++) {
        size_t B = (size_t)atol(argv[a]) * 1024, stored = 0;
        z_stream z; memset(&z, 0, sizeof z);
        deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY);
        for (size_t i = 0; i < nf; i++) {
            file *e = &fs[i];
            free(e->z); free(e->off);
            e->n = (e->size + B - 1) / B;
            e->z = malloc(e->size + 64);
            e->off = malloc((e->n + 1) * sizeof *e->off);
            size_t o = 0;
            for (size_t b = 0; b < e->n; b++) {
                size_t len = e->size - b * B < B ? e->size - b * B : B;
                e->off[b] = o;
                deflateReset(&z);
                z.next_in = e->raw + b * B; z.avail_in = (uInt)len;
                z.next_out = e->z + o; z.avail_out = (uInt)len - 1;
                if (len > 1 && deflate(&z, Z_FINISH) == Z_STREAM_END) o += len - 1 - z.avail_out;
                else { memcpy(e->z + o, e->raw + b * B, len); o += len; }
            }
            e->off[e->n] = o;
            stored += o;
        }
        deflateEnd(&z);
        srand(1);
        int reps = 20000;
        double t0 = now();

        for (int r = 0; r < reps; r++) {
            file *e = &fs[(size_t)rand() % nf];
            size_t off = (size_t)(((double)rand() / RAND_MAX) * (double)(e->size - 4096));
            for (size_t pos = off; pos < off + 4096;) {
                size_t b = pos / B, start = b * B, len = e->size - start < B ? e->size - start : B;
                size_t skip = pos - start, want = len - skip < off + 4096 - pos ? len - skip : off + 4096 - pos;
                size_t in_len = e->off[b + 1] - e->off[b];
                if (in_len == len) memcpy(buf + (pos - off), e->z + e->off[b] + skip, want);
                else {
                    z_stream d; memset(&d, 0, sizeof d);
                    inflateInit2(&d, -15);
                    d.next_in = e->z + e->off[b]; d.avail_in = (uInt)in_len;
                    d.next_out = scratch; d.avail_out = (uInt)len;
                    if (inflate(&d, Z_FINISH) != Z_STREAM_END) return 1;
                    inflateEnd(&d);
                    memcpy(buf + (pos - off), scratch + skip, want);
                }
                pos += want;
            }
            if (memcmp(buf, e->raw + off, 4096)) { fprintf(stderr, "mismatch\n"); return 1; }
            sum += buf[0];
        }
        double rate = reps / (now() - t0);
        if (!plain_rate) { /* the same reads from the plain bytes */
            t0 = now();
            srand(1);
            for (int r = 0; r < reps * 50; r++) {
                file *e = &fs[(size_t)rand() % nf];
                size_t off = (size_t)(((double)rand() / RAND_MAX) * (double)(e->size - 4096));
                memcpy(buf, e->raw + off, 4096);
                sum += buf[1];
            }
            plain_rate = reps * 50 / (now() - t0);
            printf("%-10s %12.1f %8.2f %14.0f\n", "plain", total / 1048576.0, 1.0, plain_rate);
        }
        printf("%-10s %12.1f %8.2f %14.0f %13.0fx\n", argv[a], stored / 1048576.0,
               (double)total / (double)stored, rate, plain_rate / rate);
    }
    return sum == 42;
}
C
gcc -O2 "$tmp/blocks.c" -lz -o "$tmp/blocks"
find "$corpus" -type f ! -name '*.gz' | LC_ALL=C sort | "$tmp/blocks" 16 64 256
