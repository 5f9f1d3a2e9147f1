#!/usr/bin/env bash
# ctest: PROCESSORS 2
# `facrnn synth` and `facrnn info` from the command line: every generator
# writes a file that passes validation at 2 ranks, the same seed gives the
# same bytes whatever the rank count, bad keys exit 2 naming the key, and
# info summarises input and results files.
set -u
BIN=${FACRNN_BIN:?}
TOOL=${FACRNN_BUILD:?}/tests/tool_mkbad
MPIRUN=${MPIRUN:-mpirun}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

for g in lorenz-thomas facrnn entangled multiregion systems; do
    timeout 60 "$MPIRUN" -n 2 "$BIN" --quiet synth "$g" --out "$dir/$g.h5" --seed 5 --set trials=6 --set bins=40 ||
        fail "synth $g"
    out=$(timeout 60 "$MPIRUN" -n 2 "$BIN" --quiet info "$dir/$g.h5" --validate 2>&1) || fail "validate $g: $out"
    echo "$out"
done
# Same seed at another rank count: same bytes; other seed: different.
timeout 60 "$BIN" --quiet synth facrnn --out "$dir/again.h5" --seed 5 --set trials=6 --set bins=40 || fail "synth again"
cmp -s "$dir/facrnn.h5" "$dir/again.h5" || fail "same seed, different bytes"
timeout 60 "$BIN" --quiet synth facrnn --out "$dir/other.h5" --seed 6 --set trials=6 --set bins=40 || fail "synth other"
cmp -s "$dir/facrnn.h5" "$dir/other.h5" && fail "different seeds, same bytes"
# Poisson counts with inputs and lags validate as counts with those lags.
timeout 60 "$BIN" --quiet synth facrnn --out "$dir/pois.h5" --set obs=poisson --set inputs=2 --set lags=3 \
    --set 'groups=[2,1]' --set trials=4 || fail "synth poisson"
out=$(timeout 60 "$BIN" --quiet info "$dir/pois.h5" --validate --lags 3 2>&1) || fail "validate poisson: $out"
echo "$out" | grep -q 'D = 2' || fail "poisson file lacks inputs: $out"
echo "$out" | grep -q 'observation poisson' || fail "poisson file not marked poisson: $out"

# systems: the partition requested is the one in /truth; coupled -> one
# group; the same seed gives the same bytes at 1 and 2 ranks.
timeout 60 "$BIN" --quiet synth systems --out "$dir/sys1.h5" --seed 5 --set trials=6 --set bins=40 || fail "synth systems 1 rank"
cmp -s "$dir/systems.h5" "$dir/sys1.h5" || fail "systems: same seed, different bytes at 1 and 2 ranks"
sysinfo() { # SYSTEMS COUPLING OBS -> info text of the file
    timeout 60 "$BIN" --quiet synth systems --out "$dir/s.h5" --set "systems=$1" --set "coupling=$2" --set "obs=$3" \
        --set trials=4 --set bins=30 --set N=12 --set snr=2 || fail "synth systems $1 coupling $2"
    "$BIN" --quiet info "$dir/s.h5"
}
out=$(sysinfo '[rossler,line,line]' 0 poisson)
for p in "@groups = [3, 1, 1]" '@kind = "independent"' '@observation = "poisson"'; do
    echo "$out" | grep -qF -- "$p" || fail "systems 3+1+1 lacks '$p': $out"
done
out=$(sysinfo '[vdp,hopf,damped]' 1.5 gaussian)
for p in "@groups = [6]" '@kind = "coupled"'; do echo "$out" | grep -qF -- "$p" || fail "systems coupled lacks '$p'"; done
out=$(sysinfo '[noise:4]' 0 gaussian)
for p in "@groups = [4]" '@kind = "noise"'; do echo "$out" | grep -qF -- "$p" || fail "systems noise lacks '$p'"; done

# Errors: exit 2 and the key named.
# check2 NP PHRASE ARGS...: NP = 1 runs without the launcher (mpirun adds
# about two seconds to every failing job).
check2() {
    local np=$1 phrase=$2
    shift 2
    local err rc
    if [ "$np" -eq 1 ]; then
        err=$(timeout 60 "$BIN" --quiet "$@" 2>&1 >/dev/null)
    else
        err=$(timeout 60 "$MPIRUN" -n "$np" "$BIN" --quiet "$@" 2>&1 >/dev/null)
    fi
    rc=$?
    [ $rc -eq 2 ] || { fail "$* exited $rc, expected 2"; return; }
    echo "$err" | grep -qF -- "$phrase" || fail "$*: message lacks '$phrase': $err"
}
check2 2 "unknown synth key 'wobble'" synth facrnn --out "$dir/x.h5" --set wobble=1
check2 1 "synth key 'b' does not apply to generator facrnn" synth facrnn --out "$dir/x.h5" --set b=0.3
check2 1 "unknown synthetic generator 'lorenz'" synth lorenz --out "$dir/x.h5"
check2 1 "--out FILE is required" synth facrnn
check2 1 "--set N=x: expected an integer" synth facrnn --out "$dir/x.h5" --set N=x
check2 1 "is not an HDF5 file" info /etc/hostname
check2 1 "unknown family 'lorenz'" synth systems --out "$dir/x.h5" --set 'systems=[vdp,lorenz]'
check2 1 "synth key 'noise' does not apply to generator systems" synth systems --out "$dir/x.h5" --set noise=0.1
check2 1 "'noise' is a null on its own" synth systems --out "$dir/x.h5" --set 'systems=[noise,vdp]'

# info on an input file and on a results file.
out=$("$BIN" --quiet info "$dir/lorenz-thomas.h5") || fail "info input"
for p in "kind: input" "trials: 6, total bins 240, lengths 40..40" "/data  [240, 20] float64" "@groups = [3, 3]" \
    "@observation = \"gaussian\"" "truth: present"; do
    echo "$out" | grep -qF -- "$p" || fail "info input lacks '$p'"
done
"$TOOL" results "$dir/results.h5" || fail "tool_mkbad results"
out=$("$BIN" --quiet info "$dir/results.h5" --full) || fail "info results"
for p in "kind: results" "runs: 1" "sweep table: [3] rows" "/runs/r0/params/A  [4, 3] float64" "@status = \"done\""; do
    echo "$out" | grep -qF -- "$p" || fail "info results lacks '$p'"
done

if [ "$fails" -ne 0 ]; then
    echo "$fails failure(s)"
    exit 1
fi
echo "all synth/info cases passed"
