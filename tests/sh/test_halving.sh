#!/usr/bin/env bash
# ctest: PROCESSORS 3 LABELS slow
# Successive halving of restarts (train.restart_schedule: halving):
# - a restart's trajectory does not depend on being suspended between rounds:
#   the restart that reaches the last round ends with bitwise the objective
#   it has under the "all" schedule;
# - the rounds keep the better half by training objective;
# - a stop inside a racing round resumes bitwise;
# - 1, 2 and 3 ranks agree; one restart is the "all" schedule exactly.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WORK"
"$FACRNN_BIN" --quiet synth lorenz-thomas --out lt.h5 --seed 0
cat > fit.yaml <<YAML
data:
  path: lt.h5
model:
  rank: 6
  groups: [3, 3]
train:
  beta: 20
  epochs: 40
  restarts: 4
  restart_schedule: halving
  checkpoint_every: 1000
  log_every: 1
cv:
  folds: 5
output:
  path: half.h5
YAML
RUN=K6_g3+3_b20_s0_f0

mpirun -n 2 "$FACRNN_BIN" fit fit.yaml > half.log 2>&1 || { fail "halving fit"; tail -5 half.log; }
mpirun -n 2 "$FACRNN_BIN" --quiet fit fit.yaml --set train.restart_schedule=all --set output.path=all.h5
# R = 4, E = 40: rounds to epochs 10 (4 restarts), 20 (2), 40 (1).
grep -q "round 1 kept restart(s)" half.log && grep -q "round 2 kept restart(s)" half.log \
  && pass "two cuts logged" || fail "cut lines missing"
$PY - "$RUN" half.log <<'PY' && pass "the winner trained as under 'all'; cuts kept the better half" \
  || fail "halving schedule"
import re, sys, h5py, numpy as np
run, log = sys.argv[1], open(sys.argv[2]).read()
h = h5py.File("half.h5", "r")[f"runs/{run}/metrics"].attrs
a = h5py.File("all.h5", "r")[f"runs/{run}/metrics"].attrs
c = int(h["restart_chosen"])
oh, oa = h["objective_all"], a["objective_all"]
print("halving objectives", oh, "chosen", c, "| all", oa)
assert oh[c] == oa[c], (oh[c], oa[c])        # same trajectory to epoch 40, bitwise
assert h["objective"] == oa[c]
# round 1: objectives of all 4 at epoch 10; the two kept are the two lowest
r1 = {int(m[0]) - 1: float(m[1]) for m in re.findall(r"restart (\d)/4: training objective (\S+) at epoch 10 ", log)}
assert len(r1) == 4, r1
kept1 = [int(x) - 1 for x in re.search(r"round 1 kept restart\(s\) (\S+) of 4", log).group(1).split(",")]
assert sorted(kept1) == sorted(sorted(r1, key=lambda r: (r1[r], r))[:2]), (kept1, r1)
r2 = {int(m[0]) - 1: float(m[1]) for m in re.findall(r"restart (\d)/4: training objective (\S+) at epoch 20 ", log)}
assert sorted(r2) == sorted(kept1), (r2, kept1)
kept2 = [int(x) - 1 for x in re.search(r"round 2 kept restart\(s\) (\S+) of 2", log).group(1).split(",")]
assert kept2 == [c] and c == min(r2, key=lambda r: (r2[r], r)), (kept2, c, r2)
# 8 + 4 + ... epochs: the halving fit trained 4*10 + 2*10 + 1*20 = 80 epochs, not 160
steps = len(re.findall(r"restart \d/4 epoch ", log))
assert steps == 80, steps
PY

# ---- a stop inside round 2 resumes bitwise --------------------------------------
# E = 800 (rounds to 200, 400, 800): round 2 lasts 2 x 200 epochs, so the stop
# lands inside it however fast the machine is; compared with the same fit
# uninterrupted.
mpirun -n 2 "$FACRNN_BIN" --quiet fit fit.yaml --set train.epochs=800 --set output.path=long.h5
rc=0
mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set train.epochs=800 --set output.path=cut.h5 > cut.log 2>&1 &
pid=$!
for _ in $(seq 3000); do grep -q "round 1 kept" cut.log && grep -qE "restart [0-9]/4 epoch +2[5-9][0-9]/" cut.log && break
  sleep 0.05; done
kill -USR1 $pid
wait $pid || rc=$?
[ "$rc" -eq 75 ] && grep -q "round 1 kept" cut.log && ! grep -q "round 2 kept" cut.log \
  && pass "stopped inside round 2 (exit 75)" || fail "stop inside round 2: exit $rc"
mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set train.epochs=800 --set output.path=cut.h5 > resume.log 2>&1
grep -q "resuming from checkpoint" resume.log && pass "resumed from the checkpoint" || fail "did not resume"
$PY - "$RUN" <<'PY' && pass "resume inside a racing round is bitwise identical" || fail "resume not bitwise"
import sys, h5py, numpy as np
run = sys.argv[1]
a, b = (h5py.File(p, "r")[f"runs/{run}"] for p in ("long.h5", "cut.h5"))
assert np.array_equal(a["params/flat"][()], b["params/flat"][()])
assert np.array_equal(a["history/loss"][()], b["history/loss"][()])
assert np.array_equal(a["metrics"].attrs["objective_all"], b["metrics"].attrs["objective_all"])
assert a["metrics"].attrs["restart_chosen"] == b["metrics"].attrs["restart_chosen"]
PY

# ---- rank invariance; one restart is the "all" schedule --------------------------
for np in 1 3; do
  mpirun -n $np "$FACRNN_BIN" --quiet fit fit.yaml --set output.path=r$np.h5
done
mpirun -n 1 "$FACRNN_BIN" --quiet fit fit.yaml --set train.restarts=1 --set output.path=one_h.h5
mpirun -n 1 "$FACRNN_BIN" --quiet fit fit.yaml --set train.restarts=1 --set train.restart_schedule=all \
  --set output.path=one_a.h5
$PY - "$RUN" <<'PY' && pass "1/2/3 ranks agree within 1e-9; R = 1 halving is 'all' bitwise" || fail "ranks / R=1"
import sys, h5py, numpy as np
run = sys.argv[1]
g = {n: h5py.File(p, "r")[f"runs/{run}"] for n, p in ((1, "r1.h5"), (2, "half.h5"), (3, "r3.h5"))}
c = {n: int(x["metrics"].attrs["restart_chosen"]) for n, x in g.items()}
assert len(set(c.values())) == 1, c
p1 = g[1]["params/flat"][()]
for n in (2, 3):
    rel = np.max(np.abs(g[n]["params/flat"][()] - p1) / np.maximum(np.abs(p1), 1e-3))
    print(n, "ranks: max relative parameter difference", rel)
    assert rel < 1e-9, rel
a, b = (h5py.File(p, "r")[f"runs/{run}/params/flat"][()] for p in ("one_h.h5", "one_a.h5"))
assert np.array_equal(a, b)
PY
finish
