"""Build of the native DICOM engine (`appliance.dicom.engine._engine`), a C++17 pybind11
extension on Debian's DCMTK; everything else about the package is in pyproject.toml.

It needs a C++ compiler, DCMTK's headers and libraries (`libdcmtk-dev`, which brings OpenSSL's
`libssl-dev` for dcmtls) and pybind11's headers
(`pybind11-dev`, or the `pybind11` package from PyPI when it is importable): `make venv` installs
them through apt (Makefile RUN_PACKAGES).
"""

from pathlib import Path

from setuptools import Extension, setup

ENGINE = Path("appliance/dicom/engine/src")


def pybind11_include() -> list[str]:
    """PyPI's pybind11 headers when that package is installed, else the system's (pybind11-dev
    puts them in /usr/include, which the compiler searches anyway)."""
    try:
        import pybind11
    except ImportError:
        return []
    return [pybind11.get_include()]


engine = Extension(
    "appliance.dicom.engine._engine",
    sources=sorted(str(path) for path in ENGINE.glob("*.cpp")),
    depends=sorted(str(path) for path in ENGINE.glob("*.hpp")),
    include_dirs=pybind11_include(),
    libraries=["dcmtls", "dcmnet", "dcmdata", "oflog", "ofstd", "ssl", "crypto"],
    language="c++",
    extra_compile_args=["-std=c++17", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden",
                        "-g0"],
)

setup(ext_modules=[engine])
