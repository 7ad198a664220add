# Shared by the bench/ scripts (source it): the test image they all measure.

# make_scattered_vhdx OUT VIRT_GIB DATA_MIB ZERO_TAIL_KIB
# writes a VIRT_GIB GiB dynamic VHDX holding DATA_MIB MiB of random data in
# 4 MiB pieces at scattered 1 MiB-aligned offsets. With ZERO_TAIL_KIB > 0 each
# piece is followed by that many KiB of written zeros (allocated but empty, as
# file systems leave them), which converters and uploaders should skip.
make_scattered_vhdx() {
  local out=$1 virt_gib=$2 data_mib=$3 zero_tail_kib=$4
  local raw="$out.raw" pieces slot off i
  truncate -s "${virt_gib}G" "$raw"
  pieces=$((data_mib / 4))
  slot=$((virt_gib * 1024 / pieces)) # MiB of virtual space per piece
  if [ "$slot" -lt 6 ]; then echo "too much data for the virtual size" >&2; return 1; fi
  for ((i = 0; i < pieces; i++)); do
    off=$((i * slot + (i * 7919) % (slot - 5)))
    head -c $((4 << 20)) /dev/urandom | dd of="$raw" bs=1M seek="$off" conv=notrunc status=none
    if [ "$zero_tail_kib" -gt 0 ]; then
      dd if=/dev/zero of="$raw" bs=1K count="$zero_tail_kib" seek=$(((off + 4) * 1024)) conv=notrunc status=none
    fi
  done
  qemu-img convert -f raw -O vhdx -o subformat=dynamic "$raw" "$out"
  rm -f "$raw"
}
