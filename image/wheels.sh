#!/bin/bash
# image/wheels.sh — prepare the Python wheels for /opt/appliance in the image: the project's
# own wheel (built from the source tree) plus its dependencies as binary wheels for the
# target architecture and Debian bookworm's Python 3.11. systemd-python is left out: the image
# uses Debian's python3-systemd through a venv with --system-site-packages.
# Usage: wheels.sh ARCH SRCDIR OUTDIR. Downloads are cached in $EDGE_CACHE/wheels/ARCH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/config.sh"
die() { echo "wheels.sh: error: $*" >&2; exit 1; }
[ $# -eq 3 ] || die "usage: wheels.sh ARCH SRCDIR OUTDIR"
arch=$1 src=$2 out=$3
case $arch in arm64) march=aarch64;; amd64) march=x86_64;; *) die "unknown ARCH '$arch'";; esac
[ -f "$src/pyproject.toml" ] || die "$src has no pyproject.toml: is EDGE_APP_SRC right?"
py=${PYTHON:-python3}
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$py is older than 3.11"

export PIP_DISABLE_PIP_VERSION_CHECK=1
rm -rf "$out"; mkdir -p "$out"
build=$(mktemp -d); trap 'rm -rf "$build"' EXIT

echo "wheels.sh: building the project wheel from $src"
# Build from a copy so the source tree gets no build/ or *.egg-info droppings.
tar -C "$src" --exclude=./.git --exclude=./build --exclude=./.venv --exclude=./var \
    --exclude='*.egg-info' -cf - . | tar -C "$build" -xf -
"$py" -m pip wheel --quiet --no-deps --wheel-dir "$out" "$build" \
    || die "could not build the project wheel from $src (see pip's message above)"
whl=$(ls "$out"/*.whl | head -n1)

# The dependencies as the target sees them: Linux, CPython 3.11; minus systemd-python.
"$py" - "$whl" > "$build/requirements.txt" <<'PY'
import sys, zipfile
from pip._vendor.packaging.requirements import Requirement
env = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
       "python_version": "3.11", "python_full_version": "3.11.2",
       "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
with zipfile.ZipFile(sys.argv[1]) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    lines = z.read(meta).decode().splitlines()
for line in lines:
    if not line.startswith("Requires-Dist:"):
        continue
    req = Requirement(line.split(":", 1)[1].strip())
    if req.marker is not None and not req.marker.evaluate(env):
        continue
    if req.name.lower().replace("_", "-") == "systemd-python":
        continue                     # Debian's python3-systemd provides it
    req.marker = None
    print(req)
PY
echo "wheels.sh: dependencies for $arch: $(tr '\n' ' ' < "$build/requirements.txt")"
platforms=()
for v in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${v}_$march"); done
platforms+=(--platform "manylinux2014_$march")
target=(--only-binary=:all: "${platforms[@]}" --python-version 3.11 --implementation cp
        --abi cp311 --abi abi3 --abi none -r "$build/requirements.txt")
# Wheels are kept in $EDGE_CACHE/wheels/ARCH: when the cache satisfies every requirement no
# network is used (delete the cache to pick up newer releases); otherwise the missing ones
# are downloaded into it. Then the resolved set is copied from the cache into OUTDIR.
cache="$EDGE_CACHE/wheels/$arch"
mkdir -p "$cache"
offline() { "$py" -m pip download --quiet --no-index --find-links "$cache" "${target[@]}" --dest "$out"; }
if ! offline >/dev/null 2>&1; then
    echo "wheels.sh: downloading $arch wheels into $cache"
    "$py" -m pip download --quiet "${target[@]}" --dest "$cache" ||
        die "could not download $arch wheels for: $(tr '\n' ' ' < "$build/requirements.txt")"
    offline || die "the wheel cache $cache does not satisfy the requirements after downloading"
fi
echo "wheels.sh: $(ls "$out" | wc -l) wheels in $out"
