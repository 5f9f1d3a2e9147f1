#!/usr/bin/env bash
# run.sh: the whole test suite on a fresh Debian machine (README command two).
# Installs what is missing, builds, then runs every CTest test: CUnit suites,
# MPI suites at 1, 2 and 3 ranks, shell end-to-end tests and pytest files.
# Then the same suite again in a second build with AddressSanitizer and UBSan
# (build-asan/), and the fuzz harnesses for a bounded time (tests/fuzz/run.sh).
# Any failure, sanitizer report, fuzz crash or hang fails the run.
#   tests/run.sh                  everything (what CI runs, .ci/run)
#   tests/run.sh --fast           everything but the tests labelled slow (ctest -LE slow)
#   tests/run.sh --no-sanitizers  the plain suite only: no ASan suite, no fuzzing
#   tests/run.sh -R REGEX         only matching tests (ctest -R), in both builds;
#                                 any other ctest option passes through too, e.g. -j2 or -L unit
# Environment:
#   FACRNN_ASAN_BUILD    the sanitizer build directory (default <repo>/build-asan)
#   FACRNN_ASAN_ALL=1    run the slow tests under the sanitizers too (by default they
#                        run only in the plain build: docs/reliability.md has the times)
#   FACRNN_FUZZ_SECONDS  seconds per fuzz harness (default 60; 0 skips fuzzing)
set -euo pipefail
args=()
sanitizers=1
for a in "$@"; do
  case "$a" in
    --fast) args+=(-LE slow) ;;
    --no-sanitizers) sanitizers=0 ;;
    *) args+=("$a") ;;
  esac
done
source "$(dirname "${BASH_SOURCE[0]}")/../jobs/setup.sh"
t0=$(date +%s)
(cd "$FACRNN_BUILD" && ctest --output-on-failure --timeout 1500 ${args[@]+"${args[@]}"})
t1=$(date +%s)
echo "run.sh: suite: $((t1 - t0)) s"
((sanitizers)) || exit 0

# The suite under AddressSanitizer + UBSan. Leak checking is off: Open MPI
# and HDF5 keep allocations until exit that LeakSanitizer reports as leaks
# of every MPI program (the fuzz harnesses do check leaks, with MPI's own
# set aside). Undefined behaviour stops the program (-fno-sanitize-recover).
ASAN_BUILD="${FACRNN_ASAN_BUILD:-$FACRNN_SRC/build-asan}"
cmake -S "$FACRNN_SRC" -B "$ASAN_BUILD" -DFACRNN_WERROR=ON -DFACRNN_SANITIZE=ON >/dev/null
cmake --build "$ASAN_BUILD" -j"$(nproc)"
asan_args=()
[ "${FACRNN_ASAN_ALL:-0}" = 1 ] || asan_args=(-LE slow)
(cd "$ASAN_BUILD" &&
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=0" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  ctest --output-on-failure --timeout 1500 \
    ${asan_args[@]+"${asan_args[@]}"} ${args[@]+"${args[@]}"})
t2=$(date +%s)
echo "run.sh: suite under ASan + UBSan: $((t2 - t1)) s"

# Fuzzing, bounded: every seed and regression input, then new inputs.
if [ "${FACRNN_FUZZ_SECONDS:-60}" != 0 ]; then
  bash "$FACRNN_SRC/tests/fuzz/run.sh" "${FACRNN_FUZZ_SECONDS:-60}"
  echo "run.sh: fuzzing: $(($(date +%s) - t2)) s"
fi
