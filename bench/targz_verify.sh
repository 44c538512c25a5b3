#!/usr/bin/env bash
# bench/targz_verify.sh — `mkkv verify ARCHIVE TREE` against GNU tar's
# --compare of the same (tar -dzf, tar -df): both read every byte of the
# archive and of the tree. In one run:
#   - a .tar.gz of at least 400 MB: tar -dzf (gzip inflating in a process of
#     its own beside tar's comparing) against mkkv verify with the index
#     built in the run (--no-index-cache: the open inflates once to index,
#     verify once more: "cold") and with it cached (the open inflates
#     nothing: "cached"); gzip -dc alone for scale;
#   - the plain tar of the same tree: tar -df against mkkv verify;
#   - the same two for a tree of many small files (SMALL, default
#     /usr/include), where the per-file work on the tree's side counts most.
# Each figure is the best of REPS runs (default 3), wall clock and CPU
# (user + system, the best run's), with ratios to tar's. mkkv reads the
# archive in one thread and compares with the tree in another; tar runs
# gzip beside it. Both find the same things: each run is checked to match.
#
# Usage: bench/targz_verify.sh [TREE]
#   TREE (read only) is the big tree; by default a copy of SRC (default
#   "/usr/lib/x86_64-linux-gnu /usr/lib/llvm-14": 1.6 GB, a 450 MB .tar.gz)
#   is made once under WORK (default $TMPDIR/kvro-bench-targz-verify-v1),
#   with its archives, and kept for the next run (rm -rf it to start over).
#   REPS=N, SMALL=dir (SMALL= to skip), MKKV=path, BUILD=dir as in lib.sh.
# Needs GNU tar and gzip. Not part of the test suite.
set -euo pipefail
name=targz_verify
. "$(dirname "$0")/lib.sh"
bench_needs tar gzip cp awk
bench_mkkv
reps=${REPS:-3}
src=${SRC:-/usr/lib/x86_64-linux-gnu /usr/lib/llvm-14}
small=${SMALL-/usr/include}
work=${WORK:-${TMPDIR:-/tmp}/kvro-bench-targz-verify-v1}
mkdir -p "$work"
export XDG_CACHE_HOME=$work/cache

# archive TREE TAG: $work/TAG.tar and $work/TAG.tgz of TREE, made once.
archive() {
  local tree=$1 tag=$2
  if [ ! -s "$work/$tag.tgz" ] || [ ! -s "$work/$tag.tar" ]; then
    tar -C "$tree" -cf "$work/$tag.tar.part" .
    gzip -6nc "$work/$tag.tar.part" >"$work/$tag.tgz.part"
    mv "$work/$tag.tar.part" "$work/$tag.tar"
    mv "$work/$tag.tgz.part" "$work/$tag.tgz"
  fi
}

if [ $# -gt 0 ]; then
  big=$1
  tag=tree-$(printf '%s' "$(cd "$big" && pwd)" | cksum | cut -d' ' -f1)
else
  big=$work/tree
  tag=copy
  if [ ! -e "$work/tree.done" ]; then
    rm -rf "$big" "$work/copy.tar" "$work/copy.tgz"
    mkdir -p "$big"
    # shellcheck disable=SC2086 # SRC is a list of directories
    cp -a $src "$big/"
    touch "$work/tree.done"
  fi
fi
archive "$big" "$tag"
gz=$(stat -c %s "$work/$tag.tgz")
[ "$gz" -ge 400000000 ] ||
  echo "$name: note: $work/$tag.tgz is $((gz / 1000000)) MB, under the 400 MB this measures" >&2
if [ -n "$small" ]; then
  archive "$small" small
fi

# run CMD...: "WALL CPU" seconds of the best of $reps runs (by wall clock;
# the CPU is that run's user + system). Output discarded; the exit status
# must be 0 (a difference found would make the figure meaningless).
run() {
  local best= t
  for ((r = 0; r < reps; r++)); do
    t=$({ TIMEFORMAT='%R %U %S'; time "$@" >/dev/null 2>"$work/err" || echo FAIL; } 2>&1)
    case $t in *FAIL*) cat "$work/err" >&2; echo "$name: failed: $*" >&2; exit 1 ;; esac
    t=$(awk '{ printf "%.3f %.3f", $1, $2 + $3 }' <<<"$t")
    best=$(printf '%s\n%s\n' "$t" "$best" | awk 'NF' | sort -n | head -1)
  done
  echo "$best"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
line() { # LABEL "WALL CPU" [PEER "WALL CPU"]
  local w c pw pc
  read -r w c <<<"$2"
  if [ $# -gt 2 ]; then
    read -r pw pc <<<"$4"
    printf '  %-44s %8s s wall %8s s CPU   %s of %s wall, %s CPU\n' "$1" "$w" "$c" \
      "$(ratio "$w" "$pw")" "$3" "$(ratio "$c" "$pc")"
  else
    printf '  %-44s %8s s wall %8s s CPU\n' "$1" "$w" "$c"
  fi
}

echo "$name: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start;" \
  "best of $reps; $mkkv"

# measure TREE TAG DESCRIPTION: the figures for one tree.
measure() {
  local tree=$1 tag=$2
  echo "$3: $(du -sh "$work/$tag.tar" | cut -f1) tar, $(du -sh "$work/$tag.tgz" | cut -f1) gzip'd"
  rm -rf "$XDG_CACHE_HOME"
  local peer cold cached gzip ppeer plain
  peer=$(run tar -C "$tree" -dzf "$work/$tag.tgz")
  cold=$(run "$mkkv" verify -q --no-index-cache "$work/$tag.tgz" "$tree")
  "$mkkv" ls "$work/$tag.tgz" >/dev/null # builds and caches the index
  cached=$(run "$mkkv" verify -q "$work/$tag.tgz" "$tree")
  gzip=$(run gzip -dc "$work/$tag.tgz")
  ppeer=$(run tar -C "$tree" -df "$work/$tag.tar")
  plain=$(run "$mkkv" verify -q "$work/$tag.tar" "$tree")
  line "tar -dzf (GNU tar --compare, gzip beside it)" "$peer"
  line "mkkv verify .tar.gz, index built in the run" "$cold" "tar -dzf" "$peer"
  line "mkkv verify .tar.gz, index cached" "$cached" "tar -dzf" "$peer"
  line "gzip -dc alone" "$gzip"
  line "tar -df (plain tar)" "$ppeer"
  line "mkkv verify .tar" "$plain" "tar -df" "$ppeer"
}

measure "$big" "$tag" "$big"
[ -z "$small" ] || measure "$small" small "$small (many small files)"
echo "$name: load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
