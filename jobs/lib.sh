# lib.sh: what every facrnn batch script shares, sourced by jobs/*.sbatch
# after they have found the project (FACRNN_HOME). It owns: the site setup
# (modules or an environment file), finding the facrnn binary, launching it
# on the allocation's ranks (srun --mpi=pmix, or mpirun), forwarding the
# stop signal to the running step, and requeueing the job when facrnn
# checkpointed and exited 75.
#
# Settings (environment; sbatch passes the submitting shell's environment
# to the job by default, so `FACRNN_BIN=... sbatch jobs/fit.sbatch ...` works):
#   FACRNN_BIN        the executable (default: $FACRNN_HOME/build/facrnn)
#   FACRNN_LAUNCHER   srun (default) or mpirun, for sites whose MPI is not
#                     built against Slurm's PMIx/PMI-2
#   FACRNN_SRUN_MPI   srun's --mpi plugin (default pmix; pmi2 on older sites)
#   FACRNN_MODULES    modules to `module load` first (space separated)
#   FACRNN_ENV_SETUP  a file to source first (a Spack/conda/venv activation)
#   FACRNN_REQUEUE    1 (default): requeue on exit 75; 0: exit 75 instead
#   FACRNN_STOP_SIGNAL the signal forwarded to the step (default USR1; the
#                     trainer treats USR1 and TERM alike)

FACRNN_EXIT_REQUEUE=75

fr_job_die() { # CODE MESSAGE: one line on stderr, then exit
  echo "facrnn job: error: $2" >&2
  exit "$1"
}

# Site environment, then the binary. Not collective (runs in the batch shell).
fr_job_setup() {
  if [ -n "${FACRNN_ENV_SETUP:-}" ]; then
    [ -r "$FACRNN_ENV_SETUP" ] || fr_job_die 2 "FACRNN_ENV_SETUP=$FACRNN_ENV_SETUP is not readable"
    # shellcheck disable=SC1090
    source "$FACRNN_ENV_SETUP"
  fi
  if [ -n "${FACRNN_MODULES:-}" ]; then
    command -v module >/dev/null 2>&1 || fr_job_die 2 "FACRNN_MODULES is set but there is no 'module' command"
    # shellcheck disable=SC2086
    module load $FACRNN_MODULES || fr_job_die 2 "module load $FACRNN_MODULES failed"
  fi
  FACRNN_BIN="${FACRNN_BIN:-$FACRNN_HOME/build/facrnn}"
  [ -x "$FACRNN_BIN" ] || fr_job_die 2 "facrnn binary not found at '$FACRNN_BIN' (build the project, or set FACRNN_BIN, or FACRNN_HOME to the source tree that holds build/facrnn)"
  # One BLAS thread per rank unless the job asked for more CPUs per task.
  export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}"
  export FACRNN_BIN
}

# The command line that starts facrnn on every task of the allocation.
fr_job_launcher() {
  local ntasks="${SLURM_NTASKS:-1}"
  case "${FACRNN_LAUNCHER:-srun}" in
    srun)   FR_LAUNCH=(srun --mpi="${FACRNN_SRUN_MPI:-pmix}" --kill-on-bad-exit=1 -n "$ntasks") ;;
    mpirun) FR_LAUNCH=(mpirun -n "$ntasks") ;;
    *)      fr_job_die 2 "FACRNN_LAUNCHER must be srun or mpirun, not '${FACRNN_LAUNCHER}'" ;;
  esac
}

# Run `facrnn ARGS...` on the allocation's ranks and own its stop protocol:
# SIGUSR1 (sent to this shell by --signal=B:USR1@...) or SIGTERM is
# forwarded as FACRNN_STOP_SIGNAL to the launcher, which forwards it to
# every rank; the trainer checkpoints at the next step boundary and exits
# 75. On 75 the job is requeued (scontrol requeue) and this script exits 0,
# so the requeue is not recorded as a failure (an afterok dependency still
# waits for the requeued run). Any other code is passed through.
fr_job_run() {
  fr_job_launcher
  local sig="${FACRNN_STOP_SIGNAL:-USR1}"
  echo "facrnn job: ${SLURM_JOB_ID:+job $SLURM_JOB_ID${SLURM_ARRAY_TASK_ID:+ task $SLURM_ARRAY_TASK_ID}, }" \
       "restart ${SLURM_RESTART_COUNT:-0}, ${SLURM_NTASKS:-1} ranks: ${FR_LAUNCH[*]} $FACRNN_BIN $*"
  FR_STOPPING=0
  "${FR_LAUNCH[@]}" "$FACRNN_BIN" "$@" &
  FR_CHILD=$!
  trap 'FR_STOPPING=1; echo "facrnn job: stop signal received, forwarding SIG$sig to the step"; kill -s "$sig" "$FR_CHILD" 2>/dev/null || true' USR1 TERM
  local rc
  while :; do
    rc=0; wait "$FR_CHILD" || rc=$?
    # wait returns >128 when a trapped signal interrupts it; keep waiting.
    if [ "$rc" -gt 128 ] && kill -0 "$FR_CHILD" 2>/dev/null; then continue; fi
    break
  done
  if [ "$rc" -gt 128 ]; then # the step may have ended during the interrupted wait
    local again
    again=0; wait "$FR_CHILD" 2>/dev/null || again=$?
    [ "$again" -eq 127 ] || rc=$again
  fi
  trap - USR1 TERM
  if [ "$rc" -eq "$FACRNN_EXIT_REQUEUE" ]; then
    if [ "${FACRNN_REQUEUE:-1}" = 1 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
      # For an array task SLURM_JOB_ID is this task's own id.
      echo "facrnn job: checkpointed (exit 75); requeueing job $SLURM_JOB_ID"
      if scontrol requeue "$SLURM_JOB_ID"; then exit 0; fi
      echo "facrnn job: scontrol requeue failed; resubmit the same command to resume" >&2
    else
      echo "facrnn job: checkpointed (exit 75); rerun the same command to resume"
    fi
  fi
  exit "$rc"
}
