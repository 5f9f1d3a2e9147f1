#!/usr/bin/env bash
# Connectivity acceptance: on `facrnn synth facrnn` data (default: 2 + 2
# block-structured groups, N = 20, 40 trials x 100 bins), a fit with the
# default settings (300 epochs, groups [2, 2]) recovers W = A B with Pearson
# r >= 0.85 against /truth/A B, and each matched group's W_g with r >= 0.85;
# `facrnn eval` reports the same figures. About 30 s on one core.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WORK"
F="$FACRNN_BIN --quiet"
$F synth facrnn --out d.h5
cat > fit.yaml <<YAML
data:
  path: d.h5
model:
  rank: 4
  groups: [2, 2]
output:
  path: fit.h5
YAML
$F fit fit.yaml
$F eval fit.h5 --data d.h5 --out ev.json > /dev/null
$PY <<'PY' && pass "default fit recovers W (r >= 0.85) and each W_g (r >= 0.85); eval agrees" || fail "connectivity recovery"
import json, h5py, numpy as np
f = h5py.File("fit.h5", "r"); run = list(f["runs"])[0]; m = f[f"runs/{run}/metrics"].attrs
rW, rg = m["connectivity_r_W"], m["connectivity_r_groups"]
print(f"r(W) = {rW:.4f}, matched r(W_g) = {np.round(rg, 4).tolist()}, held-out R2 = {m['heldout_r2']:.4f}, "
      f"held-out group latent R2 = {m['heldout_group_latent_r2']:.4f}")
assert rW >= 0.85 and min(rg) >= 0.85
j = json.load(open("ev.json"))
assert abs(j["connectivity"]["r_W"] - rW) <= 1e-12
PY
finish
