#!/bin/bash
# image/uboot/mkscript.sh — make the U-Boot boot script boot.scr for one platform: its prelude
# (prelude-PLATFORM.cmd) followed by the shared body boot.cmd, with the kernel arguments of the
# image (config.sh's edge_cmdline, less console= and root=, which the prelude and body set),
# compiled by mkimage (u-boot-tools). Usage: mkscript.sh rpi|qemu OUT.scr
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../config.sh"
die() { echo "mkscript.sh: error: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: mkscript.sh rpi|qemu OUT.scr"
platform=$1 out=$2
[ -f "$here/prelude-$platform.cmd" ] || die "no prelude for '$platform' (rpi or qemu)"
command -v mkimage >/dev/null || die "mkimage is missing: apt-get install u-boot-tools"
args=$(edge_cmdline "" | sed -e 's/ root=[^ ]*//' -e 's/^ *//')
# the kernel restarts 10 s after a panic, so a broken trial spends its attempts unattended
args="$args panic=10"
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
{ cat "$here/prelude-$platform.cmd"; sed "s|@ARGS@|$args|" "$here/boot.cmd"; } > "$tmp"
mkimage -q -A arm64 -O linux -T script -C none -n "edge appliance A/B ($platform)" -d "$tmp" "$out" \
    || die "mkimage could not compile $out"
