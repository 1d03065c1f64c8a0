#!/usr/bin/env bash
# Runs the libFuzzer harnesses (build/fuzz/fuzz_NAME, built by `make fuzz-build`) one after the
# other for FUZZ_SECONDS each, at low priority, starting from the committed seeds
# (fuzz/corpus/NAME, never modified) plus a working corpus kept in build/fuzz/work/NAME.
# A crash, a leak, an out-of-memory (over FUZZ_RSS_MB) or a timeout is saved under
# build/fuzz/crashes/NAME/ and makes the script exit 1; see doc/fuzzing.md.
#   tools/fuzz.sh                 every harness
#   tools/fuzz.sh npy image       some of them
#   FUZZ_SECONDS=600 tools/fuzz.sh config
#   FUZZ_FORK=1 tools/fuzz.sh     keep going after a crash (-fork=1 -ignore_crashes ...):
#                                 for long runs; every crash is still saved and reported
set -u
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
rss=${FUZZ_RSS_MB:-2048}
tmpd=${FUZZ_TMPDIR:-/dev/shm}; [ -d "$tmpd" ] || tmpd=/tmp  # the harnesses' scratch files
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.c; do n=${f#fuzz/fuzz_}; names+=("${n%.c}"); done
fi
# the largest input worth trying per harness (libFuzzer's default is 4096)
max_len() { case "$1" in image|idx|cifar) echo 32768 ;; *) echo 8192 ;; esac; }
failed=(); summary=()
for n in "${names[@]}"; do
  bin=build/fuzz/fuzz_$n
  [ -x "$bin" ] || { echo "fuzz: $bin is missing (make fuzz-build)" >&2; failed+=("$n"); continue; }
  mkdir -p "build/fuzz/work/$n" "build/fuzz/crashes/$n"
  dict=(); [ -f "fuzz/$n.dict" ] && dict=(-dict="fuzz/$n.dict")
  fork=(); [ "${FUZZ_FORK:-0}" = 1 ] && fork=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
  log=build/fuzz/$n.log
  before=$(ls "build/fuzz/crashes/$n" | wc -l)
  echo "fuzz: $n for ${secs}s (log $log)"
  TMPDIR=$tmpd nice -n 19 "$bin" -max_total_time="$secs" -rss_limit_mb="$rss" -timeout=25 \
      -max_len="$(max_len "$n")" -print_final_stats=1 "${dict[@]}" "${fork[@]}" \
      -artifact_prefix="build/fuzz/crashes/$n/" "build/fuzz/work/$n" "fuzz/corpus/$n" >"$log" 2>&1
  rc=$?
  after=$(ls "build/fuzz/crashes/$n" | wc -l)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$')
  [ -z "$execs" ] && execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
  summary+=("$(printf '%-12s %10s runs  %3d new crash files  exit %d' "$n" "${execs:-?}" $((after - before)) $rc)")
  if [ $rc -ne 0 ] || [ "$after" -gt "$before" ]; then
    failed+=("$n")
    grep -E 'ERROR|SUMMARY|Test unit written|fuzz: rejected' "$log" | head -n 20 | sed 's/^/    | /'
  fi
done
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (inputs under build/fuzz/crashes/)"; exit 1
fi
echo "fuzz: no crash in ${#names[@]} harnesses"
