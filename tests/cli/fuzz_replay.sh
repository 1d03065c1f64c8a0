#!/usr/bin/env bash
# Replays the fuzzers' seeds (fuzz/corpus/NAME) and every input that once crashed a harness
# (fuzz/regress/NAME) through the harnesses built with the normal compiler (build/fuzz-replay/,
# fuzz/replay.c): each must run to the end, and a rejected input must leave a one-line message
# (the harness aborts otherwise). The crash inputs also go through the simclr command that reads
# them, which must fail with one clean error line (tests/cli/fuzz_regress.sh).
. "$(dirname "$0")/lib.sh"
for src in "$ROOT"/fuzz/fuzz_*.c; do
  n=$(basename "$src" .c); n=${n#fuzz_}
  bin="$BUILD_DIR/fuzz-replay/fuzz_$n"
  dirs=("$ROOT/fuzz/corpus/$n"); [ -d "$ROOT/fuzz/regress/$n" ] && dirs+=("$ROOT/fuzz/regress/$n")
  expect_ok "fuzz_$n replays its seeds and past crashes ($(find "${dirs[@]}" -type f | wc -l) inputs)" \
    env TMPDIR="$TMP" "$bin" "${dirs[@]}"
done
finish
