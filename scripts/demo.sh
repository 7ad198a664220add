#!/usr/bin/env bash
# The end-to-end demo, on local components only (`make demo`):
#
#   1. Packer builds a small bootable Debian disk (debootstrap, extlinux) and
#      imgpipe records its provenance in the catalog;
#   2. the local Azure stand-ins start: Azurite (blobs) and imgpipe's ARM
#      emulator (images, galleries, versions);
#   3. `imgpipe publish` delivers the same bits to the on-prem Hyper-V library
#      (channel test) and, through a page blob and a managed image, to a gallery
#      version replicated to two regions;
#   4. the gate: the version, published staged (its gallery version excluded
#      from latest), boots in qemu from its library copy (`imgpipe test`: the
#      image's agent checks drift and the declared commands and reports on
#      COM2), then is promoted to prod, which includes it in latest; a second
#      version whose declared check fails is refused by promote, naming the
#      check and its output (DEMO_FAIL=0 skips that second boot);
#   5. optionally (DEMO_BOOT=1) the page blob Azure received is downloaded back,
#      compared with the fixed VHD of the build, and booted in qemu.
#
# Environment:
#   DEMO_OUT      output folder (default demo-out; removed and made anew)
#   DEMO_VERSION  image version (default 1.0.0)
#   DEMO_REBUILD  1: rebuild the disk even when out/demo-debian has it
#   DEMO_BOOT     1: download the uploaded blob and boot it in qemu-system (software emulation, minutes)
#   DEMO_CACHE    folder for downloaded Debian packages (default .cache/demo-debs)
#   DEMO_FAIL     0: skip the failing second version (one boot less; TCG boots take minutes)
# Building the disk needs root (debootstrap, a loop device); the rest does not.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

out=${DEMO_OUT:-demo-out}
version=${DEMO_VERSION:-1.0.0}
image=demo-debian
bin=$root/bin/imgpipe
disk=out/demo-debian/$image-$version.raw

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

[ -x "$bin" ] || die "$bin is missing: run make demo (it builds it first)"
for t in packer qemu-img node; do
  command -v "$t" >/dev/null || die "$t is missing: run ./scripts/install-deps.sh"
done
[ -x node_modules/.bin/azurite-blob ] || die "Azurite is missing: run npm ci (or ./scripts/install-deps.sh)"

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo --preserve-env=PATH,DEMO_CACHE,DEMO_MIRROR); fi

rm -rf "$out"
mkdir -p "$out"
out=$(realpath "$out")
export IMGPIPE_CATALOG="$out/catalog.db"
export DEMO_CACHE=${DEMO_CACHE:-$root/.cache/demo-debs}
export PATH="$root/bin:$PATH"

# --- 1. build -----------------------------------------------------------------
if [ ! -f "$disk" ] || [ "${DEMO_REBUILD:-0}" = 1 ]; then
  say "1. Packer builds the image (debootstrap + kernel + extlinux + the agent, identity and baseline; a few minutes the first time)"
  # the agent inside the image: a static build of this imgpipe
  mkdir -p out/demo-debian
  CGO_ENABLED=0 go build -ldflags "-s -w" -o out/demo-debian/imgpipe-agent ./cmd/imgpipe
  "${sudo_cmd[@]}" "$bin" build examples/packer/demo-debian \
    --var version="$version" --var agent="$root/out/demo-debian/imgpipe-agent" \
    --manifest out/demo-debian/packer-manifest.json \
    --catalog "$IMGPIPE_CATALOG"
  [ "$(id -u)" -eq 0 ] || "${sudo_cmd[@]}" chown -R "$(id -u):$(id -g)" out "$out"
else
  say "1. Packer build: reusing $disk (DEMO_REBUILD=1 builds it again); recording its provenance"
  "$bin" build examples/packer/demo-debian --from-manifest \
    --manifest out/demo-debian/packer-manifest.json --catalog "$IMGPIPE_CATALOG"
fi
"$bin" disk inspect "$disk"
say "   sign the build's provenance (SLSA v1, DSSE): a key of the operator's, trusted by the catalog"
"$bin" key generate --out "$out/keys/signing"
"$bin" key trust "$out/keys/signing.pub.pem"
"$bin" attest "$image" "$version" --key "$out/keys/signing.pem" --template examples/packer/demo-debian

# --- 2. local Azure -----------------------------------------------------------
say "2. Azurite and the ARM emulator start on loopback"
"$bin" emulator --listen 127.0.0.1:0 --state "$out/emulator" --start-azurite \
  --replication-duration 6s >"$out/emulator.log" 2>&1 &
emu_pid=$!
trap 'kill $emu_pid 2>/dev/null; wait $emu_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  [ -f "$out/emulator/emulator.env" ] && break
  kill -0 $emu_pid 2>/dev/null || { cat "$out/emulator.log"; die "the emulator stopped"; }
  sleep 0.5
done
[ -f "$out/emulator/emulator.env" ] || die "the emulator did not start within 60 s (see $out/emulator.log)"
# shellcheck disable=SC1091
source "$out/emulator/emulator.env"
cat "$out/emulator.log"

# --- 3. publish ---------------------------------------------------------------
cat >"$out/demo.hcl" <<EOF
# Written by scripts/demo.sh: the demo image to the on-prem library and to a
# gallery in the local emulator. See examples/pipeline.hcl for every option.
image "$image" {
  source        = "$root/$disk"
  os_type       = "Linux"
  os_state      = "Generalized"
  publisher     = "imgpipe"
  offer         = "demo"
  sku           = "debian-12"
}

azure "emulator" {
  subscription   = "$AZURE_SUBSCRIPTION_ID"
  resource_group = "rg-images"
  location       = "westeurope"
  storage {
    account        = "$AZURE_STORAGE_ACCOUNT"
    resource_group = "azemu-storage"
    container      = "vhds"
    blob_endpoint  = "$IMGPIPE_BLOB_ENDPOINT"
  }
  gallery    = "demo_gallery"
  definition = "$image"
  version    = "$version"
  target_region "westeurope" {}
  target_region "northeurope" {
    replicas = 2
  }
  replication_timeout = "5m"
}

onprem "lab" {
  library = "$out/library"
  channel = "test"
}

# What the gate boots and checks (imgpipe test); prod requires it passed.
test "smoke" {
  boot_timeout = "20m"             # software emulation (TCG) under load
  boot_marker  = "login:"
  drift_clean  = true              # a fresh VM must not drift from the baseline
  command "os-release" {
    run = "grep PRETTY_NAME /etc/os-release"
  }
  command "journald" {
    run = "systemctl is-active systemd-journald"
  }
}
EOF
say "3. imgpipe plan, then publish (on-prem library + Azure gallery in two regions)"
"$bin" plan -f "$out/demo.hcl"
"$bin" publish -f "$out/demo.hcl" --yes
say "   a second publish changes nothing"
"$bin" publish -f "$out/demo.hcl" --yes

# --- 4. the gate: test, then promote --------------------------------------------
say "4. the gate: $version is staged (excluded from latest) until it passes its test and goes to prod"
"$bin" promote "$image" "$version" --to prod && die "an untested version went to prod"
echo "(refused, as it must be: no passing test yet)"
say "   imgpipe test: boot the library copy in qemu (TCG here: minutes), drift check + declared commands"
start=$(date +%s)
"$bin" test "$image" "$version" -f "$out/demo.hcl" --accel "${DEMO_ACCEL:-tcg}"
echo "test step: $(( $(date +%s) - start )) s"
"$bin" verify "$image" "$version"   # prod needs this once a key is trusted
"$bin" promote "$image" "$version" --to prod --sign-key "$out/keys/signing.pem"
if [ "${DEMO_FAIL:-1}" = 1 ]; then
  bad=$(echo "$version" | awk -F. '{printf "%d.%d.%d", $1, $2, $3+1}')
  say "   a second version, $bad, whose declared check fails: refused by promote with the check's output"
  sed -e "s/version    = \"$version\"/version    = \"$bad\"/" \
      -e 's|run = "systemctl is-active systemd-journald"|run = "systemctl is-active nginx"   # not installed: fails|' \
      "$out/demo.hcl" > "$out/demo-bad.hcl"
  "$bin" publish -f "$out/demo-bad.hcl" --yes
  "$bin" test "$image" "$bad" -f "$out/demo-bad.hcl" --accel "${DEMO_ACCEL:-tcg}" && die "the failing check passed"
  "$bin" attest "$image" "$bad" --key "$out/keys/signing.pem" --template examples/packer/demo-debian
  "$bin" promote "$image" "$bad" --to prod && die "a version that failed its test went to prod"
  echo "(refused: the failed check and its output are named above)"
fi
"$bin" images
"$bin" show "$image" "$version"
"$bin" onprem list --library "$out/library"
"$bin" check-deploy "$version" -f "$out/demo.hcl" --subscription "$AZURE_SUBSCRIPTION_ID" --location northeurope

# --- 5. boot check ------------------------------------------------------------
if [ "${DEMO_BOOT:-0}" = 1 ]; then
  say "5. boot what Azure received: the page blob, downloaded back from Azurite, in qemu"
  command -v az >/dev/null || die "az is missing: run ./scripts/install-deps.sh"
  blob="$out/$image-$version.from-azure.vhd"
  az storage blob download -o none --only-show-errors --no-progress --max-connections 4 \
    --connection-string "DefaultEndpointsProtocol=http;AccountName=$AZURE_STORAGE_ACCOUNT;AccountKey=$AZURE_STORAGE_KEY;BlobEndpoint=$IMGPIPE_BLOB_ENDPOINT;" \
    --container-name vhds --name "$image-$version.vhd" --file "$blob"
  "$bin" disk check --azure "$blob"
  "$bin" disk convert "$disk" "$out/$image-$version.vhd" --to vhd-fixed
  cmp "$blob" "$out/$image-$version.vhd" && echo "the blob equals imgpipe's fixed VHD of the build, byte for byte"
  scripts/demo-image/boot-check.sh "$blob" 600
else
  say "5. boot check skipped (DEMO_BOOT=1 downloads the uploaded blob and boots it in qemu)"
fi
say "done: catalog $IMGPIPE_CATALOG, library $out/library, pipeline $out/demo.hcl"
scripts/demo-loop.sh "$out"   # the loop: drift -> rebuild -> test -> promote -> rollout (scripts/demo-loop.sh)
