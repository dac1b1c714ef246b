#!/bin/bash
# image/build.sh — build the appliance OS image end to end: wheels -> root file system
# (mmdebstrap) -> disk image and release files. Run as root from anywhere.
# Usage: build.sh ARCH     (arm64: the Raspberry Pi image, also boots under QEMU virt;
#                           amd64: the same recipe for QEMU q35, faster to build and boot)
# Environment: EDGE_APP_SRC (project source, default: this repo), EDGE_OUT (default
# build/image in the repo), EDGE_WORK (scratch, default /var/tmp/edge-appliance-image/ARCH),
# EDGE_CACHE (download cache), EDGE_ROOT_MB/EDGE_DATA_MB/EDGE_BOOT_MB (partition sizes),
# EDGE_KEYRING (CA certificate(s) trusted for update bundles; default: build/keys from keys.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/config.sh"
die() { echo "build.sh: error: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: build.sh arm64|amd64"
arch=$1
case $arch in arm64|amd64) ;; *) die "ARCH must be arm64 or amd64, not '$arch'";; esac
[ "$(id -u)" = 0 ] || die "building the image needs root (mmdebstrap root mode, file ownership)"
src=${EDGE_APP_SRC:-$repo}
work=${EDGE_WORK:-/var/tmp/edge-appliance-image/$arch}
case $EDGE_OUT in /*) out=$EDGE_OUT;; *) out=$repo/$EDGE_OUT;; esac

t0=$(date +%s)
stamp() { echo "build.sh: [$(( $(date +%s) - t0 )) s] $*"; }
stamp "building the $arch image from $src (work $work, output $out)"
rm -rf "$work"; mkdir -p "$work"
# the update keyring in the image: EDGE_KEYRING, else the development CA (made once)
if [ -z "${EDGE_KEYRING:-}" ]; then "$here/keys.sh" "$repo/build/keys"; fi
"$here/wheels.sh" "$arch" "$src" "$work/wheels"
stamp "wheels ready"
"$here/rootfs.sh" "$arch" "$work/wheels" "$work/fs"
stamp "root file system ready"
"$here/assemble.sh" "$arch" "$work/fs" "$out"
rm -rf "$work/fs"
stamp "done: $out/$EDGE_IMAGE_NAME-$arch.img"
