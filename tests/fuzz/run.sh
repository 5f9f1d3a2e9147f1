#!/usr/bin/env bash
# run.sh: build the libFuzzer harnesses (clang, ASan + UBSan) and run each
# for a bounded time; fails on any crash, hang, leak or sanitizer report.
#   tests/fuzz/run.sh                 60 s per harness (what CI runs)
#   tests/fuzz/run.sh 1800            a longer campaign: 30 min per harness
#   tests/fuzz/run.sh 60 fuzz_config  one harness; fuzz_h5image (raw HDF5 images, mostly
#                                     HDF5's own parser) runs only when named
# Environment:
#   FACRNN_FUZZ_BUILD  build directory (default <repo>/build-fuzz)
#   FACRNN_FUZZ_OUT    working corpora, logs and crash inputs (default $FACRNN_FUZZ_BUILD/fuzz-out)
#   FACRNN_FUZZ_CC     the clang to use (default clang-14, else clang)
#   FACRNN_JOBS        build parallelism (default nproc)
# The seeds (tests/fuzz/corpus/<harness>) are read, never written: what a run
# finds goes to its working corpus. A failing input is saved as
# $FACRNN_FUZZ_OUT/<harness>/crash-*, leak-*, timeout-* or oom-*; replay it
# with `build-fuzz/tests/fuzz/<harness> FILE`, and once the bug is fixed add it
# to tests/fuzz/corpus/<harness>/ so every later run replays it.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$(cd "$HERE/../.." && pwd)"
SECONDS_EACH="${1:-60}"
shift || true
HARNESSES=("$@")
((${#HARNESSES[@]})) || HARNESSES=(fuzz_config fuzz_dataset)
BUILD="${FACRNN_FUZZ_BUILD:-$SRC/build-fuzz}"
OUT="${FACRNN_FUZZ_OUT:-$BUILD/fuzz-out}"
CC_FUZZ="${FACRNN_FUZZ_CC:-$(command -v clang-14 || command -v clang || true)}"
[ -n "$CC_FUZZ" ] || { echo "fuzz: clang not found (Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 2; }

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
cmake -S "$SRC" -B "$BUILD" -DCMAKE_C_COMPILER="$CC_FUZZ" -DFACRNN_FUZZ=ON -DFACRNN_WERROR=ON >/dev/null
cmake --build "$BUILD" -j"${FACRNN_JOBS:-$(nproc)}" --target "${HARNESSES[@]}" >/dev/null

# Leak checks stay on; a harness may set leaks inside a library aside in
# <name>.lsan.supp (only fuzz_h5image does: one inside HDF5).
# allocator_may_return_null and the large -malloc_limit_mb: an impossible
# size read from a corrupt file (HDF5 has asked for 7e18 bytes) gets NULL, as
# from the C library, and the caller must turn that into an error; memory
# actually used beyond -rss_limit_mb is still a failure.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
status=0
for h in "${HARNESSES[@]}"; do
  seeds="$HERE/corpus/${h#fuzz_}"
  work="$OUT/$h/corpus"
  mkdir -p "$work"
  export FACRNN_FUZZ_TMP="$OUT/$h"   # the dataset harness's scratch file
  log="$OUT/$h.log"
  t0=$(date +%s)
  rc=0
  export LSAN_OPTIONS="print_suppressions=0"
  [ -f "$HERE/${h#fuzz_}.lsan.supp" ] && LSAN_OPTIONS+=":suppressions=$HERE/${h#fuzz_}.lsan.supp"
  dict=()
  [ -f "$HERE/${h#fuzz_}.dict" ] && dict=(-dict="$HERE/${h#fuzz_}.dict")
  # -timeout: one input running 10 s is a hang; -rss_limit_mb: a memory blow-up.
  "$BUILD/tests/fuzz/$h" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1048576 \
    ${dict[@]+"${dict[@]}"} -artifact_prefix="$OUT/$h/" -print_final_stats=1 \
    "$work" "$seeds" >"$log" 2>&1 || rc=$?
  t1=$(date +%s)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\).*/cov \1, ft \2, corpus \3/p' <<<"$last")
  echo "fuzz: $h: $((t1 - t0)) s, ${execs:-?} executions, ${cov:-no coverage line}, exit $rc"
  if [ "$rc" -ne 0 ]; then
    status=1
    echo "fuzz: $h FAILED; the end of $log:" >&2
    grep -E 'ERROR|SUMMARY|fuzz_(config|dataset):|Test unit written|artifact' "$log" | tail -20 >&2 || tail -40 "$log" >&2
  fi
done
exit $status
