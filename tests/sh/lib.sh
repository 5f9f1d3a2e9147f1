# lib.sh: helpers shared by the shell end-to-end tests (sourced, not run).
# Environment from CTest: FACRNN_BIN, FACRNN_SRC, FACRNN_BUILD and the MPI
# root/oversubscribe settings.
set -euo pipefail
: "${FACRNN_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${FACRNN_BUILD:=$FACRNN_SRC/build}"
: "${FACRNN_BIN:=$FACRNN_BUILD/facrnn}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
PY=/usr/bin/python3
WORK="$(mktemp -d "${TMPDIR:-/tmp}/facrnn-sh-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
FAILS=0
PASSES=0

pass() { PASSES=$((PASSES + 1)); echo "PASS: $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL: $*"; }

# expect_fail CODE PHRASE -- CMD...: CMD must exit with CODE (within 120 s,
# so a hung rank fails the test) and print PHRASE on stderr/stdout.
expect_fail() {
  local code="$1" phrase="$2"; shift 3
  local out rc=0
  out="$(timeout 120 "$@" 2>&1)" || rc=$?
  if [ "$rc" -eq 124 ]; then fail "timed out (hung rank?): $*"; return; fi
  if [ "$rc" -ne "$code" ]; then fail "exit $rc, expected $code: $*"; echo "$out" | tail -5; return; fi
  if ! grep -qF -- "$phrase" <<<"$out"; then fail "message lacks '$phrase': $*"; echo "$out" | tail -5; return; fi
  pass "exit $code with '$phrase'"
}

finish() {
  echo "$PASSES passed, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}
