# image/config.sh — shared settings for the image recipe (sourced by the build scripts,
# the QEMU runner and the tests' helpers). Override any of these from the environment.

: "${EDGE_SUITE:=bookworm}"
: "${EDGE_CACHE:=/var/cache/edge-appliance-image}"   # downloads (debs, wheels) survive between builds
: "${EDGE_OUT:=build/image}"                          # build products, relative to the repo root
: "${EDGE_IMAGE_NAME:=edge-appliance}"

# Partition layout (MBR, so the Raspberry Pi firmware finds the FAT boot partition).
EDGE_DISK_ID=0xed6e0001          # MBR disk identifier -> PARTUUID=ed6e0001-0N
EDGE_PARTUUID_PREFIX=ed6e0001
: "${EDGE_BOOT_MB:=256}"          # p1 FAT32  "EDGEBOOT"   -> /boot/firmware (read-only)
: "${EDGE_ROOT_MB:=1280}"         # p2 ext4   "edge-rootA" -> /  (read-only)
                                  # p3 ext4   "edge-rootB"    (inactive slot, same size)
: "${EDGE_DATA_MB:=256}"          # p4 ext4   "edge-data"  -> /data, grown to the card on first boot
EDGE_BOOT_LABEL=EDGEBOOT
EDGE_DATA_LABEL=edge-data

# Debian packages in every image; arch-specific ones are added in rootfs.sh.
EDGE_PACKAGES="systemd systemd-sysv udev dbus systemd-timesyncd systemd-resolved kmod \
initramfs-tools busybox e2fsprogs dosfstools fdisk util-linux openssh-server openssl \
python3 python3-venv python3-systemd iproute2 ca-certificates procps less netbase \
rauc rauc-service"
EDGE_PACKAGES_arm64="linux-image-arm64 raspi-firmware"
# amd64 boots through UEFI + GRUB (BOOTX64.EFI is made in the root; grub-editenv for RAUC)
EDGE_PACKAGES_amd64="linux-image-amd64 grub-efi-amd64-bin grub-common"

# Kernel command line shared by the Pi (cmdline.txt) and QEMU (the runner swaps console=).
edge_cmdline() {  # $1 = console argument(s)
    echo "$1 root=PARTUUID=${EDGE_PARTUUID_PREFIX}-02 rootfstype=ext4 ro rootwait fsck.mode=skip edge.data=LABEL=${EDGE_DATA_LABEL} net.ifnames=0 quiet"
}
