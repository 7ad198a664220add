#!/usr/bin/env bash
# bench/drift.sh — imgpipe drift check vs AIDE on the same tree, side by side.
#
# The tree is /usr (override with TREE=/some/dir); when it holds fewer than
# 100k entries a generated tree is added to reach that. Both tools record the
# same attributes (AIDE: p+u+g+s+m+c+i+n+sha256, num_workers = number of
# cores); every run is on a warm page cache (the untimed init/capture passes
# read everything first). Prints entries/s for AIDE --check and for imgpipe's
# full check with SHA-256, full check with BLAKE3 and quick check, the ratios,
# and each tool's peak RSS (from /usr/bin/time -v).
#
# Needs: go, aide, /usr/bin/time. Run from the repository: ./bench/drift.sh
set -euo pipefail
cd "$(dirname "$0")/.."

TREE=${TREE:-/usr}
MIN_ENTRIES=${MIN_ENTRIES:-100000}
NPROC=$(nproc)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/imgpipe-drift-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

for tool in aide /usr/bin/time go; do
	command -v "$tool" >/dev/null || { echo "drift.sh: $tool is required" >&2; exit 1; }
done

go build -o "$WORK/imgpipe" ./cmd/imgpipe
IMGPIPE=$WORK/imgpipe

TREE=$(cd "$TREE" && pwd -P)
dirs=("$TREE")
entries=$(find "$TREE" | wc -l)
if [ "$entries" -lt "$MIN_ENTRIES" ]; then
	need=$((MIN_ENTRIES - entries))
	echo "# $TREE has $entries entries; generating $need more in $WORK/gen"
	mkdir -p "$WORK/gen"
	for ((i = 0; i < need; i++)); do
		d=$WORK/gen/d$((i / 500))
		[ $((i % 500)) -eq 0 ] && mkdir -p "$d"
		printf 'file %d\n' "$i" >"$d/f$i"
	done
	dirs+=("$WORK/gen")
	entries=$(find "${dirs[@]}" | wc -l)
fi

# imgpipe paths are relative to --root /.
paths=()
for d in "${dirs[@]}"; do paths+=(--path "${d#/}"); done

# AIDE with the same attributes.
cat >"$WORK/aide.conf" <<CONF
database_in=file:$WORK/aide.db
database_out=file:$WORK/aide.db.new
gzip_dbout=no
num_workers=$NPROC
report_url=file:$WORK/aide.report
IMGPIPE = p+u+g+s+m+c+i+n+sha256
CONF
for d in "${dirs[@]}"; do echo "$d IMGPIPE" >>"$WORK/aide.conf"; done

# run NAME OK_CODES CMD...: time CMD, keep wall seconds and peak RSS (KiB).
declare -A WALL RSS
run() {
	local name=$1 ok=$2
	shift 2
	local t0 t1 rc=0
	t0=$(date +%s.%N)
	/usr/bin/time -v -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
	t1=$(date +%s.%N)
	if ! [[ " $ok " == *" $rc "* ]]; then
		echo "drift.sh: $name exited $rc" >&2
		tail -5 "$WORK/$name.err" >&2
		exit 1
	fi
	WALL[$name]=$(echo "$t1 - $t0" | bc -l)
	RSS[$name]=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/$name.time")
}

echo "# tree: ${dirs[*]} ($entries entries), $NPROC cores, $(uname -r)"
echo "# init passes (untimed for the ratios; they also warm the page cache)"
run aide-init "0" aide --config "$WORK/aide.conf" --init
mv "$WORK/aide.db.new" "$WORK/aide.db"
run capture-sha256 "0" "$IMGPIPE" baseline capture --root / "${paths[@]}" --no-default-excludes --no-identity --hash sha256 --out "$WORK/base-sha256.bin"
run capture-blake3 "0" "$IMGPIPE" baseline capture --root / "${paths[@]}" --no-default-excludes --no-identity --hash blake3 --out "$WORK/base-blake3.bin"
printf '  %-24s %8.2fs %8d MiB\n' "aide --init" "${WALL[aide-init]}" "$((RSS[aide-init] / 1024))" \
	"imgpipe capture sha256" "${WALL[capture-sha256]}" "$((RSS[capture-sha256] / 1024))" \
	"imgpipe capture blake3" "${WALL[capture-blake3]}" "$((RSS[capture-blake3] / 1024))"
echo "  baseline size: sha256 $(stat -c %s "$WORK/base-sha256.bin") B, blake3 $(stat -c %s "$WORK/base-blake3.bin") B; AIDE db $(stat -c %s "$WORK/aide.db") B (uncompressed)"

# The racy window: the quick check re-hashes files changed within 2 s of the
# capture; wait it out so the quick check measures the steady state.
sleep 3

echo "# checks (warm cache)"
# aide --check exits with a bit mask of the kinds of differences (0..7); >= 14 is an error.
run aide-check "0 1 2 3 4 5 6 7" aide --config "$WORK/aide.conf" --check
run full-sha256 "0 2" "$IMGPIPE" drift check --root / --baseline "$WORK/base-sha256.bin"
run full-blake3 "0 2" "$IMGPIPE" drift check --root / --baseline "$WORK/base-blake3.bin"
run quick "0 2" "$IMGPIPE" drift check --root / --baseline "$WORK/base-blake3.bin" --quick

a=${WALL[aide-check]}
printf '%-22s %10s %12s %8s %10s\n' "check" "seconds" "entries/s" "x AIDE" "peak RSS"
for n in aide-check full-sha256 full-blake3 quick; do
	w=${WALL[$n]}
	printf '%-22s %10.2f %12.0f %8.1f %8d MiB\n' "$n" "$w" "$(echo "$entries / $w" | bc -l)" "$(echo "$a / $w" | bc -l)" "$((RSS[$n] / 1024))"
done
echo "targets: full-sha256 >= 3x, full-blake3 >= 8x, quick >= 20x AIDE; RSS under AIDE's ($((RSS[aide-check] / 1024)) MiB)"
for n in full-sha256 full-blake3 quick; do
	tail -1 "$WORK/$n.out" | sed "s/^/  $n: /"
done
