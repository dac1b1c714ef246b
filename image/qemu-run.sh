#!/bin/bash
# image/qemu-run.sh — boot an appliance disk image under QEMU (TCG; no KVM needed): arm64
# through Debian's qemu_arm64 U-Boot and the image's boot script, amd64 through UEFI (OVMF) and
# the image's GRUB; each chooses root slot A or B and loads that slot's kernel.
# The guest's network is QEMU user networking with restrict=on: the guest reaches nothing
# outside, and only these host ports on 127.0.0.1 are forwarded into it:
#   DICOM 127.0.0.1:$EDGE_QEMU_DICOM_PORT (11112) -> 11112, web $EDGE_QEMU_WEB_PORT (8080) -> 8080,
#   SSH $EDGE_QEMU_SSH_PORT (2222) -> 22.
# Usage: qemu-run.sh IMAGE [ARCH]    (ARCH arm64|amd64, default: from the image's file name)
# Serial console: stdio, or the file $EDGE_QEMU_SERIAL when set. The disk is written in place:
# boot a copy to keep a pristine image. Extra QEMU arguments: $EDGE_QEMU_EXTRA.
# arm64: boot.scr on the disk's FAT is replaced by its QEMU variant; U-Boot from
# $EDGE_QEMU_UBOOT; a watchdog device (i6300esb) resets a hung guest. amd64: the UEFI variables are kept in IMAGE.ovmf-vars.fd; OVMF is taken
# from $EDGE_QEMU_OVMF (default /usr/share/OVMF).
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

# amd64 boots like a PC: UEFI firmware (OVMF) starts GRUB from the FAT, and GRUB picks the root
# slot and loads that slot's kernel. The firmware's variables live in IMAGE.ovmf-vars.fd.
# arm64 boots like the Pi, with QEMU's virt machine in place of the Pi firmware: Debian's
# qemu_arm64 U-Boot ($EDGE_QEMU_UBOOT) runs the image's boot script with the QEMU prelude
# (image/uboot/mkscript.sh qemu, written over boot.scr on the FAT of this disk), so the slot is
# chosen by the same boot counting in uboot.env, and its kernel comes from the slot.
if [ "$arch" = arm64 ]; then
    uboot=${EDGE_QEMU_UBOOT:-/usr/lib/u-boot/qemu_arm64/u-boot.bin}
    [ -f "$uboot" ] || die "no U-Boot for QEMU at $uboot: install u-boot-qemu (make image-deps)"
    start=$(sfdisk -d "$img" | awk -F'[=,]' '/^[^ ]*1 *:/ {gsub(/ /, "", $2); print $2}')
    [ -n "$start" ] || die "$img has no partition 1"
    scr=$(mktemp); trap 'rm -f "$scr"' EXIT
    "$(dirname "$0")/uboot/mkscript.sh" qemu "$scr"
    mcopy -o -i "$img@@$((start * 512))" "$scr" ::/boot.scr || die "cannot write boot.scr to $img"
fi

case $arch in
arm64)
    qemu=(qemu-system-aarch64 -M virt -cpu cortex-a72 -accel tcg,thread=multi)
    # a watchdog as on the Pi (bcm2835-wdt there): QEMU's i6300esb, a PCI device on virt;
    # udev loads its driver (i6300esb) from the image's kernel and systemd's
    # RuntimeWatchdogSec drives /dev/watchdog0, so a hung guest is reset (-watchdog-action reset)
    boot=(-bios "$uboot" -device i6300esb);;
amd64)
    # -cpu max: the x86_64 wheels (numpy) need x86-64-v2, which the default qemu64 CPU lacks
    qemu=(qemu-system-x86_64 -M q35 -cpu max -accel tcg,thread=multi)
    ovmf=${EDGE_QEMU_OVMF:-/usr/share/OVMF}
    [ -f "$ovmf/OVMF_CODE_4M.fd" ] && [ -f "$ovmf/OVMF_VARS_4M.fd" ] ||
        die "no UEFI firmware in $ovmf (OVMF_CODE_4M.fd, OVMF_VARS_4M.fd): install ovmf (make image-deps)"
    vars="$img.ovmf-vars.fd"
    [ -s "$vars" ] || cp "$ovmf/OVMF_VARS_4M.fd" "$vars"
    boot=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$ovmf/OVMF_CODE_4M.fd"
          -drive "if=pflash,format=raw,unit=1,file=$vars");;
*) die "ARCH must be arm64 or amd64";;
esac
command -v "${qemu[0]}" >/dev/null || die "${qemu[0]} is not installed (make image-deps)"
serial=(-serial mon:stdio)
[ -n "${EDGE_QEMU_SERIAL:-}" ] && serial=(-serial "file:$EDGE_QEMU_SERIAL")
if [ "$arch" = amd64 ]; then
    # the console is also logged (appended across QEMU runs) so a guest reboot can be told
    # from a power-off: see the restart loop below
    log=${EDGE_QEMU_SERIAL:-$img.serial.log}
    if [ -n "${EDGE_QEMU_SERIAL:-}" ]; then
        : > "$log"
        serial=(-chardev "file,id=ser0,path=$log,append=on" -serial chardev:ser0)
    else
        serial=(-chardev "stdio,id=ser0,mux=on,signal=off,logfile=$log,logappend=on"
                -serial chardev:ser0 -mon chardev=ser0)
    fi
fi

echo "qemu-run.sh: booting $img ($arch): DICOM 127.0.0.1:$dicom, SSH 127.0.0.1:$ssh, web 127.0.0.1:$web" >&2
run=("${qemu[@]}" -smp 2 -m "${EDGE_QEMU_MEM:-1024}" -nographic -no-user-config -nodefaults \
    "${boot[@]}" \
    -drive "if=none,id=disk,file=$img,format=raw,cache=writeback,discard=unmap" \
    -device virtio-blk-pci,drive=disk \
    -netdev "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:$dicom-:11112,hostfwd=tcp:127.0.0.1:$ssh-:22,hostfwd=tcp:127.0.0.1:$web-:8080" \
    -device virtio-net-pci,netdev=net0 -device virtio-rng-pci \
    "${serial[@]}" ${EDGE_QEMU_EXTRA:-})
if [ "$arch" != amd64 ]; then
    # exec: the runner's process id is QEMU's, so killing it is pulling the power cord.
    exec "${run[@]}"
fi
# amd64: OVMF under TCG can hang for good after a warm reset (seen here in about one reboot
# of ten, the boot CPU spinning before any firmware output). So a guest reboot ends QEMU
# (-no-reboot) and the loop starts a fresh one on the same disk and UEFI variables: a cold
# start, as a power cycle. QEMU dies with the runner (setpriv --pdeathsig), so killing the
# runner is still pulling the power cord. Reboots the kernel did not announce ("reboot:
# Restarting system", e.g. from GRUB) end the run like a power-off.
command -v setpriv >/dev/null || die "setpriv is missing (util-linux)"
while :; do
    before=$(stat -c %s "$log" 2>/dev/null || echo 0)
    setpriv --pdeathsig KILL -- "${run[@]}" -no-reboot
    rc=$?
    [ $rc -eq 0 ] || exit $rc
    # (no grep -q: with pipefail, tail's SIGPIPE would fail the pipeline)
    tail -c +"$((before + 1))" "$log" 2>/dev/null | grep -a 'reboot: Restarting system' >/dev/null || exit 0
    echo "qemu-run.sh: the guest rebooted: starting it again" >&2
done
