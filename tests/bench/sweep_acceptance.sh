#!/usr/bin/env bash
# Acceptance of sweeps and model selection (not part of CTest: about 30-60
# minutes on 2 cores). Makes three synthetic data sets, runs the sweeps of
# configs/acceptance/ on P ranks (ranks_per_fit 1) and checks the selection:
#   lorenz_thomas  -> K = 6, 3+3
#   entangled      -> K = 4, 4   (one coupled group: no invented groups)
#   facrnn_221     -> K = 5, 2+2+1
#   tests/bench/sweep_acceptance.sh [BUILD_DIR] [WORK_DIR] [NAMES...]
# WORK_DIR (default: a new temporary folder, kept) holds data, results, logs;
# rerunning in the same WORK_DIR resumes (finished runs are skipped).
# Exit status: 0 when every selection is right, 1 otherwise.
set -uo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
W=$(realpath -m "${2:-$(mktemp -d)}")
shift 2 2>/dev/null || shift $#
NAMES=("$@")
[ ${#NAMES[@]} -eq 0 ] && NAMES=(lorenz_thomas entangled facrnn_221)
P=${P:-2}
BIN=$BUILD/facrnn
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
mkdir -p "$W"
cd "$W" || exit 1
echo "work dir: $W, $P ranks, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

synth() { # name -> data file
  case $1 in
    lorenz_thomas) "$BIN" synth lorenz-thomas --out lorenz_thomas.h5 ;;
    entangled) "$BIN" synth entangled --out entangled.h5 ;;
    facrnn_221) "$BIN" synth facrnn --set 'groups=[2,2,1]' --out facrnn_221.h5 ;;
  esac
}
want() {
  case $1 in
    lorenz_thomas) echo "K = 6, groups 3+3," ;;
    entangled) echo "K = 4, groups 4," ;;
    facrnn_221) echo "K = 5, groups 2+2+1," ;;
  esac
}

fail=0
for name in "${NAMES[@]}"; do
  [ -f "$name.h5" ] || synth "$name" >/dev/null 2>&1 || { echo "$name: synth failed"; fail=1; continue; }
  t0=$(date +%s.%N)
  mpirun -n "$P" "$BIN" sweep "$SRC/configs/acceptance/$name.yaml" >"$name.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  wall=$(echo "$t1 - $t0" | bc)
  sel=$(grep -o 'selected: .*' "$name.log" | tail -1)
  echo "== $name: rc $rc, wall ${wall} s, load $(cut -d' ' -f1-3 /proc/loadavg)"
  grep -A 60 ' selection: ' "$name.log" | sed 's/^\[[^]]*\] *//'
  if [ $rc -eq 0 ] && [[ "$sel" == *"$(want "$name")"* ]]; then
    echo "$name: PASS ($sel)"
  else
    echo "$name: FAIL (want $(want "$name") got: ${sel:-nothing})"
    fail=1
  fi
done
exit $fail
