#!/usr/bin/env bash
# Side-by-side benchmark: convert a qcow2 (16 GiB virtual, ~1 GiB of scattered
# data, as qemu-img writes it) into an Azure-ready fixed VHD with imgpipe and
# with `qemu-img convert -O vpc -o subformat=fixed,force_size=on`, in one run.
# Prints the median wall time of each and the ratio, and checks that both
# outputs hold the same disk (qemu-img compare).
#
# Needs: go, qemu-img, GNU time (/usr/bin/time); hyperfine is used when present.
# Environment: BENCH_DIR (scratch directory, default a temp dir), BENCH_RUNS (5),
# BENCH_VIRTUAL_GIB (16), BENCH_DATA_MIB (1024), BENCH_QCOW2 (plain | zlib | zstd:
# compressed clusters; the data is then base64 text, which compresses to ~75%).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${BENCH_RUNS:-5}
VIRT_GIB=${BENCH_VIRTUAL_GIB:-16}
DATA_MIB=${BENCH_DATA_MIB:-1024}
KIND=${BENCH_QCOW2:-plain}
WORK=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/imgpipe-bench.XXXXXX")}
KEEP=${BENCH_KEEP:-0}
cleanup() { if [ "$KEEP" != 1 ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT
mkdir -p "$WORK"

for tool in go qemu-img /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

echo "== building imgpipe"
go build -o "$WORK/imgpipe" ./cmd/imgpipe

case "$KIND" in
  plain) opts=(); data() { head -c $((4 << 20)) /dev/urandom; } ;;
  zlib) opts=(-c); data() { { base64 -w0 /dev/urandom || true; } | head -c $((4 << 20)); } ;;
  zstd) opts=(-c -o compression_type=zstd); data() { { base64 -w0 /dev/urandom || true; } | head -c $((4 << 20)); } ;;
  *) echo "BENCH_QCOW2=$KIND: use plain, zlib or zstd" >&2; exit 1 ;;
esac

SRC="$WORK/src.qcow2"
echo "== making a ${VIRT_GIB} GiB qcow2 ($KIND) with ${DATA_MIB} MiB of scattered data"
raw="$WORK/src.raw"
truncate -s "${VIRT_GIB}G" "$raw"
pieces=$((DATA_MIB / 4))
slot=$((VIRT_GIB * 1024 / pieces))
if [ "$slot" -lt 6 ]; then echo "too much data for the virtual size" >&2; exit 1; fi
for ((i = 0; i < pieces; i++)); do
  off=$((i * slot + (i * 7919) % (slot - 5)))
  data | dd of="$raw" bs=1M iflag=fullblock seek="$off" conv=notrunc status=none
done
qemu-img convert -f raw -O qcow2 "${opts[@]}" "$raw" "$SRC"
rm -f "$raw"
qemu-img info "$SRC" | sed 's/^/   /'

OUT_I="$WORK/out-imgpipe.vhd"
OUT_Q="$WORK/out-qemu.vhd"
OUT_W="$WORK/out-qemu-wb.vhd"
CMD_I="$WORK/imgpipe disk convert $SRC $OUT_I --to vhd-fixed --force"
CMD_Q="qemu-img convert -f qcow2 -O vpc -o subformat=fixed,force_size=on $SRC $OUT_Q"
# cache mode writeback flushes the output at the end: durable on return, like
# imgpipe's fsync + rename.
CMD_W="qemu-img convert -t writeback -f qcow2 -O vpc -o subformat=fixed,force_size=on $SRC $OUT_W"
cat "$SRC" >/dev/null

echo "== timing ($RUNS runs each)"
if command -v hyperfine >/dev/null; then
  hyperfine --runs "$RUNS" --warmup 1 --export-json "$WORK/hyperfine.json" \
    --prepare "rm -f $OUT_I $OUT_Q $OUT_W; sync" -n imgpipe "$CMD_I" -n qemu-img "$CMD_Q" -n "qemu-img -t writeback" "$CMD_W"
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

echo "== verifying"
[ -f "$OUT_I" ] || $CMD_I >/dev/null
[ -f "$OUT_Q" ] || $CMD_Q
qemu-img compare -f vpc -F vpc "$OUT_I" "$OUT_Q"
qemu-img compare -f qcow2 -F vpc "$SRC" "$OUT_I"
"$WORK/imgpipe" disk check --azure "$OUT_I"

echo
awk -v ti="$T_I" -v tq="$T_Q" -v tw="$T_W" -v kind="$KIND" 'BEGIN {
  printf "qcow2 (%s) -> fixed VHD, median wall time\n", kind
  printf "%-22s %8.2f s\n", "imgpipe", ti
  printf "%-22s %8.2f s\n", "qemu-img", tq
  printf "%-22s %8.2f s   (flushed, like imgpipe)\n", "qemu-img -t writeback", tw
  printf "ratio imgpipe/qemu-img: %.2f\n", ti/tq
  printf "ratio imgpipe/qemu-img -t writeback (both durable): %.2f\n", ti/tw
}'
echo "note: imgpipe fsyncs its output; plain qemu-img does not flush. The machine may be shared."
