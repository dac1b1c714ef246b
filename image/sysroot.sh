#!/bin/bash
# image/sysroot.sh — the build sysroot for the project wheel's native part (the DICOM engine,
# appliance.dicom.engine._engine): Debian bookworm's headers and libraries for ARCH, unpacked
# by mmdebstrap's extract variant (no maintainer scripts, so no emulation, ~10 s warm), which
# wheels.sh compiles against with the host's (cross) g++ 12. The engine is thus built against
# exactly the DCMTK 3.6.7, Python 3.11 and libstdc++ the image runs, whatever the host has.
# Usage: sysroot.sh ARCH OUTDIR. Downloads are cached in $EDGE_CACHE/debs/ARCH-sysroot.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/config.sh"
die() { echo "sysroot.sh: error: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: sysroot.sh ARCH OUTDIR"
arch=$1 out=$2
case $arch in arm64|amd64) ;; *) die "ARCH must be arm64 or amd64, not '$arch'";; esac
command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (make image-deps)"
mapfile -t sources < <(edge_apt_sources)
[ "${#sources[@]}" -gt 0 ] || die "cannot find a Debian mirror for $EDGE_SUITE in /etc/apt: set EDGE_MIRROR=URI"

# What compiling and linking the engine needs; their dependencies come along (libdcmtk17 &c.).
pkgs="libdcmtk-dev libpython3.11-dev pybind11-dev libstdc++-12-dev libc6-dev"
debcache="$EDGE_CACHE/debs/$arch-sysroot"
mkdir -p "$debcache"
rm -rf "$out"
mmdebstrap --quiet --mode=root --variant=extract --architectures="$arch" \
    --include="$(echo $pkgs | tr ' ' ,)" --aptopt='Acquire::Retries "3"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --skip=essential/unlink --skip=cleanup/apt/cache \
    --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
    --setup-hook="sync-in '$debcache' /var/cache/apt/archives/" \
    "$EDGE_SUITE" "$out" "${sources[@]}" || die "mmdebstrap could not unpack the $arch sysroot"
# the extract variant runs no customize hook on this mmdebstrap version: keep the debs by hand
cp -n "$out"/var/cache/apt/archives/*.deb "$debcache/" 2>/dev/null || true
rm -f "$out"/var/cache/apt/archives/*.deb
# Absolute symbolic links (libm.so -> /lib/..., which the linker follows on the host) made
# relative, so that they resolve inside the sysroot.
find "$out" -type l -lname '/*' -print0 | while IFS= read -r -d '' link; do
    target=$(readlink "$link")
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$out$target")" "$link"
done
multiarch=$(case $arch in arm64) echo aarch64-linux-gnu;; amd64) echo x86_64-linux-gnu;; esac)
for f in usr/include/dcmtk/dcmnet/assoc.h usr/include/python3.11/Python.h \
         usr/include/pybind11/pybind11.h "usr/lib/$multiarch/libdcmnet.so" \
         "usr/lib/python3.11/_sysconfigdata__$multiarch.py"; do
    [ -e "$out/$f" ] || die "the $arch sysroot has no $f"
done
echo "sysroot.sh: $arch sysroot in $out ($(du -sh "$out" | cut -f1))"
