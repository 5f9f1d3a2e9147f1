#!/usr/bin/env bash
# ctest: PROCESSORS 3
# facrnn transform: latents of a fitted run for a data file. On the training
# data they are the latents fit stored (1e-12), at 1, 2 and 3 ranks; on new
# data every trial gets its rows with the file's offsets; bad input gets one line.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WORK"
"$FACRNN_BIN" --quiet synth lorenz-thomas --out lt.h5 --set trials=15 --set bins=50
"$FACRNN_BIN" --quiet synth lorenz-thomas --out new.h5 --set trials=7 --set bins=40 --seed 9
cat > fit.yaml <<YAML
data:
  path: lt.h5
model:
  rank: 6
  groups: [3, 3]
  lags: 2
train:
  epochs: 5
  restarts: 1
output:
  path: fit.h5
YAML
mpirun -n 2 "$FACRNN_BIN" --quiet fit fit.yaml
for np in 1 2 3; do
  mpirun -n $np "$FACRNN_BIN" --quiet transform fit.h5 --data lt.h5 --out out/t$np.h5
done
mpirun -n 2 "$FACRNN_BIN" --quiet transform fit.h5 --data new.h5 --out new_lat.h5
$PY - <<'PY' && pass "transform reproduces the stored latents (1e-12) at 1/2/3 ranks; new data laid out by trial" \
  || fail "transform"
import h5py, numpy as np
f = h5py.File("fit.h5", "r")
run = next(iter(f["runs"]))
stored = f[f"runs/{run}/latents"][()]
for n in (1, 2, 3):
    t = h5py.File(f"out/t{n}.h5", "r")
    lat = t["latents"][()]
    assert lat.shape == stored.shape, (lat.shape, stored.shape)
    ok = np.isfinite(stored)
    assert (np.isfinite(lat) == ok).all()
    assert np.max(np.abs(lat[ok] - stored[ok])) <= 1e-12, np.max(np.abs(lat[ok] - stored[ok]))
    assert list(t["group_sizes"][()]) == [3, 3] and list(t["latent_group"][()]) == [0, 0, 0, 1, 1, 1]
    assert t.attrs["source_run"] == run and t.attrs["same_data"] == 1
n = h5py.File("new_lat.h5", "r")
off = n["trial_offsets"][()]
src = h5py.File("new.h5", "r")
assert np.array_equal(off, src["trial_offsets"][()])
lat = n["latents"][()]
assert lat.shape == (off[-1], 6)
for k in range(len(off) - 1):
    assert np.isnan(lat[off[k]:off[k] + 2]).all() and np.isfinite(lat[off[k] + 2:off[k + 1]]).all()
assert n.attrs["same_data"] == 0
PY
expect_fail 2 "missing --out" -- "$FACRNN_BIN" transform fit.h5 --data new.h5
expect_fail 2 "no run /runs/nope" -- mpirun -n 2 "$FACRNN_BIN" transform fit.h5 --data new.h5 --out x.h5 --run nope
"$FACRNN_BIN" --quiet synth lorenz-thomas --out wide.h5 --set N=12 --set trials=6 --set bins=30
expect_fail 2 "has 12 channels but run" -- mpirun -n 2 "$FACRNN_BIN" transform fit.h5 --data wide.h5 --out x.h5
[ ! -e x.h5 ] && pass "no output from a failed transform" || fail "failed transform wrote x.h5"
finish
