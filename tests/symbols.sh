#!/usr/bin/env bash
# tests/symbols.sh STATIC_LIB SHARED_LIB [NM] — libkvro stays in its own
# namespace in both symbol tables:
#   - every external (global, defined) symbol of libkvro.a, i.e. everything a
#     static link can bring into a program, starts with kvro_ (kvro__ for
#     the internal ones shared between the library's files);
#   - every dynamic symbol libkvro.so exports starts with kvro_ and is not
#     internal (kvro__ names are hidden there, and stay so).
# Each offending symbol is named with the object defining it. Before that,
# the check itself is tried on a small archive holding one unprefixed
# symbol (with $CC and $AR when set), so a change in nm's output cannot
# make this pass by finding nothing.
set -euo pipefail
static=${1:?usage: symbols.sh STATIC_LIB SHARED_LIB [NM]}
shared=${2:?usage: symbols.sh STATIC_LIB SHARED_LIB [NM]}
nm=${3:-nm}

# The "OBJECT TYPE NAME" lines of an archive's external definitions. GNU nm
# -A prints "lib.a:obj.o:VALUE T name", llvm-nm "lib.a:obj.o: VALUE T name".
static_syms() {
  "$nm" -A -g --defined-only "$1" | awk 'NF >= 3 {
      obj = $1; sub(/:[0-9a-fA-F]*$/, "", obj); sub(/:$/, "", obj)
      print obj, $(NF-1), $NF }'
}
# The "TYPE NAME" lines of a shared library's exported definitions, without
# symbol versions (name@@VERSION).
shared_syms() {
  "$nm" -D --defined-only "$1" | awk 'NF >= 2 { n = $NF; sub(/@.*/, "", n); print $(NF-1), n }'
}

# Prints the offending lines; the caller fails when there are any.
bad_static() { static_syms "$1" | awk '$3 !~ /^kvro_/'; }
bad_shared() { shared_syms "$1" | awk '$2 !~ /^kvro_/ || $2 ~ /^kvro__/'; }

# The check must catch what it is for: an archive with kvro_fine and
# leaked_name must be flagged for leaked_name, and only for it.
if [ -n "${CC:-}" ] && [ -n "${AR:-}" ]; then
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvro-symbols-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  printf 'int kvro_fine(void) { return 1; }\nint leaked_name(void) { return 2; }\n' >"$tmp/t.c"
  "$CC" -c -o "$tmp/t.o" "$tmp/t.c"
  "$AR" rcs "$tmp/libt.a" "$tmp/t.o"
  got=$(bad_static "$tmp/libt.a" | awk '{print $3}')
  if [ "$got" != leaked_name ]; then
    echo "symbols: the check itself is broken: on a test archive it flagged '${got}'," \
      "not 'leaked_name' ($nm)" >&2
    exit 1
  fi
fi

status=0
n_static=$(static_syms "$static" | wc -l)
n_shared=$(shared_syms "$shared" | wc -l)
# Something must have been read: the public entry point is in both.
static_syms "$static" | awk '$3 == "kvro_open" { f = 1 } END { exit !f }' ||
  { echo "symbols: no kvro_open among the $n_static symbols of $static ($nm)" >&2; status=1; }
shared_syms "$shared" | awk '$2 == "kvro_open" { f = 1 } END { exit !f }' ||
  { echo "symbols: no kvro_open among the $n_shared exported by $shared ($nm)" >&2; status=1; }

bad=$(bad_static "$static")
if [ -n "$bad" ]; then
  echo "symbols: $static defines external symbols outside kvro_ (make them static," \
    "or name them kvro__... if other files of the library need them):" >&2
  echo "$bad" | sed 's/^/  /' >&2
  status=1
fi
bad=$(bad_shared "$shared")
if [ -n "$bad" ]; then
  echo "symbols: $shared exports symbols that are not public kvro_ names (internal" \
    "kvro__ ones must stay hidden):" >&2
  echo "$bad" | sed 's/^/  /' >&2
  status=1
fi
[ $status -eq 0 ] && echo "symbols: ok ($n_static external symbols in $(basename "$static")," \
  "$n_shared exported by $(basename "$shared"))"
exit $status
