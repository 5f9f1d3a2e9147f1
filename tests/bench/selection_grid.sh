#!/usr/bin/env bash
# The selection benchmark: how often does a default sweep name the true
# (K, partition)? Ground truths from `facrnn synth systems` (families the
# rule was not tuned on: docs/synthetic.md), 48 in the design
# (tests/bench/selection_grid.py: 16 structures x 3 SNR levels, observation
# and size rotating), each with its own seed; odd seeds are the reporting
# half, even seeds the tuning half. For each truth it makes the data, runs
# the sweep of docs/selection.md ("The selection benchmark") with
# `mpirun -n P`, times it, and at the end prints the table of
# selection_grid.py report (also written to WORK_DIR/table.md).
#
#   tests/bench/selection_grid.sh [--quick] [--half report|tune|all]
#       [--minutes M] [--only REGEX] [BUILD_DIR] [WORK_DIR]
#
# --quick     100 epochs, 2 restarts per fit (development; not the documented sweep)
# --half      which truths to run [report]
# --minutes   start no new sweep after M minutes (truths run cheapest first;
#             the ones left are listed as not run)
# --only      run only the truths whose id matches REGEX
# WORK_DIR (default: a new temporary folder, kept) holds data, configs,
# logs and results; rerunning in it skips truths already done and resumes a
# sweep that was cut off. Not part of CTest (hours at full size on 2 cores).
set -uo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
QUICK=0 HALF=report MINUTES=0 ONLY=
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1; shift ;;
    --half) HALF=${2:?--half needs report, tune or all}; shift 2 ;;
    --minutes) MINUTES=${2:?--minutes needs a number}; shift 2 ;;
    --only) ONLY=${2:?--only needs a regex}; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) echo "selection_grid.sh: unknown option '$1'" >&2; exit 2 ;;
    *) break ;;
  esac
done
case $HALF in report|tune|all) ;; *) echo "selection_grid.sh: --half must be report, tune or all" >&2; exit 2 ;; esac
BUILD=$(cd "${1:-$SRC/build}" 2>/dev/null && pwd) || { echo "selection_grid.sh: no build directory '${1:-$SRC/build}'" >&2; exit 2; }
W=$(realpath -m "${2:-$(mktemp -d)}")
P=${P:-2}
BIN=$BUILD/facrnn
PY=/usr/bin/python3
[ -x "$BIN" ] || { echo "selection_grid.sh: $BIN not built" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
mkdir -p "$W"
cd "$W" || exit 1
[ -f runs.tsv ] || printf 'id\trc\twall_s\tload_before\tload_after\n' >runs.tsv
load() { cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/'; }
echo "selection grid: work dir $W, half $HALF, $P ranks, quick $QUICK, load $(load)"
start=$(date +%s)

"$PY" "$SRC/tests/bench/selection_grid.py" design | tail -n +2 >design.tsv || exit 1
while IFS=$'\t' read -r id seed half structure systems coupling kind groups K level snr obs N trials ranks; do
  [ "$HALF" = all ] || [ "$half" = "$HALF" ] || continue
  [ -z "$ONLY" ] || [[ $id =~ $ONLY ]] || continue
  grep -q "^$id	0	" runs.tsv && continue
  if [ "$MINUTES" != 0 ] && [ $(( $(date +%s) - start )) -ge $(( MINUTES * 60 )) ]; then
    echo "$id: not started (--minutes $MINUTES reached)"
    continue
  fi
  "$BIN" --quiet synth systems --out "$id.h5" --seed "$seed" --set "systems=[$systems]" --set "coupling=$coupling" \
    --set "snr=$snr" --set "obs=$obs" --set "N=$N" --set "trials=$trials" </dev/null >"$id.synth.log" 2>&1 ||
    { echo "$id: synth failed: $(tail -1 "$id.synth.log")"; printf '%s\t1\t0\t%s\t%s\n' "$id" "$(load)" "$(load)" >>runs.tsv; continue; }
  {
    echo "# selection grid truth $id: $structure ($kind, K = $K, groups $groups), snr $snr, $obs, N $N, $trials trials"
    echo "data: {path: $id.h5}"
    echo "cv: {folds: 3}"
    [ "$QUICK" = 1 ] && echo "train: {epochs: 100, restarts: 2, log_every: 1000}" || echo "train: {log_every: 1000}"
    echo "sweep: {ranks: [$ranks], partitions: all, max_groups: 3, betas: [20], seeds: [0], ranks_per_fit: 1}"
    echo "output: {path: $id.sweep.h5}"
  } >"$id.yaml"
  lb=$(load)
  t0=$(date +%s.%N)
  mpirun -n "$P" "$BIN" sweep "$id.yaml" </dev/null >"$id.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  wall=$(echo "$t1 - $t0" | bc)
  printf '%s\t%d\t%.1f\t%s\t%s\n' "$id" "$rc" "$wall" "$lb" "$(load)" >>runs.tsv
  echo "$id: rc $rc, ${wall%.*} s, truth K = $K $groups ($kind); $(grep -o 'selected: K = [0-9]*, groups [0-9+]*' "$id.log" | tail -1)"
done <design.tsv

"$PY" "$SRC/tests/bench/selection_grid.py" report "$W" "$HALF" | tee table.md
echo "total wall $(( $(date +%s) - start )) s, load at the end $(load)"
