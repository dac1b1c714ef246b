#!/bin/bash
# image/wheels.sh — prepare the Python wheels for /opt/appliance in the image: the project's
# own wheel (built from the source tree) plus its dependencies as binary wheels for the
# target architecture and Debian bookworm's Python 3.11. systemd-python is left out: the image
# uses Debian's python3-systemd through a venv with --system-site-packages.
# The project wheel holds the native DICOM engine (appliance.dicom.engine._engine), compiled
# for ARCH with the host's g++ 12 for that target (native g++ for amd64 on an amd64 host,
# g++-aarch64-linux-gnu for arm64: a cross build, no emulation) against a bookworm sysroot of
# ARCH (sysroot.sh: DCMTK 3.6.7, Python 3.11, pybind11), and tagged cp311-cp311-linux_ARCH.
# Usage: wheels.sh ARCH SRCDIR OUTDIR. Downloads are cached in $EDGE_CACHE/wheels/ARCH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/config.sh"
die() { echo "wheels.sh: error: $*" >&2; exit 1; }
[ $# -eq 3 ] || die "usage: wheels.sh ARCH SRCDIR OUTDIR"
arch=$1 src=$2 out=$3
case $arch in arm64) march=aarch64;; amd64) march=x86_64;; *) die "unknown ARCH '$arch'";; esac
triplet=$march-linux-gnu
[ -f "$src/pyproject.toml" ] || die "$src has no pyproject.toml: is EDGE_APP_SRC right?"
py=${PYTHON:-python3}
# The wheel's cp311 tag comes from the interpreter that builds it: the image runs bookworm's 3.11.
"$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
    die "$py is Python $("$py" -c 'import platform; print(platform.python_version())'), the image's is 3.11: set PYTHON=python3.11"
command -v "$triplet-g++" >/dev/null ||
    die "no C++ compiler for $arch ($triplet-g++): make image-deps installs it (g++-aarch64-linux-gnu for arm64)"

export PIP_DISABLE_PIP_VERSION_CHECK=1
rm -rf "$out"; mkdir -p "$out"
build=$(mktemp -d); trap 'rm -rf "$build"' EXIT

"$here/sysroot.sh" "$arch" "$build/sysroot"
sysroot=$build/sysroot

echo "wheels.sh: building the project wheel for $arch from $src"
# Build from a copy so the source tree gets no build/ or *.egg-info droppings (nor carries the
# in-place _engine*.so of a developer's `pip install -e .` into the wheel).
mkdir "$build/src"
tar -C "$src" --exclude=./.git --exclude=./build --exclude=./.venv --exclude=./var \
    --exclude='*.egg-info' --exclude='*.so' --exclude='*.o' -cf - . | tar -C "$build/src" -xf -
# A build venv (setuptools, wheel: pyproject's build-system) without build isolation, so that
# the target's sysconfig data (extension suffix, SOABI, compiler flags of bookworm's Python for
# ARCH) can sit on its path; _PYTHON_HOST_PLATFORM gives the wheel its linux_ARCH tag.
"$py" -m venv "$build/venv"
"$build/venv/bin/python" -m pip install --quiet 'setuptools>=68' wheel ||
    die "could not install setuptools and wheel into the build venv"
pyconfig=_sysconfigdata__$triplet
cp "$sysroot/usr/lib/python3.11/$pyconfig.py" \
    "$("$build/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/"
cxx="$triplet-g++ --sysroot=$sysroot"
env _PYTHON_SYSCONFIGDATA_NAME="$pyconfig" _PYTHON_HOST_PLATFORM="linux-$march" \
    CC="$triplet-gcc --sysroot=$sysroot" CXX="$cxx" \
    LDSHARED="$cxx -shared -Wl,-O1" LDCXXSHARED="$cxx -shared -Wl,-O1" \
    CPPFLAGS="-I$sysroot/usr/include/python3.11" \
    "$build/venv/bin/python" -m pip wheel --quiet --no-deps --no-build-isolation \
        --wheel-dir "$out" "$build/src" \
    || die "could not build the project wheel for $arch from $src (see the compiler's or pip's message above)"
whl=$(ls "$out"/*.whl | head -n1)
case $whl in *-cp311-cp311-linux_$march.whl) ;;
    *) die "the project wheel $(basename "$whl") is not tagged cp311-cp311-linux_$march";; esac
# The engine in the wheel must be one .so for ARCH (rootfs.sh's customize hook then checks its
# libraries against the root file system and imports it there).
mkdir "$build/engine"
"$py" - "$whl" "$build/engine" <<'PY' || die "the project wheel has no single _engine*.so (see above)"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    found = [n for n in z.namelist() if n.startswith("appliance/dicom/engine/_engine") and n.endswith(".so")]
    print("wheels.sh: engine in the wheel:", " ".join(found) or "none")
    if len(found) != 1:
        sys.exit(1)
    with open(sys.argv[2] + "/" + found[0].rsplit("/", 1)[1], "wb") as f:
        f.write(z.read(found[0]))
PY
"$here/check-engine.sh" "$arch" "$build/engine/"_engine*.so "$sysroot"

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
