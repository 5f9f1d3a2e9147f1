#!/usr/bin/env bash
# demo.sh: the main job on an embedded default (README command one).
# Installs what is missing, builds, generates the `lorenz-thomas` synthetic
# benchmark, fits FacRNN 3+3 with beta = 20 on 2 ranks, prints the held-out
# metrics and where the results (and the report, when available) are.
#   jobs/demo.sh [OUTDIR]      (default: ./facrnn-demo)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
OUT="${1:-$PWD/facrnn-demo}"
mkdir -p "$OUT"
NP="${FACRNN_DEMO_RANKS:-2}"
"$FACRNN_BIN" synth lorenz-thomas --out "$OUT/lorenz_thomas.h5" --seed 0
cat > "$OUT/demo.yaml" <<YAML
data:
  path: $OUT/lorenz_thomas.h5
model:
  rank: 6
  groups: [3, 3]
train:
  beta: 20
  seed: 0
cv:
  folds: 5
  fold: 0
output:
  path: $OUT/results.h5
YAML
rm -rf "$OUT/results.h5.ckpt"
mpirun -n "$NP" "$FACRNN_BIN" fit "$OUT/demo.yaml"
"$FACRNN_BIN" info "$OUT/results.h5" || true
if [ -x "$FACRNN_SRC/postprocess/report.py" ]; then
  /usr/bin/python3 "$FACRNN_SRC/postprocess/report.py" "$OUT/results.h5" --data "$OUT/lorenz_thomas.h5" --out "$OUT/report"
  echo "report: $OUT/report/index.html"
fi
echo "results: $OUT/results.h5"
