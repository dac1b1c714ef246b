#!/bin/bash
# image/qemu-run.sh — boot an appliance disk image under QEMU (TCG; no KVM needed) with
# the kernel, initrd and command line taken from the image's own FAT boot partition.
# The guest's network is QEMU user networking with restrict=on: the guest reaches nothing
# outside, and only these host ports on 127.0.0.1 are forwarded into it:
#   DICOM 127.0.0.1:$EDGE_QEMU_DICOM_PORT (11112) -> 11112, web $EDGE_QEMU_WEB_PORT (8080) -> 8080,
#   SSH $EDGE_QEMU_SSH_PORT (2222) -> 22.
# Usage: qemu-run.sh IMAGE [ARCH]    (ARCH arm64|amd64, default: from the image's file name)
# Serial console: stdio, or the file $EDGE_QEMU_SERIAL when set. The disk is written in place:
# boot a copy to keep a pristine image. Extra QEMU arguments: $EDGE_QEMU_EXTRA.
# The kernel and initrd are copied to IMAGE.qemu-boot/ first.
set -euo pipefail
die() { echo "qemu-run.sh: error: $*" >&2; exit 1; }
[ $# -ge 1 ] || die "usage: qemu-run.sh IMAGE [arm64|amd64]"
img=$1
[ -f "$img" ] || die "no image at $img (make image first)"
arch=${2:-}
if [ -z "$arch" ]; then
    case $(basename "$img") in *arm64*) arch=arm64;; *amd64*) arch=amd64;; *) die "give ARCH";; esac
fi
dicom=${EDGE_QEMU_DICOM_PORT:-11112} web=${EDGE_QEMU_WEB_PORT:-8080} ssh=${EDGE_QEMU_SSH_PORT:-2222}
export MTOOLS_SKIP_CHECK=1

# Kernel, initrd and cmdline.txt from partition 1 (FAT), read with mtools at its offset.
start=$(sfdisk -d "$img" | awk -F'[=,]' '/^[^ ]*1 *:/ {gsub(/ /, "", $2); print $2}')
[ -n "$start" ] || die "$img has no partition 1"
fat="$img@@$((start * 512))"
kdir="$img.qemu-boot"                     # copies of the kernel and initrd, beside the image
rm -rf "$kdir"; mkdir -p "$kdir"
files=$(mdir -b -i "$fat" ::/ | sed 's|^::/||')
kernel=$(echo "$files" | grep -E '^vmlinuz' | sort -V | tail -n1)
initrd=$(echo "$files" | grep -E '^initrd\.img' | sort -V | tail -n1)
[ -n "$kernel" ] && [ -n "$initrd" ] || die "no vmlinuz*/initrd.img* on the boot partition of $img"
mcopy -n -i "$fat" "::/$kernel" "$kdir/vmlinuz"
mcopy -n -i "$fat" "::/$initrd" "$kdir/initrd"
cmdline=$(mtype -i "$fat" ::/cmdline.txt | tr -d '\r\n' | sed -E 's/(^| )console=[^ ]*//g')

case $arch in
arm64)
    qemu=(qemu-system-aarch64 -M virt -cpu cortex-a72 -accel tcg,thread=multi)
    console=ttyAMA0;;
amd64)
    # -cpu max: the x86_64 wheels (numpy) need x86-64-v2, which the default qemu64 CPU lacks
    qemu=(qemu-system-x86_64 -M q35 -cpu max -accel tcg,thread=multi)
    console=ttyS0;;
*) die "ARCH must be arm64 or amd64";;
esac
command -v "${qemu[0]}" >/dev/null || die "${qemu[0]} is not installed (make image-deps)"
serial=(-serial mon:stdio)
[ -n "${EDGE_QEMU_SERIAL:-}" ] && serial=(-serial "file:$EDGE_QEMU_SERIAL")

echo "qemu-run.sh: booting $img ($arch): DICOM 127.0.0.1:$dicom, SSH 127.0.0.1:$ssh, web 127.0.0.1:$web" >&2
# exec: the runner's process id is QEMU's, so killing it is pulling the power cord.
exec "${qemu[@]}" -smp 2 -m "${EDGE_QEMU_MEM:-1024}" -nographic -no-user-config -nodefaults \
    -kernel "$kdir/vmlinuz" -initrd "$kdir/initrd" -append "console=$console,115200 $cmdline" \
    -drive "if=none,id=disk,file=$img,format=raw,cache=writeback,discard=unmap" \
    -device virtio-blk-pci,drive=disk \
    -netdev "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:$dicom-:11112,hostfwd=tcp:127.0.0.1:$ssh-:22,hostfwd=tcp:127.0.0.1:$web-:8080" \
    -device virtio-net-pci,netdev=net0 -device virtio-rng-pci \
    "${serial[@]}" ${EDGE_QEMU_EXTRA:-}
