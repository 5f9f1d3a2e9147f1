#!/usr/bin/env bash
# Benchmark harness: the performance figures as users meet them. Every figure
# is the whole-process wall time of the command a user runs, side by side with
# the PyTorch reference in the same invocation, with the machine's load.
#   tests/bench/run.sh [--quick|--smoke] [--r2] [--sweep] [--hold] [--keep] [BUILD_DIR] [OUT_JSON]
#                                        (defaults: build, bench.json)
#   1. per step, whole process: `facrnn fit`, 1 restart, 5000 epochs, vs the
#      reference loop for the same number of steps       (default: on)
#   2. time to a fitted model: a default `facrnn fit` vs the reference's
#      40,000-step loop; held-out group latent R2         (default: on)
#      --r2     also fits lorenz-thomas seeds 1 and 2 (R2 over seeds 0-2)
#   3. --sweep  the paper-size sweep on 2 ranks vs fits x 40,000 reference steps
#   --hold      the figures that must hold (imaging scale, large batch, big data, results I/O)
#   --quick     (or FACRNN_BENCH_QUICK=1) 500 epochs for figure 1 and the
#               reference over the same steps; the sweep at 1/10 of the default
#               epochs. Figure 2 stays the real default fit.
#   --smoke     every figure at a token size: checks the harness, measures nothing
#   --keep      keep the working folder (data, configs, logs, results files)
# Phase lines (`phases: startup X s, init Y s, ...`) are parsed from the fit
# logs when facrnn prints them. tests/bench/README.md says what each figure
# measures and how long each mode takes.
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MODE=full
[ "${FACRNN_BENCH_QUICK:-0}" = 1 ] && MODE=quick
DO_R2=0 DO_SWEEP=0 DO_HOLD=0 KEEP=0
POS=()
for a in "$@"; do
  case $a in
    --quick) MODE=quick ;;
    --smoke) MODE=smoke ;;
    --r2) DO_R2=1 ;;
    --sweep) DO_SWEEP=1 ;;
    --hold) DO_HOLD=1 ;;
    --keep) KEEP=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run.sh: unknown option $a (see --help)" >&2; exit 2 ;;
    *) POS+=("$a") ;;
  esac
done
[ ${#POS[@]} -le 2 ] || { echo "run.sh: at most two arguments, BUILD_DIR and OUT_JSON (see --help)" >&2; exit 2; }
BUILD_ARG=${POS[0]:-$SRC/build}
[ -d "$BUILD_ARG" ] || { echo "run.sh: build folder $BUILD_ARG not found (cmake --build it first)" >&2; exit 2; }
BUILD=$(cd "$BUILD_ARG" && pwd)
OUT=$(realpath -m "${POS[1]:-bench.json}")
BIN=$BUILD/facrnn
PY=/usr/bin/python3
[ -x "$BIN" ] || { echo "run.sh: $BIN not found (cmake --build $BUILD first)" >&2; exit 2; }
$PY -c 'import torch, h5py' 2>/dev/null || { echo "run.sh: $PY cannot import torch and h5py" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

W=$(mktemp -d)
LOADER=
cleanup() {
  [ -n "$LOADER" ] && kill "$LOADER" 2>/dev/null
  if [ $KEEP = 1 ]; then echo "working folder kept: $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'echo "run.sh: stopped at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$W"
R=$W/results.txt
: >"$R"
put() { echo "$1=$2" >>"$R"; }
now() { date +%s.%N; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
put mode $MODE
put flags "r2=$DO_R2 sweep=$DO_SWEEP hold=$DO_HOLD"
put harness_t0 "$(now)"
# The 1-minute load average every 5 s, so each timed process can be given the
# load it ran under (the report takes the samples inside its start/end).
(while :; do echo "$(now) $(loadavg)"; sleep 5; done) >load.log 2>/dev/null &
LOADER=$!

# timed NAME CMD...: whole-process wall time (from the shell: exec, MPI start-up,
# everything up to exit), CPU time of the process and its children, peak RSS,
# load average before and after. Output goes to NAME.log.
timed() {
  local name=$1 rc=0 t0 t1
  shift
  put "$name.cmd" "$*"
  put "$name.load_before" "$(loadavg)"
  t0=$(now)
  /usr/bin/time -f '%e %U %S %M' -o "$name.time" "$@" >"$name.log" 2>&1 || rc=$?
  t1=$(now)
  put "$name.load_after" "$(loadavg)"
  put "$name.t0" "$t0"
  put "$name.t1" "$t1"
  put "$name.wall_s" "$(awk "BEGIN { print $t1 - $t0 }")"
  # /usr/bin/time writes "Command exited with non-zero status" first on failure
  read -r _ u s m < <(tail -1 "$name.time")
  put "$name.cpu_s" "$(awk "BEGIN { print $u + $s }")"
  put "$name.max_rss_kb" "$m"
  if [ $rc -ne 0 ]; then
    echo "run.sh: $name failed (exit $rc): $*; last lines of its log:" >&2
    tail -5 "$name.log" >&2
    exit 1
  fi
}
# default of a configuration key, from `facrnn fit --help`
key_default() { "$BIN" fit --help | awk -v k="$1" '$1 == k { for (i = 1; i < NF; ++i) if ($i == "default") v = $(i + 1) } END { print v }'; }

case $MODE in
  full) T1_EPOCHS=5000 ;;
  quick) T1_EPOCHS=500 ;;
  smoke) T1_EPOCHS=20 ;;
esac
DEFAULT_EPOCHS=$(key_default train.epochs)
# Figure 2 (and the R2 fits) are every default; smoke shortens them only to check the harness.
DEFAULT_FIT_SET=()
[ $MODE = smoke ] && DEFAULT_FIT_SET=(--set train.epochs=20 --set train.restarts=2)

echo "[env] machine, BLAS core, kernel step floor" >&2
"$BUILD/tests/tool_bench_kernels" 20 6 128 100 >kern.json
"$BIN" --version >version.txt 2>&1
put default_epochs "$DEFAULT_EPOCHS"

# The benchmark problem: Lorenz + Thomas data with the generator's defaults;
# N = 20, K = 6 as 3+3, M = 128, beta = 20 stated explicitly (they define the
# problem; today they are also the defaults or the data's shape).
"$BIN" --quiet synth lorenz-thomas --out lt.h5
fit_yaml() { # extra train lines
  cat <<YAML
data:
  path: lt.h5
model:
  rank: 6
  groups: [3, 3]
train:
  batch_size: 128
  beta: 20
$1
YAML
}

echo "[1] per step, whole process: facrnn fit (1 restart, $T1_EPOCHS epochs) vs the reference loop, same steps" >&2
fit_yaml "  restarts: 1
  epochs: $T1_EPOCHS" >t1.yaml
timed t1_fit "$BIN" fit t1.yaml --set output.path=t1.h5
T1_STEPS=$($PY -c 'import h5py, sys; f = h5py.File(sys.argv[1], "r"); print(sum(int(r["metrics"].attrs["steps"]) for r in f["runs"].values()))' t1.h5)
N_TRAIN=$(grep -o 'n_train=[0-9]*' t1_fit.log | head -1 | cut -d= -f2)
put t1_steps "$T1_STEPS"
MARKS=40000
[ "$T1_STEPS" -ge 40000 ] || MARKS=
timed t1_ref $PY "$SRC/tests/bench/ref_train.py" --N 20 --groups 3,3 --samples "${N_TRAIN:-1584}" --batch 128 \
  --beta 20 --steps "$T1_STEPS" --warmup 0 --threads 1 --marks "$MARKS"

echo "[2] time to a fitted model: a default facrnn fit vs the reference's 40,000-step loop" >&2
fit_yaml "" >t2.yaml
timed t2_fit "$BIN" fit t2.yaml --set output.path=t2.h5 "${DEFAULT_FIT_SET[@]}"
if [ $DO_R2 = 1 ]; then
  for s in 1 2; do
    echo "[2] held-out group latent R2: default fit on lorenz-thomas seed $s" >&2
    "$BIN" --quiet synth lorenz-thomas --seed $s --out lt$s.h5
    fit_yaml "" | sed "s|path: lt.h5|path: lt$s.h5|" >r2_s$s.yaml
    timed r2_fit_s$s "$BIN" fit r2_s$s.yaml --set output.path=r2_s$s.h5 "${DEFAULT_FIT_SET[@]}"
  done
fi

if [ $DO_SWEEP = 1 ]; then
  SWEEP_SET=()
  case $MODE in
    quick) SWEEP_SET=(--set train.epochs=$((DEFAULT_EPOCHS / 10))) ;;
    smoke) SWEEP_SET=(--set train.epochs=2 --set train.restarts=1) ;;
  esac
  echo "[3] paper-size sweep on 2 ranks (${SWEEP_SET[*]:-every default}); tens of minutes" >&2
  cat >sweep.yaml <<YAML
data:
  path: lt.h5
cv:
  folds: 3
sweep:
  ranks: [4, 6, 8]
  partitions: all
  max_groups: 3
  min_group_size: 2
  betas: [0, 20]
  seeds: [0, 1]
output:
  path: sweep.h5
YAML
  put sweep_set "${SWEEP_SET[*]:-}"
  timed sweep mpirun -n 2 "$BIN" sweep sweep.yaml "${SWEEP_SET[@]}"
  "$BIN" info sweep.h5 >sweep_info.txt 2>&1 || true
fi

if [ $DO_HOLD = 1 ]; then
  # Figures that must hold. These time training steps alone (trainer's log) or
  # a kernel, with `model.init: uniform` and evaluation off, as before.
  sps() { grep -o '[0-9.]* steps/s' "$1" | tail -1 | cut -d' ' -f1; }
  hold_yaml() { # data groups epochs batch
    cat <<YAML
data:
  path: $1
model:
  rank: $(($(echo "$2" | tr ',' '+')))
  groups: [$2]
  init: uniform
train:
  restarts: 1
  beta: 20
  epochs: $3
  batch_size: $4
  log_every: 1
  eval_every: 1000000
cv:
  folds: 1
output:
  path: out.h5
YAML
  }
  IMG_EPOCHS=20 IO_BINS=2000000
  [ $MODE = smoke ] && IMG_EPOCHS=2 IO_BINS=20000
  echo "[hold] imaging scale: N=2500, K=12 (6 x 2), M=128" >&2
  "$BIN" --quiet synth facrnn --out img.h5 --set N=2500 --set trials=10 --set bins=200 --set groups=[2,2,2,2,2,2]
  hold_yaml img.h5 2,2,2,2,2,2 "$IMG_EPOCHS" 128 >img.yaml
  timed hold_img_fit "$BIN" fit img.yaml --set output.path=i1.h5
  put hold_imaging_facrnn_sps "$(sps hold_img_fit.log)"
  timed hold_img_ref $PY "$SRC/tests/bench/ref_train.py" --N 2500 --groups 2,2,2,2,2,2 --samples 1990 --steps 40 --beta 20
  "$BUILD/tests/tool_bench_kernels" 2500 12 128 100 >kern_img.json

  echo "[hold] large batch: N=1000, K=8 (4+4), M=4096, 1 vs 2 ranks" >&2
  "$BIN" --quiet synth facrnn --out big.h5 --set N=1000 --set trials=20 --set bins=1000 --set groups=[4,4]
  hold_yaml big.h5 4,4 2 4096 >big.yaml
  for np in 1 2; do
    timed hold_big_np$np mpirun -n $np "$BIN" fit big.yaml --set output.path=b$np.h5
    put hold_largebatch_sps_np$np "$(sps hold_big_np$np.log)"
  done

  echo "[hold] big data: N=500, 1e5 bins, 1 epoch, 1 and 2 ranks (peak RSS per rank)" >&2
  "$BIN" --quiet synth facrnn --out data.h5 --set N=500 --set trials=100 --set bins=1000 --set groups=[2,2]
  hold_yaml data.h5 2,2 1 128 >data.yaml
  for np in 1 2; do
    rm -f rss.*
    timed hold_data_np$np mpirun -n $np bash -c '/usr/bin/time -f %M -o rss.$OMPI_COMM_WORLD_RANK "$0" "$@"' \
      "$BIN" fit data.yaml --set output.path=d$np.h5
    put hold_bigdata_epoch_s_np$np "$(awk "BEGIN { print $(grep -o '[0-9]* steps/epoch' hold_data_np$np.log | cut -d' ' -f1) / $(sps hold_data_np$np.log) }")"
    put hold_bigdata_peak_rss_kb_np$np "$(sort -n rss.* | tail -1)"
  done

  echo "[hold] results I/O: latents of $IO_BINS bins x K=16 through fr_results_*, vs one sequential write" >&2
  for np in 1 2; do
    put hold_io_bins "$IO_BINS"
    mpirun -n $np "$BUILD/tests/tool_bench_io" "$W" "$IO_BINS" 16 200 3 >io$np.json
  done
fi
put harness_t1 "$(now)"
kill "$LOADER" 2>/dev/null || true
LOADER=
$PY "$SRC/tests/bench/report.py" "$W" "$OUT"
