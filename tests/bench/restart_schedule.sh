#!/usr/bin/env bash
# Which restart schedule is the default: every default fit (8 restarts) with
# train.restart_schedule all and halving, side by side, on lorenz-thomas seeds
# 0-2 (K = 6, 3+3) and the facrnn generator's 2+2+1 data (K = 5). Halving
# becomes the default only if the chosen model's held-out group latent R2 is
# within 0.01 of "all" on every data set. Prints one row per data set and
# schedule: whole-process wall time, the chosen restart, the R2.
#   tests/bench/restart_schedule.sh [BUILD_DIR]      (about 5 minutes on one core)
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=$(cd "${1:-$SRC/build}" && pwd)/facrnn
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
for s in 0 1 2; do "$BIN" --quiet synth lorenz-thomas --seed $s --out lt$s.h5; done
"$BIN" --quiet synth facrnn --seed 0 --set groups=[2,2,1] --out fr.h5
cfg() { printf 'data:\n  path: %s\nmodel:\n  rank: %s\n  groups: %s\n' "$1" "$2" "$3"; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-8s %8s %7s %9s\n' data schedule wall_s chosen r2
for d in lt0 lt1 lt2 fr; do
  if [ $d = fr ]; then cfg fr.h5 5 "[2, 2, 1]" >$d.yaml; else cfg $d.h5 6 "[3, 3]" >$d.yaml; fi
  for sch in all halving; do
    t0=$(date +%s.%N)
    "$BIN" --quiet fit $d.yaml --set train.restart_schedule=$sch --set output.path=${d}_$sch.h5
    t1=$(date +%s.%N)
    $PY - ${d}_$sch.h5 $d $sch "$(echo "$t1 - $t0" | bc)" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
run = next(iter(f["runs"].values()))
m = run["metrics"].attrs
print(f"{sys.argv[2]:<8} {sys.argv[3]:<8} {float(sys.argv[4]):8.1f} {int(m['restart_chosen']) + 1:7d} "
      f"{float(m['heldout_group_latent_r2']):9.4f}")
PY
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
