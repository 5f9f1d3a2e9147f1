#!/bin/bash
# ctest: PROCESSORS 2 LABELS slow
# One small end-to-end selection per dynamical family of `facrnn synth
# systems` (docs/synthetic.md): data with a known partition at high SNR, the
# documented default sweep restricted to the true K (every partition into at
# most 3 groups, beta 20, 3 folds, one seed, every training key at its
# default), and the answer must be the truth. Families: Van der Pol + Hopf
# (2+2), Rossler + ring attractor (3+2, 40 trials), damped oscillator + input-driven
# line attractor (2+1), Hopf driving a ring attractor (coupled: one group),
# Lorenz-96 (one 5-D system: one group), latent noise without dynamics (no
# sub-circuits: one group). The data seeds are not those of the selection
# benchmark (tests/bench/selection_grid.sh), whose tuning half set the rule.
set -euo pipefail
: "${FACRNN_BIN:?}"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
trap 'echo "test_selection_families: failed at line $LINENO" >&2' ERR
cd "$W"
fail=0

# case NAME SEED SYSTEMS COUPLING K EXPECTED_GROUPS [TRIALS]
case_() {
    local name=$1 seed=$2 systems=$3 coupling=$4 K=$5 want=$6 trials=${7:-20}
    "$FACRNN_BIN" --quiet synth systems --out "$name.h5" --seed "$seed" --set "systems=[$systems]" \
        --set "coupling=$coupling" --set snr=4 --set N=20 --set "trials=$trials"
    cat > "$name.yaml" <<YAML
data: {path: $name.h5}
cv: {folds: 3}
train: {log_every: 1000}
sweep: {ranks: [$K], partitions: all, max_groups: 3, betas: [20], seeds: [0]}
output: {path: $name.sweep.h5}
YAML
    mpirun -n 2 "$FACRNN_BIN" sweep "$name.yaml" > "$name.log" 2>&1 ||
        { echo "FAIL $name: the sweep failed: $(tail -1 "$name.log")"; fail=1; return; }
    local got
    got=$(grep -o 'selected: K = [0-9]*, groups [0-9+]*' "$name.log" | tail -1 | sed 's/.*groups //')
    # the answer as a multiset of group sizes (3+2 and 2+3 are one answer)
    local gs ws
    gs=$(tr '+' '\n' <<<"$got" | sort -n | tr '\n' '+')
    ws=$(tr '+' '\n' <<<"$want" | sort -n | tr '\n' '+')
    if [ "$gs" = "$ws" ]; then
        echo "ok   $name: truth $want, selected $got ($(grep -o 'confidence: .*' "$name.log" | tail -1))"
    else
        echo "FAIL $name: truth $want, selected '$got'"
        grep -A12 'selected:' "$name.log" | sed 's/^/     /'
        fail=1
    fi
}

case_ vdp_hopf      101 vdp,hopf      0   4 2+2
# 40 trials: with 20 (this seed) one fold's 3+2 fit grouped the latents
# wrongly and won on its training objective (docs/selection.md, failure modes)
case_ rossler_ring  103 rossler,ring  0   5 3+2 40
case_ damped_line   105 damped,line   0   3 2+1
case_ hopf_to_ring  107 hopf,ring     1.5 4 4
case_ l96           109 l96:5         0   5 5
case_ noise         111 noise:3       0   3 3
exit $fail
