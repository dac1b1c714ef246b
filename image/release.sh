#!/bin/bash
# image/release.sh — make the release files from a disk image built by build.sh:
# IMG.bmap (bmaptool), IMG.xz, IMG.xz.sha256 and, for arm64, a Raspberry Pi Imager entry.
# Usage: release.sh IMG      (xz level: $EDGE_XZ_LEVEL, default 3; threads: all cores)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "release.sh: error: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: release.sh IMG"
img=$1
[ -f "$img" ] || die "no image at $img (run build.sh first)"
for t in bmaptool xz sha256sum; do command -v "$t" >/dev/null || die "$t is missing (make image-deps)"; done
t0=$(date +%s)
bmaptool -q create -o "$img.bmap" "$img"
xz -T0 "-${EDGE_XZ_LEVEL:-3}" -c "$img" > "$img.xz.part" && mv "$img.xz.part" "$img.xz"
(cd "$(dirname "$img")" && sha256sum "$(basename "$img").xz" > "$(basename "$img").xz.sha256")
case $(basename "$img") in
*arm64*) python3 "$here/rpi-imager-json.py" "$img" "$img.xz" > "${img%.img}.rpi-imager.json";;
esac
echo "release.sh: $img.xz ($(du -h "$img.xz" | cut -f1)), .bmap, .sha256 in $(( $(date +%s) - t0 )) s"
