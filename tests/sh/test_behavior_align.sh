#!/usr/bin/env bash
# ctest: PROCESSORS 2
# The behaviour alignment metric (docs/model.md, "Metrics",
# behavior_align_r2): on a small fit of synthetic data with hand velocities
# driven by the true groups, the stored metrics, and `facrnn eval` at 1, 2 and
# 3 ranks, equal an independent numpy computation (cumulative latents and
# behaviour per trial, affine least squares per column and group, assignment)
# to 1e-10, for velocities and for positions (/behavior attribute
# kind = "position"); a bad kind is refused in one line.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WORK"
"$FACRNN_BIN" --quiet synth multiregion --out d.h5 --set 'groups=[2,2]' --set N=20 --set trials=24 --set bins=40
$PY - <<'PY'
import h5py, numpy as np
with h5py.File("d.h5", "a") as f:
    z, off = f["truth/latents"][()], f["trial_offsets"][()]
    rng = np.random.default_rng(3)
    # hand velocity: x driven by true group 2, y by true group 1, plus noise
    v = np.stack([1.5 * z[:, 2] - 0.5 * z[:, 3], 0.8 * z[:, 0] + z[:, 1]], axis=1)
    v += 0.3 * rng.standard_normal(v.shape)
    f["behavior"] = v
    # the same recording with hand positions: a running sum per trial from a
    # random start (same /data, so eval takes it as the training data)
    p = np.empty_like(v)
    for k in range(len(off) - 1):
        p[off[k]:off[k + 1]] = np.cumsum(v[off[k]:off[k + 1]], axis=0) + rng.normal(0, 5, 2)
    for name, b, kind in (("pos.h5", p, "position"), ("bad.h5", v, "acceleration")):
        with h5py.File(name, "w") as g:
            for key in f:
                if key != "behavior": f.copy(key, g)
            for a, val in f.attrs.items(): g.attrs[a] = val
            g["behavior"] = b
            g["behavior"].attrs["kind"] = kind
PY
cat > fit.yaml <<YAML
data:
  path: d.h5
model:
  rank: 4
  groups: [2, 2]
  lags: 2
train:
  epochs: 20
  restarts: 1
output:
  path: fit.h5
YAML
mpirun -n 2 "$FACRNN_BIN" --quiet fit fit.yaml
for np in 1 2 3; do
  mpirun -n $np "$FACRNN_BIN" --quiet eval fit.h5 --data d.h5 --out vel$np.json
  mpirun -n $np "$FACRNN_BIN" --quiet eval fit.h5 --data pos.h5 --out pos$np.json
done
$PY - <<'PY' && pass "behavior_align_r2 and behavior_align_all_r2: stored and eval at 1, 2, 3 ranks equal numpy (1e-10)" \
  || fail "behaviour alignment metric against numpy"
import json, h5py, numpy as np
from scipy.optimize import linear_sum_assignment
L, RIDGE, groups = 2, 1e-6, [2, 2]
f = h5py.File("fit.h5", "r")
run = f["runs"][list(f["runs"])[0]]
lat, split = run["latents"][()], run["split"][()].astype(bool)
stored = dict(run["metrics"].attrs)

def rows(beh, off, position):
    """Per trial, samples t >= L: running sums of the latents; running sums
    of the velocities or positions minus the first sample's."""
    C, Y, tr = [], [], []
    for k in range(len(off) - 1):
        a, e = off[k] + L, off[k + 1]
        C.append(np.cumsum(lat[a:e], axis=0))
        Y.append(beh[a:e] - beh[a] if position else np.cumsum(beh[a:e], axis=0))
        tr.append(np.full(e - a, split[k]))
    return np.concatenate(C), np.concatenate(Y), np.concatenate(tr)

def r2(Xt, yt, Xs, ys):
    """Affine least squares with the project's relative ridge, R^2 on (Xs, ys)."""
    mx, my = Xt.mean(0), yt.mean(0)
    S = (Xt - mx).T @ (Xt - mx) / len(Xt)
    S += RIDGE * np.trace(S) / S.shape[0] * np.eye(S.shape[0])
    w = np.linalg.solve(S, (Xt - mx).T @ (yt - my) / len(Xt))
    pred = (Xs - mx) @ w + my
    return 1 - np.sum((ys - pred) ** 2) / np.sum((ys - ys.mean()) ** 2)

def metric(C, Y, tr, te):
    P = Y.shape[1]
    bounds = np.cumsum([0] + groups)
    R = np.array([[r2(C[tr][:, bounds[g]:bounds[g + 1]], Y[tr, a], C[te][:, bounds[g]:bounds[g + 1]], Y[te, a])
                   for g in range(len(groups))] for a in range(P)])
    if P <= len(groups):
        r, c = linear_sum_assignment(R, maximize=True)
        grouped = R[r, c].sum() / P
    else:
        grouped = R.max(axis=1).mean()
    return grouped, np.mean([r2(C[tr], Y[tr, a], C[te], Y[te, a]) for a in range(P)]), R

worst = 0.0
for name, pre in (("d.h5", "vel"), ("pos.h5", "pos")):
    with h5py.File(name, "r") as d:
        beh, off = d["behavior"][()], d["trial_offsets"][()]
        position = d["behavior"].attrs.get("kind", "velocity") == "position"
    C, Y, tr = rows(beh, off, position)
    want = {"train": metric(C, Y, tr, tr), "heldout": metric(C, Y, tr, ~tr)}
    R = want["heldout"][2]
    print(pre, "held-out R^2 (column x group):", np.round(R, 3).tolist(),
          "grouped %.4f all %.4f" % want["heldout"][:2])
    if pre == "vel":
        # x is driven by the second true group, y by the first: the columns go to different groups
        assert R.argmax(axis=1).tolist() in ([1, 0], [0, 1]), R
        assert want["heldout"][0] > 0.5, want
        got_sets = [("stored", {s: {m: stored["%s_%s" % (s, m)] for m in ("behavior_align_r2", "behavior_align_all_r2")}
                                 for s in ("train", "heldout")})]
    else:
        got_sets = []
    for np_ in (1, 2, 3):
        got_sets.append(("eval -n %d" % np_, json.load(open("%s%d.json" % (pre, np_)))["sets"]))
    for who, got in got_sets:
        for s in ("train", "heldout"):
            for i, m in enumerate(("behavior_align_r2", "behavior_align_all_r2")):
                d = abs(got[s][m] - want[s][i])
                worst = max(worst, d)
                assert d < 1e-10, (pre, who, s, m, got[s][m], want[s][i])
print("worst difference from numpy %.1e" % worst)
PY

# a /behavior kind other than velocity or position: one line, exit 2, every rank
expect_fail 2 "/behavior: attribute kind = 'acceleration': expected velocity or position" -- \
  mpirun -n 2 "$FACRNN_BIN" --quiet eval fit.h5 --data bad.h5
# a singleton (no launcher lines): stderr is exactly the one error line
err=$("$FACRNN_BIN" --quiet info bad.h5 --validate 2>&1 >/dev/null || true)
if [ "$(grep -c . <<<"$err")" -eq 1 ] && grep -q "^facrnn: error: /behavior: attribute kind" <<<"$err"; then
  pass "the bad kind is one line: $err"
else
  fail "the bad kind is not one line: $err"
fi
finish
