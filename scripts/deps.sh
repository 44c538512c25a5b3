#!/usr/bin/env bash
# Installs the Debian 12 packages kvro needs, if any is missing. Safe to
# run again: it does nothing when all are there.
#
#   scripts/deps.sh build   what building libkvro and mkkv needs (scripts/build.sh,
#                           scripts/demo.sh)
#   scripts/deps.sh test    that, and what the test suite needs: the real tools
#                           the tests check images with, clang-14 for the fuzz,
#                           clang and ThreadSanitizer builds (scripts/ci-matrix.sh)
#   scripts/deps.sh         the same as test
set -euo pipefail

build=(
  cmake gcc make pkg-config libarchive-dev zlib1g-dev libfuse3-dev
  # demo.sh reads its sample back with GNU tar
  tar gzip
)
test=(
  libcmocka-dev
  # test_crunch compiles the generated C as a user would, C++ included;
  # tests/crunch_cmake.sh builds a consumer with Make and with Ninja
  g++ ninja-build
  # the real tools the tests read and write images with
  fuse3 libarchive-tools dosfstools mtools python3 xz-utils zstd bzip2
  # the fuzz harnesses (tests/fuzz/run.sh) and the clang-14 and
  # ThreadSanitizer builds (scripts/ci-matrix.sh): clang, whose runtime
  # package holds libFuzzer (-fsanitize=fuzzer) and the sanitizers
  clang-14 libclang-rt-14-dev
  # test_mkkv_tar sees with strace that builders fsync only with --fsync
  strace
  # scripts/ci-matrix.sh: dpkg-buildflags and dpkg-architecture for the
  # build with Debian's flags; nm (binutils) for tests/symbols.sh
  dpkg-dev binutils
)

case "${1:-test}" in
  build) packages=("${build[@]}") ;;
  test) packages=("${build[@]}" "${test[@]}") ;;
  *) echo "usage: scripts/deps.sh [build|test]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
