#!/usr/bin/env bash
# ctest: PROCESSORS 3
# End-to-end tests of `facrnn fit`: rank invariance (1/2/3 ranks, > 200
# steps, 1e-9 relative), kill-and-resume bitwise equality, the bad-config
# cases (clear message, non-zero exit, no hang, existing results untouched)
# and a non-finite loss keeping the last good checkpoint.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WORK"
"$FACRNN_BIN" --quiet synth lorenz-thomas --out lt.h5 --seed 0
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
cv:
  folds: 5
output:
  path: out.h5
YAML
RUN=K6_g3+3_b20_s0_f0

# ---- rank invariance: 16 epochs x 13 steps = 208 steps ----------------------
for np in 1 2 3; do
  mpirun -n $np "$FACRNN_BIN" --quiet fit fit.yaml --set output.path=r$np.h5
done
$PY - "$RUN" <<'PY' && pass "1/2/3 ranks agree within 1e-9 after 208 steps" || fail "rank invariance"
import sys, h5py, numpy as np
run = sys.argv[1]
f = [h5py.File(f"r{n}.h5", "r")[f"runs/{run}"] for n in (1, 2, 3)]
p = [g["params/flat"][()] for g in f]
for q in p[1:]:
    rel = np.max(np.abs(q - p[0]) / np.maximum(np.abs(p[0]), 1e-3))
    print("max relative parameter difference", rel)
    assert rel < 1e-9, rel
for key in ("heldout_nll_per_bin", "heldout_r2", "train_nll_per_bin"):
    v = [g["metrics"].attrs[key] for g in f]
    assert np.allclose(v, v[0], rtol=1e-9, atol=0), (key, v)
lat = [g["latents"][()] for g in f]
assert np.allclose(lat[1], lat[0], rtol=1e-8, atol=1e-10, equal_nan=True)
assert np.isnan(lat[0][0]).all() and np.isfinite(lat[0][1]).all()  # context bin is NaN
PY

# ---- kill and resume: bitwise equal to an uninterrupted run ---------------------
cat > long.yaml <<YAML
data:
  path: lt.h5
model:
  rank: 6
  groups: [3, 3]
train:
  beta: 20
  epochs: 150
  restarts: 2
  checkpoint_every: 1000
cv:
  folds: 5
output:
  path: full.h5
YAML
mpirun -n 2 "$FACRNN_BIN" --quiet fit long.yaml
# Signal in the first of two restarts: the resumed run must finish that
# restart and then start the second afresh.
stop_resume_bitwise long.yaml "$RUN" "in restart 1 of 2"
# SIGTERM delivered to the ranks directly (as Slurm does) works the same way.
rm -rf term.h5*
rc=0
mpirun -n 2 "$FACRNN_BIN" fit long.yaml --set output.path=term.h5 --set train.log_every=1 > term.log 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q "restart 1/2 epoch   *5/" term.log && break; sleep 0.1; done
pkill -TERM -f "facrnn fit long.yaml --set output.path=term.h5" --parent $pid || true
wait $pid || rc=$?
[ -f term.h5.ckpt/$RUN.ckpt.h5 ] && pass "SIGTERM to the ranks leaves a checkpoint (mpirun exit $rc)" \
  || fail "SIGTERM left no checkpoint"

# ---- bad configs: message, exit 2, no hang, results untouched ----------------------
cp r1.h5 keep.h5
sum_before=$(md5sum keep.h5)
bad() { expect_fail 2 "$1" -- mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set output.path=keep.h5 "${@:2}"; }
bad "train.lrr" --set train.lrr=0.1
bad "train.lr" --set train.lr=abc
bad "model.groups" --set model.groups=[3,2]
bad "nope.h5" --set data.path=nope.h5
: > afile   # a folder that cannot be made: a file is in the way
expect_fail 2 "cannot create directory" -- mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set output.path=afile/dir/x.h5
# a checkpoint from another config (different beta, same run id via explicit path) is refused
mkdir -p mism.ckpt
cp r1.h5.ckpt/$RUN.ckpt.h5 mism.ckpt/$RUN.ckpt.h5
expect_fail 2 "different config" -- mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set output.path=mism.h5 \
  --set output.checkpoint_dir=mism.ckpt --set train.lr=0.002
[ "$(md5sum keep.h5)" = "$sum_before" ] && pass "existing results file unchanged" || fail "results file changed"

# ---- a diverging run stops with a clear error and writes no results ---------------
"$FACRNN_BIN" --quiet synth facrnn --out pois.h5 --seed 1 --set obs=poisson
cat > nan.yaml <<YAML
data:
  path: pois.h5
model:
  rank: 4
  groups: [2, 2]
  link: exp
  init: uniform
train:
  lr: 10
  epochs: 50
output:
  path: nan.h5
YAML
rc=0
out="$(timeout 120 mpirun -n 2 "$FACRNN_BIN" fit nan.yaml 2>&1)" || rc=$?
if [ "$rc" -eq 1 ] && grep -q "loss is" <<<"$out"; then pass "divergence stops with exit 1"; else
  fail "divergence: exit $rc"; echo "$out" | tail -3; fi
[ ! -e nan.h5 ] && pass "no results file from a failed run" || fail "failed run wrote results"
finish
