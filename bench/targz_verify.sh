#!/usr/bin/env bash
# bench/targz_verify.sh — `mkkv verify` of a .tar.gz against the tree it was
# made from, vs GNU `tar --compare` (tar -dzf) of the same: both read every
# byte of the archive and of the tree. Ours with the index built during the
# run (--no-index-cache: the open inflates once to index, verify once more)
# and with it cached (the second open inflates nothing). Also a plain tar.
#
# Usage: bench/targz_verify.sh [TREE]   (default /usr/include; MKKV=path)
# Needs GNU tar and gzip; TREE must be readable (it is only read). Not part
# of the test suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mkkv=${MKKV:-$root/build/cli/mkkv}
tree=${1:-/usr/include}
[ -x "$mkkv" ] || { echo "targz_verify: no $mkkv (scripts/build.sh)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/kvro-bench-verify-XXXXXX")
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME=$work/cache

tar -C "$tree" -cf "$work/a.tar" .
gzip -6nc "$work/a.tar" >"$work/a.tgz"
echo "targz_verify: $tree: $(du -sh "$work/a.tar" | cut -f1) tar, $(du -sh "$work/a.tgz" | cut -f1) gzip'd"

# Best of 3 wall-clock seconds of "$@" (output discarded; exit 0 or 1 alike).
best() {
  local b=
  for _ in 1 2 3; do
    local s e
    s=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    e=$(date +%s.%N)
    b=$(echo "$s $e ${b:-}" | awk '{ t = $2 - $1; if ($3 == "" || t < $3) t = t; else t = $3; printf "%.3f", t }')
  done
  echo "$b"
}

"$mkkv" verify -q "$work/a.tgz" "$tree" || { echo "targz_verify: mkkv verify found differences" >&2; exit 1; }
peer=$(best tar -C "$tree" -dzf "$work/a.tgz")
cold=$(best "$mkkv" verify -q --no-index-cache "$work/a.tgz" "$tree")
"$mkkv" ls "$work/a.tgz" >/dev/null # the index, cached
warm=$(best "$mkkv" verify -q "$work/a.tgz" "$tree")
ppeer=$(best tar -C "$tree" -df "$work/a.tar")
plain=$(best "$mkkv" verify -q "$work/a.tar" "$tree")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '%-44s %8s s\n' "tar -dzf (GNU tar --compare)" "$peer"
printf '%-44s %8s s  (%s of tar)\n' "mkkv verify .tar.gz, index built in the run" "$cold" "$(ratio "$cold" "$peer")"
printf '%-44s %8s s  (%s of tar)\n' "mkkv verify .tar.gz, index cached" "$warm" "$(ratio "$warm" "$peer")"
printf '%-44s %8s s\n' "tar -df (plain)" "$ppeer"
printf '%-44s %8s s  (%s of tar)\n' "mkkv verify .tar" "$plain" "$(ratio "$plain" "$ppeer")"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
