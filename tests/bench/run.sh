#!/usr/bin/env bash
# Benchmark harness: every figure side by side in one invocation, one thread
# per process, a table on stdout and a machine-readable JSON.
#   tests/bench/run.sh [BUILD_DIR] [OUT_JSON]     (defaults: build, bench.json)
# Needs a built tree (cmake --build BUILD_DIR) and /usr/bin/python3 with torch
# for the PyTorch reference. About 5-8 minutes on 2 cores. Scales that had to
# be reduced to fit that budget are named in the table and the JSON.
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
OUT=$(realpath -m "${2:-bench.json}")
BIN=$BUILD/facrnn
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
R=$W/results.txt
: >"$R"
put() { echo "$1=$2" >>"$R"; }
# steps/s from the trainer's last epoch log line
sps() { grep -o '[0-9.]* steps/s' "$1" | tail -1 | cut -d' ' -f1; }
peak_kb() { sort -n "$@" | tail -1; }
put load_before "$(cut -d' ' -f1-3 /proc/loadavg)"

fit_yaml() { # data groups epochs batch
  cat <<YAML
data:
  path: $1
model:
  rank: $(( $(echo "$2" | tr ',' '+') ))
  groups: [$2]
  init: uniform   # as the PyTorch reference; PCA init time is not step time
train:
  restarts: 1     # the figure is the step rate, one initialisation is enough
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

echo "[1/6] paper scale: N=20, K=6 (3+3), M=128, beta=20" >&2
"$BIN" --quiet synth lorenz-thomas --out paper.h5 --seed 0
fit_yaml paper.h5 3,3 400 128 >paper.yaml
"$BIN" fit paper.yaml --set output.path=p1.h5 >p1.log 2>&1
put paper_facrnn_sps "$(sps p1.log)"
/usr/bin/python3 "$SRC/tests/bench/ref_train.py" --N 20 --groups 3,3 --samples 1980 --steps 400 --beta 20 >ref1.json
put paper_ref_sps "$(python3 -c 'import json,sys; print(json.load(open("ref1.json"))["steps_per_s"])')"

echo "[2/6] imaging scale: N=2500, K=12 (6 x 2), M=128" >&2
"$BIN" --quiet synth facrnn --out img.h5 --set N=2500 --set trials=10 --set bins=200 --set groups=[2,2,2,2,2,2]
fit_yaml img.h5 2,2,2,2,2,2 20 128 >img.yaml
"$BIN" fit img.yaml --set output.path=i1.h5 >i1.log 2>&1
put imaging_facrnn_sps "$(sps i1.log)"
/usr/bin/python3 "$SRC/tests/bench/ref_train.py" --N 2500 --groups 2,2,2,2,2,2 --samples 1990 --steps 40 --beta 20 >ref2.json
put imaging_ref_sps "$(python3 -c 'import json,sys; print(json.load(open("ref2.json"))["steps_per_s"])')"
"$BUILD/tests/tool_bench_kernels" 2500 12 128 100 >kern.json

echo "[3/6] large batch: N=1000, K=8 (4+4), M=4096, 1 vs 2 ranks" >&2
"$BIN" --quiet synth facrnn --out big.h5 --set N=1000 --set trials=20 --set bins=1000 --set groups=[4,4]
fit_yaml big.h5 4,4 2 4096 >big.yaml
for np in 1 2; do
  mpirun -n $np "$BIN" fit big.yaml --set output.path=b$np.h5 >b$np.log 2>&1
  put largebatch_sps_np$np "$(sps b$np.log)"
done

echo "[4/6] big data: N=500, reduced to 1e5 bins (see README), 1 epoch, 1 and 2 ranks" >&2
"$BIN" --quiet synth facrnn --out data.h5 --set N=500 --set trials=100 --set bins=1000 --set groups=[2,2]
put bigdata_raw_bytes $((100 * 1000 * 500 * 8))
fit_yaml data.h5 2,2 1 128 >data.yaml
for np in 1 2; do
  rm -f rss.*
  t0=$(date +%s.%N)
  mpirun -n $np bash -c '/usr/bin/time -f %M -o rss.$OMPI_COMM_WORLD_RANK "$0" "$@"' "$BIN" fit data.yaml \
    --set output.path=d$np.h5 >d$np.log 2>&1
  t1=$(date +%s.%N)
  put bigdata_wall_s_np$np "$(python3 -c "print($t1 - $t0)")"
  put bigdata_epoch_s_np$np "$(python3 -c "print(1.0 * $(grep -o '[0-9]* steps/epoch' d$np.log | cut -d' ' -f1) / $(sps d$np.log))")"
  put bigdata_peak_rss_kb_np$np "$(peak_kb rss.*)"
done

echo "[5/6] sweep throughput at paper scale (2 fits = 2 folds, 400 epochs each, extrapolated to 40000 steps)" >&2
cat >sweep.yaml <<YAML
data:
  path: paper.h5
model:
  rank: 6
train:
  beta: 20
  epochs: 400
  eval_every: 1000000
cv:
  folds: 2
sweep:
  ranks: [6]
  partitions: [[3, 3]]
  betas: [20]
  seeds: [0]
output:
  path: sw.h5
YAML
for np in 1 2; do
  t0=$(date +%s.%N)
  mpirun -n $np "$BIN" sweep sweep.yaml --set output.path=sw$np.h5 >sw$np.log 2>&1
  t1=$(date +%s.%N)
  put sweep_wall_s_np$np "$(python3 -c "print($t1 - $t0)")"
done
put sweep_steps_per_fit $((400 * $(grep -o '[0-9]* steps/epoch' sw1.log | head -1 | cut -d' ' -f1)))

echo "[6/6] results I/O: latents of 2e6 bins x K=16 (256 MB) through fr_results_*, vs one plain sequential write" >&2
# Written next to the working directory's disk (the same disk for both writes).
for np in 1 2; do
  mpirun -n $np "$BUILD/tests/tool_bench_io" "$W" 2000000 16 200 3 >io$np.json
done
put load_after "$(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$R" kern.json "$OUT" io1.json io2.json <<'PY'
import json, os, platform, sys
r = {}
for line in open(sys.argv[1]):
    k, v = line.rstrip("\n").split("=", 1)
    try:
        r[k] = float(v)
    except ValueError:
        r[k] = v
kern = json.load(open(sys.argv[2]))
io = [json.load(open(p)) for p in sys.argv[4:6]]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
nfits = 2
fit40k = lambda wall: 60.0 / (wall / nfits * 40000.0 / r["sweep_steps_per_fit"])
res = {
    "machine": {"cpu": cpu, "cores": os.cpu_count(), "blas_core": kern["blas_core"], "blas_config": kern["blas_config"],
                "load_before": r["load_before"], "load_after": r["load_after"]},
    "paper": {"facrnn_steps_per_s": r["paper_facrnn_sps"], "reference_steps_per_s": r["paper_ref_sps"],
              "ratio": r["paper_facrnn_sps"] / r["paper_ref_sps"], "target": ">= 30"},
    "imaging": {"facrnn_steps_per_s": r["imaging_facrnn_sps"], "reference_steps_per_s": r["imaging_ref_sps"],
                "ratio": r["imaging_facrnn_sps"] / r["imaging_ref_sps"], "target_ratio": ">= 3",
                "step_gflops": kern["step_gflops"], "dgemm_gflops": kern["dgemm_gflops"],
                "step_vs_dgemm": kern["step_vs_dgemm"], "target_step_vs_dgemm": ">= 0.5"},
    "large_batch": {"steps_per_s_1rank": r["largebatch_sps_np1"], "steps_per_s_2ranks": r["largebatch_sps_np2"],
                    "time_ratio_2_over_1": r["largebatch_sps_np1"] / r["largebatch_sps_np2"], "target": "<= 0.55"},
    "big_data": {"bins": 100000, "N": 500, "raw_bytes": r["bigdata_raw_bytes"],
                 "epoch_s_1rank": r["bigdata_epoch_s_np1"], "epoch_s_2ranks": r["bigdata_epoch_s_np2"],
                 "peak_rss_bytes_1rank": r["bigdata_peak_rss_kb_np1"] * 1024,
                 "peak_rss_bytes_per_rank_2ranks": r["bigdata_peak_rss_kb_np2"] * 1024,
                 "rss_2_over_1": r["bigdata_peak_rss_kb_np2"] / r["bigdata_peak_rss_kb_np1"], "target_rss_2_over_1": "<= 0.6",
                 "rss_1rank_over_raw": r["bigdata_peak_rss_kb_np1"] * 1024 / r["bigdata_raw_bytes"], "target_rss_over_raw": "<= 1.3"},
    "sweep": {"fits": nfits, "steps_per_fit_measured": r["sweep_steps_per_fit"],
              "wall_s_1rank": r["sweep_wall_s_np1"], "wall_s_2ranks": r["sweep_wall_s_np2"],
              "fits_per_min_40k_1rank": fit40k(r["sweep_wall_s_np1"]), "fits_per_min_40k_2ranks": fit40k(r["sweep_wall_s_np2"])},
    "results_io": {"bytes": io[0]["bytes"], "sequential_MBps": io[0]["sequential_MBps"],
                   "parallel_MBps_1rank": io[0]["parallel_MBps"], "parallel_MBps_2ranks": io[1]["parallel_MBps"],
                   "ratio_1rank": io[0]["ratio"], "ratio_2ranks": io[1]["ratio"], "target": ">= 0.5",
                   "note": "both writes end with fsync; minimum over 3 repetitions"},
}
json.dump(res, open(sys.argv[3], "w"), indent=1)
p, i, l, b, s = res["paper"], res["imaging"], res["large_batch"], res["big_data"], res["sweep"]
o = res["results_io"]
rows = [
    ("paper scale steps/s (facrnn / PyTorch)", f"{p['facrnn_steps_per_s']:.0f} / {p['reference_steps_per_s']:.0f} = {p['ratio']:.1f}x", ">= 30x"),
    ("imaging scale steps/s (facrnn / PyTorch)", f"{i['facrnn_steps_per_s']:.1f} / {i['reference_steps_per_s']:.1f} = {i['ratio']:.1f}x", ">= 3x"),
    ("imaging step GFLOP/s vs DGEMM same shapes", f"{i['step_gflops']:.1f} / {i['dgemm_gflops']:.1f} = {100*i['step_vs_dgemm']:.0f}%", ">= 50%"),
    ("large batch step time 2 ranks / 1 rank", f"{l['time_ratio_2_over_1']:.2f}", "<= 0.55"),
    ("big data epoch s (1 / 2 ranks)", f"{b['epoch_s_1rank']:.2f} / {b['epoch_s_2ranks']:.2f}", "-"),
    ("big data peak RSS per rank 2 / 1 rank", f"{b['rss_2_over_1']:.2f}", "<= 0.6"),
    ("big data peak RSS 1 rank / raw data", f"{b['rss_1rank_over_raw']:.2f}", "<= 1.3"),
    ("sweep fits/min at 40k steps (1 / 2 ranks)", f"{s['fits_per_min_40k_1rank']:.2f} / {s['fits_per_min_40k_2ranks']:.2f}", "-"),
    ("results I/O MB/s parallel HDF5 (1 / 2 ranks) vs sequential",
     f"{o['parallel_MBps_1rank']:.0f} / {o['parallel_MBps_2ranks']:.0f} vs {o['sequential_MBps']:.0f} = "
     f"{100*o['ratio_1rank']:.0f}% / {100*o['ratio_2ranks']:.0f}%", ">= 50%"),
]
print(f"CPU {cpu}, {os.cpu_count()} cores, BLAS {kern['blas_core']}; load {r['load_before']} -> {r['load_after']}")
print("| figure | measured | target |\n|---|---|---|")
for a, m, t in rows:
    print(f"| {a} | {m} | {t} |")
print(f"JSON: {sys.argv[3]}")
PY
