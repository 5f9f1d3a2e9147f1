#!/usr/bin/env bash
# ctest: PROCESSORS 3 LABELS slow
# A Slurm cluster of 3 nodes and a node lost mid-array. The nodes are the
# network-namespace hosts of tests/sh/hosts.sh (one slurmd each, node names
# fr-h1..fr-h3 at 10.77.0.1-3); slurmctld and munged run in the bridge's
# namespace (10.77.0.254), and every Slurm command of the test is run there,
# so nothing listens or connects outside namespaces the test made.
#   1. jobs/submit-sweep.sh runs a 10-run sweep as an array of 3 one-rank
#      tasks, one per node, while fr-h3 is SIGKILLed (slurmd, its step
#      daemon and facrnn) once its task has finished a run; slurmctld finds
#      the node not responding, marks it DOWN and requeues the task, which
#      runs on another node, skips its finished runs through its slice
#      manifest and finishes; the collect job assembles the sweep.
#   2. the collected /sweep/table and /sweep/selection equal a 1-rank sweep
#      run directly (within 1e-8; the `seconds` column aside).
# Skips (exit 77) without namespaces (tests/sh/hosts.sh) or without the Slurm
# and munge packages (tests/sh/test_slurm.sh installs them).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/hosts.sh"
T0=$(date +%s)
secs() { echo $(( $(date +%s) - $1 )); }
for b in slurmctld slurmd munged sbatch; do
  command -v "$b" >/dev/null || { echo "SKIP: no $b (install slurmctld, slurmd, slurm-client and munge)"; exit 77; }
done
fr_hosts_up 3
cd "$WORK"
JOBS="$FACRNN_SRC/jobs"
export FACRNN_BIN FACRNN_HOME="$FACRNN_SRC"

# ---- the cluster ------------------------------------------------------------
D="$WORK/slurm"
mkdir -p "$D"/{munge,state,log,run,tmp} "$D"/spool/fr-h{1,2,3} "$D"/tmp-fr-h{1,2,3}
chmod 700 "$D"; chmod 755 "$D/munge"
dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$D/munge/munge.key"
sock="$D/munge/munge.sock"
# Every daemon runs inside a test namespace, so the teardown kills them all.
# nsenter --net, unlike `ip netns exec`, keeps the machine's /sys (slurmd
# needs its cgroup mounts even with proctrack/linuxproc).
on() { local ns="$1"; shift; nsenter --net="/run/netns/$ns" "$@"; }
ctl() { on "$FR_HOSTS_CTL_NS" "$@"; }
ctl munged -F --force --key-file="$D/munge/munge.key" --socket="$sock" --pid-file="$D/munge/munged.pid" \
  --seed-file="$D/munge/munged.seed" --log-file="$D/log/munged.log" > "$D/log/munged.out" 2>&1 &
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { echo "FAIL: munged did not start"; cat "$D/log/munged.out"; exit 1; }
export SLURM_CONF="$D/slurm.conf"
cat > "$SLURM_CONF" <<CONF
# Three-node test cluster written by tests/sh/test_multihost_slurm.sh.
ClusterName=facrnnhosts
SlurmctldHost=$(hostname -s)($FR_HOSTS_CTL_ADDR)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
# Node-local scratch (each slurmd sees its own directory here, see below).
# PMIx makes <TmpFS>/spmix_appdir_<uid>_<job>.<step> and the step fails when
# it exists: the step daemon of a lost node leaves it behind, and a requeued
# job keeps its id, so a shared one would fail the requeued task's step.
TmpFS=$D/tmp
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd-%n.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=pmix
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=2
ReturnToService=2
JobRequeue=1
MailProg=/bin/true
KillWait=5
MinJobAge=300
# A lost node is noticed after this many seconds without an answer.
SlurmctldTimeout=10
SlurmdTimeout=6
InactiveLimit=0
NodeName=fr-h1 NodeAddr=${FR_HOSTS_ADDR[1]} CPUs=1 RealMemory=512 State=UNKNOWN
NodeName=fr-h2 NodeAddr=${FR_HOSTS_ADDR[2]} CPUs=1 RealMemory=512 State=UNKNOWN
NodeName=fr-h3 NodeAddr=${FR_HOSTS_ADDR[3]} CPUs=1 RealMemory=512 State=UNKNOWN
PartitionName=debug Nodes=fr-h[1-3] Default=YES MaxTime=INFINITE State=UP
CONF
ctl slurmctld -D -i -f "$SLURM_CONF" > "$D/log/slurmctld.out" 2>&1 &
for i in 1 2 3; do
  # a private mount namespace binds the node's own scratch over $D/tmp
  on "${FR_HOSTS_NS[i]}" unshare -m --propagation private sh -c \
    'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh "$D/tmp-fr-h$i" "$D/tmp" \
    slurmd -D -f "$SLURM_CONF" -N "fr-h$i" > "$D/log/slurmd-$i.out" 2>&1 &
done
logs() { local f; for f in "$D"/log/*; do echo "----- $f"; tail -n 15 "$f"; done; }
states=""
for _ in $(seq 120); do
  states="$(ctl sinfo -h -N -o '%N %t' 2>/dev/null | sort | tr '\n' ' ')"
  [ "$states" = "fr-h1 idle fr-h2 idle fr-h3 idle " ] && break
  sleep 0.5
done
[ "$states" = "fr-h1 idle fr-h2 idle fr-h3 idle " ] && pass "3 slurmd nodes idle ($(secs "$T0") s)" \
  || { fail "nodes not idle: '$states'"; logs; finish; exit 1; }

# job_state JOBID: the state word; job_field JOBID FIELD: one field
job_state() { ctl scontrol show job -o "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1; }
job_field() { ctl scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

# ---- the reference: the sweep on one rank, run directly ----------------------
"$FACRNN_BIN" --quiet synth lorenz-thomas --out d.h5 --set trials=12 --set bins=40 --set N=10
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
t=$(date +%s)
"$FACRNN_BIN" --quiet sweep s.yaml
t_one=$(secs "$t")

# ---- the array on 3 nodes, fr-h3 lost once its task has finished a run ------
t=$(date +%s)
ids="$(FACRNN_SBATCH_OPTS="-o slice-%A_%a.out" ctl "$JOBS/submit-sweep.sh" s.yaml 3 --set output.path=arr.h5)"
arr="$(sed -n 's/^array_job=//p' <<<"$ids")"; col="$(sed -n 's/^collect_job=//p' <<<"$ids")"
echo "submitted: $(tr '\n' ' ' <<<"$ids")"
task="" ndone=0
for _ in $(seq 600); do
  task="$(ctl squeue -h -r -t R -o '%i %N' 2>/dev/null | awk '$2 == "fr-h3" {print $1}' | head -n 1)"
  if [ -n "$task" ]; then
    ndone="$(grep -c $'\tdone\t' "arr.h5.manifest.slice${task#*_}of3" 2>/dev/null)" || ndone=0
    [ "$ndone" -ge 1 ] && break
  fi
  sleep 0.2
done
killed="$(fr_host_kill 3)"
echo "fr-h3 lost after $(secs "$t") s with task $task ($ndone run(s) of its slice done): $killed processes killed"
if [ -z "$task" ] || [ "$ndone" -lt 1 ]; then
  fail "no task seen on fr-h3 with a finished run"; tail -n 5 slice-*.out; logs; finish; exit 1
fi
# slurmctld notices the silence (SlurmdTimeout), marks fr-h3 DOWN and requeues
# the task; Slurm holds a requeued job (BeginTime, about 2 minutes): release
# it as soon as it is pending again, as an operator would
s="" released=0
for _ in $(seq 240); do
  s="$(ctl sinfo -h -n fr-h3 -o %t)"
  if [ "$(job_state "$task")" = PENDING ] && [ "$(job_field "$task" Restarts)" -ge 1 ]; then
    ctl scontrol update JobId="$task" StartTime=now >/dev/null 2>&1 && released=1
    break
  fi
  sleep 0.5
done
t_down=$(secs "$t")
echo "after $t_down s: fr-h3 '$s', task $task $(job_state "$task") (restarts $(job_field "$task" Restarts))"
[ "$released" = 1 ] && [[ "$s" == down* ]] && pass "fr-h3 marked down and task $task requeued $t_down s after the start" \
  || fail "fr-h3 state '$s', task $task not requeued (released $released)"
for _ in $(seq 360); do
  case "$(job_state "$col")" in COMPLETED|FAILED|CANCELLED|TIMEOUT) break ;; esac
  # a collect job whose dependency can never be met stays pending: stop early
  [ "$(job_field "$col" Reason)" = DependencyNeverSatisfied ] && break
  sleep 0.5
done
t_all=$(secs "$t")
node="$(job_field "$task" NodeList)"
log="$(cat "slice-${arr}_${task#*_}.out" 2>/dev/null)"
# the second start of the task: "10 runs in the sweep (this slice's share), D already done"
again="$(grep -o "already done" <<<"$log" | wc -l)"
if [ "$(job_state "$task")" = COMPLETED ] && [ "$node" != fr-h3 ] && [ "$(job_field "$task" Restarts)" = 1 ] &&
   [ "$again" = 2 ] && grep -q "$ndone already done" <<<"$(grep "already done" <<<"$log" | tail -n 1)"; then
  resumed=""; grep -q "resuming from checkpoint" <<<"$log" && resumed=" and resuming the interrupted one from its checkpoint"
  pass "requeued task $task finished on $node, skipping its $ndone finished run(s)$resumed"
else
  fail "requeued task $task: $(job_state "$task") on '$node', restarts $(job_field "$task" Restarts)"
  grep -E "facrnn job|already done|ERROR|error" <<<"$log" | tail -n 8
fi
if [ "$(job_state "$col")" = COMPLETED ] && same_sweep_table 10 one.h5 arr.h5; then
  pass "collected table and selection after the node loss = 1-rank sweep ($t_all s; 1 rank: $t_one s)"
else fail "collect job $col: $(job_state "$col") ($(job_field "$col" Reason))"; logs; fi

echo "test_multihost_slurm: $(secs "$T0") s (array with the node loss $t_all s, node down and task requeued after $t_down s)"
finish
