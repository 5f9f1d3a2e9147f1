#!/usr/bin/env bash
# run.sh: the whole test suite on a fresh Debian machine (README command two).
# Installs what is missing, builds, then runs every CTest test: CUnit suites,
# MPI suites at 1, 2 and 3 ranks, shell end-to-end tests and pytest files.
#   tests/run.sh            everything
#   tests/run.sh --fast     everything but the tests labelled slow (ctest -LE slow)
#   tests/run.sh -R REGEX   only matching tests (ctest -R); any other ctest
#                           option passes through too, e.g. -j2 or -L unit
set -euo pipefail
args=()
for a in "$@"; do
  if [ "$a" = --fast ]; then args+=(-LE slow); else args+=("$a"); fi
done
source "$(dirname "${BASH_SOURCE[0]}")/../jobs/setup.sh"
cd "$FACRNN_BUILD"
ctest --output-on-failure --timeout 1500 ${args[@]+"${args[@]}"}
