#!/usr/bin/env bash
# ctest: PROCESSORS 3
# Input validation end to end: every broken file makes `facrnn info FILE
# --validate` exit with code 2 and a one-line message naming the dataset and
# the first offending index; nothing hangs. Bad files come from tool_mkbad.
set -u
BIN=${FACRNN_BIN:?}
TOOL=${FACRNN_BUILD:?}/tests/tool_mkbad
MPIRUN=${MPIRUN:-mpirun}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0

# expect NP PHRASE FILE [ARGS...]: exit code 2 and PHRASE in stderr.
expect() {
    local np=$1 phrase=$2 file=$3
    shift 3
    local err="$dir/err" rc
    # One rank runs without the launcher (a singleton): mpirun adds about
    # two seconds to every failing job, and these cases are many.
    if [ "$np" -eq 1 ]; then
        timeout 60 "$BIN" --quiet info "$file" --validate "$@" >/dev/null 2>"$err"
    else
        timeout 60 "$MPIRUN" -n "$np" "$BIN" --quiet info "$file" --validate "$@" >/dev/null 2>"$err"
    fi
    rc=$?
    if [ "$rc" -ne 2 ]; then
        echo "FAIL: $file (np $np $*): exit $rc, expected 2"; cat "$err"; fails=$((fails + 1)); return
    fi
    if ! grep -qF -- "$phrase" "$err"; then
        echo "FAIL: $file (np $np $*): message lacks '$phrase':"; cat "$err"; fails=$((fails + 1)); return
    fi
    # One line from facrnn (rank 0), not an HDF5 error stack.
    local n
    n=$(grep -c 'facrnn: error' "$err")
    if [ "$n" -ne 1 ] || grep -q 'HDF5-DIAG' "$err"; then
        echo "FAIL: $file (np $np): expected exactly one error line:"; cat "$err"; fails=$((fails + 1)); return
    fi
    echo "ok: $(basename "$file") np=$np -> $(grep 'facrnn: error' "$err")"
}

mk() { "$TOOL" "$1" "$dir/$1.h5" || { echo "FAIL: tool_mkbad $1"; exit 1; }; }

for c in good good_poisson nodata nooffsets data_rank1 inputs_rows offsets_nonmono offsets_start offsets_end \
    nan_data inf_inputs nan_behavior negcount noninteger short_trial n0 groups_sum nan_rank2 nan_two_ranks obs_array truth_a_string \
    offsets_many offsets_wide; do
    mk "$c"
done

# The valid files pass, at 1 and 3 ranks, with the same checksum.
for np in 1 3; do
    out=$(timeout 60 "$MPIRUN" -n $np "$BIN" --quiet info "$dir/good.h5" --validate 2>&1) ||
        { echo "FAIL: good.h5 np $np rejected: $out"; fails=$((fails + 1)); }
    echo "$out" | grep -o 'checksum [0-9a-f]*' >>"$dir/sums"
done
[ "$(sort -u "$dir/sums" | wc -l)" -eq 1 ] || { echo "FAIL: checksum differs across rank counts"; cat "$dir/sums"; fails=$((fails + 1)); }
timeout 60 "$MPIRUN" -n 2 "$BIN" --quiet info "$dir/good_poisson.h5" --validate >/dev/null 2>&1 ||
    { echo "FAIL: good_poisson.h5 rejected"; fails=$((fails + 1)); }

# Not a file / not HDF5 / truncated.
expect 1 "cannot be read" "$dir/missing.h5"
echo "hello" >"$dir/text.h5"
expect 2 "not an HDF5 file" "$dir/text.h5"
head -c 1500 "$dir/good.h5" >"$dir/truncated.h5"
expect 1 "truncated" "$dir/truncated.h5"

# Structure.
expect 1 "required dataset /data is missing" "$dir/nodata.h5"
expect 1 "required dataset /trial_offsets is missing" "$dir/nooffsets.h5"
expect 1 "/data: expected rank 2" "$dir/data_rank1.h5"
expect 2 "/inputs: has 87 rows but /data has 90" "$dir/inputs_rows.h5"
expect 2 "/trial_offsets: not strictly increasing at index 4" "$dir/offsets_nonmono.h5"
expect 1 "/trial_offsets: index 0 is 2, must be 0" "$dir/offsets_start.h5"
expect 1 "/trial_offsets: last entry (index 9) is 85" "$dir/offsets_end.h5"
expect 1 "/data: N = 0 channels" "$dir/n0.h5"
expect 1 "/truth/latents: attribute groups sums to 4 but the width is 3" "$dir/groups_sum.h5"
expect 2 "attribute observation holds 3 strings, expected one" "$dir/obs_array.h5"
expect 1 "/truth/A: expected a float or integer type" "$dir/truth_a_string.h5"
expect 1 "/trial_offsets: 91 trials but /data has only 90 rows" "$dir/offsets_many.h5"
expect 2 "/trial_offsets: numbers of 32 bytes each: expected at most 16" "$dir/offsets_wide.h5"
# Trial lengths against the lags.
expect 1 "/trial_offsets: trial 5 has 1 bins, fewer than lags + 1 = 2" "$dir/short_trial.h5"
expect 1 "/trial_offsets: trial 0 has 10 bins, fewer than lags + 1 = 11" "$dir/good.h5" --lags 10

# Values (global row, trial and column).
expect 3 "/data: NaN at row 13 (trial 1), column 2" "$dir/nan_data.h5"
expect 2 "/inputs: Inf at row 7 (trial 0), column 1" "$dir/inf_inputs.h5"
expect 1 "/behavior: NaN at row 22 (trial 2), column 0" "$dir/nan_behavior.h5"
expect 1 "/data: negative count -1 at row 4 (trial 0), column 1" "$dir/negcount.h5"
expect 3 "/data: non-integer count 0.5 at row 6 (trial 0), column 3" "$dir/noninteger.h5"
# --gaussian overrides the file's poisson attribute: counts are not checked.
timeout 60 "$MPIRUN" -n 1 "$BIN" --quiet info "$dir/noninteger.h5" --validate --gaussian >/dev/null 2>&1 ||
    { echo "FAIL: noninteger.h5 --gaussian rejected"; fails=$((fails + 1)); }
expect 1 "/data: NaN at row 75 (trial 7), column 1" "$dir/nan_rank2.h5"
expect 2 "/data: NaN at row 45 (trial 4), column 3" "$dir/nan_two_ranks.h5"
expect 3 "/data: NaN at row 45 (trial 4), column 3" "$dir/nan_two_ranks.h5"

# Multi-rank: the NaN lies only in rank 2's shard (rows 60..89 at 3 ranks).
# Every rank must exit non-zero and rank 0 must print rank 2's message with
# the global row.
expect 3 "/data: NaN at row 75 (trial 7), column 1" "$dir/nan_rank2.h5"
out=$(timeout 60 "$MPIRUN" -n 3 bash -c '"$0" --quiet info "$1" --validate >/dev/null 2>&1; echo "rank-exit $?"' \
    "$BIN" "$dir/nan_rank2.h5" 2>&1)
n2=$(echo "$out" | grep -c '^rank-exit 2$')
if [ "$n2" -ne 3 ]; then
    echo "FAIL: nan_rank2 at 3 ranks: expected every rank to exit 2, got:"; echo "$out"; fails=$((fails + 1))
else
    echo "ok: nan_rank2 np=3 every rank exited 2"
fi

if [ "$fails" -ne 0 ]; then
    echo "$fails failure(s)"
    exit 1
fi
echo "all validation cases passed"
