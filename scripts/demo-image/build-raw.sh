#!/usr/bin/env bash
# build-raw.sh OUT.raw [SIZE]
#
# Builds a small bootable Debian disk as a sparse raw file, for the imgpipe
# demo: MBR partition table, one ext4 root partition, Debian bookworm
# (debootstrap --variant=minbase) with linux-image-amd64 and systemd, the
# extlinux (syslinux) boot loader, kernel console on ttyS0, and root logged in
# automatically on the serial console (a demo image: nothing else may log in).
#
# Run as root. Needs debootstrap, sfdisk (fdisk), mkfs.ext4 (e2fsprogs),
# extlinux, and a loop device for the one step that needs a mounted file
# system (extlinux --install). The Debian mirror is DEMO_MIRROR, else the
# first one in this machine's apt sources, else debootstrap's default.
#
# Environment: DEMO_SUITE (default bookworm), DEMO_HOSTNAME (imgpipe-demo),
# DEMO_CACHE (a folder for downloaded .debs, reused between runs).
#
# What every imgpipe image carries: with DEMO_AGENT (a static imgpipe binary),
# DEMO_IMAGE and DEMO_VERSION set, the agent is installed as
# /usr/local/bin/imgpipe with a unit that runs, at every boot,
#   imgpipe agent --once --report-to serial:/dev/ttyS1
# (the test gate's guest side: it finds the test spec disk imgpipe test
# attaches, or reports that there is none), and the last change to the tree is
# `imgpipe baseline capture`: the identity (/etc/imgpipe/identity.json) and the
# drift baseline of the tree exactly as it goes into the disk.
set -euo pipefail

out=${1:?usage: build-raw.sh OUT.raw [SIZE, default 2G]}
size=${2:-2G}
suite=${DEMO_SUITE:-bookworm}
host=${DEMO_HOSTNAME:-imgpipe-demo}

die() { echo "build-raw: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, mount and loop devices need it)"
for t in debootstrap sfdisk mkfs.ext4 extlinux losetup mount; do
  command -v "$t" >/dev/null || die "$t is missing: apt-get install debootstrap fdisk e2fsprogs extlinux mount"
done
mbr=""
for m in /usr/lib/EXTLINUX/mbr.bin /usr/lib/syslinux/mbr/mbr.bin; do [ -f "$m" ] && mbr=$m && break; done
[ -n "$mbr" ] || die "no syslinux mbr.bin found: apt-get install extlinux syslinux-common"
losetup -f >/dev/null 2>&1 || die "no free loop device (needed to install extlinux): run on a host or VM with loop devices"

mirror=${DEMO_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v -- '-security' | head -n1 || true)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/build-raw.XXXXXX")
mnt="$work/mnt"
loopdev=""
cleanup() {
  set +e
  mountpoint -q "$mnt" && umount "$mnt"
  [ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
  for d in proc sys dev; do mountpoint -q "$work/root/$d" && umount -l "$work/root/$d"; done
  rm -rf "$work"
}
trap cleanup EXIT

start=$(date +%s)
step() { echo "build-raw: [$(( $(date +%s) - start ))s] $*"; }

step "debootstrap $suite (minbase + systemd) from ${mirror:-the default mirror of debootstrap}"
cache_args=()
if [ -n "${DEMO_CACHE:-}" ]; then mkdir -p "$DEMO_CACHE"; cache_args=(--cache-dir="$(realpath "$DEMO_CACHE")"); fi
debootstrap --variant=minbase "${cache_args[@]}" \
  --include=systemd-sysv,udev,initramfs-tools,ifupdown,iproute2 \
  "$suite" "$work/root" ${mirror:+"$mirror"} > "$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }

# The kernel is installed in a second step, once initramfs-tools is
# configured: installed by debootstrap itself, the initramfs would be built
# twice (the kernel's postinst, then the initramfs-tools trigger).
step "install linux-image-amd64 in the new system"
for d in proc sys dev; do mkdir -p "$work/root/$d"; mount --bind "/$d" "$work/root/$d"; done
cp /etc/resolv.conf "$work/root/etc/resolv.conf" 2>/dev/null || true
if [ -n "${DEMO_CACHE:-}" ]; then cp "$DEMO_CACHE"/*.deb "$work/root/var/cache/apt/archives/" 2>/dev/null || true; fi
chroot "$work/root" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 \
  sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends linux-image-amd64' > "$work/kernel.log" 2>&1 \
  || { tail -n 30 "$work/kernel.log" >&2; die "installing the kernel failed (log above)"; }
if [ -n "${DEMO_CACHE:-}" ]; then cp -n "$work/root"/var/cache/apt/archives/*.deb "$DEMO_CACHE"/ 2>/dev/null || true; fi
for d in proc sys dev; do umount -l "$work/root/$d"; done
rm -f "$work/root/etc/resolv.conf"

step "configure the system"
root_uuid=$(cat /proc/sys/kernel/random/uuid)
r="$work/root"
echo "$host" > "$r/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$host" > "$r/etc/hosts"
# fsck pass 0: minbase has no e2fsprogs fsck in the image
printf 'UUID=%s / ext4 errors=remount-ro 0 0\n' "$root_uuid" > "$r/etc/fstab"
printf 'auto lo\niface lo inet loopback\n' > "$r/etc/network/interfaces"
# Root has no password (locked); the serial console logs root in for the boot check.
mkdir -p "$r/etc/systemd/system/serial-getty@ttyS0.service.d"
cat > "$r/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'UNIT'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
UNIT
echo 'imgpipe demo image' > "$r/etc/motd"
kver=$(basename "$(ls -1 "$r"/boot/vmlinuz-* | sort -V | tail -n1)")
kver=${kver#vmlinuz-}
[ -f "$r/boot/initrd.img-$kver" ] || die "the kernel package built no initrd for $kver"
mkdir -p "$r/boot/extlinux"
cat > "$r/boot/extlinux/extlinux.conf" <<CONF
DEFAULT debian
TIMEOUT 10
PROMPT 0
SERIAL 0 115200
LABEL debian
  LINUX /boot/vmlinuz-$kver
  INITRD /boot/initrd.img-$kver
  APPEND root=UUID=$root_uuid ro console=tty0 console=ttyS0,115200n8
CONF
# Smaller image: no package caches or lists.
rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/*

if [ -n "${DEMO_AGENT:-}" ]; then
  step "install the imgpipe agent and capture the identity and baseline (the last change to the tree)"
  [ -n "${DEMO_IMAGE:-}" ] && [ -n "${DEMO_VERSION:-}" ] || die "DEMO_AGENT needs DEMO_IMAGE and DEMO_VERSION"
  install -D -m 0755 "$DEMO_AGENT" "$r/usr/local/bin/imgpipe"
  cat > "$r/etc/systemd/system/imgpipe-test.service" <<'UNIT'
[Unit]
Description=imgpipe test gate: drift check and declared commands, report on COM2
After=local-fs.target systemd-udev-settle.service
Wants=systemd-udev-settle.service

[Service]
Type=oneshot
ExecStart=/usr/local/bin/imgpipe agent --once --report-to serial:/dev/ttyS1 --platform onprem
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
UNIT
  ln -sf /etc/systemd/system/imgpipe-test.service "$r/etc/systemd/system/multi-user.target.wants/imgpipe-test.service"
  # machine-id is made on first boot (systemd): a fresh VM always has its own
  : > "$r/etc/machine-id"
  # extlinux --install writes its loader files into the file system after
  # the tree became the disk: they are the boot loader's, not the image's
  # (without the exclusion the first boot drifts: added boot/extlinux/ldlinux.*)
  "$DEMO_AGENT" baseline capture --root "$r" --image "$DEMO_IMAGE" --version "$DEMO_VERSION" \
    --exclude etc/machine-id --exclude 'boot/extlinux/ldlinux.*' 
fi

step "partition a sparse $size raw disk"
rm -f "$out"
truncate -s "$size" "$out"
echo 'label: dos
start=2048, type=83, bootable' | sfdisk --quiet "$out"
part_start=$((2048 * 512))
total=$(stat -c %s "$out")
part_bytes=$(( total - part_start ))

step "make the ext4 root file system from the tree (mkfs.ext4 -d)"
# syslinux reads ext4 without the 64bit and metadata_csum features.
mkfs.ext4 -q -F -U "$root_uuid" -L root -O ^64bit,^metadata_csum -E offset=$part_start \
  -d "$r" "$out" "$(( part_bytes / 1024 ))k"

step "install extlinux and the MBR boot code"
loopdev=$(losetup -f --show -o "$part_start" --sizelimit "$part_bytes" "$out")
mkdir -p "$mnt"
mount "$loopdev" "$mnt"
extlinux --install "$mnt/boot/extlinux" >/dev/null
umount "$mnt"
losetup -d "$loopdev"; loopdev=""
dd if="$mbr" of="$out" bs=440 count=1 conv=notrunc status=none

step "done: $out ($(du -h --apparent-size "$out" | cut -f1) virtual, $(du -h "$out" | cut -f1) allocated, kernel $kver)"
