#!/usr/bin/env bash
# The demo's last step (`make demo` runs it from scripts/demo.sh): the loop,
# closed by imgpipe itself, on the local components demo.sh started.
#
#   drift on a demo host -> rebuild from source -> test -> promote -> rollout
#
#   1. a small bootable image (scripts/test-image/build-tiny.sh: busybox, a
#      static imgpipe agent, identity and baseline) is published as web 1.0.0
#      to the emulator's gallery and the on-prem library, tested (imgpipe test)
#      and promoted to prod;
#   2. imgpipe serve runs the fleet server with the reconciler
#      (--reconcile loop.hcl); a demo host (a directory tree with the image's
#      identity and baseline) reports through its agent, clean;
#   3. a file on the host is changed by hand; the agent reports the drift;
#   4. the reconciler sees "1 of 1 prod hosts drifted" and rebuilds: Packer
#      (examples/packer/repackage: the previous disk with one changed file),
#      publish (gallery + library), the test gate boots it in qemu (TCG: about
#      a minute), promote to prod, and the rollout gives the host a Hyper-V
#      replacement script;
#   5. the host is replaced (its tree re-made from 1.0.1) and reports: the
#      rollout completes. Every step is in the catalog and was an event.
#
# Usage: scripts/demo-loop.sh OUT   (OUT: demo.sh's output folder, with the
# emulator running and OUT/emulator/emulator.env written). It keeps its own
# catalog (OUT/loop/catalog.db): the demo's trusts a signing key, and a
# rebuild is not signed.
# Needs: go, packer, qemu-system-x86_64, busybox (static), cpio, sfdisk,
# mkfs.vfat, mcopy, syslinux and a kernel in /boot (./scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$(realpath "${1:?usage: demo-loop.sh OUT (demo.sh output folder, emulator running)}")
bin=$root/bin/imgpipe
loop=$out/loop

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo-loop: $*" >&2; exit 1; }

[ -x "$bin" ] || die "$bin is missing: run make demo"
[ -f "$out/emulator/emulator.env" ] || die "$out/emulator/emulator.env is missing: run make demo (the emulator must be running)"
for t in go packer qemu-system-x86_64 busybox cpio sfdisk mkfs.vfat mcopy syslinux curl; do
  command -v "$t" >/dev/null || die "$t is missing: run ./scripts/install-deps.sh"
done
# shellcheck disable=SC1091
source "$out/emulator/emulator.env"
rm -rf "$loop"
mkdir -p "$loop/build" "$loop/hosts"
export IMGPIPE_CATALOG=$loop/catalog.db

say "L1. web 1.0.0: a small bootable image with the agent, published, tested (qemu, TCG) and promoted to prod"
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -ldflags '-s -w' -o "$loop/guest-imgpipe" ./cmd/imgpipe
scripts/test-image/build-tiny.sh "$loop/build/web-1.0.0.raw" "$loop/guest-imgpipe" web 1.0.0
cat >"$loop/loop.hcl" <<EOF
# Written by scripts/demo-loop.sh: an image that rebuilds itself.
image "web" {
  os_type = "Linux"
  packer {
    template = "$root/examples/packer/repackage/repackage.json"
    vars = {
      previous = "$loop/build/web-1.0.0.raw"
      output   = "$loop/build/web-next.raw"
      release  = "rebuilt from source by the reconciler"
    }
    artifact = "$loop/build/web-next.raw"
  }
}

azure "emulator" {
  subscription   = "$AZURE_SUBSCRIPTION_ID"
  resource_group = "rg-loop"
  location       = "westeurope"
  storage {
    account        = "$AZURE_STORAGE_ACCOUNT"
    resource_group = "azemu-storage"
    container      = "loop"
    blob_endpoint  = "$IMGPIPE_BLOB_ENDPOINT"
  }
  gallery    = "loop_gallery"
  definition = "web"
  version    = "next-patch"
  replication_timeout = "5m"
}

onprem "lab" {
  library = "$loop/library"
  channel = "test"
}

test "smoke" {
  boot_timeout = "10m"
  boot_marker  = "imgpipe-test-image: booted"
  command "busybox" {
    run = "busybox | head -n 1"
  }
}

rebuild {
  on_drift {
    hosts = 1
  }
  cooldown = "1h"
}

rollout {
  hosts {
    channel = "prod"
    onprem  = "lab"
    switch  = "LAN"
  }
}
EOF
"$bin" publish -f "$loop/loop.hcl" --yes --source "$loop/build/web-1.0.0.raw"
first=$("$bin" versions web -o json | tr -d ' \n' | grep -o '"version":"[0-9.]*"' | head -n1 | cut -d'"' -f4)
"$bin" test web "$first" -f "$loop/loop.hcl" --accel tcg   # prod requires a passing test
"$bin" promote web "$first" --to prod

say "L2. imgpipe serve with the reconciler; a demo host reports through its agent"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$loop/agent.token"
chmod 600 "$loop/agent.token"
port=$((20000 + RANDOM % 20000))
"$bin" serve --listen "127.0.0.1:$port" --agent-token-file "$loop/agent.token" \
  --reconcile "$loop/loop.hcl" --reconcile-interval 5s --reconcile-accel tcg >"$loop/serve.log" 2>&1 &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null; wait $serve_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/api/images" >/dev/null 2>&1 && break
  kill -0 $serve_pid 2>/dev/null || { cat "$loop/serve.log"; die "serve stopped"; }
  sleep 0.2
done
host=$loop/hosts/demo-host-01
install_host() { # the host's tree as a VM made from version $1 boots it
  rm -rf "$host/srv" "$host/etc/imgpipe/baseline.bin" "$host/etc/imgpipe/identity.json"
  mkdir -p "$host/srv"
  echo "workers = 4" >"$host/srv/app.conf"
  "$bin" baseline capture --root "$host" --image web --version "$1" --path srv >/dev/null
}
agent() {
  "$bin" agent --once --quick --server "http://127.0.0.1:$port" --token-file "$loop/agent.token" \
    --root "$host" --name demo-host-01 --platform onprem
}
install_host "$first"
agent

say "L3. someone changes a file on the host by hand: the agent reports the drift"
echo "workers = 64   # tuned by hand at 3 am" >"$host/srv/app.conf"
agent || [ $? -eq 2 ] || die "the agent failed"
"$bin" reconcile -f "$loop/loop.hcl" --dry-run

say "L4. the reconciler in serve rebuilds, tests (qemu, TCG), promotes and rolls out"
state=""
for _ in $(seq 1 240); do
  state=$("$bin" reconcile history web -o json | tr -d ' \n' | grep -o '"decision":"rebuild"[^}]*"state":"[a-z]*"' | head -n1 | sed 's/.*"state":"//; s/"//' || true)
  case $state in succeeded|failed|unpromoted|abandoned) break ;; esac
  sleep 5
done
"$bin" reconcile history web
[ "$state" = succeeded ] || { tail -n 40 "$loop/serve.log"; die "the rebuild did not succeed ($state)"; }
"$bin" versions web
"$bin" runs web --limit 8
"$bin" rollout status web
id=$("$bin" rollout status web -o json | tr -d ' \n' | grep -o '"id":[0-9]*' | head -n1 | cut -d: -f2)
"$bin" rollout status --id "$id"

rebuilt=$("$bin" versions web -o json | tr -d ' \n' | grep -o '"version":"[0-9.]*"' | head -n1 | cut -d'"' -f4)
say "L5. the host is replaced (its replacement script's VM boots $rebuilt) and reports: the rollout completes"
install_host "$rebuilt"
agent
for _ in $(seq 1 30); do
  "$bin" rollout status --id "$id" -o json | tr -d ' \n' | grep -q '"state":"completed"' && break
  sleep 2
done
"$bin" rollout status --id "$id"
"$bin" rollout status --id "$id" -o json | tr -d ' \n' | grep -q '"state":"completed"' || die "the rollout did not complete"
say "loop closed: drift on demo-host-01 -> rebuild -> test -> promote -> rollout (catalog $IMGPIPE_CATALOG)"
