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

# Debian packages in every image; arch-specific ones are added in rootfs.sh. libdcmtk17: the
# runtime libraries (and data dictionary) of DCMTK 3.6.7 that the native DICOM engine
# (appliance.dicom.engine._engine) links against; not DCMTK's tools nor its -dev package.
EDGE_PACKAGES="systemd systemd-sysv udev dbus systemd-timesyncd systemd-resolved kmod \
initramfs-tools busybox e2fsprogs dosfstools fdisk util-linux openssh-server openssl \
python3 python3-venv python3-systemd iproute2 ca-certificates procps less netbase \
rauc rauc-service libdcmtk17"
# arm64 boots through the Pi firmware and U-Boot (u-boot-rpi); fw_setenv/fw_printenv for RAUC
EDGE_PACKAGES_arm64="linux-image-arm64 raspi-firmware u-boot-rpi libubootenv-tool"
# amd64 boots through UEFI + GRUB (BOOTX64.EFI is made in the root; grub-editenv for RAUC)
EDGE_PACKAGES_amd64="linux-image-amd64 grub-efi-amd64-bin grub-common"

# Kernel command line of the image, less console= (set per platform): the boot script (U-Boot
# on the Pi and QEMU arm64, image/uboot/mkscript.sh; GRUB on amd64) adds root= of the chosen slot.
edge_cmdline() {  # $1 = console argument(s)
    echo "$1 root=PARTUUID=${EDGE_PARTUUID_PREFIX}-02 rootfstype=ext4 ro rootwait fsck.mode=skip edge.data=LABEL=${EDGE_DATA_LABEL} net.ifnames=0 quiet"
}

# Mirrors for mmdebstrap (the root file system, rootfs.sh, and the build sysroot, sysroot.sh):
# taken from this host's apt configuration so that no host name is baked into the recipe;
# EDGE_MIRROR / EDGE_SECURITY_MIRROR override them. Prints one "deb URI SUITE COMPONENTS" line
# per source, nothing when no mirror is known.
edge_host_uri() {  # $1 = suite to look for in the host's deb822 or one-line sources
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        awk -v s="$1" 'BEGIN{RS=""} $0 ~ ("Suites:[^\n]*[ ]" s "([ \n]|$)") {
            for (i = 1; i <= NF; i++) if ($i == "URIs:") { print $(i+1); exit } }' "$f"
    done | head -n1
    grep -hsE "^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+[[:space:]]+$1[[:space:]]" \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{for(i=2;i<=NF;i++) if ($i ~ /:\/\//) {print $i; exit}}' | head -n1
    return 0
}
edge_apt_sources() {
    local mirror secmirror comps="main non-free-firmware"
    mirror=${EDGE_MIRROR:-$(set +o pipefail; edge_host_uri "$EDGE_SUITE" | head -n1)}
    secmirror=${EDGE_SECURITY_MIRROR:-$(set +o pipefail; edge_host_uri "$EDGE_SUITE-security" | head -n1)}
    [ -n "$mirror" ] || return 0
    echo "deb $mirror $EDGE_SUITE $comps"
    echo "deb $mirror $EDGE_SUITE-updates $comps"
    if [ -n "$secmirror" ]; then echo "deb $secmirror $EDGE_SUITE-security $comps"; fi
}
