#!/bin/sh
# Runs every check test binary of a build and prints one closing line:
#   N passed, N failed, N skipped
# A binary that crashes or exits non-zero without a check summary counts as
# one failure. Skipped tests print "SKIP: name: why" and are not run.
set -u
BUILD=${SKYPROF_BUILD:-build}
export SKYPROF_BUILD="$BUILD"
# Integration tests start real pipelines; check's 4 s default is too short.
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-300}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Wall-clock seconds since the epoch, with a fraction when date has %N.
s_now() {
    date +%s.%N | sed 's/\.N*$//'
}
s_since() {
    awk -v a="$1" -v b="$(s_now)" 'BEGIN { printf "%.1f", b - a }'
}
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
times=""
failed_names=""
logdir="$BUILD/test-logs"
mkdir -p "$logdir"

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    if [ -n "${TESTS:-}" ] && ! echo " $TESTS " | grep -q " $name "; then
        continue
    fi
    log="$logdir/$name.log"
    xml="$logdir/$name.xml"
    rm -f "$xml"
    printf '== %s\n' "$name"
    t0=$(s_now)
    CK_XML_LOG_FILE_NAME="$xml" timeout -k 10 1200 "$t" >"$log" 2>&1
    rc=$?
    secs=$(s_since "$t0")
    grep -E '^(SKIP:|[0-9]+%: Checks:)|:[EF]:' "$log" | sed 's/^/   /'
    printf '   %s s\n' "$secs"
    s_slow_cases "$xml"
    times="$times$secs $name
"
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
        failed_names="$failed_names $name"
        echo "   FAILED (exit $rc), last lines of $log:"
        tail -n 40 "$log" | sed 's/^/   | /'
    fi
done

# The libFuzzer harnesses (tests/fuzz/README.md), when a fuzz tree was
# built: each runs over its committed corpus plus FUZZ_CHECK_SECONDS of
# fuzzing and counts as one test. TESTS selects them as fuzz_<name>, or
# all of them as "fuzz".
FUZZ_BUILD=${SKYPROF_FUZZ_BUILD:-}
if [ -n "$FUZZ_BUILD" ]; then
    fuzz_names=""
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
    if [ "$run_fuzz" -eq 1 ]; then
        printf '== fuzz (%ss each)\n' "${FUZZ_CHECK_SECONDS:-2}"
        t0=$(s_now)
        # shellcheck disable=SC2086
        sh tests/fuzz/run.sh "$FUZZ_BUILD" "${FUZZ_CHECK_SECONDS:-2}" check \
            $fuzz_names >"$logdir/fuzz.log" 2>&1
        sed 's/^/   /' "$logdir/fuzz.log"
        secs=$(s_since "$t0")
        printf '   %s s\n' "$secs"
        times="$times$secs fuzz
"
        p=$(grep -c '^PASS: ' "$logdir/fuzz.log")
        f=$(grep -c '^FAIL: ' "$logdir/fuzz.log")
        s=$(grep -c '^SKIP: ' "$logdir/fuzz.log")
        passed=$((passed + p))
        failed=$((failed + f))
        skipped=$((skipped + s))
        for n in $(sed -n 's/^FAIL: \([^ ]*\).*/\1/p' "$logdir/fuzz.log"); do
            failed_names="$failed_names $n"
        done
    fi
fi

# Generated documents (docs/configuration.md, ...) match their sources:
# each generator counts as one test. TESTS selects them as "docs".
if [ -z "${TESTS:-}" ] || echo " $TESTS " | grep -q " docs "; then
    printf '== docs\n'
    t0=$(s_now)
    sh mk/check-docs.sh >"$logdir/docs.log" 2>&1
    sed 's/^/   /' "$logdir/docs.log"
    secs=$(s_since "$t0")
    printf '   %s s\n' "$secs"
    times="$times$secs docs
"
    passed=$((passed + $(grep -c '^PASS: ' "$logdir/docs.log")))
    f=$(grep -c '^FAIL: ' "$logdir/docs.log")
    failed=$((failed + f))
    [ "$f" -gt 0 ] && failed_names="$failed_names docs"
fi

# Where the time went, slowest first (also in $logdir/times.txt).
printf '%s' "$times" | sort -rn >"$logdir/times.txt"
echo "== slowest (s)"
head -n 10 "$logdir/times.txt" | awk '{ printf "   %7s  %s\n", $1, $2 }'
[ -n "$failed_names" ] && echo "failing:$failed_names"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
