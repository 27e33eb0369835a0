#!/bin/sh
# skyprof against its peers on this machine: `make bench` runs this after
# building `all tests`. Prints one table of ratios at the end and writes it
# to build/bench/results/benchmarks.md (docs/benchmarks.md records a run).
#
#   sh bench/run.sh [PART...]   parts: overhead agentcost throughput
#                               symbols latency leafshare netcost
#                               netthroughput unwind unwindcost
#                               unwindhost (default: all, ~17 minutes)
#
# Needs root (BPF, perf -a, bpftrace) and the peers from mk/deps.sh:
# linux-perf, bpftrace, hyperfine, llvm, binutils, elfutils; `unwind`
# fetches Debian's zstd source package once (apt-get source, cached under
# $BUILD/bench/src) and needs dpkg-dev. Knobs are
# environment variables read by the bench/*.py scripts (BENCH_*).
set -eu
BUILD=${SKYPROF_BUILD:-build}
export SKYPROF_BUILD="$(cd "$BUILD" && pwd)"
OUT="$BUILD/bench"
export BENCH_RESULTS="$(pwd)/$OUT/results"
mkdir -p "$OUT" "$BENCH_RESULTS"

[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (BPF, perf -a, bpftrace)" >&2; exit 1; }
for a in "$BUILD/lib/liblib.a" "$BUILD/lib/libsymbolizer.a" "$BUILD/bin/skyprof"; do
    [ -f "$a" ] || { echo "bench: $a missing: run make first" >&2; exit 1; }
done
for t in perf bpftrace hyperfine llvm-symbolizer addr2line eu-addr2line python3; do
    command -v "$t" >/dev/null || echo "bench: $t not installed: its column stays empty" >&2
done

# Bench-only drivers, with the Makefile's warnings and pkg-config flags.
CFLAGS="-std=gnu11 -g -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter -D_GNU_SOURCE -I. -Ilib"
# The workload is built like tests/progs: frame pointers for every profiler.
gcc $CFLAGS -O1 -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -fno-inline \
    -o "$OUT/workload" bench/workload.c
gcc $CFLAGS -O2 $(pkg-config --cflags libzmq msgpack libelf) -o "$OUT/rawpub" \
    bench/rawpub.c "$BUILD/lib/liblib.a" $(pkg-config --libs libzmq msgpack libelf) -lm
gcc $CFLAGS -O2 -o "$OUT/symbench" bench/symbench.c "$BUILD/lib/libsymbolizer.a" \
    "$BUILD/lib/liblib.a" $(pkg-config --libs libelf zlib) -liberty -lm
gcc $CFLAGS -O2 -o "$OUT/unwindbench" bench/unwindbench.c "$BUILD/lib/liblib.a"
# The walker's cost harness (bench/unwindcost.c): a BPF program that
# includes bpf/unwind.bpf.h, its skeleton, and a driver with frame
# pointers whose own stack both walks take.
clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -I"$BUILD/gen" -Ibpf -Ilib -Ibench \
    -c bench/unwindcost.bpf.c -o "$OUT/unwindcost.bpf.o"
bpftool gen skeleton "$OUT/unwindcost.bpf.o" name unwindcost_bpf > "$OUT/unwindcost.skel.h"
gcc $CFLAGS -O1 -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer \
    -fno-optimize-sibling-calls -I"$OUT" $(pkg-config --cflags libbpf) \
    -o "$OUT/unwindcost" bench/unwindcost.c -Wl,--start-group \
    "$BUILD/lib/libcollector.a" "$BUILD/lib/liblib.a" -Wl,--end-group \
    $(pkg-config --libs libbpf libelf zlib) -lpthread -lm

[ $# -gt 0 ] || set -- overhead agentcost throughput symbols latency leafshare netcost \
    netthroughput unwind unwindcost unwindhost
# Only the parts run now lose their previous results: the report still
# shows the others' latest figures.
for part in "$@"; do rm -f "$BENCH_RESULTS/$part.json"; done
start=$(date +%s)
for part in "$@"; do
    echo "== $part"
    python3 "bench/$part.py" || echo "bench: $part failed" >&2
done
echo "== done in $(( $(date +%s) - start )) s"
python3 bench/report.py | tee "$BENCH_RESULTS/benchmarks.md"
