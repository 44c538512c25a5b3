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
