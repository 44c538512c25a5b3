#!/usr/bin/env bash
# tests/crunch_cmake.sh BUILD_DIR SOURCE_DIR — kvro_crunch() as a user
# meets it: kvro installed into a temporary prefix, a project that does
# find_package(kvro) and kvro_crunch(app assets), built with Make (and
# Ninja when present). Editing, adding and removing an asset and building
# again must show in what the program prints (the depfile at work); a build
# with nothing changed must not regenerate. A second program gets the same
# tree with INCBIN.
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvro-crunch-cmake-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "crunch_cmake: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/lib/cmake/kvro/KvroCrunch.cmake" ||
  test -n "$(find "$tmp/prefix" -name KvroCrunch.cmake)" || fail "KvroCrunch.cmake not installed"

mkdir -p "$tmp/proj/assets/css"
cat >"$tmp/proj/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(crunch_consumer C)
find_package(kvro 0.1 REQUIRED)
add_executable(app app.c)
target_compile_options(app PRIVATE -Wall -Wextra -Werror)
target_link_libraries(app PRIVATE kvro::kvro_static)
kvro_crunch(app assets NAME site EXCLUDE "*.tmp")
# The same tree through .incbin (the data in site.bin), in its own
# directory since the generated names are the table's.
add_subdirectory(incbin)
CM
mkdir -p "$tmp/proj/incbin"
cat >"$tmp/proj/incbin/CMakeLists.txt" <<'CM'
add_executable(app_incbin ../app.c)
target_compile_options(app_incbin PRIVATE -Wall -Wextra -Werror)
target_link_libraries(app_incbin PRIVATE kvro::kvro_static)
kvro_crunch(app_incbin ../assets NAME site INCBIN EXCLUDE "*.tmp")
CM
cat >"$tmp/proj/app.c" <<'C'
#include "site.h"
#include <stdio.h>
static int show(void *arg, const char *key, kvro_status s, const kvro_info *info)
{
    kvro *kv = arg;
    unsigned char sha[32];
    kvro_error err;
    if (s != KVRO_OK || info->kind != KVRO_KIND_FILE)
        return 0;
    if (kvro_sha256(kv, key, sha, &err) != KVRO_OK)
        return 1;
    for (int i = 0; i < 32; i++)
        printf("%02x", sha[i]);
    printf("  %s\n", key);
    return 0;
}
int main(void)
{
    kvro *kv;
    kvro_error err;
    if (kvro_open_crunch(&site, &kv, &err) != KVRO_OK) {
        kvro_error_print(stderr, "app", &err);
        return 1;
    }
    kvro_each(kv, show, kv, &err);
    kvro_close(kv);
    return 0;
}
C
echo 'body { }' >"$tmp/proj/assets/css/site.css"
echo '<h1>hi</h1>' >"$tmp/proj/assets/index.html"
echo 'junk' >"$tmp/proj/assets/skip.tmp"

expect() { (cd "$tmp/proj/assets" && find . -type f ! -name '*.tmp' | sed 's|^\./||' |
  LC_ALL=C sort | xargs sha256sum); }
check() { # BUILD: both programs print exactly the assets' hashes
  expect | LC_ALL=C sort -k2 >"$tmp/want"
  for app in app incbin/app_incbin; do
    "$tmp/$1/$app" | LC_ALL=C sort -k2 >"$tmp/got"
    diff "$tmp/want" "$tmp/got" >&2 || fail "$1: $app's tree differs from the assets"
  done
}

generators=("Unix Makefiles")
command -v ninja >/dev/null && generators+=(Ninja)
for gen in "${generators[@]}"; do
  b="b-${gen// /-}"
  cmake -S "$tmp/proj" -B "$tmp/$b" -G "$gen" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
    >"$tmp/$b.log" 2>&1 || { cat "$tmp/$b.log" >&2; fail "$gen: configuring failed"; }
  build_it() { cmake --build "$tmp/$b" >"$tmp/$b.log" 2>&1 ||
    { cat "$tmp/$b.log" >&2; fail "$gen: building failed"; }; }
  build_it; check "$b"
  # Nothing changed: nothing crunched.
  build_it
  if grep -q Crunching "$tmp/$b.log"; then fail "$gen: regenerated with nothing changed"; fi
  sleep 1.1 # mtimes of a second's resolution on some file systems
  echo 'body { color: red }' >"$tmp/proj/assets/css/site.css"; build_it; check "$b"
  sleep 1.1
  echo 'new' >"$tmp/proj/assets/css/new.css"; build_it; check "$b"
  "$tmp/$b/app" | grep -q 'css/new.css' || fail "$gen: an added file is missing"
  "$tmp/$b/incbin/app_incbin" | grep -q 'css/new.css' || fail "$gen: incbin: an added file is missing"
  sleep 1.1
  rm "$tmp/proj/assets/css/new.css"; build_it; check "$b"
  if "$tmp/$b/app" | grep -q 'css/new.css'; then fail "$gen: a removed file is still there"; fi
  echo "$gen: ok"
done

# clang: the INCBIN table goes through GNU as (KVRO_CRUNCH_CLANG_GNU_AS,
# on by default), the rest through clang's own assembler; both programs
# still serve the tree.
if command -v clang-14 >/dev/null; then
  b=b-clang
  cmake -S "$tmp/proj" -B "$tmp/$b" -DCMAKE_C_COMPILER=clang-14 -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
    -DCMAKE_PREFIX_PATH="$tmp/prefix" >"$tmp/$b.log" 2>&1 ||
    { cat "$tmp/$b.log" >&2; fail "clang: configuring failed"; }
  cmake --build "$tmp/$b" >"$tmp/$b.log" 2>&1 || { cat "$tmp/$b.log" >&2; fail "clang: building failed"; }
  check "$b"
  python3 - "$tmp/$b/compile_commands.json" <<'PY' || fail "clang: -fno-integrated-as not where it belongs"
import json, sys
cmds = json.load(open(sys.argv[1]))
table = [c for c in cmds if c["file"].endswith("incbin/kvro_crunch/site.c")]
others = [c for c in cmds if c not in table]
sys.exit(not (len(table) == 1 and "-fno-integrated-as" in table[0]["command"] and others
              and not any("-fno-integrated-as" in c["command"] for c in others)))
PY
  echo "clang: ok"
fi
