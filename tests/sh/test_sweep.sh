#!/bin/bash
# ctest: PROCESSORS 3
# End-to-end sweep: the same /sweep/table and /sweep/selection at 1 and 3
# ranks (one rank per fit), after SIGKILL mid-way plus a restart, and from
# two --slice jobs plus --collect. Only the wall-clock `seconds` column may differ.
set -euo pipefail
: "${FACRNN_BIN:?}"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
trap 'echo "test_sweep: failed at line $LINENO" >&2' ERR
cd "$W"
"$FACRNN_BIN" --quiet synth lorenz-thomas --out d.h5 --set trials=12 --set bins=40 --set N=10
cat > s.yaml <<'YAML'
data:
  path: d.h5
model:
  init: uniform
train:
  epochs: 6
  restarts: 1
  batch_size: 32
  eval_every: 2
  checkpoint_every: 1
  log_every: 100
cv:
  folds: 2
sweep:
  ranks: [2, 3]
  partitions: all
  betas: [1]
  seeds: [0, 1]
output:
  path: a.h5
YAML

# Everything but the wall-clock column, from the HDF5 file and the CSV.
summary() {
    local f=$1
    for col in run_id K groups beta seed fold status heldout_nll_per_bin heldout_pc heldout_r2 \
               heldout_co_bps heldout_co_r2 heldout_behavior_align_r2 heldout_behavior_align_all_r2 heldout_pc_partition heldout_pc_null_mean heldout_pc_null_sd independence coupling predictability objective \
               epochs_done; do
        h5dump -d "/sweep/table/$col" "$f" | tail -n +2
    done
    h5dump -g /sweep/selection "$f" | tail -n +2
    cut -d, -f1-21 "$f.csv"   # every column but seconds
}

"$FACRNN_BIN" --quiet sweep s.yaml
mpirun -n 3 "$FACRNN_BIN" --quiet sweep s.yaml --set output.path=b.h5
summary a.h5 > a.txt
# no held-out channels, no /behavior: the co-smoothing and alignment columns are NaN
/usr/bin/python3 -c "import h5py, numpy as np; t = h5py.File('a.h5', 'r')['sweep/table']; \
assert all(np.isnan(t[c][()]).all() for c in ('heldout_co_bps', 'heldout_co_r2', 'heldout_behavior_align_r2', 'heldout_behavior_align_all_r2'))"
summary b.h5 > b.txt
diff a.txt b.txt
grep -q 'selected_K' a.txt
# `facrnn info` puts the answer in its first lines: K, partition, beta, confidence, why
"$FACRNN_BIN" info a.h5 | head -n 10 > info_head.txt
grep -q '^answer: K = [0-9]*, partition [0-9+]*, beta 1$' info_head.txt
grep -q '^confidence: K=[0-9]* [0-9+]* chosen by' info_head.txt
grep -q '^why: K = ' info_head.txt
"$FACRNN_BIN" info a.h5 --full | grep -q '/sweep/table/run_id'
# the selection's confidence is recorded (and is part of the 1 vs 3 ranks comparison above)
grep -q 'chosen by [0-9]* of 4 fold x seed fits alone and in [0-9]* of 200 resamples of the 2 folds' a.txt
[ "$(grep -c ',done,' a.h5.csv)" = 20 ]

# SIGKILL mid-way, then restart: same table and selection.
"$FACRNN_BIN" --quiet sweep s.yaml --set output.path=c.h5 &
pid=$!
for _ in $(seq 1 600); do
    n=$(grep -c $'\tdone\t' c.h5.manifest 2>/dev/null || true)
    [ "${n:-0}" -ge 5 ] && break
    sleep 0.05
done
kill -KILL "$pid"
wait "$pid" || true
[ ! -e c.h5 ] # killed before the assembly
n=$(grep -c $'\tdone\t' c.h5.manifest)
[ "$n" -ge 5 ] && [ "$n" -lt 20 ]
"$FACRNN_BIN" sweep s.yaml --set output.path=c.h5 > c.log 2>&1
grep -q "$n already done" c.log
# one phase line per run this job fitted
[ "$(grep -c 'phases: startup [0-9.]* s ([0-9]*%), init .*, training .*, evaluation .*, output ' c.log)" = $((20 - n)) ]
summary c.h5 > c.txt
diff a.txt c.txt

# Two slices then --collect.
"$FACRNN_BIN" --quiet sweep s.yaml --set output.path=d_.h5 --slice 0/2
[ ! -e d_.h5 ]
# one slice of two: --collect refuses and names the missing runs (no file, no temp file);
# --partial selects from the finished ones and says so
set +e
"$FACRNN_BIN" --quiet sweep s.yaml --set output.path=d_.h5 --collect 2> p.err
rc=$?
set -e
[ "$rc" = 2 ] && grep -q 'sweep --collect: 10 of 20 runs are missing (K' p.err && grep -q -- '--partial' p.err
[ "$(wc -l < p.err)" = 1 ] && [ ! -e d_.h5 ] && [ ! -e d_.h5.tmp ]
"$FACRNN_BIN" sweep s.yaml --set output.path=p_.h5 --collect 2> p0.err && exit 1
grep -q 'none of the 20 runs has finished' p0.err && [ ! -e p_.h5.tmp ] && [ "$(grep -c HDF5 p0.err)" = 0 ]
cp -r d_.h5.runs pp.h5.runs && cp d_.h5.manifest.slice0of2 pp.h5.manifest.slice0of2
"$FACRNN_BIN" sweep s.yaml --set output.path=pp.h5 --collect --partial > pp.log 2>&1
grep -q 'selecting from 10 of 20 runs' pp.log && [ -f pp.h5 ]
# --dry-run: the runs, the estimate and the core-hours, and nothing fitted
"$FACRNN_BIN" sweep s.yaml --set output.path=dr.h5 --dry-run > dr.out
grep -q '^sweep --dry-run: 20 runs' dr.out && grep -q 'total [0-9.e-]* core-hours' dr.out
[ ! -e dr.h5 ] && [ ! -e dr.h5.runs ] && [ ! -e dr.h5.manifest ]
mpirun -n 2 "$FACRNN_BIN" --quiet sweep s.yaml --set output.path=d_.h5 --slice 1/2
"$FACRNN_BIN" --quiet sweep s.yaml --set output.path=d_.h5 --collect
summary d_.h5 > d.txt
diff a.txt d.txt

# Teams of two ranks per fit: the same numbers up to floating-point
# summation order (the coupling moments are summed over the team).
mpirun -n 2 "$FACRNN_BIN" --quiet sweep s.yaml --set output.path=t.h5 --set sweep.ranks_per_fit=2
/usr/bin/python3 - a.h5 t.h5 <<'PY'
import sys, h5py, numpy as np
a, e = (h5py.File(p, "r")["sweep/table"] for p in sys.argv[1:3])
for col in ("heldout_nll_per_bin", "coupling", "objective"):
    x, y = a[col][:], e[col][:]
    assert np.all(np.isfinite(x[a["K"][:] > 0])), col
    assert np.allclose(x, y, rtol=1e-6, atol=1e-9), (col, np.max(np.abs(x - y)))
c = a["coupling"][:]
g = [s.decode() if isinstance(s, bytes) else s for s in a["groups"][:]]
assert all((c[i] == 0) == ("+" not in g[i]) for i in range(len(g))), "coupling is 0 exactly for one group"
PY

# A bad sweep is rejected before any work.
set +e
"$FACRNN_BIN" --quiet sweep s.yaml --set output.path=e.h5 --set 'sweep.partitions=[[2,1],[5]]' 2> e.err
rc=$?
set -e
[ "$rc" = 2 ] && grep -q 'sweep.partitions' e.err && [ ! -e e.h5.runs ]
# Resuming a finished sweep with other read-out settings (the coupling's
# lags) would mix runs measured two ways: refused, and nothing changes.
sum_a=$(md5sum a.h5 a.h5.manifest)
set +e
"$FACRNN_BIN" --quiet sweep s.yaml --set 'sweep.coupling_lags=[1, 3]' 2> l.err
rc=$?
set -e
[ "$rc" = 2 ] && grep -q "a.h5.manifest: its runs' selection read-outs were measured with 'null_samples=8 null_max_points=256 null_nmc=4 coupling_lags=" l.err
[ "$(md5sum a.h5 a.h5.manifest)" = "$sum_a" ]

# No argument is dropped, however many: the last of 400 --set options is read.
many=()
for _ in $(seq 1 400); do many+=(--set train.seed=0); done
set +e
"$FACRNN_BIN" --quiet sweep s.yaml --set output.path=m.h5 "${many[@]}" --set train.lrr=1 2> m.err
rc=$?
"$FACRNN_BIN" --quiet fit s.yaml --set output.path=m.h5 "${many[@]}" --set train.lrr=1 2> mf.err
rcf=$?
set -e
[ "$rc" = 2 ] && grep -q "unknown key 'train.lrr'" m.err && [ ! -e m.h5.runs ]
[ "$rcf" = 2 ] && grep -q "unknown key 'train.lrr'" mf.err
# Teams that do not divide the ranks are reported, not quietly resized
# (the missing data file then stops the sweep before any work).
set +e
mpirun -n 3 "$FACRNN_BIN" --quiet sweep s.yaml --set output.path=w.h5 --set sweep.ranks_per_fit=2 \
    --set data.path=missing.h5 > w.log 2>&1
rc=$?
set -e
[ "$rc" = 2 ] && grep -q 'ranks_per_fit = 2 does not divide the 3 ranks: the last team has 1 rank' w.log
echo "sweep end-to-end: OK"
