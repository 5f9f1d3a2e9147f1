#!/usr/bin/env bash
# ctest: PROCESSORS 2
# Nothing lost: a fit adds its run to a results file of the same data and
# keeps the other configurations' runs; it refuses (before training, file
# untouched) a file of other data, a sweep's file or a non-results file;
# every command creates a missing output folder; --restart starts afresh
# when a checkpoint belongs to another config; eval of each run in a
# multi-run file uses that run's own config.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WORK"
"$FACRNN_BIN" --quiet synth lorenz-thomas --out lt.h5 --set trials=20 --set bins=60
"$FACRNN_BIN" --quiet synth lorenz-thomas --out other.h5 --set trials=20 --set bins=60 --seed 5
cat > fit.yaml <<YAML
data:
  path: lt.h5
model:
  rank: 6
  groups: [3, 3]
train:
  epochs: 4
  restarts: 1
YAML
# the default output.path, twice, with different configurations
mpirun -n 2 "$FACRNN_BIN" --quiet fit fit.yaml
mpirun -n 2 "$FACRNN_BIN" --quiet fit fit.yaml --set model.groups=[6] --set model.lags=2
mpirun -n 2 "$FACRNN_BIN" --quiet fit fit.yaml --set model.groups=[6] --set model.lags=2   # the same again
# same run id (K, groups, beta, seed, fold), another configuration (lags 1): kept apart by a suffix
mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set model.groups=[6] > same_id.log 2>&1
$PY - <<'PY' && pass "three configurations in the default results file; a refit replaces only its own run" \
  || fail "runs lost"
import h5py
f = h5py.File("facrnn_results.h5", "r")
runs = sorted(f["runs"])
print(runs)
assert len(runs) == 3, runs
txt = lambda v: v.decode() if isinstance(v, bytes) else v
cfg = {r: txt(f["runs"][r].attrs["config"]) for r in runs}
assert sum("lags: 2" in c for c in cfg.values()) == 1, cfg
assert "K6_g6_b20_s0_f0" in runs and any(r.startswith("K6_g6_b20_s0_f0_") for r in runs), runs
PY
grep -q "of another configuration; this run is K6_g6_b20_s0_f0_" same_id.log && pass "the suffix is logged" \
  || fail "suffix not logged"
# eval of each run: its own config (lags 1 vs 2), the stored held-out NLL back
for run in $($PY -c 'import h5py; print(" ".join(h5py.File("facrnn_results.h5", "r")["runs"]))'); do
  mpirun -n 2 "$FACRNN_BIN" --quiet eval facrnn_results.h5 --data lt.h5 --run "$run" --out "ev_$run.json"
  $PY - "$run" <<'PY' && pass "eval --run $run reproduces its stored held-out NLL" || fail "eval of $run"
import sys, json, h5py
run = sys.argv[1]
stored = h5py.File("facrnn_results.h5", "r")[f"runs/{run}/metrics"].attrs["heldout_nll_per_bin"]
j = json.load(open(f"ev_{run}.json"))
got = j["sets"]["heldout"]["nll_per_bin"]
assert abs(got - stored) <= 1e-9 * max(1, abs(stored)), (got, stored)
PY
done
expect_fail 2 "choose one with --run" -- mpirun -n 2 "$FACRNN_BIN" eval facrnn_results.h5 --data lt.h5

# refusals, before training, the file untouched
sum0=$(md5sum facrnn_results.h5)
expect_fail 2 "holds runs of another data file" -- mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set data.path=other.h5
echo "not hdf5" > junk.h5
expect_fail 2 "is not a facrnn results file" -- mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set output.path=junk.h5
[ "$(cat junk.h5)" = "not hdf5" ] && pass "junk.h5 untouched" || fail "junk.h5 changed"
cat > sw.yaml <<YAML
data:
  path: lt.h5
train:
  epochs: 2
  restarts: 1
cv:
  folds: 2
sweep:
  ranks: [2]
  partitions: all
  betas: [1]
output:
  path: sw/deep/sweep.h5
YAML
mpirun -n 2 "$FACRNN_BIN" --quiet sweep sw.yaml
[ -f sw/deep/sweep.h5 ] && pass "sweep created its missing output folder" || fail "sweep output folder"
expect_fail 2 "is a sweep's results file" -- mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set output.path=sw/deep/sweep.h5
[ "$(md5sum facrnn_results.h5)" = "$sum0" ] && pass "results file unchanged by the refused fits" \
  || fail "results file changed"

# every command creates a missing output folder
mpirun -n 2 "$FACRNN_BIN" --quiet fit fit.yaml --set output.path=new/sub/fit.h5
[ -f new/sub/fit.h5 ] && pass "fit created new/sub/" || fail "fit output folder"
mpirun -n 2 "$FACRNN_BIN" --quiet eval new/sub/fit.h5 --data lt.h5 --out ev/dir/e.json
[ -f ev/dir/e.json ] && pass "eval created ev/dir/" || fail "eval output folder"
mpirun -n 2 "$FACRNN_BIN" --quiet simulate new/sub/fit.h5 --data lt.h5 --out sim/dir/s.h5
[ -f sim/dir/s.h5 ] && pass "simulate created sim/dir/" || fail "simulate output folder"
"$FACRNN_BIN" --quiet synth facrnn --out syn/dir/d.h5
[ -f syn/dir/d.h5 ] && pass "synth created syn/dir/" || fail "synth output folder"

# a checkpoint of another config: the message offers --restart, which starts afresh
rc=0
mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set output.path=ck.h5 --set train.epochs=400 --set train.log_every=1 \
  > ck.log 2>&1 &
pid=$!
for _ in $(seq 600); do grep -qE "epoch +3/" ck.log && break; sleep 0.1; done
kill -USR1 $pid; wait $pid || rc=$?
[ "$rc" -eq 75 ] || fail "stop: exit $rc"
expect_fail 2 "rerun with --restart" -- mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set output.path=ck.h5 \
  --set train.epochs=5
out=$(mpirun -n 2 "$FACRNN_BIN" fit fit.yaml --set output.path=ck.h5 --set train.epochs=5 --restart 2>&1)
grep -q "removed the checkpoint" <<<"$out" && [ -f ck.h5 ] && pass "--restart starts afresh" \
  || { fail "--restart"; echo "$out" | tail -3; }
finish
