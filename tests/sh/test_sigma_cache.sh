#!/usr/bin/env bash
# ctest: PROCESSORS 2
# sigma(x) cache vs per-step rows (data.sigma_cache_mb): a fit that keeps no
# sigma(x) copy gives bitwise the same parameters, latents and metrics as one
# that caches it, at 1 and 2 ranks, through PCA initialisation, restarts,
# held-out evaluation and L = 2 lags.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WORK"
"$FACRNN_BIN" --quiet synth lorenz-thomas --out lt.h5 --seed 1
cat > fit.yaml <<YAML
data:
  path: lt.h5
model:
  rank: 6
  groups: [3, 3]
  lags: 2
  init: auto
train:
  beta: 20
  epochs: 6
  restarts: 2
  eval_every: 2
cv:
  folds: 5
output:
  path: out.h5
YAML
RUN=K6_g3+3_b20_s0_f0
for np in 1 2; do
  mpirun -n $np "$FACRNN_BIN" --quiet fit fit.yaml --set output.path=c$np.h5
  mpirun -n $np "$FACRNN_BIN" --quiet fit fit.yaml --set output.path=n$np.h5 --set data.sigma_cache_mb=0
  $PY - "$RUN" c$np.h5 n$np.h5 <<'PY' && pass "$np rank(s): per-step sigma rows bitwise equal to the cache" \
    || fail "$np rank(s): per-step sigma rows differ from the cache"
import sys, h5py, numpy as np
run, pa, pb = sys.argv[1:4]
a, b = (h5py.File(p, "r")[f"runs/{run}"] for p in (pa, pb))
assert np.array_equal(a["params/flat"][()], b["params/flat"][()]), "params"
assert np.array_equal(a["latents"][()], b["latents"][()], equal_nan=True), "latents"
for key, v in a["metrics"].attrs.items():
    if key in ("seconds", "steps_per_s"):  # wall-clock timings
        continue
    v, w = np.asarray(v), np.asarray(b["metrics"].attrs[key])
    same = np.array_equal(v, w, equal_nan=True) if v.dtype.kind in "fc" else np.array_equal(v, w)
    assert same, (key, v, w)
assert np.isfinite(a["metrics"].attrs["heldout_nll_per_bin"])
PY
done
finish
