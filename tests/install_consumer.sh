#!/usr/bin/env bash
# Installs kvro from BUILD_DIR into a temporary prefix, then builds the
# README's example program against it three ways — CMake find_package with
# the shared and the static library, and pkg-config — and runs each on the
# sample tree.
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvro-consumer-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -x "$tmp/prefix/bin/mkkv"
test -f "$tmp/prefix/include/kvro/kvro.h"

# The example is the README's, so the README cannot drift from the API.
sed -n '/<!-- example:begin -->/,/<!-- example:end -->/p' "$src/README.md" \
  | sed '1,2d;$d' | sed '$d' >"$tmp/example.c"
grep -q 'kvro_open' "$tmp/example.c"

expect() { # the example's output for index.html on the sample tree
  cat "$src/examples/site/index.html"
  (cd "$src/examples/site" && for f in $(LC_ALL=C ls); do
     if [ -d "$f" ]; then echo "$f/"; else echo "$f"; fi; done)
}
expect >"$tmp/expected"

check() { # NAME CMD...
  local name=$1; shift
  "$@" "$src/examples/site" index.html >"$tmp/$name.out"
  cmp "$tmp/expected" "$tmp/$name.out" || { echo "$name: output differs" >&2; exit 1; }
  if "$@" "$src/examples/site" no/such/key >/dev/null 2>"$tmp/$name.err"; then
    echo "$name: a missing key succeeded" >&2; exit 1
  fi
  grep -q 'no/such/key' "$tmp/$name.err" || { echo "$name: error does not name the key" >&2; exit 1; }
  echo "$name: ok"
}

cmake -S "$src/tests/consumer" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DEXAMPLE_SOURCE="$tmp/example.c" >/dev/null
cmake --build "$tmp/cm" >/dev/null
LD_LIBRARY_PATH="$tmp/prefix/lib:$tmp/prefix/lib/x86_64-linux-gnu" check cmake-shared "$tmp/cm/example_shared"
check cmake-static "$tmp/cm/example_static"
# The static one must not need the shared library at run time.
! ldd "$tmp/cm/example_static" | grep -q libkvro

pc=$(dirname "$(find "$tmp/prefix" -name kvro.pc)")
export PKG_CONFIG_PATH=$pc
cc -Wall -Wextra -Werror -o "$tmp/pc_shared" "$tmp/example.c" $(pkg-config --cflags --libs kvro)
LD_LIBRARY_PATH=$(pkg-config --variable=libdir kvro) check pkgconfig-shared "$tmp/pc_shared"
cc -Wall -Wextra -Werror -static-libgcc -o "$tmp/pc_static" "$tmp/example.c" \
  $(pkg-config --cflags kvro) "$(pkg-config --variable=libdir kvro)/libkvro.a" \
  $(pkg-config --static --libs-only-l kvro | sed 's/-lkvro//')
check pkgconfig-static "$tmp/pc_static"
echo "install_consumer: ok"
