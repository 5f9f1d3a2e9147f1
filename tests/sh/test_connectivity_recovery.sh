#!/usr/bin/env bash
# ctest: PROCESSORS 2 LABELS slow
# Recovery on `facrnn synth facrnn` data (default: 2 + 2 block-structured,
# exactly independent groups, N = 20, 40 trials x 100 bins) with the default
# training settings (groups [2, 2]):
#  * the training objective is within 0.05 nats per sample of a fit started
#    from the true parameters, and the held-out group latent R^2 is >= 0.9;
#  * W = A B correlates with /truth/A B at Pearson r >= 0.85, and so does
#    each matched group's W_g; `facrnn eval` reports the same figures.
# data.standardize: off: /truth/A, B, c, d act on the stored values, so W and
# the training objective are compared with the truth in the file's units
# (z-scored, the objective is in other units than the truth-started fit's).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WORK"
F="$FACRNN_BIN --quiet"
$F synth facrnn --out d.h5
cat > fit.yaml <<YAML
data:
  path: d.h5
  standardize: off
model:
  rank: 4
  groups: [2, 2]
output:
  path: fit.h5
YAML
mpirun -n 2 $F fit fit.yaml
mpirun -n 2 $F fit fit.yaml --set model.init=truth --set train.restarts=1 --set output.path=truth.h5
$F eval fit.h5 --data d.h5 --out ev.json > /dev/null
$PY <<'PY' && pass "default fit recovers W (r >= 0.85) and each W_g (r >= 0.85); eval agrees" || fail "connectivity recovery"
import json, h5py, numpy as np
f = h5py.File("fit.h5", "r"); run = list(f["runs"])[0]; m = f[f"runs/{run}/metrics"].attrs
rW, rg = m["connectivity_r_W"], m["connectivity_r_groups"]
print(f"r(W) = {rW:.4f}, matched r(W_g) = {np.round(rg, 4).tolist()}, held-out R2 = {m['heldout_r2']:.4f}, "
      f"held-out group latent R2 = {m['heldout_group_latent_r2']:.4f}")
assert rW >= 0.85 and min(rg) >= 0.85
t = h5py.File("truth.h5", "r"); tm = t[f"runs/{list(t['runs'])[0]}/metrics"].attrs
print(f"training objective: default {m['objective']:.4f}, from the truth {tm['objective']:.4f}")
assert m["objective"] <= tm["objective"] + 0.05
assert m["heldout_group_latent_r2"] >= 0.9
j = json.load(open("ev.json"))
assert abs(j["connectivity"]["connectivity_r_W"] - rW) <= 1e-12
PY
finish
