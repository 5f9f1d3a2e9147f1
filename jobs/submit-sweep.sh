#!/usr/bin/env bash
# submit-sweep.sh: submit a facrnn sweep as a job array plus a collect job.
#   jobs/submit-sweep.sh CONFIG [N] [--set key=value ...]
# Submits jobs/sweep-array.sbatch as an array of N tasks (default 8), task I
# running `facrnn sweep CONFIG --slice I/N`, and jobs/sweep.sbatch on one
# rank with --dependency=afterok:<array> running `facrnn sweep CONFIG
# --collect`, which starts only after every task has succeeded (a task that
# checkpointed and requeued itself still counts as pending, not failed).
# Prints the two job ids as `array_job=ID` and `collect_job=ID`.
# Extra sbatch options for both jobs: FACRNN_SBATCH_OPTS (e.g. "--time=8:00:00");
# for the array only: FACRNN_ARRAY_OPTS (e.g. "-n 2" for two ranks per task).
set -euo pipefail

# ---- site settings (edit for your cluster, or set them in the environment) --
: "${FACRNN_ACCOUNT:=}"      # sbatch --account for both jobs (empty: site default)
: "${FACRNN_PARTITION:=}"    # sbatch --partition for both jobs (empty: site default)
: "${FACRNN_ARRAY_LIMIT:=}"  # at most this many array tasks at once (empty: no limit)

FACRNN_HOME="${FACRNN_HOME:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
export FACRNN_HOME   # sbatch passes it on, so the jobs find the tree from the spool copy

usage() { echo "usage: $0 CONFIG [N] [--set key=value ...]" >&2; exit 2; }
[ "$#" -ge 1 ] || usage
config="$1"; shift
n=8
if [ "$#" -ge 1 ] && [[ "$1" =~ ^[0-9]+$ ]]; then n="$1"; shift; fi
[ "$n" -ge 1 ] || { echo "submit-sweep: N must be at least 1, got $n" >&2; exit 2; }
[ -r "$config" ] || { echo "submit-sweep: config '$config' is not readable" >&2; exit 2; }

opts=()
[ -n "$FACRNN_ACCOUNT" ] && opts+=(--account="$FACRNN_ACCOUNT")
[ -n "$FACRNN_PARTITION" ] && opts+=(--partition="$FACRNN_PARTITION")
# shellcheck disable=SC2206
opts+=(${FACRNN_SBATCH_OPTS:-})
# shellcheck disable=SC2206
array_opts=(${FACRNN_ARRAY_OPTS:-})
range="0-$((n - 1))${FACRNN_ARRAY_LIMIT:+%$FACRNN_ARRAY_LIMIT}"

array_id="$(sbatch --parsable "${opts[@]}" "${array_opts[@]}" --array="$range" \
            "$FACRNN_HOME/jobs/sweep-array.sbatch" "$config" "$@")"
array_id="${array_id%%;*}"
collect_id="$(sbatch --parsable "${opts[@]}" --ntasks=1 --job-name=facrnn-collect \
              --output=facrnn-collect-%j.out --dependency=afterok:"$array_id" \
              "$FACRNN_HOME/jobs/sweep.sbatch" "$config" "$@" --collect)"
collect_id="${collect_id%%;*}"
echo "array_job=$array_id"
echo "collect_job=$collect_id"
