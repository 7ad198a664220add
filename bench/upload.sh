#!/usr/bin/env bash
# Side-by-side upload benchmark, in one run, against freshly started Azurites:
#
#   imgpipe: imgpipe upload SRC.vhdx (straight from the VHDX; per-request
#            CRC64, no whole-blob MD5: the default)
#   peer:    qemu-img convert -O vpc -o subformat=fixed,force_size=on SRC.vhdx fixed.vhd
#            then az storage blob upload --type page (Debian's azure-cli)
#   peer 2:  the same fixed.vhd uploaded by AzCopy (azcopy copy --blob-type
#            PageBlob), when AZCOPY names an azcopy binary (built from its
#            public source); skipped, and said so, otherwise
#   publish: imgpipe publish of the same VHDX to `imgpipe emulator
#            --start-azurite` (upload + managed image + gallery version), to
#            show publish costs O(data) too (no peer: az cannot talk to the
#            emulator); BENCH_PUBLISH=0 skips it
#
# The source is a dynamic VHDX holding ~2 GiB of scattered data (4 MiB pieces
# at 1 MiB-aligned offsets), for each virtual size in BENCH_VIRTUAL_GIB. A
# size above the baseline (BENCH_BASE_GIB, 16) is measured beside the
# baseline, so BENCH_VIRTUAL_GIB=127 runs 16 and 127 and prints them side by
# side. Each tool gets its own fresh Azurite (in memory, loopback) behind
# bench/cmd/countproxy, which counts the bytes each client puts on the wire.
# The peer's conversion is done once per size and counted in both peers'
# times. Reported: wall time, bytes on the wire, peak RSS, temporary disk,
# and the ratios against the targets:
#   bytes sent <= 1.01 x data bytes, RSS < 256 MiB, no temp file;
#   wall ratio imgpipe / (qemu-img + az) <= 1.0 at the baseline, <= 0.5 above;
#   imgpipe's time at a larger size <= 1.15 x its baseline time;
#   imgpipe / (qemu-img + AzCopy) <= 0.5 above the baseline (shown at the baseline).
#
# Needs: go, qemu-img, az (azure-cli), node_modules/.bin/azurite-blob (npm ci),
# GNU time, python3. Environment: BENCH_DIR (scratch dir, default a temp dir),
# BENCH_VIRTUAL_GIB (16; a list such as "16 64 127" works), BENCH_BASE_GIB
# (16), BENCH_DATA_MIB (2048), BENCH_WORKERS (imgpipe --workers, default its
# own), BENCH_AZ_CONNECTIONS (az --max-connections, default az's own),
# AZCOPY (path to azcopy), BENCH_PUBLISH (1), BENCH_AZ (1; 0 skips az, said
# in the report), BENCH_KEEP=1 to keep the
# scratch dir. Sparse files: a 127 GiB case needs ~5 GiB of real disk.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
ROOT=$(pwd)

BASE_GIB=${BENCH_BASE_GIB:-16}
SIZES=$(echo "${BENCH_VIRTUAL_GIB:-$BASE_GIB}" | tr ',' ' ')
case " $SIZES " in *" $BASE_GIB "*) ;; *) SIZES="$BASE_GIB $SIZES" ;; esac
SIZES=$(printf '%s\n' $SIZES | sort -n | uniq | tr '\n' ' ')
DATA_MIB=${BENCH_DATA_MIB:-2048}
PUBLISH=${BENCH_PUBLISH:-1}
AZ=${BENCH_AZ:-1} # 0: skip az (at 127 GiB it reads the whole fixed VHD in Python: about an hour)
AZCOPY=${AZCOPY:-}
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

for tool in go qemu-img az python3 /usr/bin/time "$AZURITE"; do
  command -v "$tool" >/dev/null || { echo "missing $tool (run scripts/install-deps.sh)" >&2; exit 1; }
done
if [ -n "$AZCOPY" ] && ! "$AZCOPY" --version >/dev/null 2>&1; then
  echo "AZCOPY=$AZCOPY does not run" >&2; exit 1
fi

echo "== building imgpipe and countproxy"
go build -o "$WORK/imgpipe" ./cmd/imgpipe
go build -o "$WORK/countproxy" ./bench/cmd/countproxy
echo "== sizes: $SIZES GiB virtual, $DATA_MIB MiB of data each; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

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
  kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null || true
  kill "$AZ_PID"; wait "$AZ_PID" 2>/dev/null || true
}
conn() { echo "DefaultEndpointsProtocol=http;AccountName=$ACCOUNT;AccountKey=$KEY;BlobEndpoint=http://$1/$ACCOUNT;"; }
now() { date +%s.%N; }
since() { awk "BEGIN{print $(now) - $1}"; }
# peak RSS in KiB from GNU time's output file
rss() { sed -n 's/^RSS_KB=//p' "$1" | tail -1; }
onwire() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_to_server"])' "$1"; }
# put KEY VALUE: one figure of the current case, read back by the report
put() { echo "$1=$2" >>"$WORK/case-$V.txt"; }

bench_imgpipe() {
  echo "-- imgpipe upload (straight from the VHDX)"
  start_azurite "imgpipe-$V"
  local workers=() ckpt="$SRC.imgpipe-upload.json"
  [ -n "${BENCH_WORKERS:-}" ] && workers=(--workers "$BENCH_WORKERS")
  # Temporary disk: imgpipe writes no image; its only file is the resume
  # checkpoint (a few KiB, deleted on success). Sample its size meanwhile.
  rm -f "$WORK/imgpipe.done"
  ( max=0; while [ ! -e "$WORK/imgpipe.done" ]; do
      s=$(stat -c %s "$ckpt" 2>/dev/null || echo 0); [ "$s" -gt "$max" ] && max=$s; sleep 0.05
    done; echo "$max" >"$WORK/ckpt.max" ) &
  local sampler=$! t0
  t0=$(now)
  AZURE_STORAGE_KEY="$KEY" /usr/bin/time -f 'RSS_KB=%M' -o "$WORK/time-imgpipe" \
    "$WORK/imgpipe" upload "$SRC" --account "$ACCOUNT" --blob-endpoint "http://$PROXY/$ACCOUNT" \
    --container vhds --name imgpipe.vhd "${workers[@]}" -o json >"$WORK/imgpipe-$V.json"
  put i_wall "$(since "$t0")"
  touch "$WORK/imgpipe.done"; wait "$sampler"
  put i_rss "$(rss "$WORK/time-imgpipe")"
  put i_ckpt "$(cat "$WORK/ckpt.max")"
  if [ -e "$ckpt" ]; then put i_tmp "$(stat -c %s "$ckpt")"; else put i_tmp 0; fi
  stop_azurite
  put i_wire "$(onwire "$WORK/proxy-imgpipe-$V.json")"
  python3 - "$WORK/imgpipe-$V.json" <<'PY'
import json,sys
r=json.load(open(sys.argv[1]))
print("   sent %d bytes in %d ranges, %d retries; integrity: %s checked on %d requests%s" % (
  r["bytes_sent"], r["ranges"], r["retries"], r["integrity"]["request_checksum"], r["integrity"]["checked_ranges"],
  ", Content-MD5 %s (hashing %.1fs)" % (r["md5"], r.get("md5_seconds", 0)) if r.get("md5") else ", no whole-blob MD5"))
PY
}

bench_peers() {
  echo "-- peer: qemu-img convert to a fixed VHD"
  local vhd="$WORK/peer-fixed.vhd" t0
  t0=$(now)
  /usr/bin/time -f 'RSS_KB=%M' -o "$WORK/time-qemu" \
    qemu-img convert -f vhdx -O vpc -o subformat=fixed,force_size=on "$SRC" "$vhd"
  put p_convert "$(since "$t0")"
  put q_rss "$(rss "$WORK/time-qemu")"
  put p_tmp_alloc "$(du -B1 "$vhd" | cut -f1)"
  put p_tmp_apparent "$(stat -c %s "$vhd")"

  if [ "$AZ" = 1 ]; then bench_az "$vhd"; fi
  if [ -n "$AZCOPY" ]; then bench_azcopy "$vhd"; fi
  rm -f "$vhd"
}

bench_az() {
  local vhd=$1 t0
  echo "-- peer: az storage blob upload --type page"
  start_azurite "az-$V"
  local azf=()
  [ -n "${BENCH_AZ_CONNECTIONS:-}" ] && azf=(--max-connections "$BENCH_AZ_CONNECTIONS")
  t0=$(now)
  /usr/bin/time -f 'RSS_KB=%M' -o "$WORK/time-az" \
    az storage blob upload --type page --connection-string "$(conn "$PROXY")" \
    -c vhds -n peer.vhd -f "$vhd" "${azf[@]}" -o none --only-show-errors 2>"$WORK/az.log" ||
    { echo "az storage blob upload failed:" >&2; tail -20 "$WORK/az.log" >&2; exit 1; }
  put a_upload "$(since "$t0")"
  put a_rss "$(rss "$WORK/time-az")"
  stop_azurite
  put a_wire "$(onwire "$WORK/proxy-az-$V.json")"
}

bench_azcopy() {
  local vhd=$1 t0
  echo "-- peer 2: azcopy copy --blob-type PageBlob ($("$AZCOPY" --version))"
  start_azurite "azcopy-$V"
  local sas
  sas=$(az storage container generate-sas -n vhds --connection-string "$(conn "127.0.0.1:$PORT")" \
    --permissions racwl --expiry 2099-01-01T00:00:00Z -o tsv)
  mkdir -p "$WORK/azcopy-logs" "$WORK/azcopy-plans"
  t0=$(now)
  AZCOPY_LOG_LOCATION="$WORK/azcopy-logs" AZCOPY_JOB_PLAN_LOCATION="$WORK/azcopy-plans" \
    /usr/bin/time -f 'RSS_KB=%M' -o "$WORK/time-azcopy" \
    "$AZCOPY" copy "$vhd" "http://$PROXY/$ACCOUNT/vhds/azcopy.vhd?$sas" --blob-type PageBlob --from-to LocalBlob \
    --skip-version-check --log-level ERROR --output-level quiet >"$WORK/azcopy.log" 2>&1 ||
    { echo "azcopy failed:" >&2; tail -20 "$WORK/azcopy.log" >&2; exit 1; }
  put z_upload "$(since "$t0")"
  put z_rss "$(rss "$WORK/time-azcopy")"
  stop_azurite
  put z_wire "$(onwire "$WORK/proxy-azcopy-$V.json")"
}

bench_publish() {
  echo "-- imgpipe publish to imgpipe emulator --start-azurite"
  local emu="$WORK/emu-$V" t0
  mkdir -p "$emu"
  IMGPIPE_AZURITE="$AZURITE" "$WORK/imgpipe" emulator --state "$emu/state" --start-azurite --listen 127.0.0.1:0 \
    --replication-duration 1s --lro-delay 100ms >"$emu/emulator.log" 2>&1 &
  local epid=$!
  PIDS+=("$epid")
  for _ in $(seq 1 900); do [ -s "$emu/state/emulator.env" ] && break; sleep 0.1; done
  [ -s "$emu/state/emulator.env" ] || { echo "the emulator did not start:" >&2; cat "$emu/emulator.log" >&2; exit 1; }
  # the bench disk has no partition table: say its generation
  sed 's/^  os_type = "Linux"/  os_type = "Linux"\n  hyperv_generation = "V2"/' examples/emulator.hcl >"$emu/pipeline.hcl"
  grep -q hyperv_generation "$emu/pipeline.hcl"
  t0=$(now)
  (cd "$emu" && . state/emulator.env && IMGPIPE_POLL_INTERVAL=100ms HOME="$emu" \
    /usr/bin/time -f 'RSS_KB=%M' -o "$WORK/time-publish" \
    "$WORK/imgpipe" publish -f pipeline.hcl --source "$SRC" --yes --catalog "$emu/catalog.db" -o json >publish.json 2>publish.err) ||
    { echo "publish failed:" >&2; tail -20 "$emu/publish.err" >&2; exit 1; }
  put b_wall "$(since "$t0")"
  put b_rss "$(rss "$WORK/time-publish")"
  kill -INT "$epid"; wait "$epid" 2>/dev/null || true
}

for V in $SIZES; do
  echo
  echo "== ${V} GiB virtual"
  rm -f "$WORK/case-$V.txt"
  SRC="$WORK/src-$V.vhdx"
  make_scattered_vhdx "$SRC" "$V" "$DATA_MIB" 0
  qemu-img info "$SRC" | sed 's/^/   /'
  put data $(((DATA_MIB / 4) * 4 * 1024 * 1024)) # whole 4 MiB pieces
  put load "$(cut -d' ' -f1 /proc/loadavg)"
  cat "$SRC" >/dev/null # warm the page cache the same way for every tool
  bench_imgpipe
  bench_peers
  [ "$PUBLISH" = 1 ] && bench_publish
  put load_end "$(cut -d' ' -f1 /proc/loadavg)"
  rm -f "$SRC"
done

echo
echo "== results ($(nproc) cores, shared machine: expect noise; load average at the start and end of each case shown)"
python3 - "$WORK" "$BASE_GIB" "$AZCOPY" "$AZ" $SIZES <<'PY'
import sys
work, base, azcopy, az, sizes = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", [int(s) for s in sys.argv[5:]]
cases = {}
for v in sizes:
    c = {}
    for line in open("%s/case-%d.txt" % (work, v)):
        k, _, val = line.strip().partition("=")
        c[k] = float(val)
    cases[v] = c
ok = lambda b: "PASS" if b else "FAIL"
for v in sizes:
    c = cases[v]
    data = c["data"]
    cols = [("imgpipe", c["i_wall"], c["i_wire"], c["i_rss"], c["i_ckpt"], c["i_ckpt"])]
    if az:
        cols.append(("qemu-img + az", c["p_convert"] + c["a_upload"], c["a_wire"], max(c["q_rss"], c["a_rss"]), c["p_tmp_alloc"], c["p_tmp_apparent"]))
    if "z_upload" in c:
        cols.append(("qemu-img + AzCopy", c["p_convert"] + c["z_upload"], c["z_wire"], max(c["q_rss"], c["z_rss"]), c["p_tmp_alloc"], c["p_tmp_apparent"]))
    print("\n%d GiB virtual, %d data bytes (load %.2f -> %.2f)" % (v, data, c["load"], c["load_end"]))
    print("%-30s" % "" + "".join("%20s" % col[0] for col in cols))
    for name, i, f in [("wall time (s)", 1, "%.1f"), ("bytes on the wire", 2, "%d"), ("wire / data bytes", 2, "r"),
                       ("peak RSS (MiB)", 3, "m"), ("temp disk, allocated (bytes)", 4, "%d"), ("temp disk, apparent (bytes)", 5, "%d")]:
        cells = []
        for col in cols:
            x = col[i]
            cells.append("%.4f" % (x / data) if f == "r" else "%.0f" % (x / 1024) if f == "m" else f % x)
        print("%-30s" % name + "".join("%20s" % s for s in cells))
    br = "peer breakdown: qemu-img convert %.1fs (RSS %d MiB)" % (c["p_convert"], c["q_rss"] / 1024)
    if az:
        br += ", az upload %.1fs (RSS %d MiB)" % (c["a_upload"], c["a_rss"] / 1024)
    if "z_upload" in c:
        br += ", AzCopy upload %.1fs (RSS %d MiB)" % (c["z_upload"], c["z_rss"] / 1024)
    print(br)
    if "b_wall" in c:
        print("imgpipe publish (upload + managed image + version, emulator): %.1fs (RSS %d MiB)" % (c["b_wall"], c["b_rss"] / 1024))

print("\nside by side (wall time, s):")
hdr = "%-34s" % "" + "".join("%12s" % ("%d GiB" % v) for v in sizes)
print(hdr)
rows = [("imgpipe upload", lambda c: c["i_wall"])]
if az:
    rows.append(("qemu-img + az", lambda c: c["p_convert"] + c["a_upload"]))
if azcopy:
    rows.append(("qemu-img + AzCopy", lambda c: c["p_convert"] + c["z_upload"]))
if all("b_wall" in cases[v] for v in sizes):
    rows.append(("imgpipe publish (emulator)", lambda c: c["b_wall"]))
if az:
    rows.append(("ratio imgpipe / (qemu-img + az)", lambda c: c["i_wall"] / (c["p_convert"] + c["a_upload"])))
if azcopy:
    rows.append(("ratio imgpipe / (qemu-img + AzCopy)", lambda c: c["i_wall"] / (c["p_convert"] + c["z_upload"])))
for name, f in rows:
    print("%-34s" % name + "".join("%12.3f" % f(cases[v]) if name.startswith("ratio") else "%12.1f" % f(cases[v]) for v in sizes))

print("\ntargets:")
b = cases[base]
for v in sizes:
    c = cases[v]
    data, goal = c["data"], 1.0 if v == base else 0.5
    print("  %3d GiB: imgpipe bytes on the wire <= 1.01 x data:  %.4f  %s" % (v, c["i_wire"] / data, ok(c["i_wire"] <= 1.01 * data)))
    if az:
        p_wall = c["p_convert"] + c["a_upload"]
        print("  %3d GiB: imgpipe / (qemu-img + az) <= %.1f:          %.3f  %s" % (v, goal, c["i_wall"] / p_wall, ok(c["i_wall"] <= goal * p_wall)))
    if "z_upload" in c:
        z = c["p_convert"] + c["z_upload"]
        if v == base:
            print("  %3d GiB: imgpipe / (qemu-img + AzCopy):              %.3f  (goal <= 0.5 applies above %d GiB)" % (v, c["i_wall"] / z, base))
        else:
            print("  %3d GiB: imgpipe / (qemu-img + AzCopy) <= 0.5:       %.3f  %s" % (v, c["i_wall"] / z, ok(c["i_wall"] <= 0.5 * z)))
    if v != base:
        print("  %3d GiB: imgpipe upload time / its %d GiB time <= 1.15: %.3f  %s" % (v, base, c["i_wall"] / b["i_wall"], ok(c["i_wall"] <= 1.15 * b["i_wall"])))
        if "b_wall" in c and "b_wall" in b:
            print("  %3d GiB: imgpipe publish time / its %d GiB time <= 1.15: %.3f  %s" % (v, base, c["b_wall"] / b["b_wall"], ok(c["b_wall"] <= 1.15 * b["b_wall"])))
    print("  %3d GiB: imgpipe peak RSS < 256 MiB:                 %.0f   %s" % (v, c["i_rss"] / 1024, ok(c["i_rss"] < 256 * 1024)))
    print("  %3d GiB: imgpipe temporary file: %d bytes left, no image written (checkpoint peaked at %d bytes)  %s" % (v, c["i_tmp"], c["i_ckpt"], ok(c["i_tmp"] == 0)))
if not az:
    print("  qemu-img + az: skipped (BENCH_AZ=0)")
if not azcopy:
    print("  qemu-img + AzCopy: skipped (set AZCOPY=/path/to/azcopy; it builds from its public source with go build)")
PY
