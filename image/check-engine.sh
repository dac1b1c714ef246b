#!/bin/bash
# image/check-engine.sh — fail the image build when the native DICOM engine is built for the
# wrong machine or needs a shared library that the given root does not hold (e.g. libdcmtk17
# missing from EDGE_PACKAGES, or a DCMTK of another soname on the build host).
# Usage: check-engine.sh ARCH SOFILE ROOT   (ROOT: the image's root file system, or the sysroot)
set -euo pipefail
die() { echo "check-engine.sh: error: $*" >&2; exit 1; }
[ $# -eq 3 ] || die "usage: check-engine.sh ARCH SOFILE ROOT"
arch=$1 so=$2 root=$3
case $arch in
    arm64) machine=AArch64 multiarch=aarch64-linux-gnu;;
    amd64) machine="Advanced Micro Devices X86-64" multiarch=x86_64-linux-gnu;;
    *) die "ARCH must be arm64 or amd64, not '$arch'";;
esac
command -v readelf >/dev/null || die "readelf is not installed (binutils; make image-deps)"
[ -f "$so" ] || die "no engine at $so"
got=$(readelf -h "$so" | sed -n 's/^ *Machine: *//p')
[ "$got" = "$machine" ] ||
    die "$(basename "$so") is built for '$got', the $arch image needs '$machine' (was it built with the host's compiler instead of $multiarch-g++?)"

# Follows a library's symbolic links inside ROOT (absolute targets are ROOT-relative).
exists_in_root() {  # $1 = path inside ROOT
    local path=$1 hops target
    for hops in 1 2 3 4 5 6 7 8; do
        if [ -L "$root$path" ]; then
            target=$(readlink "$root$path")
            case $target in /*) path=$target;; *) path=$(dirname "$path")/$target;; esac
        else
            [ -f "$root$path" ]
            return
        fi
    done
    return 1
}
missing=()
needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for lib in $needed; do
    found=no
    for dir in /usr/lib/$multiarch /lib/$multiarch /usr/lib /lib; do
        if exists_in_root "$dir/$lib"; then found=yes; break; fi
    done
    [ $found = yes ] || missing+=("$lib")
done
[ ${#missing[@]} -eq 0 ] ||
    die "$(basename "$so") needs ${missing[*]}, not in $root (libdcmtk17 in EDGE_PACKAGES, image/config.sh?)"
if readelf -d "$so" | grep -qE '\((RPATH|RUNPATH)\)'; then
    die "$(basename "$so") carries an RPATH/RUNPATH (a build-host path): $(readelf -d "$so" | grep -E 'R(UN)?PATH')"
fi
echo "check-engine.sh: $(basename "$so"): $machine, needs $(echo $needed | tr ' ' ','), all in $root"
