#!/bin/bash
# image/assemble.sh — turn OUTDIR/root and OUTDIR/boot (from rootfs.sh) into the flashable
# disk image, without loop devices or mounts: file systems made with mkfs.vfat + mtools and
# mkfs.ext4 -d, an MBR partition table written by sfdisk on the image file, partitions placed
# with dd. The release files (.img.xz, ...) are made from it by release.sh.
# Usage: assemble.sh ARCH WORKDIR DESTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/config.sh"
die() { echo "assemble.sh: error: $*" >&2; exit 1; }
[ $# -eq 3 ] || die "usage: assemble.sh ARCH WORKDIR DESTDIR"
arch=$1 work=$2 dest=$3
[ -d "$work/root/etc" ] && [ -d "$work/boot" ] || die "$work has no root/ and boot/ (run rootfs.sh first)"
for t in mkfs.vfat mcopy mkfs.ext4 sfdisk; do
    command -v "$t" >/dev/null || die "$t is missing (make image-deps)"
done
export MTOOLS_SKIP_CHECK=1
mkdir -p "$dest"
name="$EDGE_IMAGE_NAME-$arch"
img="$dest/$name.img"
tmp="$work/parts"; rm -rf "$tmp"; mkdir -p "$tmp"

used_mb=$(( $(du -s -k "$work/root" | cut -f1) / 1024 ))
[ $((used_mb * 115 / 100 + 32)) -le "$EDGE_ROOT_MB" ] ||
    die "the root needs ${used_mb} MiB + 15% but a slot is ${EDGE_ROOT_MB} MiB: raise EDGE_ROOT_MB"
boot_used_mb=$(( $(du -s -k "$work/boot" | cut -f1) / 1024 ))
[ $((boot_used_mb + 8)) -le "$EDGE_BOOT_MB" ] || die "boot files need ${boot_used_mb} MiB: raise EDGE_BOOT_MB"

echo "assemble.sh: file systems (root ${used_mb} MiB used of ${EDGE_ROOT_MB}, boot ${boot_used_mb} MiB)"
mkfs.vfat -F 32 -n "$EDGE_BOOT_LABEL" -C "$tmp/boot.vfat" $((EDGE_BOOT_MB * 1024)) >/dev/null
mcopy -s -p -m -i "$tmp/boot.vfat" "$work/boot"/* ::/
# The root slots have no journal: they are never written on the box (RAUC writes a whole slot).
mkfs.ext4 -q -F -L edge-rootA -O ^has_journal -E root_owner=0:0 -d "$work/root" "$tmp/rootA.ext4" "${EDGE_ROOT_MB}M"
mkfs.ext4 -q -F -L edge-rootB -O ^has_journal -E root_owner=0:0 "$tmp/rootB.ext4" "${EDGE_ROOT_MB}M"
mkfs.ext4 -q -F -L "$EDGE_DATA_LABEL" -E root_owner=0:0 "$tmp/data.ext4" "${EDGE_DATA_MB}M"

echo "assemble.sh: partition table and image $img"
s1=8192                                   # 4 MiB alignment, as the Pi tools do
s2=$((s1 + EDGE_BOOT_MB * 2048)) s3=$((s1 + (EDGE_BOOT_MB + EDGE_ROOT_MB) * 2048))
s4=$((s1 + (EDGE_BOOT_MB + 2 * EDGE_ROOT_MB) * 2048)) end=$((s1 + (EDGE_BOOT_MB + 2 * EDGE_ROOT_MB + EDGE_DATA_MB) * 2048))
rm -f "$img" "$img.part"; truncate -s $((end * 512)) "$img.part"
sfdisk -q "$img.part" <<TABLE
label: dos
label-id: $EDGE_DISK_ID
unit: sectors
start=$s1, size=$((EDGE_BOOT_MB * 2048)), type=c, bootable
start=$s2, size=$((EDGE_ROOT_MB * 2048)), type=83
start=$s3, size=$((EDGE_ROOT_MB * 2048)), type=83
start=$s4, size=$((EDGE_DATA_MB * 2048)), type=83
TABLE
place() { dd if="$1" of="$img.part" bs=4M seek=$(($2 * 512)) oflag=seek_bytes conv=notrunc,sparse status=none; }
place "$tmp/boot.vfat" $s1; place "$tmp/rootA.ext4" $s2; place "$tmp/rootB.ext4" $s3; place "$tmp/data.ext4" $s4
rm -rf "$tmp"
mv "$img.part" "$img"
echo "assemble.sh: done: $img"
