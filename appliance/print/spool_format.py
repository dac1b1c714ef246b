"""The on-disk format of a spooled print job's films (`<data_dir>/spool/<job>.films`).

A job file is a ZIP archive (entries stored, not compressed) written in one atomic
replacement (appliance/system/atomic_file.py), so after a power cut it holds the whole job or
the one before it. Its `job.json` says `"format": 1` and holds every field of each film
(`FilmSpec`) and image box (`ImageContent`); each image's pixels are a raw entry
(`film-<n>/image-<position>.raw`) whose NumPy dtype (with byte order) and shape are in
`job.json`. Nothing in it is Python-specific, so a newer firmware can read it, and a file of a
newer format is refused here (`NewerSpoolFormat`) instead of being guessed at.

Firmware before format 1 pickled the list of `FilmSpec`s into the same file name;
`is_legacy_pickle` recognises such a file and `read_legacy_pickle` loads it once so the spool
can rewrite it in format 1.
"""

from __future__ import annotations

import json
import logging
import pickle
import zipfile
from dataclasses import fields
from pathlib import Path

import numpy as np

from appliance.core.errors import ApplianceError
from appliance.print.layout import DisplayFormat
from appliance.print.lut import PresentationLut
from appliance.print.render import FilmSpec, ImageContent
from appliance.system.atomic_file import atomic_writer, fsync_directory

log = logging.getLogger(__name__)

FORMAT = 1
JOB_ENTRY = "job.json"
_NESTED = ("display_format", "lut", "images", "annotations")


class SpoolFormatError(ApplianceError, ValueError):
    """A spool file that is not a print job this firmware can read."""


class NewerSpoolFormat(SpoolFormatError):
    """A spool file written by a newer firmware, in a format this one does not know."""


def write_films(path: Path, specs: list[FilmSpec]) -> None:
    """Write a job's films to `path` atomically, in format 1."""
    films = []
    with atomic_writer(path) as handle, \
            zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
        for number, spec in enumerate(specs, start=1):
            film = {f.name: getattr(spec, f.name) for f in fields(FilmSpec)
                    if f.name not in _NESTED}
            film["display_format"] = {"kind": spec.display_format.kind,
                                      "counts": list(spec.display_format.counts)}
            film["lut"] = {"shape": spec.lut.shape, "first_mapped": spec.lut.first_mapped,
                           "output_bits": spec.lut.output_bits, "data": list(spec.lut.data)}
            film["annotations"] = {str(k): v for k, v in spec.annotations.items()}
            film["images"] = {}
            for position, content in spec.images.items():
                name = f"film-{number}/image-{position}.raw"
                pixels = np.ascontiguousarray(content.pixels)
                with archive.open(name, "w", force_zip64=True) as entry:
                    entry.write(memoryview(pixels).cast("B"))
                image = {f.name: getattr(content, f.name) for f in fields(ImageContent)
                         if f.name != "pixels"}
                image["pixels"] = {"entry": name, "dtype": pixels.dtype.str,
                                   "shape": list(pixels.shape)}
                film["images"][str(position)] = image
            films.append(film)
        archive.writestr(JOB_ENTRY, json.dumps({"format": FORMAT, "films": films}))


def read_films(path: Path) -> list[FilmSpec]:
    """A job's films from a format-1 file. OSError if it cannot be read; SpoolFormatError if
    it is not a print job file; NewerSpoolFormat if a newer firmware wrote it."""
    try:
        with zipfile.ZipFile(path) as archive:
            job = json.loads(archive.read(JOB_ENTRY))
            check_format(job, path)
            return [_film(film, archive) for film in job["films"]]
    except (zipfile.BadZipFile, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, SpoolFormatError):
            raise
        raise SpoolFormatError(f"{path.name} is not a readable print job file "
                               f"(format {FORMAT}): {exc}") from None


def file_format(path: Path) -> int | None:
    """The `format` a job file declares, or None if it declares none or is no job file."""
    try:
        with zipfile.ZipFile(path) as archive:
            value = json.loads(archive.read(JOB_ENTRY)).get("format")
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def check_format(job: dict, path: Path) -> None:
    version = job.get("format")
    if version == FORMAT:
        return
    if isinstance(version, int) and version > FORMAT:
        raise NewerSpoolFormat(f"{path.name} is in spool format {version}, written by a newer "
                               f"firmware; this firmware reads format {FORMAT}")
    raise SpoolFormatError(f"{path.name} declares spool format {version!r}; this firmware "
                           f"reads format {FORMAT}")


def is_legacy_pickle(path: Path) -> bool:
    """True if `path` looks like a pickled job of the firmware before format 1."""
    with open(path, "rb") as handle:
        head = handle.read(2)
    # pickle protocol 2 and later start with PROTO (0x80) and the protocol number
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def read_legacy_pickle(path: Path) -> list[FilmSpec]:
    """The films of a pickled job (the firmware before format 1 wrote only these, on this
    box's own data partition). SpoolFormatError if it is not a list of films."""
    try:
        with open(path, "rb") as handle:
            specs = pickle.load(handle)  # noqa: S301 - our own earlier spool file
    except (pickle.UnpicklingError, AttributeError, ImportError, EOFError, TypeError,
            ValueError) as exc:
        raise SpoolFormatError(f"{path.name} (pickled by an earlier firmware) cannot be "
                               f"read: {exc}") from None
    if not isinstance(specs, list) or not all(isinstance(s, FilmSpec) for s in specs):
        raise SpoolFormatError(f"{path.name} (pickled by an earlier firmware) holds no films")
    return specs


def _film(film: dict, archive: zipfile.ZipFile) -> FilmSpec:
    display = film.pop("display_format")
    lut = film.pop("lut")
    images = film.pop("images")
    annotations = film.pop("annotations")
    return FilmSpec(
        display_format=DisplayFormat(display["kind"], tuple(display["counts"])),
        lut=PresentationLut(lut["shape"], lut["first_mapped"], lut["output_bits"],
                            tuple(lut["data"])),
        images={int(pos): _image(image, archive) for pos, image in images.items()},
        annotations={int(pos): text for pos, text in annotations.items()},
        **film)


def _image(image: dict, archive: zipfile.ZipFile) -> ImageContent:
    layout = image.pop("pixels")
    pixels = np.empty(tuple(layout["shape"]), dtype=np.dtype(layout["dtype"]))
    target = memoryview(pixels).cast("B")
    with archive.open(layout["entry"]) as entry:
        filled = 0
        while filled < len(target):
            count = entry.readinto(target[filled:])
            if not count:
                raise SpoolFormatError(f"{layout['entry']} is shorter than its shape says")
            filled += count
    return ImageContent(pixels=pixels, **image)


ASIDE = "aside"


def job_path(spool_dir: Path, uid: str) -> Path:
    return spool_dir / f"{uid}.films"


def load_job_films(spool_dir: Path, uid: str) -> list[FilmSpec]:
    """The films of job `uid`; a newer-format file met here is moved aside (kept)."""
    path = job_path(spool_dir, uid)
    aside = spool_dir / ASIDE / path.name
    if not path.exists() and aside.exists():
        raise SpoolFormatError(f"the films of this job were kept aside in {aside} (not "
                               f"readable by this firmware)")
    try:
        return read_films(path)
    except NewerSpoolFormat as exc:
        keep_aside(path, str(exc))
        raise


def keep_aside(path: Path, reason: str) -> Path:
    """Move a job file this firmware cannot read to `spool/aside/`, where nothing deletes it."""
    target = path.parent / ASIDE / path.name
    target.parent.mkdir(exist_ok=True)
    path.replace(target)
    fsync_directory(path.parent)
    log.error("print job file %s not used: %s; kept in %s", path.name, reason, target)
    return target


def recover_spool_dir(spool_dir: Path) -> None:
    """At start: drop half-written files a crash left, rewrite each pickled job of the earlier
    firmware in format 1 (or keep it aside if it cannot be read), keep newer-format files aside.
    Migration writes the new file atomically over the old one, so a crash during it leaves
    the pickled job, which is migrated at the next start."""
    for leftover in spool_dir.glob(".*.tmp"):
        log.warning("removing %s, a spool file cut off while being written", leftover.name)
        leftover.unlink(missing_ok=True)
    for path in sorted(spool_dir.glob("*.films")):
        try:
            if is_legacy_pickle(path):
                try:
                    specs = read_legacy_pickle(path)
                except SpoolFormatError as exc:
                    keep_aside(path, str(exc))
                    continue
                write_films(path, specs)
                log.info("print job file %s rewritten from the earlier firmware's pickle to "
                         "spool format %d", path.name, FORMAT)
            elif (version := file_format(path)) is not None and version > FORMAT:
                keep_aside(path, f"spool format {version}, written by a newer firmware; this "
                                 f"firmware reads format {FORMAT}")
        except OSError as exc:
            log.error("print job file %s could not be checked: %s", path.name, exc)
