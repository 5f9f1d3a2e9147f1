#!/usr/bin/env bash
# ctest: PROCESSORS 2
# data.standardize (docs/model.md, "Scale of the data"):
#  - raw-unit Gaussian data (x * 300 + 2000) fit with the default (auto)
#    reach the held-out one-step R^2 of the same data z-scored by hand (within
#    0.02), and well above chance;
#  - the stored transform is each channel's mean and std over the TRAINING
#    trials only (numpy, 1e-12), the same at 1 and 2 ranks, and the fit is
#    rank-invariant (1e-9);
#  - eval and simulate apply it: the run on raw data equals the same
#    parameters without a transform on the data z-scored by the stored
#    transform (eval metrics 1e-10; rollouts, mapped back, 1e-9 relative), and
#    rollouts are reported in the data's units;
#  - Poisson counts stay counts under auto; the refusals: off with data that
#    saturate tanh, zscore with Poisson data (exact one-line messages, exit 2,
#    at 1 and 2 ranks).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WORK"
F="$FACRNN_BIN --quiet"
$F synth lorenz-thomas --out d.h5 --seed 1
$PY <<'PY'
import h5py
f = h5py.File("d.h5", "r")
x, off = f["data"][()], f["trial_offsets"][()]
for name, y in (("raw.h5", x * 300 + 2000), ("zs.h5", (x - x.mean(0)) / x.std(0))):
    with h5py.File(name, "w") as g:
        g["data"], g["trial_offsets"] = y, off
        g.attrs["observation"], g.attrs["bin_size_s"] = "gaussian", 0.1
PY
cat > c.yaml <<YAML
data: {path: raw.h5}
model: {rank: 6}
train: {epochs: 100, restarts: 2, log_every: 1000}
output: {path: raw1.h5}
YAML

# ---- raw units fit as well as z-scored data ----------------------------------
$F fit c.yaml
mpirun -n 2 $F fit c.yaml --set output.path=raw2.h5
$F fit c.yaml --set data.path=zs.h5 --set data.standardize=off --set output.path=zs.h5.out
$PY <<'PY' && pass "raw units (auto) fit as well as z-scored data; transform from training trials, rank-invariant" || fail "raw-unit fit"
import h5py, numpy as np
def run(p):
    f = h5py.File(p, "r"); return f["runs"][list(f["runs"])[0]]
r1, r2, z = run("raw1.h5"), run("raw2.h5"), run("zs.h5.out")
a, b = r1["metrics"].attrs["heldout_r2"], z["metrics"].attrs["heldout_r2"]
print(f"held-out one-step R2: raw units with auto {a:.4f}, z-scored by hand with off {b:.4f}")
assert abs(a - b) <= 0.02 and a > 0.5, (a, b)
s = r1["standardize"]
assert s.attrs["mode"] == "zscore" and z["standardize"].attrs["mode"] == "off"
d = h5py.File("raw.h5", "r"); x, off = d["data"][()], d["trial_offsets"][()]
split = r1["split"][()]
assert 0 < split.sum() < len(split)
rows = np.concatenate([np.arange(off[k], off[k + 1]) for k in range(len(split)) if split[k]])
m, sd = x[rows].mean(0), x[rows].std(0)
assert np.allclose(s["mean"][()], m, rtol=1e-12, atol=0) and np.allclose(s["std"][()], sd, rtol=1e-12, atol=0)
assert not np.allclose(s["mean"][()], x.mean(0), rtol=1e-9, atol=0)  # the held-out trials are not in it
assert np.allclose(r2["standardize/mean"][()], m, rtol=1e-12) and np.allclose(r2["standardize/std"][()], sd, rtol=1e-12)
p1, p2 = r1["params/flat"][()], r2["params/flat"][()]
rel = np.max(np.abs(p1 - p2) / np.maximum(np.abs(p1), 1e-3))
print("1 vs 2 ranks: max relative parameter difference", rel)
assert rel < 1e-9
import os, sys
sys.path.insert(0, os.path.join(os.environ["FACRNN_SRC"], "postprocess"))
import facrnn_results as fr
st = list(fr.load_results("raw1.h5")["runs"].values())[0]["standardize"]
assert st["mode"] == "zscore" and np.array_equal(st["std"], s["std"][()])
PY

# ---- eval and simulate apply the stored transform ------------------------------
# the same parameters without a transform, on the data z-scored by it
$PY <<'PY'
import h5py, shutil
shutil.copy("raw1.h5", "plain.h5")
f = h5py.File("plain.h5", "r+"); run = f["runs"][list(f["runs"])[0]]
m, s = run["standardize/mean"][()], run["standardize/std"][()]
run["standardize"].attrs["mode"] = "off"
del run["standardize/mean"], run["standardize/std"]
run["standardize/mean"], run["standardize/std"] = 0 * m, 0 * s + 1
d = h5py.File("raw.h5", "r")
with h5py.File("rawz.h5", "w") as g:
    g["data"], g["trial_offsets"] = (d["data"][()] - m) / s, d["trial_offsets"][()]
    g.attrs["observation"] = "gaussian"
PY
mpirun -n 2 $F eval raw1.h5 --data raw.h5 --out ev_raw.json > /dev/null
$F eval plain.h5 --data rawz.h5 --out ev_z.json > /dev/null
mpirun -n 2 $F simulate raw1.h5 --data raw.h5 --out sim_raw.h5
$F simulate plain.h5 --data rawz.h5 --out sim_z.h5
$PY <<'PY' && pass "eval and simulate apply the stored transform; rollouts in the data's units" || fail "eval/simulate transform"
import json, h5py, numpy as np
e = json.load(open("ev_raw.json"))
st = e["stored"]
for s in ("train", "heldout"):
    for k, v in e["sets"][s].items():
        if v is not None: assert abs(v - st[s][k]) <= 1e-10 * max(1, abs(v)), (s, k, v, st[s][k])
# the plain run sees other data (all trials as one set): its NLL per bin is the
# sample-weighted mean of the raw run's training and held-out NLL
z = json.load(open("ev_z.json"))["sets"]["all"]
tr, ho = e["sets"]["train"], e["sets"]["heldout"]
n = tr["n_samples"] + ho["n_samples"]
want = (tr["n_samples"] * tr["nll_per_bin"] + ho["n_samples"] * ho["nll_per_bin"]) / n
print("NLL per bin: plain run on z-scored data", z["nll_per_bin"], "raw run, weighted", want)
assert z["n_samples"] == n and abs(z["nll_per_bin"] - want) <= 1e-10 * abs(want)
f = h5py.File("raw1.h5", "r"); run = f["runs"][list(f["runs"])[0]]
m, s = run["standardize/mean"][()], run["standardize/std"][()]
a, b = h5py.File("sim_raw.h5", "r"), h5py.File("sim_z.h5", "r")
ya, yb = a["data"][()], b["data"][()] * s + m
rel = np.abs(ya - yb).max() / np.abs(ya).max()
print("rollouts, raw run vs plain run on z-scored data mapped back: max relative difference", rel)
assert rel < 1e-9
x = h5py.File("raw.h5", "r")["data"][()]
assert np.allclose(ya[0], x[0], rtol=1e-12)  # the context bin is the observed data, in its units
print("rollout mean", ya.mean(), "data mean", x.mean(), "rollout R2", a.attrs["rollout_r2"], b.attrs["rollout_r2"])
assert abs(ya.mean() - x.mean()) < x.std()
assert abs(a.attrs["rollout_r2"] - b.attrs["rollout_r2"]) < 1e-9
PY

# ---- Poisson counts stay counts ------------------------------------------------
$F synth lorenz-thomas --out p.h5 --set obs=poisson --set trials=8
$F fit c.yaml --set data.path=p.h5 --set output.path=p.out --set train.epochs=2 --set train.restarts=1
$PY -c "
import h5py; f=h5py.File('p.out','r'); s=f['runs'][list(f['runs'])[0]]['standardize']
assert s.attrs['mode'] == 'off' and (s['mean'][()] == 0).all() and (s['std'][()] == 1).all()" \
  && pass "Poisson under auto: no transform" || fail "Poisson under auto"

# ---- refusals --------------------------------------------------------------------
SAT="facrnn: error: raw.h5: data.standardize is off but 100% of the training entries of /data have |x| > 5, which saturates tanh: set data.standardize: auto (or rescale the data)"
for np in 1 2; do
  rc=0
  out=$(timeout 120 mpirun -n $np $F fit c.yaml --set data.standardize=off --set output.path=no.h5 2>&1) || rc=$?
  line=$(grep -c "facrnn: error" <<<"$out" || true)
  if [ $rc -eq 2 ] && grep -qxF -- "$SAT" <<<"$out" && [ "$line" -eq 1 ] && [ ! -e no.h5 ]; then
    pass "off with raw units refused at $np rank(s): $SAT"
  else fail "off with raw units at $np rank(s): exit $rc, output: $out"; fi
done
expect_fail 2 "facrnn: error: data.standardize: zscore is for Gaussian data; Poisson counts must stay counts (use auto or off)" -- \
  $F fit c.yaml --set data.path=p.h5 --set data.standardize=zscore --set output.path=no.h5
finish
