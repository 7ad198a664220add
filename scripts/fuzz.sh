#!/usr/bin/env bash
# Every fuzz target in the repository, found by name (func FuzzX in a
# _test.go file), run one at a time for FUZZTIME each (default 10s).
# A crasher fails the target and Go keeps it under the package's
# testdata/fuzz/FuzzX/: commit it with the fix, and plain `go test` replays
# it from then on.
#
# Go 1.26's fuzz coordinator can fail a target with "context deadline
# exceeded" as a duration -fuzztime ends, with no crasher written
# (go.dev/issue/75804, fixed in Go 1.27). Such a run is not a finding: it
# is said so and run once more; a second one, or any other failure, fails.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}

targets=$(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | sed 's/(.*//; s/:func /:/' | sort -u)
[ -n "$targets" ] || { echo "no fuzz targets found" >&2; exit 1; }

corpus() { { ls "$1" 2>/dev/null || true; } | sort; }

for t in $targets; do
  dir=$(dirname "${t%%:*}") name=${t##*:}
  for try in 1 2; do
    echo "== fuzz $dir $name ($FUZZTIME)"
    before=$(corpus "$dir/testdata/fuzz/$name")
    out=$(mktemp) status=0
    "$GO" test -run='^$' -fuzz="^$name\$" -fuzztime="$FUZZTIME" "$dir" 2>&1 | tee "$out" || status=$?
    raced=no
    if grep -q '^    context deadline exceeded$' "$out"; then raced=yes; fi
    rm -f "$out"
    [ "$status" = 0 ] && break
    after=$(corpus "$dir/testdata/fuzz/$name")
    if [ "$try" = 1 ] && [ "$before" = "$after" ] && [ "$raced" = yes ]; then
      echo "-- $name: the fuzz coordinator's deadline race (go.dev/issue/75804), no crasher written: once more" >&2
      continue
    fi
    if [ "$before" = "$after" ]; then
      echo "fuzz target $name in $dir failed, no crasher written: see its output above" >&2
    else
      echo "fuzz target $name in $dir failed: the crasher is in $dir/testdata/fuzz/$name/" >&2
    fi
    exit 1
  done
done
