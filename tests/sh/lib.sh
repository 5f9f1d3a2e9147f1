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

# stop_resume_bitwise YAML RUN WHAT: a 2-rank fit of YAML to cut.h5 gets
# SIGUSR1 once its log shows epoch 20 of restart 1 (of 2): it must checkpoint
# and exit 75 without a results file; the same command then resumes, and run
# RUN must equal full.h5's bitwise (params, loss history, latents). WHAT
# names the case in the PASS lines.
stop_resume_bitwise() {
  local yaml="$1" run="$2" what="$3" pid rc=0
  mpirun -n 2 "$FACRNN_BIN" fit "$yaml" --set output.path=cut.h5 --set train.log_every=1 > cut.log 2>&1 &
  pid=$!
  for _ in $(seq 600); do grep -q "restart 1/2 epoch  *20/" cut.log && break; sleep 0.1; done
  kill -USR1 $pid
  wait $pid || rc=$?
  if [ "$rc" -eq 75 ] && [ -f "cut.h5.ckpt/$run.ckpt.h5" ] && [ ! -f cut.h5 ]; then
    pass "SIGUSR1 ($what) checkpoints and exits 75"
  else
    fail "SIGUSR1: exit $rc (want 75), checkpoint present: $(ls cut.h5.ckpt 2>&1)"
  fi
  mpirun -n 2 "$FACRNN_BIN" --quiet fit "$yaml" --set output.path=cut.h5
  "$PY" - "$run" <<'PY' && pass "resumed fit ($what) is bitwise identical" || fail "resume not bitwise identical"
import sys, h5py, numpy as np
run = sys.argv[1]
a, b = (h5py.File(p, "r")[f"runs/{run}"] for p in ("full.h5", "cut.h5"))
assert np.array_equal(a["params/flat"][()], b["params/flat"][()])
assert np.array_equal(a["history/loss"][()], b["history/loss"][()])
assert np.array_equal(a["latents"][()], b["latents"][()], equal_nan=True)
PY
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
