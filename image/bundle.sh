#!/bin/bash
# image/bundle.sh — make a signed RAUC update bundle (.raucb, verity format) of the appliance's
# root file system, for `appliance update FILE` on a box running an image of the same ARCH.
# Usage: bundle.sh ARCH SOURCE OUT.raucb
#   SOURCE is a disk image from build.sh (its partition 2, root slot A, is taken) or a root
#   file system image (ext4) made from one.
# Environment:
#   EDGE_BUNDLE_VERSION  manifest version (default: EDGE_APPLIANCE_VERSION of the root's
#                        /etc/edge-appliance-release)
#   EDGE_SIGNING_CERT, EDGE_SIGNING_KEY  signer: PEM files or PKCS#11 URIs (pkcs11:...;
#                        then also set RAUC_PKCS11_MODULE and RAUC_PKCS11_PIN as RAUC documents).
#                        Default: the development keys of image/keys.sh in build/keys.
#   EDGE_KEYRING         CA certificate the new bundle is checked against after signing
#                        (default: build/keys/ca.cert.pem when the development keys are used)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/config.sh"
die() { echo "bundle.sh: error: $*" >&2; exit 1; }
[ $# -eq 3 ] || die "usage: bundle.sh ARCH SOURCE(.img|.ext4) OUT.raucb"
arch=$1 src=$2 out=$3
case $arch in arm64|amd64) ;; *) die "ARCH must be arm64 or amd64, not '$arch'";; esac
[ -f "$src" ] || die "no $src: build the image first (make image IMAGE_ARCH=$arch)"
case $out in *.raucb) ;; *) die "the bundle's name must end in .raucb, not '$out'";; esac
for t in rauc mksquashfs debugfs dumpe2fs sfdisk; do
    command -v "$t" >/dev/null || die "$t is missing (make image-deps)"
done

keys=$repo/build/keys
if [ -z "${EDGE_SIGNING_CERT:-}${EDGE_SIGNING_KEY:-}" ]; then
    "$here/keys.sh" "$keys"
    cert=$keys/signing.cert.pem key=$keys/signing.key.pem
    keyring=${EDGE_KEYRING:-$keys/ca.cert.pem}
else
    [ -n "${EDGE_SIGNING_CERT:-}" ] && [ -n "${EDGE_SIGNING_KEY:-}" ] ||
        die "set both EDGE_SIGNING_CERT and EDGE_SIGNING_KEY (files or pkcs11: URIs), or neither"
    cert=$EDGE_SIGNING_CERT key=$EDGE_SIGNING_KEY keyring=${EDGE_KEYRING:-}
    for f in "$cert" "$key"; do
        case $f in pkcs11:*) ;; *) [ -r "$f" ] || die "cannot read $f";; esac
    done
fi

out_dir=$(cd "$(dirname "$out")" && pwd) || die "no directory for $out"
work=$(mktemp -d "$out_dir/.bundle.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/content"
rootfs=$work/content/rootfs.ext4

if dumpe2fs -h "$src" >/dev/null 2>&1; then
    cp --sparse=always "$src" "$rootfs"
else
    line=$(sfdisk -d "$src" 2>/dev/null | grep -E '^[^ ]*2 *:') ||
        die "$src is neither an ext4 root file system nor a disk image with a partition 2"
    start=$(echo "$line" | sed -E 's/.*start= *([0-9]+).*/\1/')
    size=$(echo "$line" | sed -E 's/.*size= *([0-9]+).*/\1/')
    dd if="$src" of="$rootfs" bs=4M iflag=skip_bytes,count_bytes skip=$((start * 512)) \
        count=$((size * 512)) conv=sparse status=none
    dumpe2fs -h "$rootfs" >/dev/null 2>&1 || die "partition 2 of $src is not an ext4 file system"
fi
release=$(debugfs -R "cat /etc/edge-appliance-release" "$rootfs" 2>/dev/null) || release=""
compatible=$(echo "$release" | sed -n 's/^EDGE_IMAGE_ARCH=//p')
[ -z "$compatible" ] || [ "$compatible" = "$arch" ] ||
    die "$src is a root for $compatible, not $arch"
version=${EDGE_BUNDLE_VERSION:-$(echo "$release" | sed -n 's/^EDGE_APPLIANCE_VERSION=//p')}
[ -n "$version" ] || die "no version: the root has no /etc/edge-appliance-release; set EDGE_BUNDLE_VERSION"

cat > "$work/content/manifest.raucm" <<MANIFEST
[update]
compatible=$EDGE_IMAGE_NAME-$arch
version=$version
description=DICOM Edge Appliance $version ($arch)
build=$(echo "$release" | sed -n 's/^EDGE_IMAGE_COMMIT=//p')

[bundle]
format=verity

[image.rootfs]
filename=rootfs.ext4
MANIFEST

rm -f "$out"
args=(--cert="$cert" --key="$key" --mksquashfs-args="-comp zstd -Xcompression-level 3 -b 128K")
if [ -n "$keyring" ]; then
    # check the new signature the way the box will: codeSigning purpose, this keyring
    cat > "$work/check.conf" <<CONF
[system]
compatible=$EDGE_IMAGE_NAME-$arch
bootloader=noop
[keyring]
path=$(realpath "$keyring")
check-purpose=codesign
CONF
    args+=(--conf="$work/check.conf")
fi
echo "bundle.sh: signing $EDGE_IMAGE_NAME-$arch $version into $out"
rauc "${args[@]}" bundle "$work/content" "$out" >"$work/rauc.log" 2>&1 || {
    cat "$work/rauc.log" >&2; die "rauc bundle failed (see above)"; }
echo "bundle.sh: done: $out ($(du -h "$out" | cut -f1))"
