#!/usr/bin/env bash
# Runs every test binary (build/tests/test_*) and every CLI test script (tests/cli/*.sh) and
# prints the total as the last line: "N passed, M failed". Exits 1 when anything failed.
#   tests/run.sh                    everything
#   tests/run.sh PATTERN            only the binaries/scripts whose name contains PATTERN
#   tests/run.sh determinism        only the thread-determinism reruns under each OpenBLAS core type
#   tests/run.sh --build DIR ...    the test binaries of DIR/tests and the command DIR/simclr
#                                   (make test-sanitize: --build build-san); default build/
#                                   and ./simclr
#   SIMCLR=PATH tests/run.sh        the CLI tests against another command binary
set -u
cd "$(dirname "$0")/.."
build=build
if [ "${1:-}" = "--build" ]; then build="${2:?--build needs a folder}"; shift 2; fi
pat="${1:-}"
total_pass=0; total_fail=0; broken=()
if [ -z "${SIMCLR:-}" ]; then
  if [ -x "$build/simclr" ]; then SIMCLR="$PWD/$build/simclr"; else SIMCLR="$PWD/simclr"; fi
fi
export SIMCLR SIMCLR_BUILD="$PWD/$build"
export OMP_WAIT_POLICY=passive
# Sanitizer settings (read only by a sanitized build; see tests/sanitize.supp for the reasons).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:check_initialization_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/sanitize.supp:print_suppressions=0}"
echo "tests: binaries $build/tests, command $SIMCLR"
run_one() {  # name, command...
  local name="$1"; shift
  local log; log=$(mktemp)
  local t0=$SECONDS
  # OpenMPI's own start-up allocations (in its dlopen'ed components, unsymbolisable) are never
  # freed: leak detection is off for the multi-process test only
  if [ "$name" = test_mpi ]; then
    ASAN_OPTIONS="${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0}" "$@" >"$log" 2>&1
  else
    "$@" >"$log" 2>&1
  fi
  local rc=$?
  local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
  local p=0 f=0
  if [ -n "$line" ]; then p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}; fi
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # a crash or a bad exit counts as a failure
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
  printf '%-40s %4d passed %3d failed  (%ds)\n' "$name" "$p" "$f" $((SECONDS - t0))
  if [ "$f" -ne 0 ]; then broken+=("$name"); sed 's/^/    | /' "$log" | grep -v '^    | ok ' | tail -n 60; fi
  rm -f "$log"
}
for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  case "$(basename "$t")" in *"$pat"*) ;; *) continue ;; esac
  run_one "$(basename "$t")" "$t"
done
for s in tests/cli/*.sh; do
  [ -f "$s" ] || continue
  case "$(basename "$s")" in lib.sh) continue ;; *"$pat"*) ;; *) continue ;; esac
  run_one "$(basename "$s")" bash "$s"
done
# Thread-count determinism under each OpenBLAS kernel family the project meets: AMD machines here
# run with OPENBLAS_CORETYPE=Haswell (whose kernels give different bits for different BLAS thread
# partitions), OpenBLAS picks Zen or SkylakeX by itself elsewhere. Only these reruns set the
# variable; everything above runs with the environment as it is.
determinism=(
  "test_gemm"
  "test_ntxent ntxent_same_result_for_any_thread_count"
  "test_linear_eval grid_search_is_deterministic_across_threads loss_grad_bits_independent_of_threads"
  "test_knn independent_of_threads_and_scale center_and_standardize_invariances"
  "test_pca independent_of_threads"
  "test_layers batchnorm_thread_independent"
  "test_model same_result_for_any_thread_count"
  "test_train training_losses_identical_for_any_thread_count"
  "test_optim updates_do_not_depend_on_thread_count"
)
if [ -z "$pat" ] || [ "$pat" = determinism ]; then
  for core in Haswell Zen SkylakeX; do
    for entry in "${determinism[@]}"; do
      read -r bin tests <<<"$entry"
      [ -x "$build/tests/$bin" ] || continue
      # shellcheck disable=SC2086
      run_one "$bin@$core" env OPENBLAS_CORETYPE=$core "$build/tests/$bin" $tests
    done
  done
fi
[ ${#broken[@]} -gt 0 ] && echo "failed: ${broken[*]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$total_pass" -gt 0 ]
