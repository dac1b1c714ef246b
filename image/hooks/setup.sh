#!/bin/bash
# image/hooks/setup.sh — mmdebstrap setup hook (runs on the host before any package is
# installed; $1 = the new root, $2 = arch). Puts the initramfs configuration in place first so
# that the kernel's postinst builds the small initramfs once, instead of twice.
set -euo pipefail
root=$1
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/etc/initramfs-tools"
cp -a "$here/overlay/etc/initramfs-tools/." "$root/etc/initramfs-tools/"
# The Pi's boot partition is a plain directory during the build; raspi-firmware fills it.
mkdir -p "$root/boot/firmware"
