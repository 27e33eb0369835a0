#!/bin/sh
# Network room benchmark: HTTP/1.1 requests per second one core of the
# aggregator's network room sustains (bench/netroom.c), beside lib/http1
# alone and a scan of the same bytes, with and without sampling rules.
#
#   sh bench/netroom.sh [CONNS [REQUESTS_PER_CONN]]   (default 1000 x 200)
#
# The room is built from its sources with -O2 (no stage, no bus: the
# figure is the analysis, not the transport).
set -eu
CONNS=${1:-1000}
PER=${2:-200}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -std=gnu11 -O2 -g -D_GNU_SOURCE -I. -Ilib -o "$out/netroom" bench/netroom.c \
    aggregator/net/*.c aggregator/core/buf.c lib/http1.c lib/wire.c \
    lib/arena.c lib/hashmap.c lib/stats.c lib/json.c lib/log.c \
    $(pkg-config --cflags --libs msgpack 2>/dev/null || echo -lmsgpackc) -lpthread
"$out/netroom" "$CONNS" "$PER" 0
"$out/netroom" "$CONNS" "$PER" 1
