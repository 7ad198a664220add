#!/usr/bin/env bash
# Install the real components imgpipe's tests, benchmarks and demo start as
# processes, on Debian 12 with Go already present. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# qemu-utils: disk-format oracle (qemu-img). postgresql: shared catalog tests.
# aide, azure-cli, hyperfine: peers and timing for bench/ scripts.
# packer, debootstrap, extlinux, qemu-system-x86: the build path and the
# demo's boot check. chromium: the dashboard browser test.
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
  qemu-utils fdisk e2fsprogs postgresql aide azure-cli hyperfine packer debootstrap \
  extlinux syslinux-common qemu-system-x86 chromium ca-certificates git make \
  >/dev/null

# Azurite (Azure Storage emulator), pinned in package.json / package-lock.json.
npm ci --no-audit --no-fund --loglevel=error
