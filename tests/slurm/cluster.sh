# cluster.sh: a throw-away single-node Slurm cluster on localhost, for tests.
# Sourced by tests/sh/test_slurm.sh. It owns the daemons' whole life: a fresh
# temporary directory holds the munge key and socket, slurm.conf, the state
# and spool directories and the logs; munged, slurmctld and slurmd run in
# the foreground as background children of this shell, and are stopped by
# their PIDs. Nothing under /etc is read or written, and no service manager
# is needed (CI machines run none).
#
#   fr_slurm_up DIR      write the configuration under DIR, start the daemons,
#                        wait until the node is idle; exports SLURM_CONF
#   fr_slurm_down        stop the daemons this shell started (idempotent)
#   fr_slurm_logs        print the tails of the daemon logs (for failures)
#
# Environment:
#   FR_SLURM_PORT        slurmctld port (default 16817; slurmd uses +1)
#   FR_SLURM_MPI         MpiDefault (default pmix when `srun --mpi=list`
#                        offers it, else pmi2)
#
# Daemons left over from an earlier, killed run of this harness are listed
# in a registry file and stopped first, by PID, after checking that their
# command line names a directory this harness created.

FR_SLURM_REGISTRY="${TMPDIR:-/tmp}/facrnn-slurm-harness.pids"
FR_SLURM_PIDS=()

# Kill stale daemons that an earlier run recorded (and only those).
_fr_slurm_reap_stale() {
  [ -f "$FR_SLURM_REGISTRY" ] || return 0
  local pid dir
  while read -r pid dir; do
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || continue
    if tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$dir"; then
      echo "slurm harness: stopping stale daemon $pid from $dir"
      kill "$pid" 2>/dev/null || true
      for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done < "$FR_SLURM_REGISTRY"
  rm -f "$FR_SLURM_REGISTRY"
}

_fr_slurm_record() { # PID: remember a daemon we started
  FR_SLURM_PIDS+=("$1")
  echo "$1 $FR_SLURM_DIR" >> "$FR_SLURM_REGISTRY"
}

fr_slurm_logs() {
  local f
  for f in "$FR_SLURM_DIR"/log/*.log; do
    [ -f "$f" ] || continue
    echo "----- tail of $f"
    tail -n 30 "$f"
  done
}

fr_slurm_up() {
  FR_SLURM_DIR="$1"
  local port="${FR_SLURM_PORT:-16817}"
  local host cpus mpi
  host="$(hostname -s)"
  cpus="$(nproc)"
  _fr_slurm_reap_stale
  mkdir -p "$FR_SLURM_DIR"/{munge,state,spool,log,run}
  chmod 700 "$FR_SLURM_DIR"; chmod 755 "$FR_SLURM_DIR/munge"

  # munge: a generated key and a private socket.
  dd if=/dev/urandom of="$FR_SLURM_DIR/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$FR_SLURM_DIR/munge/munge.key"
  local sock="$FR_SLURM_DIR/munge/munge.sock"
  munged -F --force --key-file="$FR_SLURM_DIR/munge/munge.key" --socket="$sock" \
    --pid-file="$FR_SLURM_DIR/munge/munged.pid" --seed-file="$FR_SLURM_DIR/munge/munged.seed" \
    --log-file="$FR_SLURM_DIR/log/munged.log" > "$FR_SLURM_DIR/log/munged.out" 2>&1 &
  _fr_slurm_record $!
  for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
  [ -S "$sock" ] || { echo "slurm harness: munged did not create $sock"; fr_slurm_logs; return 1; }

  # MPI plugin: PMIx where Slurm was built with it (Debian 12's is), else PMI-2.
  mpi="${FR_SLURM_MPI:-}"
  if [ -z "$mpi" ]; then
    if ls /usr/lib/*/slurm-wlm/mpi_pmix*.so >/dev/null 2>&1; then mpi=pmix; else mpi=pmi2; fi
  fi

  export SLURM_CONF="$FR_SLURM_DIR/slurm.conf"
  cat > "$SLURM_CONF" <<CONF
# Single-node test cluster written by tests/slurm/cluster.sh.
ClusterName=facrnntest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$FR_SLURM_DIR/state
SlurmdSpoolDir=$FR_SLURM_DIR/spool/%n
SlurmctldPidFile=$FR_SLURM_DIR/run/slurmctld.pid
SlurmdPidFile=$FR_SLURM_DIR/run/slurmd.pid
SlurmctldLogFile=$FR_SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$FR_SLURM_DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups in containers/CI: track processes through /proc, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=$mpi
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
# Test cluster: run the scheduler every 2 s instead of 60 s.
SchedulerParameters=sched_interval=2
ReturnToService=2
JobRequeue=1
MailProg=/bin/true
KillWait=10
MinJobAge=300
# Quick turnaround on a test machine.
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=1024 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF

  slurmctld -D -i -f "$SLURM_CONF" > "$FR_SLURM_DIR/log/slurmctld.out" 2>&1 &
  _fr_slurm_record $!
  slurmd -D -f "$SLURM_CONF" -N "$host" > "$FR_SLURM_DIR/log/slurmd.out" 2>&1 &
  _fr_slurm_record $!

  local state=""
  for _ in $(seq 120); do
    state="$(sinfo -h -N -o %t 2>/dev/null | head -n1)"
    case "$state" in idle|mix|alloc) break ;; esac
    sleep 0.5
  done
  case "$state" in
    idle|mix|alloc) echo "slurm harness: node $host is $state (MpiDefault=$mpi, $cpus CPUs)" ;;
    *) echo "slurm harness: node not idle after 60 s (state '$state')"; fr_slurm_logs; return 1 ;;
  esac
}

fr_slurm_down() {
  local pid i
  # Reverse start order: slurmd, slurmctld, munged.
  for ((i = ${#FR_SLURM_PIDS[@]} - 1; i >= 0; --i)); do
    pid="${FR_SLURM_PIDS[$i]}"
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  FR_SLURM_PIDS=()
  rm -f "$FR_SLURM_REGISTRY"
}
