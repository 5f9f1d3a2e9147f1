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

# same_sweep_table N A.h5 B.h5: both sweeps have N runs, all done; every
# /sweep/table column but the wall-clock `seconds` and every /sweep/selection
# attribute equal (numbers within 1e-8 relative); the same /runs.
same_sweep_table() {
  "$PY" - "$@" <<'PY'
import sys, h5py, numpy as np
n = int(sys.argv[1])
a, b = (h5py.File(p, "r") for p in sys.argv[2:4])
def close(x, y):
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind in "fc":
        return x.shape == y.shape and np.allclose(x, y, rtol=1e-8, atol=1e-12, equal_nan=True)
    return np.array_equal(x, y)
ta, tb = a["sweep/table"], b["sweep/table"]
cols = sorted(c for c in ta if c != "seconds")
assert cols == sorted(c for c in tb if c != "seconds"), (list(ta), list(tb))
for t in (ta, tb):
    st = [s.decode() for s in t["status"][()]]
    assert st == ["done"] * n, st
worst = 0.0
for c in cols:
    x, y = ta[c][()], tb[c][()]
    assert close(x, y), f"/sweep/table/{c} differs: {x} vs {y}"
    if x.dtype.kind == "f":
        m = np.isfinite(x)
        if m.any(): worst = max(worst, float(np.max(np.abs(x[m] - y[m]) / np.maximum(np.abs(x[m]), 1e-12))))
sa, sb = dict(a["sweep/selection"].attrs), dict(b["sweep/selection"].attrs)
assert sorted(sa) == sorted(sb) and "selected_K" in sa, (sorted(sa), sorted(sb))
for k in sa:
    assert close(sa[k], sb[k]), f"/sweep/selection@{k}: {sa[k]} vs {sb[k]}"
assert sorted(a["runs"]) == sorted(b["runs"]) and len(a["runs"]) == n
print(f"{n} runs, {len(cols)} columns equal (max relative difference {worst:.1e}); selected K",
      sa["selected_K"], "groups", sa["selected_groups"])
PY
}
