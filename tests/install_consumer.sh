#!/usr/bin/env bash
# Installs kvro from BUILD_DIR into a temporary prefix, then builds the
# README's example program against it and runs each build on the sample
# tree:
#   - CMake find_package, shared and static, as a user would, and
#     kvro_crunch() compiling the sample tree into a program;
#   - CMake find_package with pkg-config unusable (FindPkgConfig disabled
#     and a pkg-config on PATH that fails and records being called): the
#     package needs only CMake's own modules, Threads and ZLIB, and those
#     only for the static library;
#   - a shared-only consumer with Threads and ZLIB not findable at all,
#     and a static one in the same state, which must be refused;
#   - pkg-config (kvro.pc), shared and static.
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvro-consumer-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -x "$tmp/prefix/bin/mkkv"
test -f "$tmp/prefix/include/kvro/kvro.h"
libdirs="$tmp/prefix/lib:$tmp/prefix/lib/x86_64-linux-gnu"

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

fail() { echo "install_consumer: $*" >&2; exit 1; }

check() { # NAME CMD...
  local name=$1; shift
  "$@" "$src/examples/site" index.html >"$tmp/$name.out"
  cmp "$tmp/expected" "$tmp/$name.out" || fail "$name: output differs"
  if "$@" "$src/examples/site" no/such/key >/dev/null 2>"$tmp/$name.err"; then
    fail "$name: a missing key succeeded"
  fi
  grep -q 'no/such/key' "$tmp/$name.err" || fail "$name: error does not name the key"
  echo "$name: ok"
}

static_alone() { # BINARY: a static consumer must not need libkvro.so at run time
  if ldd "$1" | grep -q libkvro; then
    ldd "$1" >&2
    fail "$1 needs the shared library"
  fi
}

# configure DIR CMAKE_ARGS...: configures tests/consumer in $tmp/DIR (log in
# $tmp/DIR.log), with the environment in $with (env VAR=VALUE...); consumer
# DIR CMAKE_ARGS... also builds it, and fails the test if either fails.
with=(env)
configure() {
  local dir=$1; shift
  "${with[@]}" cmake -S "$src/tests/consumer" -B "$tmp/$dir" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
    -DEXAMPLE_SOURCE="$tmp/example.c" "$@" >"$tmp/$dir.log" 2>&1
}
consumer() {
  local dir=$1
  configure "$@" || { cat "$tmp/$dir.log" >&2; fail "$dir: configuring failed"; }
  "${with[@]}" cmake --build "$tmp/$dir" >>"$tmp/$dir.log" 2>&1 ||
    { cat "$tmp/$dir.log" >&2; fail "$dir: building failed"; }
}

# 1. As a user would, on a machine with everything; with the sample tree
# compiled in by kvro_crunch() too (crunch_site: each file's stored SHA-256
# checked by sha256sum against the tree, and one file's bytes).
consumer cm -DCRUNCH_DIR="$src/examples/site"
LD_LIBRARY_PATH=$libdirs check cmake-shared "$tmp/cm/example_shared"
check cmake-static "$tmp/cm/example_static"
static_alone "$tmp/cm/example_static"
crunch_check() { # BINARY
  (cd "$src/examples/site" && "$1" >"$tmp/sums" && sha256sum --quiet --strict -c "$tmp/sums") ||
    fail "$1: the stored hashes do not match the tree"
  [ "$(wc -l <"$tmp/sums")" = "$(find "$src/examples/site" -type f | wc -l)" ] ||
    fail "$1: not every file of the tree is listed"
  "$1" index.html | cmp - "$src/examples/site/index.html" || fail "$1: index.html differs"
}
crunch_check "$tmp/cm/crunch_site"
static_alone "$tmp/cm/crunch_site"
echo "cmake-kvro_crunch: ok"

# 2. No pkg-config: find_package(PkgConfig) is disabled, and a pkg-config
# first on PATH (and in $PKG_CONFIG) fails, leaving a trace if anything
# runs it.
mkdir "$tmp/nopc"
cat >"$tmp/nopc/pkg-config" <<EOF
#!/bin/sh
echo "pkg-config \$*" >>"$tmp/nopc/called"
echo "pkg-config is not usable in this test" >&2
exit 127
EOF
chmod +x "$tmp/nopc/pkg-config"
with=(env PATH="$tmp/nopc:$PATH" PKG_CONFIG="$tmp/nopc/pkg-config" PKG_CONFIG_PATH=/nonexistent)
no_pkgconfig=-DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON
consumer cm-nopc $no_pkgconfig '-DKVRO_COMPONENTS=shared;static'
LD_LIBRARY_PATH=$libdirs check cmake-nopc-shared "$tmp/cm-nopc/example_shared"
check cmake-nopc-static "$tmp/cm-nopc/example_static"
static_alone "$tmp/cm-nopc/example_static"

# 3. A shared-only consumer needs nothing but kvro: not even CMake's Threads
# and ZLIB modules. With no components asked for, kvro::kvro still works
# and kvro_static_FOUND says the static library cannot be linked.
no_deps=(-DCMAKE_DISABLE_FIND_PACKAGE_Threads=ON -DCMAKE_DISABLE_FIND_PACKAGE_ZLIB=ON)
for comp in shared ""; do
  dir=cm-shared-only${comp:+-$comp}
  consumer "$dir" $no_pkgconfig "${no_deps[@]}" -DKVRO_COMPONENTS="$comp" -DEXAMPLES=shared
  LD_LIBRARY_PATH=$libdirs check "$dir" "$tmp/$dir/example_shared"
done
grep -q 'kvro_static_FOUND=FALSE' "$tmp/cm-shared-only.log" ||
  fail "cm-shared-only: kvro_static_FOUND is not FALSE without ZLIB"

# ... while a static consumer without ZLIB is refused by find_package itself
# (find_dependency), naming what is missing.
if configure cm-static-nozlib $no_pkgconfig -DCMAKE_DISABLE_FIND_PACKAGE_ZLIB=ON \
     -DKVRO_COMPONENTS=static -DEXAMPLES=static; then
  fail "cm-static-nozlib: find_package(kvro COMPONENTS static) succeeded without ZLIB"
fi
grep -q ZLIB "$tmp/cm-static-nozlib.log" ||
  { cat "$tmp/cm-static-nozlib.log" >&2; fail "cm-static-nozlib: the failure does not name ZLIB"; }
echo "cmake-static-without-zlib: refused: ok"

if [ -e "$tmp/nopc/called" ]; then
  cat "$tmp/nopc/called" >&2
  fail "pkg-config was run by the CMake consumers that must not need it"
fi

# 4. pkg-config, as today.
pc=$(dirname "$(find "$tmp/prefix" -name kvro.pc)")
export PKG_CONFIG_PATH=$pc
cc -Wall -Wextra -Werror -o "$tmp/pc_shared" "$tmp/example.c" $(pkg-config --cflags --libs kvro)
LD_LIBRARY_PATH=$(pkg-config --variable=libdir kvro) check pkgconfig-shared "$tmp/pc_shared"
cc -Wall -Wextra -Werror -static-libgcc -o "$tmp/pc_static" "$tmp/example.c" \
  $(pkg-config --cflags kvro) "$(pkg-config --variable=libdir kvro)/libkvro.a" \
  $(pkg-config --static --libs-only-l kvro | sed 's/-lkvro//')
check pkgconfig-static "$tmp/pc_static"
static_alone "$tmp/pc_static"
echo "install_consumer: ok"
