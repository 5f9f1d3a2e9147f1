#!/usr/bin/env bash
# ctest: PROCESSORS 3 LABELS slow
# facrnn across 3 hosts over TCP, and a host lost mid-way. The hosts are
# network namespaces on a bridge (tests/sh/hosts.sh: addresses only inside
# namespaces this test makes, all removed on exit); Open MPI starts its
# daemons on them through an `ip netns exec` rsh agent, as it would over ssh.
#   0. `facrnn selftest` (MPI, ScaLAPACK, parallel HDF5) on 2 hosts.
#   a. a 10-run sweep on 3 hosts (one rank each) gives the /sweep/table and
#      /sweep/selection of a 1-rank sweep on this machine (within 1e-8; the
#      `seconds` column aside).
#   b. the same sweep again, host 3 SIGKILLed (every process in it) while it
#      fits a run past a checkpoint: mpirun ends (non-zero, no rank left on the
#      other hosts, no results file); the same command on the 2 remaining hosts
#      skips the finished runs, resumes interrupted ones from their checkpoints
#      and completes the sweep: every run present, same table and selection.
#   c. a fit on 3 hosts equals a 1-rank fit; the same fit with host 3 killed
#      after a checkpoint exists, resumed on 2 hosts, equals the uninterrupted
#      one (parameters 1e-9 relative, the rank-invariance tolerance of
#      test_fit.sh; metrics likewise).
# Skips (exit 77) where namespaces cannot be made (not root, no iproute2).
# About a minute on 2 busy cores.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/hosts.sh"
T0=$(date +%s)
secs() { echo $(( $(date +%s) - $1 )); }
fr_hosts_up 3
cd "$WORK"
echo "hosts: ${FR_HOSTS_NS[*]} (${FR_HOSTS_ADDR[*]}) on a bridge in $FR_HOSTS_PREFIX-br"

# no process of ours is left in hosts 1 and 2 (after an aborted mpirun)
hosts_idle() {
  local i p
  for i in 1 2; do
    for _ in $(seq 100); do
      p="$(ip netns pids "${FR_HOSTS_NS[i]}")"
      [ -z "$p" ] && break
      sleep 0.1
    done
    [ -z "$p" ] || { echo "left on host $i: $(ps -o pid=,args= -p ${p//$'\n'/,} 2>&1)"; return 1; }
  done
}

# ---- 0. selftest across 2 hosts ---------------------------------------------
t=$(date +%s)
if out="$(fr_mpirun "1 2" -n 2 "$FACRNN_BIN" selftest 2>&1)" && grep -q "selftest PASS: 2 ranks" <<<"$out"; then
  pass "selftest on 2 hosts over TCP ($(secs "$t") s)"
else fail "selftest on 2 hosts: $(tail -n 5 <<<"$out")"; finish; exit 1; fi
# the ranks really are on different hosts
where="$(fr_mpirun "1 2 3" -n 3 sh -c 'echo "$OMPI_COMM_WORLD_RANK $(ip netns identify $$)"' | sort | tr '\n' ' ')"
[ "$where" = "0 ${FR_HOSTS_NS[1]} 1 ${FR_HOSTS_NS[2]} 2 ${FR_HOSTS_NS[3]} " ] \
  && pass "rank i runs on host i+1" || fail "rank placement: $where"

# ---- a. a sweep on 3 hosts equals one on this machine ------------------------
"$FACRNN_BIN" --quiet synth lorenz-thomas --out d.h5 --set trials=12 --set bins=40 --set N=10
# 10 runs; 3000 epochs of 8 steps (about a second a run) so that a host can
# be caught inside a run, with a checkpoint every 300 epochs
cat > s.yaml <<'YAML'
data:
  path: d.h5
model:
  init: uniform
train:
  epochs: 3000
  restarts: 1
  batch_size: 32
  eval_every: 1000
  checkpoint_every: 300
  log_every: 300
cv:
  folds: 2
sweep:
  ranks: [2, 3]
  partitions: all
  betas: [1]
  seeds: [0]
output:
  path: one.h5
YAML
NRUNS=10
t=$(date +%s)
"$FACRNN_BIN" --quiet sweep s.yaml
t_one=$(secs "$t")
t=$(date +%s)
# A 5 s sweep gets 300 s. A launch that hangs before facrnn's first line (the
# runtime's start-up across the hosts; seen once in CI under load, with an
# empty log) is retried once and said; a hang after it fails.
rc=0
FR_MPIRUN_TIMEOUT=300 fr_mpirun "1 2 3" -n 3 "$FACRNN_BIN" sweep s.yaml --set output.path=three.h5 > three.log 2>&1 || rc=$?
if [ "$rc" -eq 124 ] && ! grep -q "runs in the sweep" three.log; then
  echo "NOTE: the 3-host launch hung before facrnn's first line; retrying once"; cat three.log
  rm -rf three.h5 three.h5.*
  rc=0
  FR_MPIRUN_TIMEOUT=300 fr_mpirun "1 2 3" -n 3 "$FACRNN_BIN" sweep s.yaml --set output.path=three.h5 > three.log 2>&1 || rc=$?
fi
t_three=$(secs "$t")
if [ "$rc" -eq 0 ] && grep -q "$NRUNS runs in the sweep, 0 already done, $NRUNS to fit on 3 team(s) of 1 rank(s)" three.log &&
   same_sweep_table $NRUNS one.h5 three.h5; then
  pass "sweep on 3 hosts ($t_three s) = sweep on 1 rank here ($t_one s)"
else fail "sweep on 3 hosts: exit $rc"; tail -n 5 three.log; fi

# ---- b. host 3 lost mid-sweep, rerun on hosts 1 and 2 ------------------------
t=$(date +%s)
fr_mpirun "1 2 3" -n 3 "$FACRNN_BIN" --verbose sweep s.yaml --set output.path=lost.h5 > lost.log 2>&1 &
job=$!
# Wait for 3 finished runs, then for host 3 (rank 2) to pass epoch 600 of the
# run it is on: its checkpoint at epoch 300 exists and 2400 epochs remain.
r2_at() { grep -c "INFO  r2\] restart 1/1 epoch  *600/3000" lost.log || true; }
ndone=0 caught=0
for _ in $(seq 1200); do
  ndone="$(grep -c $'\tdone\t' lost.h5.manifest 2>/dev/null)" || ndone=0
  [ "$ndone" -ge 3 ] && break
  sleep 0.05
done
before="$(r2_at)"
for _ in $(seq 1200); do
  [ "$(r2_at)" -gt "$before" ] && { caught=1; break; }
  sleep 0.02
done
killed="$(fr_host_kill 3)"
rc=0
wait "$job" || rc=$?
ndone="$(grep -c $'\tdone\t' lost.h5.manifest)" || ndone=0
t_lost=$(secs "$t")
echo "host 3 lost after $t_lost s: $killed process(es) killed, mpirun exit $rc, $ndone of $NRUNS runs done"
if [ "$caught" = 1 ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ ! -e lost.h5 ] &&
   [ "$ndone" -ge 3 ] && [ "$ndone" -lt "$NRUNS" ]; then
  pass "host 3 SIGKILLed inside a run ($killed processes): mpirun ended (exit $rc) with $ndone of $NRUNS runs done"
else
  fail "host 3 kill: caught $caught, mpirun exit $rc, results file $(ls lost.h5 2>&1), $ndone done"; tail -n 8 lost.log
fi
hosts_idle && pass "no rank left on hosts 1 and 2 after the loss" || fail "ranks left behind on hosts 1 and 2"
# host 3 is gone for good: its interface too
ip -n "${FR_HOSTS_NS[3]}" link set "$FR_HOSTS_IF" down
t=$(date +%s)
rc=0
fr_mpirun "1 2" -n 2 "$FACRNN_BIN" --verbose sweep s.yaml --set output.path=lost.h5 > rerun.log 2>&1 || rc=$?
t_rerun=$(secs "$t")
resumed="$(grep -c "resuming from checkpoint" rerun.log)" || resumed=0
if [ "$rc" -eq 0 ] &&
   grep -q "$NRUNS runs in the sweep, $ndone already done, $((NRUNS - ndone)) to fit on 2 team(s) of 1 rank(s)" rerun.log &&
   [ "$resumed" -ge 1 ] && same_sweep_table $NRUNS one.h5 lost.h5; then
  pass "rerun on 2 hosts ($t_rerun s): skipped $ndone done, resumed $resumed run(s) from checkpoints, same table"
else
  fail "rerun on 2 hosts: exit $rc, resumed $resumed"; grep -E "runs in the sweep|resuming|ERROR" rerun.log | head; tail -n 5 rerun.log
fi
ip -n "${FR_HOSTS_NS[3]}" link set "$FR_HOSTS_IF" up

# ---- c. a fit on 3 hosts; host 3 lost after a checkpoint, resumed on 2 --------
"$FACRNN_BIN" --quiet synth lorenz-thomas --out lt.h5 --seed 0
cat > fit.yaml <<YAML
data:
  path: lt.h5
model:
  rank: 6
  groups: [3, 3]
train:
  beta: 20
  epochs: 30
  restarts: 1
  checkpoint_every: 5
  log_every: 1
cv:
  folds: 5
output:
  path: f1.h5
YAML
RUN=K6_g3+3_b20_s0_f0
# close_fits A.h5 B.h5: parameters within 1e-9 relative (as test_fit.sh across
# rank counts), metrics and the number of steps likewise
close_fits() {
  $PY - "$RUN" "$@" <<'PY'
import sys, h5py, numpy as np
run, fa, fb = sys.argv[1:4]
a, b = (h5py.File(p, "r")[f"runs/{run}"] for p in (fa, fb))
pa, pb = a["params/flat"][()], b["params/flat"][()]
assert pa.shape == pb.shape
rel = float(np.max(np.abs(pb - pa) / np.maximum(np.abs(pa), 1e-3)))
assert rel < 1e-9, f"{fa} vs {fb}: max relative parameter difference {rel}"
for key in ("heldout_nll_per_bin", "heldout_r2", "train_nll_per_bin"):
    x, y = a["metrics"].attrs[key], b["metrics"].attrs[key]
    assert np.allclose(x, y, rtol=1e-9, atol=0), (key, x, y)
assert len(a["history/loss"]) == len(b["history/loss"])
print(f"{fa} vs {fb}: max relative parameter difference {rel:.1e}")
PY
}
t=$(date +%s)
"$FACRNN_BIN" --quiet fit fit.yaml
t_f1=$(secs "$t")
t=$(date +%s)
rc=0
fr_mpirun "1 2 3" -n 3 "$FACRNN_BIN" --quiet fit fit.yaml --set output.path=f3.h5 || rc=$?
t_f3=$(secs "$t")
[ "$rc" -eq 0 ] && close_fits f1.h5 f3.h5 && pass "fit on 3 hosts ($t_f3 s) = fit on 1 rank ($t_f1 s) within 1e-9" \
  || fail "fit on 3 hosts (exit $rc) differs from 1 rank"
# the same fit, host 3 killed once epoch 12 is logged (checkpoint of epoch 10 on disk)
t=$(date +%s)
fr_mpirun "1 2 3" -n 3 "$FACRNN_BIN" fit fit.yaml --set output.path=fk.h5 > fk.log 2>&1 &
job=$!
caught=0
for _ in $(seq 3000); do
  grep -q "restart 1/1 epoch  *12/30" fk.log && { caught=1; break; }
  sleep 0.02
done
killed="$(fr_host_kill 3)"
rc=0
wait "$job" || rc=$?
ck="$(ls fk.h5.ckpt 2>/dev/null | tr '\n' ' ')"
last="$(grep -o "epoch  *[0-9]*/30" fk.log | tail -n 1 | grep -o "[0-9]*/" | tr -d /)"
echo "fit: host 3 lost after $(secs "$t") s at epoch ${last:-?}: $killed process(es) killed, mpirun exit $rc"
if [ "$caught" = 1 ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ ! -e fk.h5 ] && [ "$ck" = "$RUN.ckpt.h5 " ] &&
   [ "${last:-30}" -lt 30 ]; then
  pass "host 3 SIGKILLed at epoch $last of 30: mpirun ended (exit $rc), checkpoint on disk, no results"
else fail "fit kill: caught $caught, exit $rc, last epoch '$last', checkpoints '$ck', results $(ls fk.h5 2>&1)"; tail -n 5 fk.log; fi
hosts_idle && pass "no rank left on hosts 1 and 2 after the loss (fit)" || fail "ranks left behind (fit)"
t=$(date +%s)
rc=0
fr_mpirun "1 2" -n 2 "$FACRNN_BIN" fit fit.yaml --set output.path=fk.h5 > fr.log 2>&1 || rc=$?
t_fr=$(secs "$t")
from="$(grep -o "resuming from checkpoint [^:]*: restart 0, epoch [0-9]*" fr.log | grep -o "[0-9]*$")" || from=""
if [ "$rc" -eq 0 ] && [ -n "$from" ] && [ "$from" -ge 10 ] && close_fits f3.h5 fk.h5 && close_fits f1.h5 fk.h5; then
  pass "fit resumed on 2 hosts from epoch $from ($t_fr s) = uninterrupted fit within 1e-9"
else fail "fit resumed on 2 hosts: exit $rc, resumed from '$from'"; tail -n 5 fr.log; fi

echo "test_multihost: $(secs "$T0") s (sweep: 1 rank $t_one s, 3 hosts $t_three s, lost after $t_lost s, rerun $t_rerun s;" \
     "fit: 1 rank $t_f1 s, 3 hosts $t_f3 s, resumed $t_fr s)"
finish
