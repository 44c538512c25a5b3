#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run), every build with warnings
# as errors (KVRO_WERROR=ON):
#   - scripts/ci-matrix.sh: the normal build (gcc -O2) and its tests, the
#     same tests under AddressSanitizer + UndefinedBehaviorSanitizer (leaks
#     included), then under gcc -O3 (Release), clang-14 and Debian's
#     dpkg-buildflags, and the threaded tests under ThreadSanitizer;
#   - the libFuzzer harnesses for 45 s each (tests/fuzz/run.sh; all at once).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$SECONDS

# Also for the build tests/fuzz/run.sh configures (CMakeLists.txt reads it).
export KVRO_WERROR=ON
export KVRO_CI_TALLY
KVRO_CI_TALLY=$(mktemp "${TMPDIR:-/tmp}/kvro-tally-XXXXXX")
trap 'rm -f "$KVRO_CI_TALLY"' EXIT

scripts/ci-matrix.sh default asan release clang debian tsan
tests/fuzz/run.sh 45
echo "fuzz 4" >>"$KVRO_CI_TALLY" # the four harnesses (tar, tar.gz index, FAT read, FAT write)

# One closing line for the whole run (any failure above has already
# stopped it, set -e), counting what ran: every ctest run's tests and the
# four fuzz harnesses. A build that could not run here is said again.
echo
awk '$2 == "SKIPPED" { $2 = ""; print "test.sh: WARNING: not run:" $0; next }
     { printf "test.sh: %-8s %3d passed\n", $1, $2 }' "$KVRO_CI_TALLY"
echo "test.sh: done in $((SECONDS - start)) s"
echo "all: $(awk '$2 ~ /^[0-9]+$/ { n += $2 } END { print n + 0 }' "$KVRO_CI_TALLY") passed, 0 failed"
