#!/usr/bin/env bash
# ctest: PROCESSORS 2
# Concurrent writers: a second fit or sweep pointed at an output another run
# is using is refused before it does any work (one line, exit 1, naming the
# holder), the way `sweep --slice` jobs of one sweep share an output is kept,
# and a lock file left by a SIGKILLed run does not block the rerun. The first
# run is frozen with SIGSTOP while the others try, so nothing depends on timing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WORK"
"$FACRNN_BIN" --quiet synth lorenz-thomas --out d.h5 --seed 0 --set trials=12 --set bins=40 --set N=10
cat > f.yaml <<'YAML'
data:
  path: d.h5
model:
  rank: 4
  groups: [2, 2]
train:
  epochs: 200
  restarts: 1
  checkpoint_every: 1
  log_every: 1
cv:
  folds: 2
output:
  path: out.h5
YAML
cat > s.yaml <<'YAML'
data:
  path: d.h5
model:
  init: uniform
train:
  epochs: 6
  restarts: 1
  batch_size: 32
  eval_every: 2
  checkpoint_every: 1
  log_every: 100
cv:
  folds: 2
sweep:
  ranks: [2, 3]
  partitions: all
  betas: [1]
  seeds: [0]
output:
  path: sw.h5
YAML

# wait_for FILE REGEX: up to 120 s for REGEX to appear in FILE.
wait_for() {
  for _ in $(seq 1200); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1"; tail -5 "$1"; return 1
}
# one_line_refusal WHAT PHRASE -- CMD...: exit 1, PHRASE, and one line on stderr.
one_line_refusal() {
  local what="$1" phrase="$2"; shift 3
  local rc=0
  timeout 120 "$@" > refusal.out 2> refusal.err || rc=$?
  if [ "$rc" -ne 1 ]; then fail "$what: exit $rc, expected 1"; tail -3 refusal.err; return; fi
  if ! grep -qF -- "$phrase" refusal.err; then fail "$what: message lacks '$phrase'"; cat refusal.err; return; fi
  # facrnn's own lines (mpirun adds its notice of a rank's non-zero exit)
  if [ "$(grep -c "^facrnn" refusal.err)" -ne 1 ] || { [ "$1" = "$FACRNN_BIN" ] && [ "$(grep -c . refusal.err)" -ne 1 ]; }; then
    fail "$what: not exactly one line from facrnn"; cat refusal.err; return; fi
  pass "$what: exit 1, one line: $(grep "^facrnn" refusal.err)"
}

# ---- a fit holds out.h5: a second fit and a sweep on it are refused ---------------
mpirun -n 2 "$FACRNN_BIN" fit f.yaml > a.log 2>&1 &
apid=$!
wait_for a.log "epoch +20/"
pkill -STOP --parent $apid
[ -f out.h5.lock ] && grep -q "^[0-9]" out.h5.lock && pass "the running fit holds out.h5.lock" \
  || fail "no lock file with the holder's pid"
holder_pid=$(cut -d' ' -f1 out.h5.lock)
ls out.h5.ckpt > ckpt.before
md5sum out.h5.ckpt/* > md5.before
one_line_refusal "second fit" "out.h5 is in use by another facrnn run (pid $holder_pid" -- \
  "$FACRNN_BIN" --quiet fit f.yaml
one_line_refusal "second fit at 2 ranks" "is in use by another facrnn run" -- \
  mpirun -n 2 "$FACRNN_BIN" --quiet fit f.yaml
one_line_refusal "sweep on the fit's output" "is in use by another facrnn run" -- \
  "$FACRNN_BIN" --quiet sweep s.yaml --set output.path=out.h5
[ ! -e out.h5 ] && [ ! -e out.h5.runs ] && [ ! -e out.h5.manifest ] && ls out.h5.ckpt | cmp -s - ckpt.before \
  && md5sum -c --quiet md5.before && pass "the refused runs wrote nothing" || fail "a refused run wrote something"

# ---- SIGKILL the holder: its lock file stays, but does not block the rerun ---------
pkill -KILL --parent $apid
wait $apid || true
[ -f out.h5.lock ] && pass "a killed run leaves its lock file behind" || fail "lock file vanished with SIGKILL"
rc=0
timeout 300 mpirun -n 2 "$FACRNN_BIN" fit f.yaml > b.log 2>&1 || rc=$?
if [ "$rc" -eq 0 ] && [ -f out.h5 ] && grep -q "resum" b.log; then
  pass "the rerun takes the stale lock, resumes and finishes"
else
  fail "rerun after SIGKILL: exit $rc"; tail -5 b.log
fi
[ ! -e out.h5.lock ] && pass "a finished fit removes its lock file" || fail "out.h5.lock left after a clean exit"

# ---- sweep slices share an output; a slice twice, or a whole sweep, are refused ----
"$FACRNN_BIN" sweep s.yaml --slice 0/2 --set train.log_every=1 > s0.log 2>&1 &
s0=$!
wait_for s0.log "restart 1/1 epoch"
kill -STOP $s0
one_line_refusal "slice 0/2 twice" "sw.h5 (slice0of2) is in use by another facrnn run" -- \
  "$FACRNN_BIN" --quiet sweep s.yaml --slice 0/2
one_line_refusal "whole sweep while a slice runs" "sw.h5 is in use by another facrnn run" -- \
  "$FACRNN_BIN" --quiet sweep s.yaml
one_line_refusal "--collect while a slice runs" "sw.h5 is in use by another facrnn run" -- \
  "$FACRNN_BIN" --quiet sweep s.yaml --collect
one_line_refusal "fit on a sweep's output" "sw.h5 is in use by another facrnn run" -- \
  "$FACRNN_BIN" --quiet fit f.yaml --set output.path=sw.h5
rc=0
timeout 300 "$FACRNN_BIN" --quiet sweep s.yaml --slice 1/2 > s1.log 2>&1 || rc=$?
[ "$rc" -eq 0 ] && pass "slice 1/2 runs beside slice 0/2" || { fail "slice 1/2: exit $rc"; tail -3 s1.log; }
[ -e sw.h5.lock ] && pass "the output lock stays while slice 0/2 still holds it" || fail "slice 1/2 removed a held lock"
kill -CONT $s0
rc=0
wait $s0 || rc=$?
[ "$rc" -eq 0 ] && pass "slice 0/2 finishes after the refusals" || { fail "slice 0/2: exit $rc"; tail -3 s0.log; }
rc=0
"$FACRNN_BIN" --quiet sweep s.yaml --collect > c.log 2>&1 || rc=$?
[ "$rc" -eq 0 ] && [ "$(grep -c ',done,' sw.h5.csv)" = 10 ] && pass "--collect assembles all 10 runs" \
  || { fail "--collect: exit $rc"; tail -3 c.log; }
leftover=$(ls | grep '\.lock$' || true)
[ -z "$leftover" ] && pass "no lock file left after clean exits" || fail "lock files left: $leftover"
finish
