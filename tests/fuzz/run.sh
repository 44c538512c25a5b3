#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS — builds the libFuzzer harnesses (fuzz_tar.c,
# fuzz_tgz_index.c, fuzz_fat.c, fuzz_fat_write.c) in build-fuzz/ with
# clang-14, -fsanitize=fuzzer,address,undefined, -g -O1 (KVRO_FUZZ=ON),
# makes fresh seeds, then runs the four harnesses at once for SECONDS
# each, so the wall time is SECONDS (plus the build): on a 2-core machine
# each gets half a core. Exits non-zero if any finds a
# crash, a leak, a timeout or runs out of memory, and says where the
# reproducer is and how to replay it.
#
# build-fuzz/corpus/<harness>/ keeps what the fuzzers found interesting
# from run to run (it only grows coverage; delete it to start over);
# build-fuzz/seeds/ is remade every run; build-fuzz/artifacts/<harness>/
# holds this run's reproducers and logs.
set -euo pipefail
secs=${1:?usage: tests/fuzz/run.sh SECONDS}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build-fuzz
cc=${KVRO_FUZZ_CC:-clang-14}

"$root/scripts/deps.sh"
start=$SECONDS
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" -DKVRO_FUZZ=ON -DKVRO_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" >/dev/null
cmake --build "$build" -j "$(nproc)" --target fuzz_tar fuzz_tgz_index fuzz_fat fuzz_fat_write >/dev/null
echo "fuzz: built in $((SECONDS - start)) s"

seeds=$build/seeds
rm -rf "$seeds" "$build/artifacts"
mkdir -p "$seeds/fuzz_tar" "$seeds/fuzz_tgz_index" "$seeds/fuzz_fat" "$seeds/fuzz_fat_write"
python3 "$root/tests/fuzz/make_seeds.py" "$seeds/fuzz_tar"
python3 "$root/tests/fuzz/make_fat_seeds.py" "$seeds/fuzz_fat"
cp "$seeds/fuzz_fat"/* "$seeds/fuzz_fat_write"

# Sanitizer reports end the run (libFuzzer saves the input first); leaks
# are checked after every input.
export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# run NAME MAX_LEN [libFuzzer flags...]: in the background, log in artifacts.
pids=()
names=()
run() {
  local name=$1 max_len=$2
  shift 2
  local art=$build/artifacts/$name
  mkdir -p "$build/corpus/$name" "$art"
  # Under CI a fixed seed: each run explores the same inputs first, so a
  # result there can be replayed rather than being luck.
  (cd "$art" && exec "$build/tests/fuzz/$name" ${CI:+-seed=1} -max_total_time="$secs" -rss_limit_mb=2048 \
     -timeout=10 -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$art/" "$@" \
     "$build/corpus/$name" "$seeds/$name" >"$art/log" 2>&1) &
  pids+=($!)
  names+=("$name")
}
echo "fuzz: running fuzz_tar, fuzz_tgz_index, fuzz_fat and fuzz_fat_write at once for $secs s each"
export KVRO_FUZZ_SEED_DIR=$seeds/fuzz_tgz_index # fuzz_tgz_index writes its seeds there
run fuzz_tar 65536 -dict="$root/tests/fuzz/tar.dict"
run fuzz_tgz_index 262144
# FAT images: the seeds (make_fat_seeds.py) are volumes of 23 to 128 KiB.
# Every FAT lookup walks the directories from the root, allocating as it
# goes: with ASan's 256 MiB quarantine each allocation faults in fresh
# pages, three times the CPU; 16 MiB still holds far more than one input's
# frees, so a use after free is caught as before.
ASAN_OPTIONS=$ASAN_OPTIONS:quarantine_size_mb=16 run fuzz_fat 131072
# The write path on the same images (its script steered by their last
# bytes); every input copies and rewrites its image: the same quarantine.
ASAN_OPTIONS=$ASAN_OPTIONS:quarantine_size_mb=16 run fuzz_fat_write 131072

failed=0
for i in "${!pids[@]}"; do
  name=${names[$i]}
  art=$build/artifacts/$name
  if wait "${pids[$i]}"; then
    stats=$(grep -E '^stat::(number_of_executed_units|new_units_added)' "$art/log" |
            sed 's/^stat:://' | tr -s ' \n' ' ')
    cov=$(grep -E '^#[0-9]+.*(DONE|pulse)' "$art/log" | tail -1 | grep -oE 'cov: [0-9]+' || true)
    echo "fuzz: $name: ok (${stats}${cov})"
    continue
  fi
  failed=1
  echo "fuzz: $name FAILED; the end of its log ($art/log):" >&2
  tail -n 60 "$art/log" >&2
  for r in "$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-* "$art"/slow-unit-*; do
    [ -e "$r" ] || continue
    echo "fuzz: reproducer: $r" >&2
    echo "fuzz: replay with: $build/tests/fuzz/$name $r" >&2
  done
done
echo "fuzz: done in $((SECONDS - start)) s"
exit $failed
