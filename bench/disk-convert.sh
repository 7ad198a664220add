#!/usr/bin/env bash
# Side-by-side benchmark: convert a 16 GiB-virtual dynamic VHDX holding ~2 GiB
# of scattered data into an Azure-ready fixed VHD, with imgpipe and with
# `qemu-img convert -O vpc -o subformat=fixed,force_size=on`, in one run.
# Prints wall time, peak RSS and allocated output size of each, the ratio,
# and checks that both outputs hold the same disk (qemu-img compare).
#
# Needs: go, qemu-img, GNU time (/usr/bin/time); hyperfine is used when
# present. Environment: BENCH_DIR (scratch directory, default a temp dir),
# BENCH_RUNS (default 3), BENCH_VIRTUAL_GIB (16), BENCH_DATA_MIB (2048).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

RUNS=${BENCH_RUNS:-3}
VIRT_GIB=${BENCH_VIRTUAL_GIB:-16}
DATA_MIB=${BENCH_DATA_MIB:-2048}
WORK=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/imgpipe-bench.XXXXXX")}
KEEP=${BENCH_KEEP:-0}
cleanup() { if [ "$KEEP" != 1 ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT
mkdir -p "$WORK"

for tool in go qemu-img /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool (run scripts/install-deps.sh)" >&2; exit 1; }
done

echo "== building imgpipe"
go build -o "$WORK/imgpipe" ./cmd/imgpipe

SRC="$WORK/src.vhdx"
echo "== making a ${VIRT_GIB} GiB dynamic VHDX with ${DATA_MIB} MiB of scattered data"
# each 4 MiB piece followed by 512 KiB of written zeros
make_scattered_vhdx "$SRC" "$VIRT_GIB" "$DATA_MIB" 512
qemu-img info "$SRC" | sed 's/^/   /'

OUT_I="$WORK/out-imgpipe.vhd"
OUT_Q="$WORK/out-qemu.vhd"
OUT_W="$WORK/out-qemu-wb.vhd"
CMD_I="$WORK/imgpipe disk convert $SRC $OUT_I --to vhd-fixed --force"
CMD_Q="qemu-img convert -f vhdx -O vpc -o subformat=fixed,force_size=on $SRC $OUT_Q"
# The same with cache mode writeback, which flushes the output at the end:
# durable on return, like imgpipe's fsync + rename.
CMD_W="qemu-img convert -t writeback -f vhdx -O vpc -o subformat=fixed,force_size=on $SRC $OUT_W"

# Warm the page cache the same way for both.
cat "$SRC" >/dev/null

echo "== timing ($RUNS runs each)"
if command -v hyperfine >/dev/null; then
  hyperfine --runs "$RUNS" --warmup 1 --export-json "$WORK/hyperfine.json" \
    --prepare "rm -f $OUT_I $OUT_Q $OUT_W; sync" -n imgpipe "$CMD_I" -n qemu-img "$CMD_Q" -n "qemu-img -t writeback" "$CMD_W"
  # medians from hyperfine's JSON export (one "median" per command, in order)
  read -r T_I T_Q T_W < <(grep -o '"median": *[0-9.e+-]*' "$WORK/hyperfine.json" | awk -F: '{printf "%s ", $2} END {print ""}')
else
  median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  runs() {
    for ((r = 0; r < RUNS; r++)); do
      rm -f "$OUT_I" "$OUT_Q" "$OUT_W"
      sync
      /usr/bin/time -f %e -o "$WORK/t" bash -c "$1" >/dev/null
      cat "$WORK/t"
    done | median
  }
  T_I=$(runs "$CMD_I")
  T_Q=$(runs "$CMD_Q")
  T_W=$(runs "$CMD_W")
fi

echo "== peak RSS (one run each, /usr/bin/time -v)"
rss() {
  rm -f "$2"
  sync
  /usr/bin/time -v -o "$WORK/tv" bash -c "exec $1" >/dev/null
  awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$WORK/tv"
}
RSS_I=$(rss "$CMD_I" "$OUT_I")
RSS_Q=$(rss "$CMD_Q" "$OUT_Q")

DU_I=$(du -k "$OUT_I" | cut -f1)
DU_Q=$(du -k "$OUT_Q" | cut -f1)

echo "== verifying"
qemu-img compare -f vpc -F vpc "$OUT_I" "$OUT_Q"
"$WORK/imgpipe" disk check --azure "$OUT_I"

echo
awk -v ti="$T_I" -v tq="$T_Q" -v tw="$T_W" -v ri="$RSS_I" -v rq="$RSS_Q" -v di="$DU_I" -v dq="$DU_Q" \
    -v si="$(stat -c %s "$OUT_I")" -v sq="$(stat -c %s "$OUT_Q")" 'BEGIN {
  printf "%-10s %10s %15s %16s %16s\n", "tool", "wall (s)", "peak RSS (MiB)", "output du (MiB)", "apparent (MiB)"
  printf "%-10s %10.2f %15.1f %16.1f %16.1f\n", "imgpipe", ti, ri/1024, di/1024, si/1048576
  printf "%-10s %10.2f %15.1f %16.1f %16.1f\n", "qemu-img", tq, rq/1024, dq/1024, sq/1048576
  printf "%-10s %10.2f   (qemu-img -t writeback: flushed like imgpipe)\n", "qemu-img-wb", tw
  printf "ratio imgpipe/qemu-img wall time: %.2f (target <= 1.0)\n", ti/tq
  printf "ratio imgpipe/qemu-img -t writeback (both durable): %.2f\n", ti/tw
}'
echo "note: imgpipe fsyncs its output before moving it into place; qemu-img convert with"
echo "      its default cache mode did not flush the written data (strace, qemu 7.2), so its"
echo "      time excludes write-back. Both start after a sync with the source cached."
echo "      The machine may be shared: expect noise between runs."
if [ "$((RSS_I / 1024))" -ge 128 ]; then echo "imgpipe peak RSS is over 128 MiB" >&2; exit 1; fi
