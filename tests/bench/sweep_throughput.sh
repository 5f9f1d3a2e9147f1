#!/usr/bin/env bash
# Sweep throughput: the same fixed small sweep (lorenz-thomas, K = 4,
# partitions [2,2] and [4], beta 20, seeds 0..3, 2 folds: 16 fits of 60
# epochs, 1 restart) on P = 1 and P = 2 ranks with ranks_per_fit 1, and the
# ratio of wall times wall(P=2) / wall(P=1) (target <= 0.55: two teams
# should nearly halve the time; rank 0 trains and coordinates). The load
# average before and after each run is printed: on a shared machine the
# ratio is only meaningful when nothing else is running.
#   tests/bench/sweep_throughput.sh [BUILD_DIR]
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
BIN=$BUILD/facrnn
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
"$BIN" synth lorenz-thomas --out lt.h5 >/dev/null 2>&1
cat >sweep.yaml <<YAML
data:
  path: lt.h5
model:
  init: uniform
train:
  epochs: 60
  restarts: 1
  log_every: 1000
  checkpoint_every: 0
cv:
  folds: 2
sweep:
  ranks: [4]
  partitions: [[2, 2], [4]]
  betas: [20]
  seeds: [0, 1, 2, 3]
  ranks_per_fit: 1
YAML
declare -A wall
for P in 1 2; do
  la0=$(cut -d' ' -f1-3 /proc/loadavg)
  t0=$(date +%s.%N)
  mpirun -n $P "$BIN" sweep sweep.yaml --set output.path=p$P.h5 >p$P.log 2>&1
  t1=$(date +%s.%N)
  wall[$P]=$(echo "$t1 - $t0" | bc)
  done_line=$(grep -o 'sweep: [0-9]* of [0-9]* runs done' p$P.log | tail -1)
  printf 'P = %d: wall %.2f s (%s); load average before %s, after %s\n' $P "${wall[$P]}" "$done_line" "$la0" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
done
ratio=$(echo "scale=4; ${wall[2]} / ${wall[1]}" | bc)
printf 'ratio wall(P=2)/wall(P=1) = %.3f (target <= 0.55); %d cores\n' "$ratio" "$(nproc --all)"
