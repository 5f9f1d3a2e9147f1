#!/usr/bin/env bash
# ctest: PROCESSORS 3 LABELS slow
# Training for generation (train.rollout_steps) end to end:
#  - rank invariance at 1/2/3 ranks within 1e-9 after 208 steps with the
#    rollout term on (Gaussian lorenz-thomas; Poisson facrnn data with inputs
#    and learned psi over 2 lags), teacher forcing annealed through the fit;
#  - a SIGUSR1 stop inside the annealing and a resume give bitwise the
#    parameters, loss history and latents of an uninterrupted fit;
#  - k = 1 is the option absent, bit for bit, whatever the weight; k > 1
#    changes the fit; the options are echoed in the stored config;
#  - bad values: one-line message naming the key, exit 2, results untouched.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WORK"
"$FACRNN_BIN" --quiet synth lorenz-thomas --out lt.h5 --seed 0
"$FACRNN_BIN" --quiet synth facrnn --out po.h5 --seed 2 --set obs=poisson --set inputs=2 --set trials=40
cat > fit.yaml <<YAML
data:
  path: lt.h5
model:
  rank: 6
  groups: [3, 3]
train:
  beta: 20
  epochs: 16
  restarts: 1
  checkpoint_every: 5
  rollout_steps: 5
  rollout_weight: 0.5
  rollout_anneal: 0.5
cv:
  folds: 5
output:
  path: out.h5
YAML
RUN=K6_g3+3_b20_s0_f0

same_ranks() { # FILE_PREFIX RUN: params, metrics and latents at 1/2/3 ranks within 1e-9
$PY - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
pre, run = sys.argv[1], sys.argv[2]
f = [h5py.File(f"{pre}{n}.h5", "r")[f"runs/{run}"] for n in (1, 2, 3)]
p = [g["params/flat"][()] for g in f]
for q in p[1:]:
    rel = np.max(np.abs(q - p[0]) / np.maximum(np.abs(p[0]), 1e-3))
    print("max relative parameter difference", rel)
    assert rel < 1e-9, rel
for key in ("heldout_nll_per_bin", "train_nll_per_bin"):
    v = [g["metrics"].attrs[key] for g in f]
    assert np.allclose(v, v[0], rtol=1e-9, atol=0), (key, v)
h = [g["history/loss"][()] for g in f]
assert np.allclose(h[1], h[0], rtol=1e-9, atol=0, equal_nan=True) and np.allclose(h[2], h[0], rtol=1e-9, atol=0, equal_nan=True)
PY
}

# ---- rank invariance ------------------------------------------------------------
for np in 1 2 3; do
  mpirun -n $np "$FACRNN_BIN" --quiet fit fit.yaml --set output.path=r$np.h5
done
same_ranks r $RUN && pass "gaussian, k = 5: 1/2/3 ranks agree within 1e-9 after 208 steps" \
  || fail "gaussian rank invariance with the rollout term"
for np in 1 2 3; do
  mpirun -n $np "$FACRNN_BIN" --quiet fit fit.yaml --set data.path=po.h5 --set output.path=p$np.h5 \
    --set model.rank=4 --set 'model.groups=[2,2]' --set model.lags=2 --set model.psi=learned \
    --set train.rollout_steps=4 --set train.rollout_anneal=0.3 --set train.epochs=20
done
PRUN=$($PY -c 'import h5py; print(list(h5py.File("p1.h5","r")["runs"])[0])')
same_ranks p "$PRUN" && pass "poisson with inputs and learned psi, k = 4: 1/2/3 ranks agree within 1e-9" \
  || fail "poisson rank invariance with the rollout term"

# ---- k = 1 is the option absent; k > 1 changes the fit; the echo -------------------
sed -e '/rollout_/d' fit.yaml > plain.yaml
mpirun -n 2 "$FACRNN_BIN" --quiet fit plain.yaml --set output.path=plain.h5
mpirun -n 2 "$FACRNN_BIN" --quiet fit fit.yaml --set output.path=k1.h5 --set train.rollout_steps=1 \
  --set train.rollout_weight=7
$PY - $RUN <<'PY' && pass "k = 1 (weight 7) is bitwise the fit without the option; k = 5 differs; options echoed" \
  || fail "k = 1 against the option absent"
import sys, h5py, numpy as np
run = sys.argv[1]
a, b, c = (h5py.File(p, "r") for p in ("plain.h5", "k1.h5", "r2.h5"))
for key in ("params/flat", "history/loss", "latents"):
    assert np.array_equal(a[f"runs/{run}/{key}"][()], b[f"runs/{run}/{key}"][()], equal_nan=True), key
pa, pc = a[f"runs/{run}/params/flat"][()], c[f"runs/{run}/params/flat"][()]
print("relative change of the parameters with k = 5:", np.max(np.abs(pc - pa)) / np.max(np.abs(pa)))
assert np.max(np.abs(pc - pa)) > 1e-3 * np.max(np.abs(pa))
cfg = c.attrs["config"]
cfg = cfg.decode() if isinstance(cfg, bytes) else cfg
for line in ("rollout_steps: 5", "rollout_weight: 0.5", "rollout_anneal: 0.5"):
    assert line in cfg, line
PY

# ---- stop inside the annealing and resume: bitwise ----------------------------------
sed -e 's/epochs: 16/epochs: 80/' -e 's/restarts: 1/restarts: 2/' -e 's/checkpoint_every: 5/checkpoint_every: 1000/' \
  -e 's/rollout_anneal: 0.5/rollout_anneal: 0.6/' fit.yaml > long.yaml
mpirun -n 2 "$FACRNN_BIN" --quiet fit long.yaml --set output.path=full.h5
stop_resume_bitwise long.yaml "$RUN" "inside the annealing"

# ---- bad values ----------------------------------------------------------------------
cp r1.h5 keep.h5
sum_before=$(md5sum keep.h5)
bad() { expect_fail 2 "$1" -- mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set output.path=keep.h5 "${@:2}"; }
bad "train.rollout_steps" --set train.rollout_steps=0
bad "train.rollout_steps" --set train.rollout_steps=2.5
bad "train.rollout_weight" --set train.rollout_weight=-1
bad "train.rollout_anneal" --set train.rollout_anneal=1.5
[ "$(md5sum keep.h5)" = "$sum_before" ] && pass "existing results untouched by the refused configs" \
  || fail "refused configs changed keep.h5"
finish
