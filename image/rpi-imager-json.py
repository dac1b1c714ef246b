#!/usr/bin/env python3
"""image/rpi-imager-json.py — print a Raspberry Pi Imager "custom OS" repository entry for the
image. Usage: rpi-imager-json.py IMG IMG_XZ [URL]. URL defaults to $EDGE_IMAGE_URL or the
file name of IMG_XZ (put the JSON next to the .img.xz on the web server or edit the url)."""

import datetime
import hashlib
import json
import os
import sys


# The boards the image boots on (Debian's u-boot-rpi, rpi_arm64 build), and Raspberry Pi
# Imager's device tags that cover them (its pi4 tag includes the 400 and CM4, pi3 the CM3).
BOARDS = ("Raspberry Pi 3 B", "3 B+", "4 B", "400", "CM3", "CM4")
DEVICES = ["pi4-64bit", "pi3-64bit"]


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    img, img_xz = sys.argv[1], sys.argv[2]
    url = sys.argv[3] if len(sys.argv) == 4 else os.environ.get("EDGE_IMAGE_URL",
                                                                os.path.basename(img_xz))
    entry = {
        "name": "DICOM Edge Appliance (64-bit)",
        "description": "Read-only Debian bookworm appliance bridging DICOM modalities and "
                       "printers; for " + ", ".join(BOARDS) + " (64-bit; no Pi 5).",
        "url": url,
        "icon": "",
        "release_date": datetime.date.today().isoformat(),
        "extract_size": os.path.getsize(img),
        "extract_sha256": sha256(img),
        "image_download_size": os.path.getsize(img_xz),
        "image_download_sha256": sha256(img_xz),
        "devices": DEVICES,
        "init_format": "none",
    }
    json.dump({"os_list": [entry]}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
