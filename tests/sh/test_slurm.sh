#!/usr/bin/env bash
# ctest: PROCESSORS 2 LABELS slow
# End-to-end tests of the batch scripts in jobs/ on a real single-node Slurm
# cluster started on localhost for the duration of the test (tests/slurm/
# cluster.sh): the harness itself (sbatch, srun --mpi=pmix of an MPI program),
# jobs/fit.sbatch against a direct mpirun fit (bitwise equal), preemption
# (SIGUSR1 to the batch shell -> checkpoint, exit 75, self-requeue, resume;
# bitwise equal to an uninterrupted run, with the signal inside the first of
# two restarts), and the sweep in one job against the array form plus its
# collect job and against a preempted, requeued sweep job that resumes
# through its manifest (same /sweep/table, selection and parameters). Needs
# root (it runs the daemons), installs the Slurm and munge packages when
# missing. About 2 minutes on 2 cores.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$FACRNN_SRC/tests/slurm/cluster.sh"
JOBS="$FACRNN_SRC/jobs"
T_START=$(date +%s)

# ---- packages and the cluster ------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
  echo "FAIL: test_slurm needs root to run slurmctld/slurmd/munged"; exit 1
fi
need=()
for p in slurmctld slurmd slurm-client munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  echo "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 "${need[@]}" >/dev/null \
    || { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 "${need[@]}" >/dev/null; }
fi
[ -x "$FACRNN_BIN" ] || { echo "FAIL: no facrnn binary at $FACRNN_BIN"; exit 1; }

cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] || [ "$FAILS" -ne 0 ]; then fr_slurm_logs || true; fi
  fr_slurm_down
  [ -n "${FACRNN_KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
fr_slurm_up "$WORK/slurm" || { echo "FAIL: the Slurm cluster did not start"; exit 1; }
cd "$WORK"
export FACRNN_BIN FACRNN_HOME="$FACRNN_SRC"

# job_state JOBID: the job's state word (PENDING, RUNNING, COMPLETED, ...).
job_state() { scontrol show job -o "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
job_field() { scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
# wait_job JOBID SECONDS: poll until the job ends; prints its final state.
wait_job() {
  local s="" t
  for ((t = 0; t < $2 * 2; ++t)); do
    s="$(job_state "$1")"
    case "$s" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE) break ;; esac
    sleep 0.5
  done
  echo "$s"
}
# release_requeued JOBID: wait until the job has requeued itself, then let
# it start again at once; prints 1 when released, 0 otherwise.
# Slurm holds a requeued batch job for a while (BeginTime = now + ~2 min);
# release it early to keep the test short, but only once the old step's
# slurmstepd has exited: it can outlive the requeue by seconds, and a new
# step with the same id cannot bind its PMIx socket while the old one holds it
# (the production hold covers this).
release_requeued() {
  local s n released=0
  for _ in $(seq 240); do
    s="$(job_state "$1")"; n="$(job_field "$1" Restarts)"
    if [ "$s" = PENDING ] && [ "${n:-0}" -ge 1 ]; then
      for _ in $(seq 60); do pgrep -f "^slurmstepd: \[$1\.[0-9]+\]" >/dev/null || break; sleep 0.5; done
      # slurmd revokes the job's old credential when its step ends and rejects
      # a new one stamped within that second ("Killing non-startable batch
      # JobId=N: Job credential revoked", seen once in a suite run): let the
      # clock move on before the release.
      sleep 2
      scontrol update JobId="$1" StartTime=now >/dev/null 2>&1 && released=1; break
    fi
    case "$s" in COMPLETED|FAILED|CANCELLED|TIMEOUT) break ;; esac
    sleep 0.5
  done
  echo "$released"
}
# The equality checks below read HDF5 with h5py.
same_params() { # A.h5 B.h5 [RUN]: every run's params/flat (and history) bitwise equal
  $PY - "$@" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
runs = sys.argv[3:] or sorted(a["runs"])
assert runs and sorted(a["runs"]) == sorted(b["runs"]), (sorted(a["runs"]), sorted(b["runs"]))
for r in runs:
    pa, pb = a[f"runs/{r}/params/flat"][()], b[f"runs/{r}/params/flat"][()]
    assert pa.shape == pb.shape and np.array_equal(pa, pb), f"{r}: params differ (max {np.max(np.abs(pa - pb))})"
    ha, hb = a[f"runs/{r}/history/loss"][()], b[f"runs/{r}/history/loss"][()]
    assert np.array_equal(ha, hb), f"{r}: loss history differs"
print(len(runs), "runs bitwise equal")
PY
}

# ---- the harness: batch job, and srun --mpi=pmix of an MPI program ------------
out="$(sbatch --wait -o hostname.out --wrap 'hostname -s' >/dev/null 2>&1; cat hostname.out 2>/dev/null)"
[ "$out" = "$(hostname -s)" ] && pass "sbatch --wait --wrap runs a batch job" || fail "batch job printed '$out'"
cat > hello.c <<'C'
#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv)
{
    int r, n, s;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    MPI_Allreduce(&r, &s, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    printf("rank %d of %d sum %d\n", r, n, s);
    MPI_Finalize();
    return 0;
}
C
mpicc -o hello hello.c || fail "mpicc hello.c"
mpi="$(sed -n 's/^MpiDefault=//p' "$SLURM_CONF")"
sbatch --wait -n 2 -o hello.out --wrap "srun --mpi=$mpi ./hello" >/dev/null || true
if [ "$(grep -c 'of 2 sum 1' hello.out 2>/dev/null)" = 2 ]; then pass "srun --mpi=$mpi wires 2 MPI ranks"
else fail "srun --mpi=$mpi: $(cat hello.out 2>&1 | tail -3)"; fi

# ---- fit.sbatch: same result as a direct mpirun fit ------------------------------
"$FACRNN_BIN" --quiet synth lorenz-thomas --out lt.h5 --seed 0 --set trials=10 --set bins=60
cat > fit.yaml <<YAML
data:
  path: lt.h5
model:
  rank: 4
  groups: [2, 2]
  init: uniform
train:
  beta: 20
  batch_size: 64
  epochs: 20
  restarts: 2
  checkpoint_every: 5
cv:
  folds: 5
output:
  path: direct.h5
YAML
mpirun -n 2 "$FACRNN_BIN" --quiet fit fit.yaml
RUN="$($PY -c 'import h5py,sys; print(sorted(h5py.File(sys.argv[1],"r")["runs"])[0])' direct.h5)"
rc=0
sbatch --wait -n 2 -o fit-%j.out "$JOBS/fit.sbatch" fit.yaml --set output.path=slurm.h5 >/dev/null || rc=$?
if [ "$rc" -eq 0 ] && same_params direct.h5 slurm.h5 "$RUN"; then pass "fit.sbatch on 2 ranks equals mpirun -n 2 (bitwise)"
else fail "fit.sbatch: sbatch exit $rc"; tail -5 fit-*.out; fi
# A missing binary is reported clearly and the job fails.
rc=0
FACRNN_BIN=/nonexistent/facrnn sbatch --wait -n 1 -o nobin.out "$JOBS/fit.sbatch" fit.yaml >/dev/null 2>&1 || rc=$?
if [ "$rc" -ne 0 ] && grep -q "facrnn binary not found at '/nonexistent/facrnn'" nobin.out; then
  pass "missing FACRNN_BIN fails the job with a clear message"
else fail "missing binary: exit $rc, log: $(cat nobin.out 2>&1)"; fi

# ---- preemption: USR1 to the batch shell -> checkpoint, requeue, resume ----------
# Two restarts of 1500 epochs: the signal lands in restart 0 (the job is
# signalled as soon as its log shows epoch 20 of restart 0, however fast the
# machine), so the resumed job must continue restart 0 and then start
# restart 1 fresh.
sed -e 's/epochs: 20/epochs: 1500/' -e 's/checkpoint_every: 5/checkpoint_every: 1000/' \
    -e 's/direct.h5/full.h5/' fit.yaml > long.yaml
mpirun -n 2 "$FACRNN_BIN" --quiet fit long.yaml
jid="$(sbatch --parsable -n 2 -o pre-%j.out "$JOBS/fit.sbatch" long.yaml --set output.path=pre.h5 \
       --set train.log_every=1)"
jid="${jid%%;*}"
for _ in $(seq 600); do grep -q "restart 1/2 epoch  *20/" "pre-$jid.out" 2>/dev/null && break; sleep 0.1; done
[ "$(job_state "$jid")" = RUNNING ] || fail "preemption: job $jid no longer running when signalled"
scancel --signal=USR1 --batch "$jid" || fail "scancel --signal=USR1 --batch $jid"
released="$(release_requeued "$jid")"
s="$(wait_job "$jid" 150)"
log="$(cat "pre-$jid.out" 2>/dev/null)"
if [ "$released" = 1 ] && [ "$s" = COMPLETED ] && [ "$(job_field "$jid" Restarts)" = 1 ] &&
   grep -q "checkpointed (exit 75); requeueing job $jid" <<<"$log" && grep -q "restart 1," <<<"$log"; then
  pass "USR1 to the batch shell: checkpoint, exit 75, requeue, resume to completion"
else
  fail "preemption: state '$s', restarts $(job_field "$jid" Restarts), released $released"; tail -n 15 <<<"$log"
fi
same_params full.h5 pre.h5 "$RUN" && pass "preempted and requeued fit equals the uninterrupted fit (bitwise)" \
  || fail "preempted fit differs from the uninterrupted fit"

# ---- sweeps: one MPI job, array slices + collect, and a preempted job -----------
# Four runs (K = 2 as [2] and [1, 1], two folds), two restarts of 800 epochs
# each (~2-5 s a run), on two teams of one rank.
help="$("$FACRNN_BIN" sweep --help 2>&1)" || true
if ! grep -q -- "--slice" <<<"$help" || ! grep -q -- "--collect" <<<"$help"; then
  echo "SKIP: sweep parts: this facrnn build's 'sweep' does not offer --slice and --collect yet ($(head -n 1 <<<"$help"))"
else
  cat > sweep.yaml <<YAML
data:
  path: lt.h5
model:
  init: uniform
train:
  batch_size: 64
  epochs: 2000    # long enough that the preemption below lands inside a run
  restarts: 2
cv:
  folds: 2
sweep:
  ranks: [2]
  partitions: [[2], [1, 1]]
  betas: [20]
  seeds: [0]
  ranks_per_fit: 1
output:
  path: sweep_one.h5
YAML
  # same_sweep A.h5 B.h5: /sweep/table columns (all but the timings) and
  # /sweep/selection attributes equal.
  same_sweep() {
    $PY - "$@" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
ta, tb = a["sweep/table"], b["sweep/table"]
cols = sorted(c for c in ta if c != "seconds")
assert cols == sorted(c for c in tb if c != "seconds"), (list(ta), list(tb))
n = ta["run_id"].shape[0]
assert n == 4, f"{n} rows, want 4"
for c in cols:
    x, y = ta[c][()], tb[c][()]
    same = np.array_equal(x, y, equal_nan=True) if x.dtype.kind == "f" else np.array_equal(x, y)
    assert same, f"/sweep/table/{c} differs: {x} vs {y}"
st = [s.decode() if isinstance(s, bytes) else s for s in ta["status"][()]]
assert st == ["done"] * n, st
sa, sb = dict(a["sweep/selection"].attrs), dict(b["sweep/selection"].attrs)
assert sorted(sa) == sorted(sb) and "selected_K" in sa, (sorted(sa), sorted(sb))
for k in sa:
    x, y = np.asarray(sa[k]), np.asarray(sb[k])
    ok = np.array_equal(x, y, equal_nan=True) if x.dtype.kind == "f" else np.array_equal(x, y)
    assert ok, f"/sweep/selection@{k}: {sa[k]} vs {sb[k]}"
print(n, "rows equal over", cols, "; selection K", sa["selected_K"], "groups", sa["selected_groups"])
PY
  }

  rc=0
  sbatch --wait -n 2 -o sweep-%j.out "$JOBS/sweep.sbatch" sweep.yaml >/dev/null || rc=$?
  if [ "$rc" -eq 0 ] && [ -f sweep_one.h5 ] && grep -q "4 runs fitted (0 failed)" sweep-*.out; then
    pass "sweep.sbatch on 2 ranks (2 teams) fits the 4 runs"
  else fail "sweep.sbatch: exit $rc"; tail -n 5 sweep-*.out; fi

  # The array form: 2 slices of 1 rank, then the collect job.
  ids="$(FACRNN_SBATCH_OPTS="-o slice-%A_%a.out" "$JOBS/submit-sweep.sh" sweep.yaml 2 --set output.path=sweep_arr.h5)"
  arr="$(sed -n 's/^array_job=//p' <<<"$ids")"; col="$(sed -n 's/^collect_job=//p' <<<"$ids")"
  s="$(wait_job "$col" 180)"
  if [ -n "$arr" ] && [ "$s" = COMPLETED ] && [ -f sweep_arr.h5 ]; then pass "array of 2 slices then collect ($(tr '\n' ' ' <<<"$ids"))"
  else fail "array sweep: collect job $col state '$s'"; tail -n 5 slice-*.out facrnn-collect-*.out 2>/dev/null; fi
  same_sweep sweep_one.h5 sweep_arr.h5 && pass "array + collect: /sweep/table and selection equal the single job's" \
    || fail "array + collect: sweep table or selection differ from the single job's"
  same_params sweep_one.h5 sweep_arr.h5 && pass "array + collect: run parameters equal the single job's (bitwise)" \
    || fail "array + collect: run parameters differ from the single job's"

  # Preemption: USR1 once a run is done and others are under way; the job
  # checkpoints the running fits, exits 75, requeues; the rerun skips the
  # finished runs through the manifest and resumes the interrupted ones.
  jid="$(sbatch --parsable -n 2 -o sweep-pre-%j.out "$JOBS/sweep.sbatch" sweep.yaml --set output.path=sweep_pre.h5)"
  jid="${jid%%;*}"
  ndone=0
  for _ in $(seq 240); do
    ndone="$(grep -c $'\tdone\t' sweep_pre.h5.manifest 2>/dev/null)" || ndone=0
    [ "$ndone" -ge 1 ] && break
    sleep 0.25
  done
  sleep 0.5 # let the team that finished take its next run
  if [ "$ndone" -ge 1 ] && [ "$(job_state "$jid")" = RUNNING ]; then
    scancel --signal=USR1 --batch "$jid" || fail "scancel --signal=USR1 --batch $jid (sweep)"
    released="$(release_requeued "$jid")"
    s="$(wait_job "$jid" 150)"
    log="$(cat "sweep-pre-$jid.out" 2>/dev/null)"
    # What the second start found: "4 runs in the sweep, D already done, T to fit".
    again="$(grep -o "4 runs in the sweep, [0-9]* already done" <<<"$log" | sed -n 2p | grep -o '[0-9]* already' | grep -o '[0-9]*')" || true
    if [ "$released" = 1 ] && [ "$s" = COMPLETED ] && [ "$(job_field "$jid" Restarts)" = 1 ] &&
       grep -q "sweep stopped on a signal" <<<"$log" && grep -q "checkpointed (exit 75); requeueing job $jid" <<<"$log" &&
       [ -n "$again" ] && [ "$again" -ge 1 ] && [ "$again" -lt 4 ]; then
      # Only rank 0 logs, so a resume is visible when team 0 was interrupted.
      resumed=""; grep -q "resuming from checkpoint" <<<"$log" && resumed=", team 0 resumed its run from a checkpoint"
      pass "sweep preempted after $ndone finished run(s): requeued, $again run(s) skipped via the manifest$resumed"
    else
      fail "sweep preemption: state '$s', restarts $(job_field "$jid" Restarts), released $released, skipped '$again'"
      tail -n 20 <<<"$log"
    fi
    same_sweep sweep_one.h5 sweep_pre.h5 && pass "preempted sweep: /sweep/table and selection equal the uninterrupted job's" \
      || fail "preempted sweep: sweep table or selection differ"
    same_params sweep_one.h5 sweep_pre.h5 && pass "preempted sweep: run parameters equal the uninterrupted job's (bitwise)" \
      || fail "preempted sweep: run parameters differ"
  else
    fail "sweep preemption: no finished run seen in the manifest ($ndone) or job $jid not running ($(job_state "$jid"))"
    scancel "$jid" 2>/dev/null || true
  fi
fi

echo "test_slurm: $(( $(date +%s) - T_START )) s"
finish
