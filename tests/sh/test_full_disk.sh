#!/usr/bin/env bash
# ctest: PROCESSORS 2
# Full and read-only disks. Results and checkpoints live on a small tmpfs
# mounted by the test (skipped when mounting is not permitted). With the disk
# filled to a few KiB, a checkpoint write and then a results write run out of
# space mid-file: each must stop with one line naming the file and the cause,
# exit 1, leave the previous results and checkpoints byte-identical (md5) and
# no temp file behind; once space is back the same command finishes. A
# read-only output (or checkpoint) directory is refused before training starts.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WORK"
MNT="$WORK/mnt"
mkdir -p "$MNT"
if ! mount -t tmpfs -o size=2m facrnn-test "$MNT" 2>/dev/null; then
  echo "SKIP: cannot mount a tmpfs here (needs root)"; exit 77
fi
trap 'umount "$MNT" 2>/dev/null || umount -l "$MNT"; rm -rf "$WORK"' EXIT
"$FACRNN_BIN" --quiet synth lorenz-thomas --out d.h5 --seed 0 --set trials=12 --set bins=40 --set N=10
cat > f.yaml <<YAML
data:
  path: $WORK/d.h5
model:
  rank: 4
  groups: [2, 2]
train:
  epochs: 400   # long enough that the USR1 below lands inside the fit
  restarts: 1
  checkpoint_every: 1
  log_every: 1
cv:
  folds: 2
output:
  path: $MNT/out.h5
YAML
ckpt_a=$MNT/out.h5.ckpt/K4_g2+2_b20_s0_f0.ckpt.h5
ckpt_b=$MNT/out.h5.ckpt/K4_g2+2_b20_s1_f0.ckpt.h5

# fill_to BYTES: leave about BYTES free on the tmpfs.
fill_to() {
  rm -f "$MNT/filler"
  local avail; avail=$(df -B1 --output=avail "$MNT" | tail -1)
  local n=$(( (avail - $1) / 4096 ))
  [ "$n" -gt 0 ] && dd if=/dev/zero of="$MNT/filler" bs=4096 count="$n" status=none
  df -B1 --output=avail "$MNT" | tail -1
}
snapshot() { (cd "$MNT" && md5sum out.h5 out.h5.ckpt/*.h5); }
no_temp_files() {
  local t; t=$(find "$MNT" -name '*.tmp*' -o -name '*.probe' | head -5)
  [ -z "$t" ] && pass "$1: no temp file left" || fail "$1: temp files left: $t"
}
# one_line_failure WHAT CODE PHRASE -- CMD...: exit CODE, PHRASE in facrnn's only line.
one_line_failure() {
  local what="$1" code="$2" phrase="$3"; shift 4
  local rc=0
  timeout 300 "$@" > run.out 2> run.err || rc=$?
  # facrnn's own line (mpirun and MPI-IO add theirs): exactly one, with PHRASE
  local lines; lines=$(grep -c "^facrnn" run.err || true)
  if [ "$rc" -ne "$code" ] || ! grep "^facrnn" run.err | grep -qF -- "$phrase" || [ "$lines" -ne 1 ]; then
    fail "$what: exit $rc (want $code), $lines line(s) from facrnn, want '$phrase'"; cat run.err | head -8; return
  fi
  pass "$what: exit $code: $(grep "^facrnn" run.err)"
}

# ---- a finished fit (results + checkpoint A), and a stopped one (checkpoint B) ------
mpirun -n 2 "$FACRNN_BIN" --quiet fit f.yaml
rc=0
mpirun -n 2 "$FACRNN_BIN" fit f.yaml --set train.seed=1 > b.log 2>&1 &
pid=$!
for _ in $(seq 1200); do grep -q "epoch  *5/" b.log && break; sleep 0.1; done
kill -USR1 $pid
wait $pid || rc=$?
[ "$rc" -eq 75 ] && [ -f "$ckpt_a" ] && [ -f "$ckpt_b" ] && pass "results, checkpoint A, stopped checkpoint B" \
  || { fail "setup: exit $rc"; ls -R "$MNT"; }
snapshot > before.md5

# ---- a checkpoint write runs out of space mid-file -----------------------------------
echo "free bytes: $(fill_to 8192)"
one_line_failure "checkpoint on a full disk" 1 "No space left on device" -- \
  mpirun -n 2 "$FACRNN_BIN" --quiet fit f.yaml --set train.seed=1
grep "^facrnn" run.err | grep -qF "out.h5.ckpt/K4_g2+2_b20_s1_f0.ckpt.h5" && pass "the message names the checkpoint" \
  || fail "the message does not name the checkpoint"
snapshot | cmp -s - before.md5 && pass "results and both checkpoints unchanged after ENOSPC" \
  || { fail "files changed after ENOSPC"; snapshot | diff - before.md5; }
no_temp_files "checkpoint ENOSPC"

# ---- the results write runs out of space (checkpoints on another disk) ---------------
mkdir -p ck && cp "$ckpt_b" ck/
echo "free bytes: $(fill_to 8192)"
one_line_failure "results on a full disk" 1 "No space left on device" -- \
  mpirun -n 2 "$FACRNN_BIN" --quiet fit f.yaml --set train.seed=1 --set output.checkpoint_dir="$WORK/ck"
snapshot | cmp -s - before.md5 && pass "results and checkpoints unchanged after a failed results write" \
  || { fail "files changed after ENOSPC on results"; snapshot | diff - before.md5; }
no_temp_files "results ENOSPC"

# ---- space back: the same command finishes, from checkpoint B --------------------------
rm -f "$MNT/filler"
rc=0
mpirun -n 2 "$FACRNN_BIN" fit f.yaml --set train.seed=1 > resume.log 2>&1 || rc=$?
[ "$rc" -eq 0 ] && grep -q "resum" resume.log && pass "with space back the stopped fit resumes and finishes" \
  || { fail "resume after ENOSPC: exit $rc"; tail -5 resume.log; }
no_temp_files "after the resume"

# ---- read-only output and checkpoint directories: refused before training ------------
mount -o remount,ro "$MNT"
snapshot > ro.md5
one_line_failure "read-only output directory (fit)" 2 "output.path" -- \
  mpirun -n 2 "$FACRNN_BIN" --quiet fit f.yaml --set train.seed=2
grep -q "epoch" run.out run.err && fail "training started on a read-only output" || pass "no training step on a read-only output"
one_line_failure "read-only output directory (sweep)" 2 "output.path" -- \
  "$FACRNN_BIN" --quiet sweep f.yaml --set 'sweep.ranks=[2]' --set 'sweep.seeds=[0]'
one_line_failure "read-only checkpoint directory" 2 "output.checkpoint_dir" -- \
  "$FACRNN_BIN" --quiet fit f.yaml --set train.seed=2 --set output.path="$WORK/w.h5" \
  --set output.checkpoint_dir="$MNT/out.h5.ckpt"
[ ! -e "$WORK/w.h5" ] && pass "no results from the refused run" || fail "refused run wrote results"
snapshot | cmp -s - ro.md5 && pass "read-only files unchanged" || fail "read-only files changed?"
finish
