#!/usr/bin/env bash
# ctest: PROCESSORS 3
# End-to-end tests of `facrnn simulate` and `facrnn eval`:
#  - mean-mode rollouts of the TRUE parameters reproduce noise-free
#    `facrnn synth facrnn` data to 1e-10 (default 2+2 groups; and L = 2 with
#    inputs and groups 2+1), at 1 and 3 ranks;
#  - perturbations: removing a group leaves the other block's channels
#    unchanged and pins the group's own channels at c; silenced channels are 0;
#  - sampled mode: deterministic in the seed at any rank count, differs across seeds;
#  - fit -> eval on the same data reproduces the stored metrics to 1e-12, at
#    2 ranks; eval of other data (a simulate output) evaluates all trials;
#  - usage and input errors: clear message, exit code 2.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WORK"
TOOL="$FACRNN_BUILD/tests/tool_truth_results"
F="$FACRNN_BIN --quiet"

# ---- (1) rollouts of the true model reproduce noise-free data ---------------
$F synth facrnn --out d0.h5 --set noise=0 --set enc_noise=0 --set trials=9 --set bins=60
$F synth facrnn --out d2.h5 --set noise=0 --set enc_noise=0 --set trials=7 --set bins=50 \
  --set lags=2 --set inputs=2 --set groups=[2,1] --set N=15 --seed 3
"$TOOL" d0.h5 t0.h5 0
"$TOOL" d2.h5 t2.h5 0
for np in 1 3; do
  mpirun -n $np $F simulate t0.h5 --data d0.h5 --out s0_np$np.h5
  mpirun -n $np $F simulate t2.h5 --data d2.h5 --out s2_np$np.h5
done
$PY <<'PY' && pass "mean rollouts of the true parameters reproduce noise-free data to 1e-10 (1 and 3 ranks)" || fail "truth rollouts"
import h5py, numpy as np
for d, s in (("d0.h5", "s0"), ("d2.h5", "s2")):
    x = h5py.File(d, "r")["data"][()]
    for np_ in (1, 3):
        f = h5py.File(f"{s}_np{np_}.h5", "r")
        err = np.abs(f["data"][()] - x).max()
        print(d, np_, "max |rollout - data| =", err, "rollout_r2 =", f.attrs["rollout_r2"])
        assert err < 1e-10, err
        assert abs(f.attrs["rollout_r2"] - 1) < 1e-12
        assert np.all(np.abs(f["simulation/trial_r2"][()] - 1) < 1e-12)
        assert (f["trial_offsets"][()] == h5py.File(d, "r")["trial_offsets"][()]).all()
        assert np.isnan(f.attrs["psth_r2"]) and f.attrs["observation"] == "gaussian"
    g = h5py.File(d, "r")
    if "inputs" in g:
        assert np.array_equal(h5py.File(f"{s}_np1.h5", "r")["inputs"][()], g["inputs"][()])
    a1, a3 = (h5py.File(f"{s}_np{n}.h5", "r")["data"][()] for n in (1, 3))
    assert np.array_equal(a1, a3)
PY

# ---- (3) perturbations -------------------------------------------------------
$F simulate t0.h5 --data d0.h5 --out rg0.h5 --remove-group 0
mpirun -n 2 $F simulate t0.h5 --data d0.h5 --out sil.h5 --silence 0,13
$PY <<'PY' && pass "remove-group: other block unchanged, own channels pinned at c; silenced channels are 0" || fail "perturbations"
import h5py, numpy as np
d = h5py.File("d0.h5", "r"); x = d["data"][()]; area = d["truth/channel_area"][()]; c = d["truth/c"][()]
off = d["trial_offsets"][()]
r = h5py.File("rg0.h5", "r")["data"][()]
ctx = np.zeros(len(x), bool); ctx[off[:-1]] = True    # L = 1 context bin per trial
other, own = area == 1, area == 0
e_other = np.abs(r[:, other] - x[:, other]).max()
e_own = np.abs(r[~ctx][:, own] - c[own]).max()
print("group 1 channels vs data:", e_other, " group 0 channels vs c:", e_own)
assert e_other < 1e-10 and e_own < 1e-12
assert np.abs(x[~ctx][:, own] - c[own]).max() > 0.1   # there were dynamics to remove
s = h5py.File("sil.h5", "r"); y = s["data"][()]
assert (y[:, [0, 13]] == 0).all()
assert np.abs(y[:, 1:13] - x[:, 1:13]).max() > 1e-3      # silencing changed the others
assert s.attrs["silence"] == "0,13"
PY

# ---- (4) sampled mode --------------------------------------------------------
$F simulate t0.h5 --data d0.h5 --out a1.h5 --mode sampled --seed 1
mpirun -n 3 $F simulate t0.h5 --data d0.h5 --out a1b.h5 --mode sampled --seed 1
$F simulate t0.h5 --data d0.h5 --out a2.h5 --mode sampled --seed 2
$PY <<'PY' && pass "sampled rollouts: same seed identical at 1 and 3 ranks, other seed differs" || fail "sampled mode"
import h5py, numpy as np
a, b, c = (h5py.File(f, "r")["data"][()] for f in ("a1.h5", "a1b.h5", "a2.h5"))
x = h5py.File("d0.h5", "r")["data"][()]
assert np.array_equal(a, b)
print("seed 1 vs 2 max diff", np.abs(a - c).max(), " seed 1 vs data", np.abs(a - x).max())
assert np.abs(a - c).max() > 1e-2 and np.abs(a - x).max() > 1e-2
PY

# ---- PSTHs with conditions, and Poisson output --------------------------------
cp d0.h5 dc.h5
$PY -c "import h5py, numpy as np; h5py.File('dc.h5', 'a')['trial_condition'] = np.arange(9, dtype=np.int32) % 3"
mpirun -n 2 $F simulate t0.h5 --data dc.h5 --out pc.h5
mpirun -n 2 $F simulate t0.h5 --data dc.h5 --out pc_rg.h5 --remove-group 1
$F synth facrnn --out dp.h5 --set obs=poisson --set trials=6 --set bins=40
"$TOOL" dp.h5 tp.h5
$F simulate tp.h5 --data dp.h5 --out pp_s.h5 --mode sampled --seed 4
$F simulate tp.h5 --data dp.h5 --out pp_m.h5
$PY <<'PY' && pass "PSTH R2 with conditions (1 for the truth, lower with a group removed); Poisson sampled counts / mean rates" || fail "PSTH / Poisson"
import h5py, numpy as np
a, b = h5py.File("pc.h5", "r"), h5py.File("pc_rg.h5", "r")
print("psth_r2 truth", a.attrs["psth_r2"], "group 1 removed", b.attrs["psth_r2"], "rollout_r2", b.attrs["rollout_r2"])
assert a.attrs["psth_conditions"] == 3 and abs(a.attrs["psth_r2"] - 1) < 1e-12
assert (a["trial_condition"][()] == np.arange(9) % 3).all()
assert b.attrs["psth_r2"] < 0.99 and b.attrs["rollout_r2"] < 0.99
s, m = h5py.File("pp_s.h5", "r"), h5py.File("pp_m.h5", "r")
xs, xm = s["data"][()], m["data"][()]
assert s.attrs["observation"] == "poisson" and (xs >= 0).all() and (xs == np.floor(xs)).all() and xs[1:].max() > 0
ctx = np.zeros(len(xm), bool); ctx[m["trial_offsets"][()][:-1]] = True   # context bins are observed counts
assert m.attrs["observation"] == "gaussian" and (xm[~ctx] > 0).all() and (xm[~ctx] != np.floor(xm[~ctx])).any()
PY
$F info --validate pp_s.h5 > /dev/null && pass "Poisson sampled output validates as counts" || fail "Poisson output validation"

# ---- (2) fit -> eval gives the stored metrics ------------------------------------
$F synth facrnn --out d1.h5 --set trials=16 --set bins=50 --set inputs=1 --seed 5
cat > fit.yaml <<YAML
data:
  path: d1.h5
model:
  rank: 4
  groups: [2, 2]
train:
  epochs: 5
cv:
  folds: 4
output:
  path: fit.h5
YAML
$F fit fit.yaml
mpirun -n 2 $F eval fit.h5 --data d1.h5 --out ev.json > ev.txt
$F eval fit.h5 --data d1.h5 --csv > ev.csv
$PY <<'PY' && pass "eval on the training data reproduces every stored metric to 1e-12 (2 ranks)" || fail "fit -> eval"
import json, h5py, numpy as np
j = json.load(open("ev.json"))
f = h5py.File("fit.h5", "r"); run = list(f["runs"])[0]; m = f[f"runs/{run}/metrics"].attrs
assert j["same_data"] and j["run"] == run and set(j["sets"]) == {"train", "heldout"}
n = 0
for s, vals in j["sets"].items():
    for k, v in vals.items():
        ref = m[f"{s}_{k}"]
        if v is None:
            assert np.isnan(ref), (s, k, ref); continue
        assert abs(v - ref) <= 1e-12 * max(abs(ref), 1.0), (s, k, v, ref); n += 1
assert abs(j["connectivity"]["connectivity_r_W"] - m["connectivity_r_W"]) <= 1e-12
assert np.allclose(j["connectivity"]["connectivity_r_groups"], m["connectivity_r_groups"], rtol=1e-12, atol=0)
assert abs(j["encoder_std"] - m["encoder_std"]) == 0
print(n, "metrics agree")
assert n >= 14
rows = [l.split(",") for l in open("ev.csv").read().splitlines()[1:]]
assert any(r[1] == "heldout" and r[2] == "r2" and abs(float(r[3]) - m["heldout_r2"]) < 1e-12 for r in rows)
PY
grep -q "heldout" ev.txt && pass "eval prints a table" || fail "eval table"

# eval on other data: a simulate output of the fitted run (input format, no truth)
$F simulate fit.h5 --data d1.h5 --out fs.h5
mpirun -n 3 $F eval fit.h5 --data fs.h5 --out ev2.json > /dev/null
$PY <<'PY' && pass "simulate output is a valid input file; eval of other data evaluates all trials" || fail "eval other data"
import json, h5py
j = json.load(open("ev2.json"))
assert not j["same_data"] and list(j["sets"]) == ["all"] and j["connectivity"] is None
a = j["sets"]["all"]
assert a["n_samples"] == 16 * 49 and a["group_latent_r2"] is None
# the data are the model's own mean rollouts: one-step prediction is exact
print("one-step R2 on its own rollouts:", a["r2"])
assert a["r2"] > 1 - 1e-9
PY

# ---- errors ------------------------------------------------------------------------
expect_fail 2 "missing --data" -- $F eval fit.h5
expect_fail 2 "missing --out" -- $F simulate fit.h5 --data d1.h5
expect_fail 2 "no run /runs/nope" -- $F eval fit.h5 --data d1.h5 --run nope
expect_fail 2 "channels but run" -- mpirun -n 2 $F eval fit.h5 --data d2.h5
expect_fail 2 "channel 20 is out of range" -- $F simulate t0.h5 --data d0.h5 --out z.h5 --silence 3,20
expect_fail 2 "--remove-group 2" -- mpirun -n 2 $F simulate t0.h5 --data d0.h5 --out z.h5 --remove-group 2
expect_fail 2 "--mode fast" -- $F simulate t0.h5 --data d0.h5 --out z.h5 --mode fast
expect_fail 2 "cannot open results file" -- $F eval nothere.h5 --data d1.h5
finish
