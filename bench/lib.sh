# bench/lib.sh — what every bench script needs, sourced after it sets
# $name (for messages): a Release build of kvro, so that figures never
# come from a Debug build by accident.
#
#   bench_build TARGET...  configures $BUILD (default build-bench/ at the
#                          project's root; Release, tests off) if it is not
#                          yet, builds TARGETs quietly (the log's tail shown
#                          if it fails) and sets $build.
#   bench_mkkv             $MKKV if set, else build-bench's mkkv (built):
#                          sets $mkkv.
#   bench_kvfuse           $KVFUSE if set, else build-bench's kvfuse
#                          (built): sets $kvfuse.
#   bench_reader OUT       compiles bench/targz_read.c against
#                          $build/libkvro.a (builds it) into OUT.
#   bench_needs TOOL...    exits saying which one is missing.
#   bench_tree KIND DIR [NAME [COUNT]]
#                          writes a tree of KIND into DIR (see below).
#   bench_fuse_work TEMPLATE
#                          $WORK (kept) or a new mktemp -d TEMPLATE
#                          (removed at exit) as $work, with $mnt in it,
#                          unmounted at exit; exits if /dev/fuse is not
#                          usable.
#   bench_now              the time in ns (date +%s%N).
#   bench_median N...      the median of the numbers (of an even count,
#                          the lower of the middle two).
bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bench_build() {
  build=${BUILD:-$bench_root/build-bench}
  case $build in /*) ;; *) build=$bench_root/$build ;; esac
  mkdir -p "$build"
  {
    if [ ! -f "$build/CMakeCache.txt" ]; then
      cmake -S "$bench_root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKVRO_BUILD_TESTS=OFF
    fi
    cmake --build "$build" -j"$(nproc)" --target "$@"
  } >"$build/bench-build.log" 2>&1 || {
    tail -30 "$build/bench-build.log" >&2
    echo "$name: building $* in $build failed (log: $build/bench-build.log)" >&2
    exit 1
  }
}

bench_mkkv() {
  if [ -n "${MKKV:-}" ]; then
    mkkv=$MKKV
  else
    bench_build mkkv
    mkkv=$build/cli/mkkv
  fi
}

bench_kvfuse() {
  if [ -n "${KVFUSE:-}" ]; then
    kvfuse=$KVFUSE
  else
    bench_build kvfuse
    kvfuse=$build/fuse/kvfuse
  fi
  [ -x "$kvfuse" ] || { echo "$name: no $kvfuse (libfuse3-dev missing?)" >&2; exit 1; }
}

bench_reader() {
  bench_build kvro_static
  cc -std=c11 -O2 -Wall -Wextra -I "$bench_root/kvro/include" "$bench_root/bench/targz_read.c" \
    "$build/libkvro.a" -lz -lpthread -o "$1"
}

bench_needs() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$name: needs $tool" >&2; exit 1; }
  done
}

# The trees are made by one generator so that scripts building the same
# kind build the same tree, and figures taken at different times compare:
# the seeds, names and sizes must not change. KIND:
#   big    COUNT files (default 2,000) cut from 50 MB of random bytes, in
#          d00..d19; NAME a printf pattern of the file's number (default
#          f%04d.bin)
#   small  COUNT files (default 20,000) of 0-2 KiB of text, the sizes from
#          Random(42), in d000..d099; NAME as for big (default f%05d.txt)
#   one    big.bin, 200 MB of random bytes
# Python writes 100,000 files far faster than a shell loop would.
bench_tree() {
  python3 - "$@" <<'PY'
import os, sys, random
kind, top = sys.argv[1], sys.argv[2]
name = sys.argv[3] if len(sys.argv) > 3 else {"big": "f%04d.bin", "small": "f%05d.txt"}.get(kind)
count = int(sys.argv[4]) if len(sys.argv) > 4 else {"big": 2000, "small": 20000}.get(kind)
if kind == "big":
    data = os.urandom(50 * 1000 * 1000)
    per = len(data) // count
    for i in range(count):
        d = os.path.join(top, "d%02d" % (i % 20))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name % i), "wb") as f:
            f.write(data[i * per:(i + 1) * per])
elif kind == "small":
    rnd = random.Random(42)
    text = (b"lorem ipsum dolor sit amet, consectetur adipiscing elit\n" * 40)
    for i in range(count):
        d = os.path.join(top, "d%03d" % (i % 100))
        if i < 100:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name % i), "wb") as f:
            f.write(text[:rnd.randrange(0, 2048)])
elif kind == "one":
    os.makedirs(top)
    with open(os.path.join(top, "big.bin"), "wb") as f:
        for _ in range(200):
            f.write(os.urandom(1000 * 1000))
else:
    sys.exit("bench_tree: no kind " + kind)
PY
}

bench_fuse_work() {
  [ -w /dev/fuse ] || { echo "$name: /dev/fuse is not usable" >&2; exit 1; }
  work=${WORK:-$(mktemp -d "$1")}
  mnt=$work/mnt
  mkdir -p "$mnt"
  trap bench_fuse_cleanup EXIT
}

bench_fuse_cleanup() {
  mountpoint -q "$mnt" && fusermount3 -u "$mnt" || true
  [ -n "${WORK:-}" ] || rm -rf "$work"
}

bench_now() { date +%s%N; }

bench_median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
