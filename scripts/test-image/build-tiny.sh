#!/usr/bin/env bash
# build-tiny.sh OUT.raw IMGPIPE_BIN IMAGE VERSION [options]
#
# Builds the smallest bootable image that carries what every imgpipe image
# carries (the agent, the identity and the baseline), for `imgpipe test`:
# an MBR disk with one FAT partition holding the host's Debian kernel, the
# syslinux boot loader and an initramfs that is the whole root file system:
# busybox, the given (static) imgpipe binary, the virtio block modules (to read
# the test spec disk) and an /init that runs
#   imgpipe agent --once --report-to serial:/dev/ttyS1
# then powers off. The identity and baseline are captured over the tree by
# `imgpipe baseline capture` as the last build step, as in a Packer build.
# No root, no loop device, no network: seconds on a laptop.
#
# Options:
#   --drift-after-capture   change etc/motd after the baseline was captured (a
#                           broken build: the test must fail naming the file)
#   --kernel PATH           kernel (default: the newest /boot/vmlinuz-*)
# Needs: busybox (static), cpio, sfdisk, mkfs.vfat (dosfstools), mcopy
# (mtools), syslinux and its mbr.bin, the kernel's modules in /lib/modules.
set -euo pipefail

out=${1:?usage: build-tiny.sh OUT.raw IMGPIPE_BIN IMAGE VERSION [--drift-after-capture] [--kernel PATH]}
bin=${2:?imgpipe binary}
image=${3:?image name}
version=${4:?version}
shift 4
drift=0
kernel=""
while [ $# -gt 0 ]; do
  case $1 in
    --drift-after-capture) drift=1 ;;
    --kernel) kernel=$2; shift ;;
    *) echo "build-tiny: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "build-tiny: $*" >&2; exit 1; }
for t in busybox cpio sfdisk mkfs.vfat mcopy syslinux; do
  command -v "$t" >/dev/null || die "$t is missing: apt-get install busybox-static cpio fdisk dosfstools mtools syslinux"
done
if [ -z "$kernel" ]; then kernel=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1 || true); fi
[ -r "$kernel" ] || die "no readable kernel (looked for /boot/vmlinuz-*): apt-get install linux-image-amd64, or give --kernel"
kver=$(basename "$kernel"); kver=${kver#vmlinuz-}
mods=/lib/modules/$kver/kernel/drivers
mbr=""
for m in /usr/lib/syslinux/mbr/mbr.bin /usr/lib/EXTLINUX/mbr.bin; do [ -f "$m" ] && mbr=$m && break; done
[ -n "$mbr" ] || die "no syslinux mbr.bin: apt-get install syslinux-common"

work=$(mktemp -d "${TMPDIR:-/tmp}/build-tiny.XXXXXX")
trap 'rm -rf "$work"' EXIT
t=$work/root
mkdir -p "$t"/{bin,sbin,usr/bin,etc,proc,sys,dev,tmp,lib/modules}
cp "$(command -v busybox)" "$t/bin/busybox"
for a in $("$t/bin/busybox" --list); do [ -e "$t/bin/$a" ] || ln -s busybox "$t/bin/$a"; done
install -m 0755 "$bin" "$t/usr/bin/imgpipe"
# virtio block: the runner attaches the test spec as a virtio disk
for m in virtio/virtio_ring virtio/virtio virtio/virtio_pci_legacy_dev virtio/virtio_pci_modern_dev virtio/virtio_pci block/virtio_blk; do
  f=$mods/$m.ko
  [ -f "$f" ] || die "kernel module $f is missing (modules of $kver not installed?)"
  cp "$f" "$t/lib/modules/"
done
printf 'NAME="imgpipe tiny test image"\nID=imgpipe-tiny\n' > "$t/etc/os-release"
echo "imgpipe tiny test image" > "$t/etc/motd"
cat > "$t/init" <<'INIT'
#!/bin/busybox sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
  insmod /lib/modules/$m.ko 2>/dev/null
done
i=0
while [ ! -e /sys/block/vda ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
echo "imgpipe-test-image: booted"
/usr/bin/imgpipe agent --once --report-to serial:/dev/ttyS1 --name imgpipe-test --platform onprem
echo "imgpipe-test-image: agent exited $?"
sync
poweroff -f
INIT
chmod 0755 "$t/init"
# the last build step: identity + baseline (as `imgpipe baseline capture` in Packer)
"$bin" baseline capture --root "$t" --image "$image" --version "$version" >/dev/null
if [ "$drift" = 1 ]; then echo "changed after the baseline was captured" >> "$t/etc/motd"; fi
(cd "$t" && find . | cpio --quiet -o -H newc) > "$work/initrd"

cat > "$work/syslinux.cfg" <<CFG
SERIAL 0 115200
DEFAULT t
PROMPT 0
TIMEOUT 1
LABEL t
  LINUX /vmlinuz
  INITRD /initrd
  APPEND console=ttyS0,115200 loglevel=4 panic=-1 rdinit=/init
CFG
need=$(( ( $(stat -c %s "$work/initrd") + $(stat -c %s "$kernel") ) / 1048576 + 16 ))
rm -f "$out"
truncate -s "$(( need + 1 ))M" "$out"
echo 'label: dos
start=2048, type=c, bootable' | sfdisk --quiet "$out"
mkfs.vfat -F 32 --offset 2048 -n TESTBOOT "$out" $(( need * 1024 )) >/dev/null 2>&1 \
  || mkfs.vfat --offset 2048 -n TESTBOOT "$out" $(( need * 1024 )) >/dev/null
mcopy -i "$out@@1M" "$kernel" ::/vmlinuz
mcopy -i "$out@@1M" "$work/initrd" ::/initrd
mcopy -i "$out@@1M" "$work/syslinux.cfg" ::/syslinux.cfg
syslinux --offset 1048576 --install "$out"
dd if="$mbr" of="$out" bs=440 count=1 conv=notrunc status=none
echo "build-tiny: $out ($image $version, kernel $kver, $(du -h --apparent-size "$out" | cut -f1))"
