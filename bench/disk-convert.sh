#!/usr/bin/env bash
# Side-by-side benchmark: convert a 16 GiB-virtual dynamic VHDX holding ~2 GiB
# of scattered data into an Azure-ready fixed VHD, with imgpipe and with
# `qemu-img convert -O vpc -o subformat=fixed,force_size=on`, in one run.
# Prints wall time, peak RSS and allocated output size of each, the ratio,
# and checks that both outputs hold the same disk (qemu-img compare).
#
# Needs: go, qemu-img, GNU time (/usr/bin/time, for peak RSS). Environment:
# BENCH_DIR (scratch directory, default a temp dir), BENCH_RUNS (default 5),
# BENCH_VIRTUAL_GIB (16), BENCH_DATA_MIB (2048), BENCH_SRC (an existing
# source VHDX to use instead of making one).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

RUNS=${BENCH_RUNS:-5}
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
if [ -n "${BENCH_SRC:-}" ]; then SRC=$BENCH_SRC; else make_scattered_vhdx "$SRC" "$VIRT_GIB" "$DATA_MIB" 512; fi
qemu-img info "$SRC" | sed 's/^/   /'

OUT_I="$WORK/out-imgpipe.vhd"
OUT_Q="$WORK/out-qemu.vhd"
OUT_P="$WORK/out-qemu-plain.vhd"
# Both durable: imgpipe fsyncs its output before moving it into place; plain
# `qemu-img convert` (default cache mode) does not flush, so its run is
# followed by `sync FILE` (an fsync of the output), counted in its time.
CMD_I="$WORK/imgpipe disk convert $SRC $OUT_I --to vhd-fixed --force"
CMD_Q="qemu-img convert -f vhdx -O vpc -o subformat=fixed,force_size=on $SRC $OUT_Q && sync $OUT_Q"
# For information: plain qemu-img as it returns, its output not yet durable.
CMD_P="qemu-img convert -f vhdx -O vpc -o subformat=fixed,force_size=on $SRC $OUT_P"

# Warm the page cache the same way for both.
cat "$SRC" >/dev/null

# Runs interleave the tools (imgpipe, qemu-img, qemu-img plain, then again),
# so that a machine whose load changes during the benchmark weighs on each
# alike; each run starts after its output is removed and a sync.
echo "== timing ($RUNS runs each, interleaved, after one warm-up run each)"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timed() { # timed NAME CMD OUT: prints seconds
  rm -f "$3"
  sync
  local t0 t1
  t0=$(date +%s.%N)
  bash -c "$2" >/dev/null
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}'
}
timed i "$CMD_I" "$OUT_I" >/dev/null
timed q "$CMD_Q" "$OUT_Q" >/dev/null
: >"$WORK/t_i"; : >"$WORK/t_q"; : >"$WORK/t_p"
for ((r = 1; r <= RUNS; r++)); do
  ti=$(timed i "$CMD_I" "$OUT_I"); echo "$ti" >>"$WORK/t_i"
  tq=$(timed q "$CMD_Q" "$OUT_Q"); echo "$tq" >>"$WORK/t_q"
  tp=$(timed p "$CMD_P" "$OUT_P"); echo "$tp" >>"$WORK/t_p"
  printf '   run %d: imgpipe %6.2f s   qemu-img+sync %6.2f s   qemu-img (not flushed) %6.2f s\n' "$r" "$ti" "$tq" "$tp"
done
T_I=$(median <"$WORK/t_i")
T_Q=$(median <"$WORK/t_q")
T_P=$(median <"$WORK/t_p")

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
awk -v ti="$T_I" -v tq="$T_Q" -v tp="$T_P" -v ri="$RSS_I" -v rq="$RSS_Q" -v di="$DU_I" -v dq="$DU_Q" \
    -v si="$(stat -c %s "$OUT_I")" -v sq="$(stat -c %s "$OUT_Q")" -v runs="$RUNS" 'BEGIN {
  printf "%-22s %14s %15s %16s %16s\n", "tool", "median (s)", "peak RSS (MiB)", "output du (MiB)", "apparent (MiB)"
  printf "%-22s %14.2f %15.1f %16.1f %16.1f\n", "imgpipe", ti, ri/1024, di/1024, si/1048576
  printf "%-22s %14.2f %15.1f %16.1f %16.1f\n", "qemu-img + sync", tq, rq/1024, dq/1024, sq/1048576
  printf "%-22s %14.2f   (not durable when it returns)\n", "qemu-img, not flushed", tp
  printf "ratio imgpipe/qemu-img convert, both durable (median of %d): %.2f (target <= 1.0)\n", runs, ti/tq
  printf "ratio imgpipe (durable)/qemu-img convert not flushed: %.2f (for information)\n", ti/tp
}'
echo "note: both durable = imgpipe fsyncs before its rename; qemu-img convert (default cache mode,"
echo "      which does not flush) is followed by sync on its output. imgpipe writes aligned data"
echo "      with O_DIRECT where the file system allows it. The source is cached for both."
echo "      The machine may be shared: the runs interleave the tools, expect noise between runs."
if [ "$((RSS_I / 1024))" -ge 128 ]; then echo "imgpipe peak RSS is over 128 MiB" >&2; exit 1; fi
