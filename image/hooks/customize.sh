#!/bin/bash
# image/hooks/customize.sh — mmdebstrap customize hook (runs on the host after all packages
# are installed; $1 = the new root, $2 = arch, $3 = wheel directory). Turns a Debian root into
# the appliance: systemd units, the /opt/appliance venv, read-only-root plumbing, and the
# boot files, which it moves out of the root into the sibling directory "boot" for the FAT
# partition.
set -euo pipefail
root=$1 arch=$2 wheels=$3
here=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$here/.." && pwd)
bootdir=$(dirname "$root")/boot
. "$here/config.sh"
die() { echo "customize.sh: error: $*" >&2; exit 1; }
step() { echo "customize.sh: $*"; }
# Commands in the new root get a clean environment (no host PIP_* or PYTHON* settings).
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

step "files from image/overlay and units from systemd/"
cp -a "$here/overlay/." "$root/"
install -d "$root/usr/lib/systemd/system" "$root/usr/lib/systemd/journald.conf.d" \
    "$root/usr/lib/systemd/system/ssh.service.d" "$root/usr/lib/sysusers.d" "$root/usr/lib/tmpfiles.d"
install -m 0644 "$repo"/systemd/*.service "$repo"/systemd/*.mount "$root/usr/lib/systemd/system/"
for unit in "$repo"/systemd/*.timer "$repo"/systemd/*.path; do
    if [ -e "$unit" ]; then install -m 0644 "$unit" "$root/usr/lib/systemd/system/"; fi
done
install -m 0644 "$repo"/systemd/journald.conf.d/*.conf "$root/usr/lib/systemd/journald.conf.d/"
install -m 0644 "$repo"/systemd/ssh.service.d/*.conf "$root/usr/lib/systemd/system/ssh.service.d/"
install -m 0644 "$repo"/systemd/sysusers.d/*.conf "$root/usr/lib/sysusers.d/"
install -m 0644 "$repo"/systemd/tmpfiles.d/*.conf "$root/usr/lib/tmpfiles.d/"
install -d "$root/usr/share/doc/edge-appliance"
for doc in flashing.md image.md updating.md; do
    [ -f "$repo/docs/$doc" ] && install -m 0644 "$repo/docs/$doc" "$root/usr/share/doc/edge-appliance/"
done
in_root systemd-sysusers /usr/lib/sysusers.d/edge-appliance.conf

step "the appliance venv in /opt/appliance"
app_whl=$(cd "$wheels" && ls dicom_edge_appliance-*.whl 2>/dev/null | head -n1) ||
    die "no project wheel (dicom_edge_appliance-*.whl) in $wheels"
[ -n "$app_whl" ] || die "no project wheel (dicom_edge_appliance-*.whl) in $wheels"
rm -rf "$root/tmp/edge-wheels"; mkdir -p "$root/tmp/edge-wheels"
cp "$wheels"/*.whl "$root/tmp/edge-wheels/"
in_root python3 -m venv --system-site-packages /opt/appliance
in_root env PIP_DISABLE_PIP_VERSION_CHECK=1 /opt/appliance/bin/pip install --quiet --no-index \
    --no-cache-dir --find-links /tmp/edge-wheels "/tmp/edge-wheels/$app_whl" ||
    die "pip could not install $app_whl and its dependencies into /opt/appliance"
in_root /opt/appliance/bin/python -c 'import systemd.daemon, appliance' ||
    die "the venv cannot import appliance and systemd (python3-systemd)"
# The native DICOM engine: built for this architecture, its libraries (DCMTK: libdcmtk17) in
# the root, and importable by the image's Python (under qemu-user for arm64).
engine_so=$(find "$root/opt/appliance/lib" -path '*/appliance/dicom/engine/_engine*.so' | head -n1)
[ -n "$engine_so" ] || die "the appliance venv has no native DICOM engine (appliance/dicom/engine/_engine*.so)"
"$here/check-engine.sh" "$arch" "$engine_so" "$root"
engine_uid=$(in_root /opt/appliance/bin/python -c \
    'import appliance.dicom.engine._engine as e; print(e.IMPLEMENTATION_CLASS_UID)') ||
    die "the image's Python cannot import the native DICOM engine (appliance.dicom.engine._engine)"
step "native DICOM engine imports (Implementation Class UID $engine_uid)"
app_version=$(in_root /opt/appliance/bin/appliance --version | awk '{print $NF}')
rm -rf "$root/tmp/edge-wheels"
step "installed appliance $app_version"

step "read-only root plumbing"
ln -sfn /data/etc/machine-id "$root/etc/machine-id"
ln -sfn /data/etc/hostname "$root/etc/hostname"
rm -rf "$root/etc/systemd/network"; ln -s /data/etc/systemd/network "$root/etc/systemd/network"
rm -rf "$root/var/log/journal"; ln -s /data/journal "$root/var/log/journal"
rm -f "$root"/etc/ssh/ssh_host_*          # every box makes its own at first boot, on /data
install -d -m 0755 "$root/data" "$root/boot/firmware"
ln -sfn /run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
# Things that would write to the read-only root or make no sense on an appliance.
# (the kernel debug/tracing/hugepage mounts only cost boot time under emulation and on the Pi)
in_root systemctl mask apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
    e2scrub_all.timer e2scrub_reap.service systemd-networkd-wait-online.service \
    sys-kernel-debug.mount sys-kernel-tracing.mount dev-hugepages.mount >/dev/null 2>&1 || true
in_root systemctl enable systemd-networkd systemd-resolved systemd-timesyncd ssh \
    data.mount boot-firmware.mount edge-grow-data.service edge-firstboot.service appliance.service
in_root systemctl enable edge-boot-check.service edge-mark-good.service edge-boot-deadline.timer
if [ -e "$root/usr/lib/systemd/system/edge-update-request.path" ]; then
    in_root systemctl enable edge-update-request.path
fi
in_root systemctl set-default multi-user.target
# Root has no password (key-only SSH); the serial console autologin is left off on purpose.
cat > "$root/etc/edge-appliance-release" <<REL
EDGE_APPLIANCE_VERSION=$app_version
EDGE_IMAGE_ARCH=$arch
EDGE_IMAGE_BUILT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
EDGE_IMAGE_COMMIT=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
REL

step "RAUC: system.conf and the keyring of trusted update signers"
# EDGE_KEYRING: the CA certificate(s) bundles must be signed under (a production CA); by
# default the development CA made by image/keys.sh (build.sh runs it).
keyring=${EDGE_KEYRING:-$repo/build/keys/ca.cert.pem}
[ -s "$keyring" ] || die "no update keyring at $keyring: run image/keys.sh or set EDGE_KEYRING=FILE"
openssl x509 -in "$keyring" -noout 2>/dev/null || die "EDGE_KEYRING=$keyring is not a PEM certificate"
install -d "$root/etc/rauc"
install -m 0644 "$here/rauc/system.conf.$arch" "$root/etc/rauc/system.conf"
install -m 0644 "$keyring" "$root/etc/rauc/keyring.pem"

step "boot files"
kver=$(ls "$root/lib/modules" | sort -V | tail -n1)
[ -n "$kver" ] || die "no kernel installed in the root"
[ -f "$root/boot/initrd.img-$kver" ] || in_root update-initramfs -c -k "$kver"
rm -rf "$bootdir"; mkdir -p "$bootdir"
if [ "$arch" = arm64 ]; then
    # The Pi firmware starts Debian's U-Boot (u-boot-rpi, rpi_arm64 build); its boot script
    # (image/uboot/: RAUC's boot counting in uboot.env) loads kernel, initrd and device tree
    # from the chosen slot's own /boot, so a bundle carries its kernel (docs/image.md). The
    # FAT keeps only the firmware, its device trees (the firmware hands one to U-Boot), U-Boot,
    # boot.scr and, once U-Boot has saved it on the first boot, uboot.env.
    ls "$root/boot/firmware/"*.dtb >/dev/null 2>&1 || in_root /etc/kernel/postinst.d/z50-raspi-firmware "$kver"
    uboot_bin="$root/usr/lib/u-boot/rpi_arm64/u-boot.bin"
    [ -f "$uboot_bin" ] || die "no $uboot_bin (the u-boot-rpi package)"
    cp -a "$root/boot/firmware/." "$bootdir/"
    rm -f "$bootdir"/vmlinuz* "$bootdir"/initrd.img* "$bootdir/cmdline.txt"
    install -m 0644 "$uboot_bin" "$bootdir/u-boot.bin"
    # raspi-firmware's config.txt without its kernel lines, and U-Boot as the "kernel"
    grep -vE '^[[:space:]]*(#|kernel[[:space:]]*=|initramfs[[:space:]]|os_prefix[[:space:]]*=|cmdline[[:space:]]*=)' \
        "$bootdir/config.txt" | sed '/^[[:space:]]*$/d' > "$bootdir/config.txt.new" || true
    { echo "# Edge appliance: the firmware starts U-Boot, whose boot.scr chooses root slot A or B"
      echo "# (RAUC boot counting in uboot.env; see docs/image.md). Do not edit by hand."
      cat "$bootdir/config.txt.new"
      grep -q '^arm_64bit=1' "$bootdir/config.txt.new" || echo "arm_64bit=1"
      grep -q '^enable_uart=1' "$bootdir/config.txt.new" || echo "enable_uart=1"
      echo "kernel=u-boot.bin"; } > "$bootdir/config.txt"
    rm -f "$bootdir/config.txt.new"
    "$here/uboot/mkscript.sh" rpi "$bootdir/boot.scr"
    # the slot's own boot files, where boot.scr looks for them (relative links: U-Boot's ext4
    # reader follows them within the slot)
    ln -sfn "vmlinuz-$kver" "$root/boot/vmlinuz"
    ln -sfn "initrd.img-$kver" "$root/boot/initrd.img"
    ln -sfn "../usr/lib/linux-image-$kver" "$root/boot/dtbs"
    [ -d "$root/usr/lib/linux-image-$kver/broadcom" ] || die "no device trees in /usr/lib/linux-image-$kver"
    # RAUC (bootloader=uboot) reads and writes uboot.env through libubootenv: the file, and
    # U-Boot's CONFIG_ENV_SIZE for rpi_arm64 (0x4000); fw_setenv behind a wrapper that
    # remounts the read-only FAT for the write
    printf '# uboot.env of U-Boot (rpi_arm64: env in FAT, mmc 0:1, CONFIG_ENV_SIZE 0x4000)\n/boot/firmware/uboot.env 0x0000 0x4000\n' \
        > "$root/etc/fw_env.config"
    install -m 0755 "$here/uboot/fw_setenv" "$root/usr/lib/edge-appliance/rauc-bin/fw_setenv"
    # a hung kernel or system is reset by the SoC's watchdog (bcm2835-wdt, 15 s at most), so
    # a trial boot that hangs spends its attempt without anyone pulling the power
    install -d "$root/etc/systemd/system.conf.d" "$root/etc/modules-load.d"
    printf '[Manager]\nRuntimeWatchdogSec=15s\nRebootWatchdogSec=2min\n' > "$root/etc/systemd/system.conf.d/edge-watchdog.conf"
    echo bcm2835_wdt > "$root/etc/modules-load.d/edge-watchdog.conf"
else
    # UEFI + GRUB: EFI/BOOT/BOOTX64.EFI (the removable-media path firmware boots without NVRAM
    # entries) chooses slot A or B (grub.cfg, boot counting in grubenv) and loads the kernel
    # and initrd from that slot's own /boot, so a bundle carries its kernel.
    ln -sfn "vmlinuz-$kver" "$root/boot/vmlinuz"
    ln -sfn "initrd.img-$kver" "$root/boot/initrd.img"
    install -d "$bootdir/EFI/BOOT"
    in_root grub-mkimage -O x86_64-efi -o /tmp/BOOTX64.EFI -p /EFI/BOOT \
        part_msdos fat ext2 normal linux loadenv test regexp echo sleep reboot configfile \
        efi_gop all_video serial terminal || die "grub-mkimage could not make BOOTX64.EFI"
    mv "$root/tmp/BOOTX64.EFI" "$bootdir/EFI/BOOT/BOOTX64.EFI"
    args=$(edge_cmdline "console=tty0 console=ttyS0,115200" | sed 's/ root=[^ ]*//')
    sed -e "s|@PARTUUID_PREFIX@|$EDGE_PARTUUID_PREFIX|" -e "s|@ARGS@|$args panic=10|" \
        "$here/grub/grub.cfg" > "$bootdir/EFI/BOOT/grub.cfg"
    in_root grub-editenv /tmp/grubenv create
    in_root grub-editenv /tmp/grubenv set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0 \
        EDGE_GOOD=A EDGE_MAX_TRIES="${EDGE_MAX_TRIES:-3}"
    mv "$root/tmp/grubenv" "$bootdir/EFI/BOOT/grubenv"
fi
cp "$root/etc/edge-appliance-release" "$bootdir/edge-appliance-release.txt"
rm -rf "$root/boot/firmware"; install -d -m 0755 "$root/boot/firmware"

step "clean up"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/* \
    "$root"/var/cache/debconf/*-old "$root"/var/log/*.log
