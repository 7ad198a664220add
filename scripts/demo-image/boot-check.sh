#!/usr/bin/env bash
# boot-check.sh DISK [TIMEOUT_SECONDS]
#
# Boots DISK (raw, or a fixed/dynamic VHD as Azure receives it) in
# qemu-system-x86_64 with software emulation (KVM when /dev/kvm is usable),
# 1 GiB of memory and no display, and waits for "login:" on the serial
# console. The disk is never written (-snapshot). Exit 0 when the prompt
# appeared within TIMEOUT (default 600 s: a loaded machine without KVM needs it), 1 otherwise, with the console's
# last lines on stderr. The console log is kept as DISK's name + .console.log
# in BOOT_CHECK_LOG_DIR (default: a temporary folder, removed).
set -euo pipefail

disk=${1:?usage: boot-check.sh DISK [TIMEOUT_SECONDS]}
timeout=${2:-600}
command -v qemu-system-x86_64 >/dev/null || { echo "boot-check: qemu-system-x86_64 is missing: apt-get install qemu-system-x86" >&2; exit 2; }
[ -r "$disk" ] || { echo "boot-check: cannot read $disk" >&2; exit 2; }

# Format from content: a VHD has "conectix" at the start of its last 512 bytes
# (fixed) or of the file (dynamic); anything else is treated as raw.
format=raw
if [ "$(tail -c 512 "$disk" | head -c 8 | tr -d '\000')" = conectix ] || [ "$(head -c 8 "$disk" | tr -d '\000')" = conectix ]; then
  format=vpc
fi
accel=tcg
if [ -w /dev/kvm ]; then accel=kvm; fi

logdir=${BOOT_CHECK_LOG_DIR:-}
keep=1
if [ -z "$logdir" ]; then logdir=$(mktemp -d); keep=0; fi
log="$logdir/$(basename "$disk").console.log"
: > "$log"

qemu-system-x86_64 -machine pc,accel=$accel -m 1024 -smp 1 \
  -drive file="$disk",format=$format,if=ide,snapshot=on \
  -display none -monitor none -serial file:"$log" -nic none -no-reboot &
qpid=$!
cleanup() {
  kill "$qpid" 2>/dev/null || true
  wait "$qpid" 2>/dev/null || true
  [ "$keep" = 1 ] || rm -rf "$logdir"
}
trap cleanup EXIT

start=$(date +%s)
echo "boot-check: booting $disk ($format, accel $accel), waiting up to ${timeout}s for a login prompt"
while :; do
  if grep -q 'login:' "$log"; then
    echo "boot-check: login prompt after $(( $(date +%s) - start ))s:"
    grep -a 'login:' "$log" | head -n 2 | tr -d '\r' | sed 's/^/  /'
    exit 0
  fi
  if ! kill -0 "$qpid" 2>/dev/null; then
    echo "boot-check: qemu stopped before a login prompt; console tail:" >&2
    tail -n 30 "$log" | tr -d '\r' >&2
    exit 1
  fi
  if [ $(( $(date +%s) - start )) -ge "$timeout" ]; then
    echo "boot-check: no login prompt within ${timeout}s; console tail:" >&2
    tail -n 30 "$log" | tr -d '\r' >&2
    exit 1
  fi
  sleep 2
done
