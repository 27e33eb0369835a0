#!/bin/sh
# Runs the libFuzzer harnesses of a fuzz tree (see tests/fuzz/README.md).
#
#   sh tests/fuzz/run.sh FUZZ_BUILD SECONDS check|explore [NAME...]
#
# check    each harness over its committed corpus (tests/fuzz/corpus/NAME)
#          plus SECONDS of fuzzing; what it finds on the way is kept out
#          of the tree. One "PASS: fuzz_NAME (N runs)" or "FAIL: ..." line
#          per harness; the exit status says whether all passed.
# explore  SECONDS of fuzzing per harness, growing FUZZ_BUILD/corpus/NAME
#          (kept between runs; copy what is worth keeping into the tree).
# Crash inputs and logs land in FUZZ_BUILD/fuzz-logs/.
set -u
build=${1:?fuzz build dir}
seconds=${2:?seconds per harness}
mode=${3:-check}
shift 3 2>/dev/null || shift $#
here=$(dirname "$0")
logdir="$build/fuzz-logs"
mkdir -p "$logdir"

# Sanitizers stop at the first report; LeakSanitizer runs after each input.
export ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${FUZZ_UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Per-input budget: FUZZ_TIMEOUT seconds (10), 256 MiB for one
# allocation, 1 GiB of RSS; an input past any of them is a finding (hang,
# blow-up).
flags="-timeout=${FUZZ_TIMEOUT:-10} -malloc_limit_mb=256 -rss_limit_mb=1024 -print_final_stats=1"

failed=0
ran=0
for exe in "$build"/fuzz/fuzz_*; do
    [ -x "$exe" ] || continue
    name=$(basename "$exe")
    short=${name#fuzz_}
    # A harness whose source is gone (a stale binary of an older tree).
    [ -f "$here/$name.c" ] || continue
    if [ $# -gt 0 ] && ! echo " $* " | grep -q " $short "; then
        continue
    fi
    seeds="$here/corpus/$short"
    mkdir -p "$seeds"
    log="$logdir/$name.log"
    ran=$((ran + 1))
    if [ "$mode" = explore ]; then
        work="$build/corpus/$short"
        mkdir -p "$work"
    else
        work=$(mktemp -d)
    fi
    # shellcheck disable=SC2086
    "$exe" $flags -max_total_time="$seconds" \
        -artifact_prefix="$logdir/$name-" "$work" "$seeds" >"$log" 2>&1
    rc=$?
    [ "$mode" = explore ] || rm -rf "$work"
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        echo "PASS: $name (${runs:-?} runs, ${seconds}s)"
    else
        failed=$((failed + 1))
        echo "FAIL: $name (exit $rc), see $log:"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|artifact_prefix|Test unit written)' "$log" \
            | head -n 8 | sed 's/^/   | /'
    fi
done
[ "$ran" -gt 0 ] || echo "SKIP: fuzz: no harness built in $build/fuzz"
[ "$failed" -eq 0 ]
