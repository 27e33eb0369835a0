#!/bin/sh
# Every generated document is current: runs each mk/gen-*-doc.py into a
# scratch file and compares it with the committed document the script names
# in its `DOC = '...'` line. Prints PASS/FAIL per generator (run-tests.sh
# counts them); exits 1 when any document is stale.
set -u
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
status=0
for gen in mk/gen-*-doc.py; do
    [ -f "$gen" ] || continue
    name=$(basename "$gen" .py)
    doc=$(sed -n "s/^DOC = '\([^']*\)'.*/\1/p" "$gen" | head -n 1)
    if [ -z "$doc" ]; then
        echo "FAIL: $name: no DOC = '...' line names the document it writes"
        status=1
        continue
    fi
    if ! python3 "$gen" "$tmp/$name.md" >"$tmp/$name.log" 2>&1; then
        echo "FAIL: $name: the generator failed: $(tail -n 1 "$tmp/$name.log")"
        status=1
    elif ! cmp -s "$tmp/$name.md" "$doc"; then
        echo "FAIL: $name: $doc is stale; run python3 $gen and commit it"
        diff -u "$doc" "$tmp/$name.md" | head -n 20 | sed 's/^/    /'
        status=1
    else
        echo "PASS: $name: $doc is current"
    fi
done
exit $status
