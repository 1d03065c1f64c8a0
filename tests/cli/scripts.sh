#!/usr/bin/env bash
# The build and the shell scripts: the Makefile honours CFLAGS/LDFLAGS given on the command line
# (the project's own flags stay), and no script under `set -o pipefail` pipes into a reader
# that stops early (`| head`, `| grep -q`): the writer then dies of SIGPIPE and the pipeline
# fails at random (issue #8, finding 12: the demo's PCA kNN cell and demo_fast.sh).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

out=$(make -n -B CFLAGS="-O0 -DMARK_CFLAGS" build/src/rng.o 2>&1)
check "make CFLAGS=... keeps -Isrc and -fopenmp" -n "$(grep -- '-Isrc' <<<"$out" | grep -- '-fopenmp' | grep -- '-DMARK_CFLAGS' || true)"
check "make CFLAGS=... replaces the default optimisation" -z "$(grep -- '-O2' <<<"$out" || true)"
out=$(make -n -B LDFLAGS="-DMARK_LDFLAGS" simclr 2>&1)
check "make LDFLAGS=... reaches the link and keeps -fopenmp" -n "$(grep -- '-o simclr' <<<"$out" | grep -- '-DMARK_LDFLAGS' | grep -- '-fopenmp' || true)"
out=$(make -n BUILD=build-x BIN=build-x/simclr build-x/simclr 2>&1)
check "BUILD= puts objects and the command in another folder" -n "$(grep -- '-o build-x/simclr' <<<"$out" || true)"

bad=()
for f in tools/*.sh bench/*.sh tests/cli/*.sh .ci/run; do
  [ -f "$f" ] || continue
  grep -q 'pipefail' "$f" || continue
  while IFS= read -r line; do bad+=("$f: $line"); done \
    < <(grep -nE '\|[[:space:]]*(head|grep[[:space:]]+(-[a-zA-Z]*[qm]|--quiet|--max-count))' "$f" |
        grep -vE '^[0-9]+:[[:space:]]*#' || true)
done
check "no early-exiting reader in a pipeline under pipefail: ${bad[*]:-none}" ${#bad[@]} -eq 0
finish
