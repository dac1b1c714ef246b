#!/bin/bash
# image/rootfs.sh — build the appliance root filesystem into a directory with mmdebstrap
# (root mode: no loop devices, no image mounts). Usage: rootfs.sh ARCH WHEELDIR OUTDIR
# Makes OUTDIR/root (the root file system) and OUTDIR/boot (the FAT boot partition's files).
# ARCH is arm64 (Raspberry Pi 3/4 + QEMU virt) or amd64 (QEMU q35, the faster test variant).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/config.sh"

die() { echo "rootfs.sh: error: $*" >&2; exit 1; }
[ $# -eq 3 ] || die "usage: rootfs.sh ARCH WHEELDIR OUTDIR"
arch=$1 wheels=$(realpath "$2") out=$3
case $arch in arm64|amd64) ;; *) die "ARCH must be arm64 or amd64, not '$arch'";; esac
[ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap root mode keeps file ownership)"
command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (make image-deps)"
ls "$wheels"/*.whl >/dev/null 2>&1 || die "no wheels in $wheels (run wheels.sh first)"
if [ "$arch" != "$(dpkg --print-architecture)" ] && ! arch-test "$arch" >/dev/null 2>&1; then
    die "this host cannot run $arch binaries: install qemu-user-static and enable binfmt (make image-deps)"
fi

mapfile -t sources < <(edge_apt_sources)
[ "${#sources[@]}" -gt 0 ] || die "cannot find a Debian mirror for $EDGE_SUITE in /etc/apt: set EDGE_MIRROR=URI"

pkgs="$EDGE_PACKAGES"
eval "pkgs=\"\$pkgs \$EDGE_PACKAGES_$arch\""

debcache="$EDGE_CACHE/debs/$arch"
mkdir -p "$debcache"
rm -rf "$out"
mkdir -p "$out"

echo "rootfs.sh: building $EDGE_SUITE/$arch into $out/root (deb cache $debcache)"
# --skip=essential/unlink keeps the fetched .debs so sync-out can copy them back into the cache.
mmdebstrap --mode=root --variant=minbase --architectures="$arch" \
    --include="$(echo $pkgs | tr ' ' ,)" \
    --aptopt='Acquire::Retries "3"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --skip=essential/unlink --skip=cleanup/apt/cache \
    --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
    --setup-hook="sync-in '$debcache' /var/cache/apt/archives/" \
    --setup-hook="'$here/hooks/setup.sh' \"\$1\" $arch" \
    --customize-hook="sync-out /var/cache/apt/archives '$debcache'" \
    --customize-hook="'$here/hooks/customize.sh' \"\$1\" $arch '$wheels'" \
    "$EDGE_SUITE" "$out/root" "${sources[@]}"
echo "rootfs.sh: done: root $(du -sh "$out/root" | cut -f1), boot $(du -sh "$out/boot" | cut -f1)"
