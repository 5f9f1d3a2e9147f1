#!/usr/bin/env bash
# ctest: PROCESSORS 2
# Missing values (/mask, docs/formats.md): a fit with a mask gives the same
# parameters at 1, 2 and 3 ranks (1e-9); the values at masked entries (NaN
# or anything else) change no parameter bit; the stored metrics are over the
# observed entries only (an independent numpy computation, 1e-10), and so are
# eval's and simulate's (rollout and PSTH R^2); a channel
# never observed is reported (WARN line, /runs/<id>/unobserved_channels);
# bad masks are refused with one line, exit 2 and no output file.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WORK"
"$FACRNN_BIN" --quiet synth facrnn --out d.h5 --set 'groups=[2,2]' --set N=12 --set trials=24 --set bins=40 --seed 3
$PY - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(11)
with h5py.File("d.h5", "r") as f:
    x = f["data"][()].astype(float) * 40.0 + 300.0   # raw units: z-scored with the observed moments
    attrs = dict(f.attrs); off = f["trial_offsets"][()]
mask = (rng.random(x.shape) > 0.15).astype(np.int8)
mask[:, 5] = 0                       # a channel never observed
mask[off[2]:off[3], :] = 0           # a trial with no observed entry
def write(name, fill, m=mask, data=None, mname="mask"):
    with h5py.File(name, "w") as g:
        y = x.copy() if data is None else data
        if fill is not None: y[m == 0] = fill
        g["data"] = y; g["trial_offsets"] = off
        g["trial_condition"] = np.arange(len(off) - 1) % 3
        if m is not None: g[mname] = m
        for a, v in attrs.items(): g.attrs[a] = v
write("m.h5", np.nan)                                        # NaN where missing
write("m_alt.h5", rng.normal(1e4, 50, size=(mask == 0).sum()))  # other values there
write("m_bool.h5", np.nan, m=mask.astype(bool))              # h5py's bool (an HDF5 enum)
write("bad_shape.h5", None, m=mask[:, :-1])
m2 = mask.copy(); m2[7, 3] = 2
write("bad_value.h5", None, m=m2)
y = x.copy(); y[9, 4] = np.nan; m3 = mask.copy(); m3[9, 4] = 1
write("bad_nan.h5", None, m=m3, data=y)
write("nan_nomask.h5", None, m=None, data=y)
write("bad_float.h5", None, m=mask.astype(float))
PY
cat > fit.yaml <<YAML
data:
  path: m.h5
model:
  rank: 4
  groups: [2, 2]
train:
  epochs: 8
  restarts: 1
cv:
  folds: 4
output:
  path: fit1.h5
YAML
"$FACRNN_BIN" --quiet fit fit.yaml 2>warn1.txt
mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set output.path=fit2.h5 >log2.txt 2>&1
mpirun -n 3 "$FACRNN_BIN" --quiet fit fit.yaml --set output.path=fit3.h5
mpirun -n 2 "$FACRNN_BIN" --quiet fit fit.yaml --set data.path=m_alt.h5 --set output.path=fit_alt.h5
"$FACRNN_BIN" --quiet fit fit.yaml --set data.path=m_bool.h5 --set output.path=fit_bool.h5
"$FACRNN_BIN" --quiet transform fit2.h5 --data m.h5 --out lat.h5
grep -q "WARN.*/mask: 1 channel(s) of m.h5 have no observed entry on the training trials: 5 " log2.txt \
  && pass "a channel never observed is reported in one WARN line" || { fail "no WARN line for channel 5"; cat log2.txt; }
$PY - <<'PY' && pass "rank invariance (1e-9), masked values never read (bitwise), metrics over observed entries (1e-10)" \
  || fail "fit with a mask"
import h5py, numpy as np
def run(p):
    f = h5py.File(p, "r"); return f["runs"][next(iter(f["runs"]))]
r1, r2, r3, ra, rb = (run(p) for p in ("fit1.h5", "fit2.h5", "fit3.h5", "fit_alt.h5", "fit_bool.h5"))
p2 = r2["params/flat"][()]
assert np.isfinite(p2).all()
for r in (r1, r3):
    d = np.max(np.abs(r["params/flat"][()] - p2)); assert d <= 1e-9, d
assert np.array_equal(ra["params/flat"][()], p2), "values at masked entries changed the fit"
assert np.max(np.abs(rb["params/flat"][()] - r1["params/flat"][()])) <= 1e-12, "bool mask differs from int8"
assert list(r2["unobserved_channels"][()]) == [5]
# the standardisation moments: over observed training entries
d = h5py.File("m.h5", "r"); x = d["data"][()]; mask = d["mask"][()].astype(bool); off = d["trial_offsets"][()]
split = r2["split"][()]
tr = np.concatenate([np.arange(off[k], off[k + 1]) for k in range(len(off) - 1) if split[k]])
mean, std = r2["standardize/mean"][()], r2["standardize/std"][()]
for j in range(x.shape[1]):
    o = mask[tr, j]
    if j == 5: assert mean[j] == 0 and std[j] == 1; continue
    v = x[tr, j][o]
    assert abs(mean[j] - v.mean()) <= 1e-9 * abs(v.mean()) and abs(std[j] - v.std()) <= 1e-9 * v.std(), j
# one-step metrics on the held-out trials, from the stored parameters and latents
lat = h5py.File("lat.h5", "r")["latents"][()]
A, c, s = r2["params/A"][()], r2["params/c"][()], r2["params/s"][()]
xm = (x - mean) / std
m = r2["metrics"].attrs
for which, name in ((0, "heldout"), (1, "train")):
    rows = np.concatenate([np.arange(off[k] + 1, off[k + 1]) for k in range(len(off) - 1) if split[k] == which])
    eta = lat[rows] @ A.T + c
    y, o = xm[rows], mask[rows]
    r = np.where(o, y - eta, 0.0)
    nll = (o * (0.5 * np.log(2 * np.pi) + s) + 0.5 * r * r * np.exp(-2 * s)).sum()
    nll_per_bin = nll / o.sum() * x.shape[1]
    r2s = []
    for j in range(x.shape[1]):
        oj = o[:, j]
        if not oj.any(): continue
        yj, ej = y[oj, j], eta[oj, j]
        sst = ((yj - yj.mean()) ** 2).sum()
        if sst > 1e-12 * max((yj ** 2).sum(), 1e-300): r2s.append(1 - ((yj - ej) ** 2).sum() / sst)
    print(name, nll_per_bin, m[f"{name}_nll_per_bin"], np.mean(r2s), m[f"{name}_r2"])
    assert abs(nll_per_bin - m[f"{name}_nll_per_bin"]) <= 1e-10 * abs(nll_per_bin)
    assert abs(np.mean(r2s) - m[f"{name}_r2"]) <= 1e-10
PY
# eval and simulate read the mask too: eval reproduces the stored metrics; the
# rollouts do not depend on the values at masked entries, and rollout_r2 is
# over observed entries (numpy)
"$FACRNN_BIN" --quiet eval fit2.h5 --data m.h5 --out e.json
"$FACRNN_BIN" --quiet simulate fit2.h5 --data m.h5 --out s.h5
mpirun -n 2 "$FACRNN_BIN" --quiet simulate fit2.h5 --data m_alt.h5 --out s_alt.h5
$PY - <<'PY' && pass "eval and simulate with a mask: stored metrics reproduced, rollouts independent of masked values, rollout_r2 over observed entries" \
  || fail "eval/simulate with a mask"
import json, h5py, numpy as np
e = json.load(open("e.json"))
for st in ("train", "heldout"):
    for k in ("nll_per_bin", "r2"):
        a, b = e["sets"][st][k], e["stored"][st][k]
        assert abs(a - b) <= 1e-12 * abs(b), (st, k, a, b)
s, sa = h5py.File("s.h5", "r"), h5py.File("s_alt.h5", "r")
assert np.array_equal(s["data"][()], sa["data"][()])
d = h5py.File("m.h5", "r"); x = d["data"][()]; o = d["mask"][()].astype(bool); off = d["trial_offsets"][()]
sim = s["data"][()]
r2s = []
for k in range(len(off) - 1):
    rows = np.arange(off[k] + 1, off[k + 1])
    per = []
    for j in range(x.shape[1]):
        oj = o[rows, j]
        if not oj.any(): continue
        y, p = x[rows, j][oj], sim[rows, j][oj]
        sst = ((y - y.mean()) ** 2).sum()
        if sst > 1e-12 * len(y) * max(y.mean() ** 2, 1e-300): per.append(1 - ((y - p) ** 2).sum() / sst)
    if per: r2s.append(np.mean(per))
print("rollout_r2", np.mean(r2s), s.attrs["rollout_r2"], len(r2s))
assert len(r2s) == len(off) - 2          # the fully masked trial has no score
assert abs(np.mean(r2s) - s.attrs["rollout_r2"]) <= 1e-10
# PSTH R^2: per (condition, bin) the average over the trials' observed entries
cond = d["trial_condition"][()]
px, ps, po = [], [], []
for c in range(3):
    ks = [k for k in range(len(off) - 1) if cond[k] == c]
    for t in range(1, off[1] - off[0]):
        rows = np.array([off[k] + t for k in ks]); ob = o[rows]; n = ob.sum(0)
        px.append(np.where(ob, x[rows], 0).sum(0) / np.maximum(n, 1))
        ps.append(np.where(ob, sim[rows], 0).sum(0) / np.maximum(n, 1))
        po.append(n > 0)
px, ps, po = np.array(px), np.array(ps), np.array(po)
per = []
for j in range(x.shape[1]):
    if not po[:, j].any(): continue
    y, p = px[po[:, j], j], ps[po[:, j], j]
    sst = ((y - y.mean()) ** 2).sum()
    if sst > 1e-12 * len(y) * max(y.mean() ** 2, 1e-300): per.append(1 - ((y - p) ** 2).sum() / sst)
print("psth_r2", np.mean(per), s.attrs["psth_r2"])
assert abs(np.mean(per) - s.attrs["psth_r2"]) <= 1e-10
PY
# Poisson with held-out channels: bits_per_spike and co_bps over observed entries
"$FACRNN_BIN" --quiet synth multiregion --out p.h5 --set 'groups=[2,2]' --set N=20 --set trials=20 --set bins=50
$PY - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(12)
with h5py.File("p.h5", "a") as f:
    m = (rng.random(f["data"].shape) > 0.2).astype(np.uint8)
    m[:, 9] = 0                                    # a held-out channel never observed
    f["mask"] = m
PY
mpirun -n 2 "$FACRNN_BIN" --quiet fit fit.yaml --set data.path=p.h5 --set output.path=pfit.h5 --set model.link=exp \
  --set 'data.heldout_channels=[2,9,13,17]' 2>/dev/null
"$FACRNN_BIN" --quiet transform pfit.h5 --data p.h5 --out plat.h5
$PY - <<'PY' && pass "Poisson bits_per_spike and co_bps over observed entries match numpy (1e-10)" || fail "Poisson metrics with a mask"
import h5py, numpy as np
from scipy.special import gammaln
f = h5py.File("pfit.h5", "r"); g = f["runs"][next(iter(f["runs"]))]; m = g["metrics"].attrs
d = h5py.File("p.h5", "r"); x = d["data"][()].astype(float); o = d["mask"][()].astype(bool); off = d["trial_offsets"][()]
lat = h5py.File("plat.h5", "r")["latents"][()]
A, c, split = g["params/A"][()], g["params/c"][()], g["split"][()]
held = [2, 9, 13, 17]
def rows_of(which):
    return np.concatenate([np.arange(off[k] + 1, off[k + 1]) for k in range(len(off) - 1) if split[k] == which])
tr = rows_of(1)
base = np.maximum(np.where(o[tr], x[tr], 0).sum(0) / np.maximum(o[tr].sum(0), 1), 1e-8)
for which, name in ((0, "heldout"), (1, "train")):
    rows = rows_of(which)
    lam = np.maximum(np.exp(lat[rows] @ A.T + c), 1e-8); y, ob = x[rows], o[rows]
    nll = np.where(ob, lam - y * np.log(lam) + gammaln(y + 1), 0).sum()
    nll0 = np.where(ob, base - y * np.log(base) + gammaln(y + 1), 0).sum()
    spikes = np.where(ob, y, 0).sum()
    bps = (nll0 - nll) / (spikes * np.log(2))
    cm = cn = cs = 0.0
    for j in held:
        oj = ob[:, j]
        if not oj.any(): continue
        yj, lj = y[oj, j], lam[oj, j]; rbar = max(yj.mean(), 1e-8)
        cm += (lj - yj * np.log(lj)).sum(); cn += (rbar - yj * np.log(rbar)).sum(); cs += yj.sum()
    co = (cn - cm) / (cs * np.log(2))
    print(name, bps, m[f"{name}_bits_per_spike"], co, m[f"{name}_co_bps"])
    assert abs(bps - m[f"{name}_bits_per_spike"]) <= 1e-10 * max(1, abs(bps))
    assert abs(co - m[f"{name}_co_bps"]) <= 1e-10 * max(1, abs(co))
PY
for f in bad_shape bad_value bad_nan nan_nomask bad_float; do rm -f "out_$f.h5"; done
expect_fail 2 "/mask: shape [960, 11] does not match /data [960, 12] (1 = observed, 0 = missing)" -- \
  mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set data.path=bad_shape.h5 --set output.path=out_bad_shape.h5
expect_fail 2 "/mask: value 2 at row 7 (trial 0), column 3: expected 0 (missing) or 1 (observed)" -- \
  mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set data.path=bad_value.h5 --set output.path=out_bad_value.h5
expect_fail 2 "/data: NaN at row 9 (trial 0), column 4 where /mask is 1 (observed)" -- \
  mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set data.path=bad_nan.h5 --set output.path=out_bad_nan.h5
expect_fail 2 "/data: NaN at row 9 (trial 0), column 4 (mark missing entries with a /mask: docs/formats.md)" -- \
  mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set data.path=nan_nomask.h5 --set output.path=out_nan_nomask.h5
expect_fail 2 "/mask: expected an integer or boolean type (1 = observed, 0 = missing)" -- \
  mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set data.path=bad_float.h5 --set output.path=out_bad_float.h5
# the multi-step rollout term does not handle missing entries yet: refused, not ignored
rm -f out_ms.h5
expect_fail 2 "train.rollout_steps: 3 with an input /mask: the rollout term does not leave missing entries out yet; use train.rollout_steps: 1 with masked data" -- \
  mpirun -n 3 "$FACRNN_BIN" fit fit.yaml --set data.path=m.h5 --set train.rollout_steps=3 --set output.path=out_ms.h5
[ -e out_ms.h5 ] && fail "an output file for the refused rollout fit"
n=0; for f in bad_shape bad_value bad_nan nan_nomask bad_float; do [ -e "out_$f.h5" ] && n=$((n + 1)); done
[ "$n" -eq 0 ] && pass "no output file for a bad mask" || fail "$n output file(s) written for bad masks"
# info --validate counts the missing entries (summed over the ranks' shards)
want=$($PY -c "import h5py; print(int((h5py.File('m.h5', 'r')['mask'][()] == 0).sum()))")
mpirun -n 3 "$FACRNN_BIN" --quiet info m.h5 --validate | grep -q "; /mask: $want of 11520 entries missing" \
  && pass "info --validate reports the missing entries" || fail "info --validate: no count of missing entries ($want)"
n=0
for f in bad_shape bad_value bad_nan nan_nomask bad_float; do
  rc=0; "$FACRNN_BIN" --quiet info "$f.h5" --validate >/dev/null 2>err.txt || rc=$?
  { [ "$rc" -eq 2 ] && [ "$(wc -l <err.txt)" -eq 1 ]; } || { n=$((n + 1)); echo "$f: exit $rc"; cat err.txt; }
done
[ "$n" -eq 0 ] && pass "each bad mask is one line on stderr (info --validate, exit 2)" || fail "$n bad mask(s) not one line"
finish
