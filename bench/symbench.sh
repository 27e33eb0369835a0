#!/bin/sh
# Symbolizer benchmark: skyprof's symbolizer library against llvm-symbolizer
# on the same random function addresses of real objects.
#
#   sh bench/symbench.sh [OBJECT...]     (default: libc and libLLVM)
#
# "Warm" for llvm-symbolizer is one long-running process answering the
# address list ROUNDS times, minus the time of the same process answering
# a single address (start-up and loading), divided by the lookups: the
# per-address cost once everything is loaded (best of 3 runs). For skyprof
# it is the mean per lookup after a first pass that loaded the object, and
# the fastest pass. Also reports how often the two agree on the name.
set -eu
BUILD=${SKYPROF_BUILD:-build}
N=${SYMBENCH_N:-20000}
ROUNDS=${SYMBENCH_ROUNDS:-10}
LLVM_SYM=$(command -v llvm-symbolizer || command -v llvm-symbolizer-14 || true)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for a in "$BUILD/lib/libsymbolizer.a" "$BUILD/lib/liblib.a"; do
    [ -f "$a" ] || { echo "symbench: $a missing: run make first" >&2; exit 1; }
done
gcc -std=gnu11 -O2 -g -D_GNU_SOURCE -I. -Ilib -o "$out/symbench" bench/symbench.c \
    "$BUILD/lib/libsymbolizer.a" "$BUILD/lib/liblib.a" \
    -lelf -lz -liberty -lm

if [ $# -eq 0 ]; then
    set -- /usr/lib/x86_64-linux-gnu/libc.so.6
    for f in /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1 /usr/lib/llvm-14/lib/libLLVM-14.so.1; do
        [ -f "$f" ] && { set -- "$@" "$f"; break; }
    done
fi

now_ns() { date +%s%N; }

for obj in "$@"; do
    echo "== $obj ($N addresses, $ROUNDS rounds)"
    "$out/symbench" "$obj" "$N" "$ROUNDS" "$out/addrs" "$out/ours" | sed 's/^/   skyprof /'
    [ -n "$LLVM_SYM" ] || { echo "   llvm-symbolizer not installed"; continue; }
    : > "$out/many"
    i=0
    while [ $i -lt "$ROUNDS" ]; do cat "$out/addrs" >> "$out/many"; i=$((i + 1)); done
    head -n 1 "$out/addrs" > "$out/one"
    opts="--obj=$obj --functions=linkage --no-inlines --demangle"
    # Best of three runs each: the machine may be shared.
    one=0; many=0
    for rep in 1 2 3; do
        t0=$(now_ns); $LLVM_SYM $opts < "$out/one" > /dev/null; t1=$(now_ns)
        $LLVM_SYM $opts < "$out/many" > /dev/null; t2=$(now_ns)
        a=$((t1 - t0)); b=$((t2 - t1))
        { [ "$one" -eq 0 ] || [ "$a" -lt "$one" ]; } && one=$a
        { [ "$many" -eq 0 ] || [ "$b" -lt "$many" ]; } && many=$b
    done
    awk -v one="$one" -v many="$many" -v n="$N" -v r="$ROUNDS" 'BEGIN {
        per = (many - one) / (n * r);
        printf "   llvm-symbolizer startup_ms=%.1f warm_ns_per_lookup=%.1f (best of 3 runs)\n", one / 1e6, per }'
    $LLVM_SYM $opts < "$out/addrs" | awk 'BEGIN { RS = ""; FS = "\n" } { print $1 }' > "$out/theirs"
    paste -d '\t' "$out/ours" "$out/theirs" | awk -F '\t' '
        { total++; if ($1 == $2) same++ }
        END { printf "   names agree: %d/%d (%.1f%%)\n", same, total, 100 * same / total }'
done
