#!/usr/bin/env bash
# The whole test suite: a normal build, then the same tests under
# AddressSanitizer + UndefinedBehaviorSanitizer (leaks included), then the
# libFuzzer harnesses for 45 s each (tests/fuzz/run.sh; both at once).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)

scripts/build.sh build
(cd build && ctest --output-on-failure -j "$jobs")

scripts/build.sh build-asan -DKVRO_SANITIZE=ON
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   ctest --output-on-failure -j "$jobs")

tests/fuzz/run.sh 45

# One closing line for the whole run (any failure above has already
# stopped it, set -e): the two ctest runs and the two fuzz harnesses.
count() { (cd "$1" && ctest -N | sed -n 's/^Total Tests: //p'); }
echo "all: $(( $(count build) + $(count build-asan) + 2 )) passed, 0 failed"
