#!/usr/bin/env bash
# Side-by-side upload benchmark, in one run, against a freshly started Azurite:
#
#   imgpipe: imgpipe upload SRC.vhdx (straight from the VHDX; MD5 included)
#   peer:    qemu-img convert -O vpc -o subformat=fixed,force_size=on SRC.vhdx fixed.vhd
#            then az storage blob upload --type page (Debian's azure-cli)
#
# The source is a 16 GiB-virtual dynamic VHDX holding ~2 GiB of scattered
# data (4 MiB pieces at 1 MiB-aligned offsets). Each tool gets its own fresh
# Azurite (in memory, loopback) behind bench/cmd/countproxy, which counts the
# bytes each client puts on the wire. Reported: wall time (conversion
# included for the peer), bytes on the wire, peak RSS, temporary disk used,
# and the ratios against the targets
#   bytes sent <= 1.01 x data bytes, wall ratio <= 1.0, RSS < 256 MiB, no temp file.
#
# Needs: go, qemu-img, az (azure-cli), node_modules/.bin/azurite-blob (npm ci),
# GNU time. Environment: BENCH_DIR (scratch dir, default a temp dir),
# BENCH_VIRTUAL_GIB (16), BENCH_DATA_MIB (2048), BENCH_WORKERS (imgpipe
# --workers, default its own), BENCH_AZ_CONNECTIONS (az --max-connections,
# default az's own), BENCH_KEEP=1 to keep the scratch dir.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
ROOT=$(pwd)

VIRT_GIB=${BENCH_VIRTUAL_GIB:-16}
DATA_MIB=${BENCH_DATA_MIB:-2048}
WORK=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/imgpipe-upload-bench.XXXXXX")}
KEEP=${BENCH_KEEP:-0}
AZURITE="$ROOT/node_modules/.bin/azurite-blob"
ACCOUNT=devstoreaccount1
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$KEEP" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
mkdir -p "$WORK"

for tool in go qemu-img az /usr/bin/time "$AZURITE"; do
  command -v "$tool" >/dev/null || { echo "missing $tool (run scripts/install-deps.sh)" >&2; exit 1; }
done

echo "== building imgpipe and countproxy"
go build -o "$WORK/imgpipe" ./cmd/imgpipe
go build -o "$WORK/countproxy" ./bench/cmd/countproxy

SRC="$WORK/src.vhdx"
echo "== making a ${VIRT_GIB} GiB dynamic VHDX with ${DATA_MIB} MiB of scattered data"
make_scattered_vhdx "$SRC" "$VIRT_GIB" "$DATA_MIB" 0
DATA_BYTES=$(((DATA_MIB / 4) * 4 * 1024 * 1024)) # whole 4 MiB pieces
VHD_BYTES=$((VIRT_GIB * 1024 * 1024 * 1024 + 512))
qemu-img info "$SRC" | sed 's/^/   /'
echo "   data bytes: $DATA_BYTES (+512 footer)"
cat "$SRC" >/dev/null # warm the page cache the same way for both

# start_azurite NAME: fresh in-memory Azurite + counting proxy; sets PORT
# (Azurite) and PROXY (host:port of the proxy).
start_azurite() {
  local name=$1
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$WORK/azurite-$name"
  (cd "$WORK/azurite-$name" && exec "$AZURITE" --inMemoryPersistence --blobHost 127.0.0.1 --blobPort "$PORT" \
    --skipApiVersionCheck --loose --silent --disableTelemetry) >"$WORK/azurite-$name.log" 2>&1 &
  AZ_PID=$!
  PIDS+=("$AZ_PID")
  for _ in $(seq 1 300); do
    (echo >/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
    sleep 0.1
  done
  rm -f "$WORK/proxy-$name.addr"
  "$WORK/countproxy" -upstream "127.0.0.1:$PORT" -addr-file "$WORK/proxy-$name.addr" -stats-file "$WORK/proxy-$name.json" &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  for _ in $(seq 1 100); do [ -s "$WORK/proxy-$name.addr" ] && break; sleep 0.05; done
  PROXY=$(cat "$WORK/proxy-$name.addr")
  # the container is created directly on Azurite, not counted
  az storage container create -n vhds --connection-string "$(conn "127.0.0.1:$PORT")" -o none 2>/dev/null
}
stop_azurite() {
  local name=$1
  kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null || true
  kill "$AZ_PID"; wait "$AZ_PID" 2>/dev/null || true
}
conn() { echo "DefaultEndpointsProtocol=http;AccountName=$ACCOUNT;AccountKey=$KEY;BlobEndpoint=http://$1/$ACCOUNT;"; }
now() { date +%s.%N; }
# peak RSS in KiB from GNU time's output file
rss() { sed -n 's/^RSS_KB=//p' "$1" | tail -1; }
onwire() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_to_server"])' "$1"; }

echo "== imgpipe upload (straight from the VHDX)"
start_azurite imgpipe
WORKERS_FLAG=()
[ -n "${BENCH_WORKERS:-}" ] && WORKERS_FLAG=(--workers "$BENCH_WORKERS")
# Temporary disk: imgpipe writes no image; its only file is the resume
# checkpoint (a few KiB, deleted on success). Sample its size meanwhile.
CKPT="$SRC.imgpipe-upload.json"
( max=0; while [ ! -e "$WORK/imgpipe.done" ]; do
    s=$(stat -c %s "$CKPT" 2>/dev/null || echo 0); [ "$s" -gt "$max" ] && max=$s; sleep 0.05
  done; echo "$max" >"$WORK/ckpt.max" ) &
SAMPLER=$!
t0=$(now)
AZURE_STORAGE_KEY="$KEY" /usr/bin/time -f 'RSS_KB=%M' -o "$WORK/time-imgpipe" \
  "$WORK/imgpipe" upload "$SRC" --account "$ACCOUNT" --blob-endpoint "http://$PROXY/$ACCOUNT" \
  --container vhds --name imgpipe.vhd "${WORKERS_FLAG[@]}" -o json >"$WORK/imgpipe.json"
t1=$(now)
touch "$WORK/imgpipe.done"; wait "$SAMPLER"
I_WALL=$(awk "BEGIN{print $t1 - $t0}")
I_RSS=$(rss "$WORK/time-imgpipe")
I_CKPT=$(cat "$WORK/ckpt.max")
I_TMP=0
[ -e "$CKPT" ] && I_TMP=$(stat -c %s "$CKPT")
stop_azurite imgpipe
I_WIRE=$(onwire "$WORK/proxy-imgpipe.json")
python3 - "$WORK/imgpipe.json" <<'PY'
import json,sys
r=json.load(open(sys.argv[1]))
print("   sent %d bytes in %d ranges, %d retries, MD5 %s (hashing %.1fs, waited %.1fs after the last page)" % (
  r["bytes_sent"], r["ranges"], r["retries"], r.get("md5",""), r.get("md5_seconds",0), r.get("md5_wait_seconds",0)))
PY

echo "== peer: qemu-img convert to a fixed VHD, then az storage blob upload --type page"
start_azurite peer
PEER_VHD="$WORK/peer-fixed.vhd"
AZ_FLAGS=()
[ -n "${BENCH_AZ_CONNECTIONS:-}" ] && AZ_FLAGS=(--max-connections "$BENCH_AZ_CONNECTIONS")
t0=$(now)
/usr/bin/time -f 'RSS_KB=%M' -o "$WORK/time-qemu" \
  qemu-img convert -f vhdx -O vpc -o subformat=fixed,force_size=on "$SRC" "$PEER_VHD"
t1=$(now)
P_TMP_ALLOC=$(du -B1 "$PEER_VHD" | cut -f1)
P_TMP_APPARENT=$(stat -c %s "$PEER_VHD")
/usr/bin/time -f 'RSS_KB=%M' -o "$WORK/time-az" \
  az storage blob upload --type page --connection-string "$(conn "$PROXY")" \
  -c vhds -n peer.vhd -f "$PEER_VHD" "${AZ_FLAGS[@]}" -o none --only-show-errors 2>"$WORK/az.log" ||
  { echo "az storage blob upload failed:" >&2; tail -20 "$WORK/az.log" >&2; exit 1; }
t2=$(now)
stop_azurite peer
P_CONVERT=$(awk "BEGIN{print $t1 - $t0}")
P_UPLOAD=$(awk "BEGIN{print $t2 - $t1}")
P_WALL=$(awk "BEGIN{print $t2 - $t0}")
Q_RSS=$(rss "$WORK/time-qemu")
A_RSS=$(rss "$WORK/time-az")
P_RSS=$(( Q_RSS > A_RSS ? Q_RSS : A_RSS ))
P_WIRE=$(onwire "$WORK/proxy-peer.json")
rm -f "$PEER_VHD"

echo
echo "== results (data: $DATA_BYTES bytes in a ${VIRT_GIB} GiB virtual disk; $(nproc) cores, shared machine: expect noise)"
python3 - <<PY
data=$DATA_BYTES
rows=[
 ("wall time (s)", $I_WALL, $P_WALL, "%.1f"),
 ("bytes on the wire", $I_WIRE, $P_WIRE, "%d"),
 ("wire / data bytes", $I_WIRE/data, $P_WIRE/data, "%.4f"),
 ("peak RSS (MiB)", $I_RSS/1024, $P_RSS/1024, "%.0f"),
 ("temp disk, allocated (bytes)", $I_CKPT, $P_TMP_ALLOC, "%d"),
 ("temp disk, apparent (bytes)", $I_CKPT, $P_TMP_APPARENT, "%d"),
]
print("%-30s %18s %18s %10s" % ("", "imgpipe", "peer", "ratio"))
for name,a,b,f in rows:
    r = ("%.3f" % (a/b)) if b else "-"
    print("%-30s %18s %18s %10s" % (name, f % a, f % b, r))
print("peer breakdown: qemu-img convert %.1fs (RSS %d MiB), az upload %.1fs (RSS %d MiB)" % ($P_CONVERT, $Q_RSS/1024, $P_UPLOAD, $A_RSS/1024))
ok=lambda c: "PASS" if c else "FAIL"
print()
print("targets:")
print("  imgpipe bytes on the wire <= 1.01 x data bytes: %.4f  %s" % ($I_WIRE/data, ok($I_WIRE <= 1.01*data)))
print("  wall-time ratio imgpipe/peer <= 1.0:           %.3f  %s" % ($I_WALL/$P_WALL, ok($I_WALL <= $P_WALL)))
print("  imgpipe peak RSS < 256 MiB:                    %.0f   %s" % ($I_RSS/1024, ok($I_RSS < 256*1024)))
print("  imgpipe temporary file:                        %d bytes left, no image written (checkpoint peaked at %d bytes)  %s" % ($I_TMP, $I_CKPT, ok($I_TMP == 0)))
PY
