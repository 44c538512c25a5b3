#!/usr/bin/env bash
# scripts/ci-matrix.sh [NAME...] — the builds scripts/test.sh tests, each
# with warnings as errors (KVRO_WERROR=ON) in its own directory: configure,
# build, then its ctest run. With no NAME, all of them:
#
#   default  build/          gcc, RelWithDebInfo (-O2 -g)                 the whole suite
#   asan     build-asan/     gcc, AddressSanitizer + UBSan, leaks checked the whole suite
#   release  build-release/  gcc, Release (-O3)                           the whole suite
#   clang    build-clang/    clang-14, RelWithDebInfo                     the whole suite
#   debian   build-debian/   gcc with Debian's dpkg-buildflags as a        the whole suite
#                            package build gets them (hardening=+all:
#                            -D_FORTIFY_SOURCE=2, stack protector, relro,
#                            now, PIE; CMAKE_BUILD_TYPE=None, multiarch
#                            libdir)
#   tsan     build-tsan/     clang-14, ThreadSanitizer                    the tests that start
#                                                                          threads
#
# ThreadSanitizer is first tried on a small racy program: it must run and
# report the race. Some kernels (a high vm.mmap_rnd_bits) make clang-14's
# TSan die at start ("unexpected memory mapping"); then the run is retried
# with address-space randomisation off (setarch -R). If TSan still cannot
# run, that is an error under CI=true and a loud warning otherwise.
#
# KVRO_BUILD_DIR (default build) is where every directory's name starts.
# KVRO_CI_TALLY, if set, is a file each build appends "NAME TESTS" to (or
# "NAME SKIPPED why"); scripts/test.sh adds them up for its closing line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)
base=${KVRO_BUILD_DIR:-build}
tally=${KVRO_CI_TALLY:-}
all=(default asan release clang debian tsan)
[ $# -gt 0 ] || set -- "${all[@]}"

scripts/deps.sh

note() { echo "ci: $*"; }
record() { [ -z "$tally" ] || echo "$*" >>"$tally"; }

# configure DIR CMAKE_ARGS...: configures DIR quietly (its output, kept in
# DIR/configure.log, is shown when it fails); build DIR [TARGET...].
configure() {
  local dir=$1; shift
  mkdir -p "$root/$dir"
  cmake -S "$root" -B "$root/$dir" -DKVRO_WERROR=ON "$@" >"$root/$dir/configure.log" 2>&1 ||
    { cat "$root/$dir/configure.log" >&2; echo "ci: configuring $dir failed" >&2; return 1; }
}
build() {
  local dir=$1; shift
  if [ $# -gt 0 ]; then
    cmake --build "$root/$dir" -j "$jobs" --target "$@"
  else
    cmake --build "$root/$dir" -j "$jobs"
  fi
}

# run NAME DIR [CTEST_ARGS...]: runs DIR's tests (the environment is the
# caller's, and $wrap, if set, goes before ctest), records how many passed.
wrap=()
run() {
  local name=$1 dir=$2; shift 2
  local log=$root/$dir/ctest.log
  (cd "$root/$dir" && "${wrap[@]}" ctest --output-on-failure -j "$jobs" "$@") 2>&1 | tee "$log"
  local n
  n=$(sed -n 's/^100% tests passed, 0 tests failed out of \([0-9]*\)$/\1/p' "$log")
  if [ -z "$n" ] || [ "$n" -eq 0 ]; then
    echo "ci: $name: no test ran" >&2
    return 1
  fi
  record "$name $n"
  tested=$n
}

# tsan_works [WRAPPER...]: ThreadSanitizer runs and catches a plain race.
tsan_works() {
  local out rc=0
  out=$("$@" "$probe/race" 2>&1) || rc=$?
  if [ $rc -eq 66 ] && grep -q 'WARNING: ThreadSanitizer: data race' <<<"$out"; then
    return 0
  fi
  tsan_why=$(grep -m1 -E 'FATAL|ERROR|unexpected' <<<"$out" || echo "exit status $rc, no race reported")
  return 1
}

# The tests that start threads: by their source, and those whose threads
# are in the programs they run (mkkv verify reads in one thread and
# compares in another).
runs_threads="test_mkkv_verify"
threaded_tests() {
  local names
  names=$( (grep -l 'pthread_create' tests/test_*.c | xargs -n1 basename | sed 's/\.c$//'
    printf '%s\n' $runs_threads) | sort -u | paste -sd'|')
  for must in test_conformance test_targz; do
    grep -qw "$must" <<<"$names" ||
      { echo "ci: tsan: $must no longer starts threads? (threaded: $names)" >&2; return 1; }
  done
  echo "$names"
}

for name in "$@"; do
  start=$SECONDS
  tested=0
  dir=$base-$name
  wrap=()
  case $name in
  default)
    dir=$base
    configure "$dir"
    build "$dir"
    run "$name" "$dir"
    ;;
  asan)
    configure "$dir" -DKVRO_SANITIZE=ON
    build "$dir"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      run "$name" "$dir"
    ;;
  release)
    configure "$dir" -DCMAKE_BUILD_TYPE=Release
    build "$dir"
    run "$name" "$dir"
    ;;
  clang)
    configure "$dir" -DCMAKE_C_COMPILER=clang-14
    build "$dir"
    run "$name" "$dir"
    ;;
  debian)
    # As dh_auto_configure (debhelper's cmake build system) does; CMake
    # reads no CPPFLAGS, so they go with the CFLAGS, as debhelper passes them.
    flags() { DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get "$1"; }
    cflags="$(flags CFLAGS) $(flags CPPFLAGS)"
    ldflags=$(flags LDFLAGS)
    note "debian: CFLAGS=$cflags LDFLAGS=$ldflags"
    configure "$dir" -DCMAKE_BUILD_TYPE=None -DCMAKE_C_FLAGS="$cflags" \
      -DCMAKE_EXE_LINKER_FLAGS="$ldflags" -DCMAKE_SHARED_LINKER_FLAGS="$ldflags" \
      -DCMAKE_MODULE_LINKER_FLAGS="$ldflags" \
      -DCMAKE_INSTALL_LIBDIR="lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)"
    build "$dir"
    run "$name" "$dir"
    ;;
  tsan)
    probe=$(mktemp -d "${TMPDIR:-/tmp}/kvro-tsan-probe-XXXXXX")
    trap 'rm -rf "$probe"' EXIT
    printf '%s\n' '#include <pthread.h>' 'static int n;' \
      'static void *bump(void *arg) { (void)arg; n++; return 0; }' \
      'int main(void) { pthread_t t; pthread_create(&t, 0, bump, 0); n++;' \
      '  pthread_join(t, 0); return 0; }' >"$probe/race.c"
    clang-14 -fsanitize=thread -g -o "$probe/race" "$probe/race.c"
    tsan_why=
    if tsan_works; then
      :
    elif first=$tsan_why && tsan_works setarch "$(uname -m)" -R; then
      note "tsan: ThreadSanitizer fails here as is ($first; vm.mmap_rnd_bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo '?')); running its tests under setarch -R"
      wrap=(setarch "$(uname -m)" -R)
    else
      bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo '?')
      msg="ThreadSanitizer cannot run on this machine (kernel $(uname -r), vm.mmap_rnd_bits=$bits): $tsan_why; not even under setarch -R"
      [ "$bits" = '?' ] || [ "$bits" -le 28 ] || msg+=" (sysctl vm.mmap_rnd_bits=28 may help)"
      if [ "${CI:-}" = true ]; then
        echo "ci: tsan: ERROR: $msg" >&2
        exit 1
      fi
      echo "ci: tsan: ######## SKIPPED: $msg" >&2
      record "$name SKIPPED $msg"
      continue
    fi
    rm -rf "$probe"
    tests=$(threaded_tests)
    targets=$(tr '|' ' ' <<<"$tests")
    # The FUSE tests drive the kvfuse daemon: build it too (under TSan as
    # well, so the daemon's own threads are checked).
    if grep -qE '(^|\|)test_fuse' <<<"$tests"; then
      targets+=" kvfuse"
    fi
    configure "$dir" -DCMAKE_C_COMPILER=clang-14 -DKVRO_TSAN=ON
    build "$dir" $targets
    # A race or a lock-order inversion fails the test (exit 66). Reports go
    # to files too: the kvfuse daemon's standard error goes nowhere once it
    # has detached, and a report from it would otherwise show only as a
    # broken mount. They are printed, then the failure stands.
    logs="$root/$dir/tsan-reports"
    rm -rf "$logs" && mkdir -p "$logs"
    if ! TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:log_path="$logs/report" \
      run "$name" "$dir" -R "^($tests)\$"; then
      for r in "$logs"/report*; do
        [ -e "$r" ] && { echo "ci: tsan: $r:" >&2; cat "$r" >&2; }
      done
      exit 1
    fi
    ;;
  *)
    echo "ci-matrix.sh: no build named '$name' (there are: ${all[*]})" >&2
    exit 2
    ;;
  esac
  note "$name: $tested tests passed in $dir/ ($((SECONDS - start)) s)"
done
