#!/usr/bin/env bash
# ctest: PROCESSORS 2
# Co-smoothing (data.heldout_channels): the encoder never reads the listed
# channels (scrambling them leaves every latent bitwise unchanged), the
# decoder predicts them, and co_bps / co_r2 equal an independent numpy
# computation of the NLB definition on the same predictions (1e-10).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WORK"
"$FACRNN_BIN" --quiet synth multiregion --out d.h5 --set 'groups=[2,2]' --set N=30 --set trials=30 --set bins=60
cat > fit.yaml <<YAML
data:
  path: d.h5
  heldout_channels: [3, 7, 11, 19, 25, 28]
model:
  rank: 4
  groups: [2, 2]
  link: exp
train:
  epochs: 30
  restarts: 1
output:
  path: fit.h5
YAML
mpirun -n 2 "$FACRNN_BIN" --quiet fit fit.yaml
mpirun -n 2 "$FACRNN_BIN" --quiet transform fit.h5 --data d.h5 --out lat.h5
$PY - <<'PY'
import h5py, numpy as np
with h5py.File("d.h5", "r") as f, h5py.File("scrambled.h5", "w") as g:
    for k in f: f.copy(k, g)
    for a, v in f.attrs.items(): g.attrs[a] = v
    x = g["data"][()]
    rng = np.random.default_rng(5)
    for j in (3, 7, 11, 19, 25, 28):
        x[:, j] = rng.poisson(7.0, size=len(x))
    g["data"][...] = x
PY
mpirun -n 2 "$FACRNN_BIN" --quiet transform fit.h5 --data scrambled.h5 --out lat_s.h5
$PY - <<'PY' && pass "held-out channels never reach the encoder; co_bps and co_r2 match numpy (1e-10)" \
  || fail "co-smoothing"
import h5py, numpy as np
a, b = h5py.File("lat.h5", "r")["latents"][()], h5py.File("lat_s.h5", "r")["latents"][()]
assert np.array_equal(a, b, equal_nan=True), "latents depend on held-out channels"
f = h5py.File("fit.h5", "r"); run = next(iter(f["runs"])); g = f["runs"][run]
m = g["metrics"].attrs
A, c = g["params/A"][()], g["params/c"][()]
x = h5py.File("d.h5", "r")["data"][()]
off = h5py.File("d.h5", "r")["trial_offsets"][()]
split = g["split"][()]
held = [3, 7, 11, 19, 25, 28]
for which, name in ((0, "heldout"), (1, "train")):
    rows = np.concatenate([np.arange(off[k] + 1, off[k + 1]) for k in range(len(off) - 1) if split[k] == which])
    lam = np.maximum(np.exp(a[rows] @ A.T + c), 1e-8)[:, held]
    y = x[rows][:, held]
    rbar = np.maximum(y.mean(0), 1e-8)
    nll_model = (lam - y * np.log(lam)).sum()
    nll_null = (rbar - y * np.log(rbar)).sum()
    co_bps = (nll_null - nll_model) / (y.sum() * np.log(2))
    r2 = np.mean([1 - ((y[:, j] - lam[:, j]) ** 2).sum() / ((y[:, j] - y[:, j].mean()) ** 2).sum() for j in range(len(held))])
    print(name, "co_bps", co_bps, m[f"{name}_co_bps"], "co_r2", r2, m[f"{name}_co_r2"])
    assert abs(co_bps - m[f"{name}_co_bps"]) <= 1e-10 * max(1, abs(co_bps)), (co_bps, m[f"{name}_co_bps"])
    assert abs(r2 - m[f"{name}_co_r2"]) <= 1e-10, (r2, m[f"{name}_co_r2"])
assert m["heldout_co_bps"] > 0, "the decoder should beat the mean rate on the held-out channels"
PY
# /heldout_channels in the input file: used when the config sets none (the
# same fit, bitwise, as the config's list), overridden by the config's list,
# checked like it; the log says which source applied
$PY - <<'PY'
import h5py, numpy as np
for name, held in (("dh.h5", [3, 7, 11, 19, 25, 28]), ("dh_bad.h5", [3, 30]), ("dh_twice.h5", [4, 4])):
    with h5py.File("d.h5", "r") as f, h5py.File(name, "w") as g:
        for k in f: f.copy(k, g)
        for a, v in f.attrs.items(): g.attrs[a] = v
        g["heldout_channels"] = np.array(held, dtype=np.int32)
PY
short=(--set train.epochs=3)
mpirun -n 2 "$FACRNN_BIN" fit fit.yaml "${short[@]}" --set output.path=cfg_list.h5 >log_cfg.txt 2>&1
mpirun -n 2 "$FACRNN_BIN" fit fit.yaml "${short[@]}" --set data.path=dh.h5 --set 'data.heldout_channels=[]' \
  --set output.path=file_list.h5 >log_file.txt 2>&1
mpirun -n 2 "$FACRNN_BIN" fit fit.yaml "${short[@]}" --set data.path=dh.h5 --set 'data.heldout_channels=[1, 2]' \
  --set output.path=over.h5 >log_over.txt 2>&1
grep -q "data.heldout_channels: \[3, 7, 11, 19, 25, 28\] from the input file's /heldout_channels" log_file.txt \
  && grep -q "data.heldout_channels: \[1, 2\] from the config (overrides the input file's /heldout_channels)" log_over.txt \
  && pass "the log says which source of data.heldout_channels applied" || { fail "heldout_channels source lines"; tail -3 log_file.txt log_over.txt; }
$PY - <<'PY' && pass "/heldout_channels from the input file fits exactly like the config's list; the config overrides it" \
  || fail "/heldout_channels from the input file"
import h5py, numpy as np
def run(p):
    f = h5py.File(p, "r"); return f["runs"][next(iter(f["runs"]))]
a, b, o = run("cfg_list.h5"), run("file_list.h5"), run("over.h5")
assert np.array_equal(a["params/flat"][()], b["params/flat"][()])
assert "heldout_channels: [3, 7, 11, 19, 25, 28]" in b.attrs["config"], "the stored config lacks the resolved list"
assert "heldout_channels: [1, 2]" in o.attrs["config"]
assert not np.array_equal(o["params/flat"][()], b["params/flat"][()]), "the override did not apply"
PY
# co_bps and co_r2 as sweep-table columns: /sweep/table, the CSV, the
# printed table and the Python reader carry each run's own metrics
cat > sw.yaml <<YAML
data:
  path: dh.h5
model:
  link: exp
train:
  epochs: 2
  restarts: 1
cv:
  folds: 2
sweep:
  ranks: [2]
  partitions: all
  betas: [1]
  seeds: [0]
output:
  path: sw.h5
YAML
mpirun -n 2 "$FACRNN_BIN" sweep sw.yaml >log_sw.txt 2>&1
grep -q "co_bps   co_r2" log_sw.txt && pass "the printed sweep table has co_bps and co_r2" \
  || { fail "printed sweep table lacks co_bps"; tail -8 log_sw.txt; }
PYTHONPATH="$FACRNN_SRC/postprocess" $PY - <<'PY' && pass "co_bps and co_r2 in /sweep/table, the CSV and the Python reader" \
  || fail "co-smoothing sweep columns"
import csv, math, h5py, numpy as np, facrnn_py
f = h5py.File("sw.h5", "r"); t = f["sweep/table"]
ids = [x.decode() if isinstance(x, bytes) else str(x) for x in t["run_id"][()]]
rows = {r["run_id"]: r for r in csv.DictReader(open("sw.h5.csv"))}
py = {r["run_id"]: r for r in facrnn_py.load("sw.h5").sweep_rows()}
assert len(ids) >= 2, ids
for i, rid in enumerate(ids):
    m = f["runs"][rid]["metrics"].attrs
    for col in ("heldout_co_bps", "heldout_co_r2"):
        v = m[col]
        assert np.isfinite(v) and t[col][i] == v, (rid, col, t[col][i], v)
        assert float(rows[rid][col]) == v and py[rid][col] == v, (rid, col)
PY
expect_fail 2 "/heldout_channels[1]: channel 30 is out of range (the data have 30 channels, 0-based)" -- \
  mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set data.path=dh_bad.h5 --set 'data.heldout_channels=[]' --set output.path=bad.h5
expect_fail 2 "/heldout_channels[1]: channel 4 is listed twice" -- \
  mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set data.path=dh_twice.h5 --set 'data.heldout_channels=[]' --set output.path=bad.h5
expect_fail 2 "channel 30 is out of range" -- mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set 'data.heldout_channels=[30]' \
  --set output.path=bad.h5
finish
