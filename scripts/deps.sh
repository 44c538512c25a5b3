#!/usr/bin/env bash
# Installs the Debian 12 packages kvro needs to build, test and run its
# demo, if any is missing. Safe to run again: it does nothing when all are
# there.
set -euo pipefail

packages=(
  # build
  cmake gcc make pkg-config libarchive-dev zlib1g-dev libfuse3-dev libcmocka-dev
  # the real tools the tests read and write images with
  fuse3 libarchive-tools dosfstools mtools python3 tar gzip xz-utils zstd bzip2
  # the fuzz harnesses (tests/fuzz/run.sh) and the clang-14 and
  # ThreadSanitizer builds (scripts/ci-matrix.sh): clang, whose runtime
  # package holds libFuzzer (-fsanitize=fuzzer) and the sanitizers
  clang-14 libclang-rt-14-dev
  # scripts/ci-matrix.sh: dpkg-buildflags and dpkg-architecture for the
  # build with Debian's flags; nm (binutils) for tests/symbols.sh
  dpkg-dev binutils
)

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
