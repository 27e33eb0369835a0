#!/bin/sh
# Runs every check test binary of a build and prints one closing line:
#   N passed, N failed, N skipped
# A binary that crashes or exits non-zero without a check summary counts as
# one failure. Skipped tests print "SKIP: name: why" and are not run.
#
# Each test prints its wall time, and its check cases of a second or more;
# the slowest ten close the run (all of them in test-logs/times.txt).
#
# Tests that use BPF (their source calls tu_require_bpf: host-wide
# collectors see each other's workloads, and they assert CPU shares and
# rates a busy machine would skew) run one at a time, alone. The others,
# the fuzz harnesses and the docs check wait mostly on timers and
# sockets: they run SKYPROF_TEST_JOBS at a time (default 2) before them;
# SKYPROF_TEST_JOBS=1 runs everything one after the other.
set -u
BUILD=${SKYPROF_BUILD:-build}
export SKYPROF_BUILD="$BUILD"
# Integration tests start real pipelines; check's 4 s default is too short.
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-300}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
FUZZ_BUILD=${SKYPROF_FUZZ_BUILD:-}
JOBS=${SKYPROF_TEST_JOBS:-2}
logdir="$BUILD/test-logs"
mkdir -p "$logdir"

# Wall-clock seconds since the epoch, with a fraction when date has %N.
s_now() {
    date +%s.%N | sed 's/\.N*$//'
}
s_since() {
    awk -v a="$1" -v b="$(s_now)" 'BEGIN { printf "%.1f", b - a }'
}

# One job (a test binary's name, "fuzz" or "docs"): its output in
# $logdir/<job>.log, its exit status in <job>.rc, its seconds in
# <job>.secs. Called by the job pool as `run-tests.sh --job NAME`.
s_job() {
    job=$1
    log="$logdir/$job.log"
    rm -f "$logdir/$job.rc" "$logdir/$job.secs" "$logdir/$job.xml"
    t0=$(s_now)
    case "$job" in
        fuzz)
            # shellcheck disable=SC2086
            sh tests/fuzz/run.sh "$FUZZ_BUILD" "${FUZZ_CHECK_SECONDS:-2}" \
                check $fuzz_names >"$log" 2>&1 ;;
        docs)
            sh mk/check-docs.sh >"$log" 2>&1 ;;
        *)
            CK_XML_LOG_FILE_NAME="$logdir/$job.xml" \
                timeout -k 10 1200 "$BUILD/tests/$job" >"$log" 2>&1 ;;
    esac
    echo $? >"$logdir/$job.rc"
    s_since "$t0" >"$logdir/$job.secs"
}

if [ "${1:-}" = "--job" ]; then
    fuzz_names=${SKYPROF_FUZZ_NAMES:-}
    s_job "$2"
    exit 0
fi

# The check cases of one binary that took a second or more, slowest first,
# from the per-case durations check writes to its XML log.
s_slow_cases() {
    [ -f "$1" ] || return 0
    awk '/<test / { id = "" }
         /<id>/ { gsub(/.*<id>|<\/id>.*/, ""); id = $0 }
         /<duration>/ && id != "" { gsub(/.*<duration>|<\/duration>.*/, "");
                                    if ($0 + 0 >= 1) printf "%.1f %s\n", $0, id
                                    id = "" }' "$1" |
        sort -rn | awk '{ printf "      %6s s  %s\n", $1, $2 }'
}

passed=0 failed=0 skipped=0
failed_names=""
times=""

# Prints a finished job's result and adds it to the counts.
s_report() {
    job=$1
    log="$logdir/$job.log"
    rc=$(cat "$logdir/$job.rc" 2>/dev/null || echo 1)
    secs=$(cat "$logdir/$job.secs" 2>/dev/null || echo 0)
    times="$times$secs $job
"
    case "$job" in
        fuzz|docs)
            if [ "$job" = fuzz ]; then
                printf '== fuzz (%ss each)\n' "${FUZZ_CHECK_SECONDS:-2}"
            else
                printf '== docs\n'
            fi
            sed 's/^/   /' "$log"
            printf '   %s s\n' "$secs"
            p=$(grep -c '^PASS: ' "$log")
            f=$(grep -c '^FAIL: ' "$log")
            s=$(grep -c '^SKIP: ' "$log")
            passed=$((passed + p))
            failed=$((failed + f))
            skipped=$((skipped + s))
            if [ "$job" = fuzz ]; then
                for n in $(sed -n 's/^FAIL: \([^ ]*\).*/\1/p' "$log"); do
                    failed_names="$failed_names $n"
                done
            elif [ "$f" -gt 0 ]; then
                failed_names="$failed_names docs"
            fi
            return 0 ;;
    esac
    printf '== %s\n' "$job"
    grep -E '^(SKIP:|[0-9]+%: Checks:)|:[EF]:' "$log" | sed 's/^/   /'
    printf '   %s s\n' "$secs"
    s_slow_cases "$logdir/$job.xml"
    s=$(grep -c '^SKIP:' "$log")
    summary=$(grep -E '^[0-9]+%: Checks: ' "$log" | tail -n 1)
    if [ -n "$summary" ]; then
        checks=$(echo "$summary" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
        fails=$(echo "$summary" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
        errs=$(echo "$summary" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
        bad=$((fails + errs))
        passed=$((passed + checks - bad))
        failed=$((failed + bad))
        if [ "$bad" -eq 0 ] && [ "$rc" -ne 0 ]; then
            # All checks passed but the process failed afterwards
            # (sanitizer report at exit, crash in teardown).
            failed=$((failed + 1))
            bad=1
        fi
    else
        bad=1
        failed=$((failed + 1))
    fi
    skipped=$((skipped + s))
    if [ "$bad" -ne 0 ]; then
        failed_names="$failed_names $job"
        echo "   FAILED (exit $rc), last lines of $log:"
        tail -n 40 "$log" | sed 's/^/   | /'
    fi
}

# Which jobs run: the selected test binaries, split into those that run
# alone and the pool.
alone="" pool=""
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    if [ -n "${TESTS:-}" ] && ! echo " $TESTS " | grep -q " $name "; then
        continue
    fi
    if grep -q 'tu_require_bpf(' "tests/$name.c" 2>/dev/null; then
        alone="$alone $name"
    else
        pool="$pool $name"
    fi
done

# The libFuzzer harnesses (tests/fuzz/README.md), when a fuzz tree was
# built: each runs over its committed corpus plus FUZZ_CHECK_SECONDS of
# fuzzing and counts as one test. TESTS selects them as fuzz_<name>, or
# all of them as "fuzz".
fuzz_names=""
if [ -n "$FUZZ_BUILD" ]; then
    run_fuzz=1
    if [ -n "${TESTS:-}" ]; then
        run_fuzz=0
        for t in $TESTS; do
            case "$t" in
                fuzz) run_fuzz=1 fuzz_names="" ; break ;;
                fuzz_*) run_fuzz=1 fuzz_names="$fuzz_names ${t#fuzz_}" ;;
            esac
        done
    fi
    [ "$run_fuzz" -eq 1 ] && pool="$pool fuzz"
fi
# Generated documents (docs/configuration.md, ...) match their sources:
# each generator counts as one test. TESTS selects them as "docs".
if [ -z "${TESTS:-}" ] || echo " $TESTS " | grep -q " docs "; then
    pool="$pool docs"
fi

# The pool, longest first by the last run's times (test-logs/times.txt)
# so that a long test does not start last; xargs hands out the next job
# as soon as one ends. Results print once all have ended, in name order.
if [ -n "$pool" ]; then
    if [ "$JOBS" -gt 1 ]; then
        order=$(for j in $pool; do
                    s=$(awk -v j="$j" '$2 == j { print $1 }' \
                            "$logdir/times.txt" 2>/dev/null)
                    # A fresh tree has no times: the ones known to be long
                    # (unwind_table is CPU-bound: it doubles beside another).
                    case "$j" in
                        test_unwind_table|test_aggshard|fuzz) d=40 ;;
                        test_uplink|test_page|test_symbolizer) d=20 ;;
                        test_net_stage|test_sharding|test_api) d=10 ;;
                        *) d=0 ;;
                    esac
                    echo "${s:-$d} $j"
                done | sort -rn | awk '{ print $2 }')
        printf '== %s jobs, %s at a time\n' "$(echo $pool | wc -w)" "$JOBS"
        echo "$order" | SKYPROF_FUZZ_NAMES="$fuzz_names" \
            xargs -P "$JOBS" -n 1 sh "$0" --job
    fi
    for j in $pool; do
        [ "$JOBS" -gt 1 ] || s_job "$j"
        s_report "$j"
    done
fi
for j in $alone; do
    s_job "$j"
    s_report "$j"
done

# Where the time went, slowest first.
printf '%s' "$times" | sort -rn >"$logdir/times.txt.new"
# Keep the times of jobs this run did not select, for the pool's order.
if [ -f "$logdir/times.txt" ]; then
    awk 'NR == FNR { seen[$2] = 1; next } !($2 in seen)' \
        "$logdir/times.txt.new" "$logdir/times.txt" >>"$logdir/times.txt.new"
fi
echo "== slowest (s)"
printf '%s' "$times" | sort -rn | head -n 10 |
    awk '{ printf "   %7s  %s\n", $1, $2 }'
sort -rn "$logdir/times.txt.new" >"$logdir/times.txt"
rm -f "$logdir/times.txt.new"
[ -n "$failed_names" ] && echo "failing:$failed_names"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
