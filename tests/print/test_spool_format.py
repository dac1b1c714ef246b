"""The spool's job file: format 1 (a ZIP of job.json and raw pixels) round trip, a crash while
writing leaves the job before it, pickled jobs of the earlier firmware are rewritten at start,
and a job file of a newer firmware is refused and kept aside, never deleted."""

from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from appliance.config.schema import ApplianceConfig
from appliance.print import layout
from appliance.print.lut import PresentationLut
from appliance.print.render import FilmSpec, ImageContent
from appliance.print.spool import PrintSpool
from appliance.print.spool_format import NewerSpoolFormat, read_films, write_films

ROOT = Path(__file__).resolve().parents[2]
SIM = {"name": "sim1", "driver": "sim", "dpi": 50}


def config(tmp_path, **print_section) -> ApplianceConfig:
    return ApplianceConfig.model_validate({
        "device": {"data_dir": str(tmp_path)}, "printers": [SIM],
        "print": {"status_interval": 0.1, **print_section}})


def films() -> list[FilmSpec]:
    gray = np.arange(12 * 10, dtype=np.uint16).reshape(12, 10) * 30
    rgb = np.random.default_rng(1).integers(0, 255, (6, 5, 3), dtype=np.uint8)
    return [FilmSpec(layout.parse_display_format("STANDARD\\2,1"), film_size_id="8INX10IN",
                     dpi=50, max_density=2.8, trim=True, annotation_format="BOTTOM",
                     lut=PresentationLut("", 0, 12, tuple(range(0, 4096, 16))),
                     images={1: ImageContent(gray, bits_stored=12, polarity="REVERSE",
                                             aspect=1.25),
                             2: ImageContent(rgb, photometric="RGB", requested_size_mm=50.0)},
                     annotations={1: "LEFT KNEE"}),
            FilmSpec(layout.parse_display_format("ROW\\1,2"), orientation="LANDSCAPE")]


def assert_same(read: list[FilmSpec], written: list[FilmSpec]) -> None:
    assert len(read) == len(written)
    for got, want in zip(read, written, strict=True):
        assert {k: v for k, v in got.__dict__.items() if k != "images"} == \
            {k: v for k, v in want.__dict__.items() if k != "images"}
        assert got.images.keys() == want.images.keys()
        for position, image in want.images.items():
            copy = got.images[position]
            assert copy.pixels.dtype == image.pixels.dtype
            assert np.array_equal(copy.pixels, image.pixels)
            assert {k: v for k, v in copy.__dict__.items() if k != "pixels"} == \
                {k: v for k, v in image.__dict__.items() if k != "pixels"}


def test_round_trip_is_json_and_raw_pixels_not_pickle(tmp_path):
    path = tmp_path / "job.films"
    write_films(path, films())
    assert_same(read_films(path), films())
    with zipfile.ZipFile(path) as archive:
        job = json.loads(archive.read("job.json"))
        assert job["format"] == 1
        assert archive.read("film-1/image-2.raw") == films()[0].images[2].pixels.tobytes()
    assert job["films"][0]["images"]["1"]["pixels"] == {
        "entry": "film-1/image-1.raw", "dtype": "<u2", "shape": [12, 10]}
    assert b"pickle" not in path.read_bytes() and path.read_bytes()[:1] != b"\x80"


class PowerCut(Exception):
    pass


class FailingPixels:
    def __array__(self, dtype=None, copy=None):
        raise PowerCut("cut while writing the second image")


def test_a_failed_write_leaves_the_complete_job_before_it(tmp_path):
    path = tmp_path / "job.films"
    write_films(path, films())
    broken = films()
    broken[1].images[1] = ImageContent(FailingPixels())
    with pytest.raises(PowerCut):
        write_films(path, broken)
    assert_same(read_films(path), films())
    assert [p.name for p in tmp_path.iterdir()] == ["job.films"]


CRASH = """
import os, sys
from tests.print.test_spool_format import films
from appliance.print.spool_format import write_films
os.replace = lambda *args: os._exit(9)     # the process dies just before the rename
write_films(__import__("pathlib").Path(sys.argv[1]), films()[:1])
"""


def test_a_crash_mid_write_leaves_the_old_job_and_start_cleans_up(tmp_path):
    spool = PrintSpool(config(tmp_path))
    spool.start()
    spool.printers["sim1"].set_condition("PRINTER DOWN")
    spool.poll_status()
    uid = spool.submit("sim1", films()[1:], copies=2)
    spool.stop(5)
    path = tmp_path / "spool" / f"{uid}.films"
    crashed = subprocess.run([sys.executable, "-c", CRASH, str(path)], cwd=ROOT,
                             capture_output=True)
    assert crashed.returncode == 9, crashed.stderr
    leftovers = list(path.parent.glob(".*.tmp"))
    assert len(leftovers) == 1                      # the half-done write, never renamed
    assert_same(read_films(path), films()[1:])
    again = PrintSpool(config(tmp_path))
    again.start()
    try:
        assert not leftovers[0].exists()
        assert again.wait_job(uid)["status"] == "DONE"
        assert len(again.printers["sim1"].printed) == 2
    finally:
        again.stop(5)


def pending_job(tmp_path) -> tuple[str, object]:
    spool = PrintSpool(config(tmp_path))
    spool.start()
    spool.printers["sim1"].set_condition("PRINTER DOWN")
    spool.poll_status()
    uid = spool.submit("sim1", films(), label="old")
    spool.stop(5)
    return uid, tmp_path / "spool" / f"{uid}.films"


def test_a_pickled_job_of_the_earlier_firmware_is_rewritten_and_printed(tmp_path, caplog):
    uid, path = pending_job(tmp_path)
    path.write_bytes(pickle.dumps(films(), protocol=pickle.HIGHEST_PROTOCOL))
    spool = PrintSpool(config(tmp_path))
    with caplog.at_level(logging.INFO, logger="appliance.print.spool_format"):
        spool.start()
    try:
        assert zipfile.is_zipfile(path)
        assert_same(read_films(path), films())
        assert "rewritten from the earlier firmware's pickle" in caplog.text
        assert spool.wait_job(uid)["status"] == "DONE"
        assert [f.label for f in spool.printers["sim1"].printed] == ["old", "old"]
    finally:
        spool.stop(5)


def test_an_unreadable_pickled_job_is_kept_aside(tmp_path, caplog):
    uid, path = pending_job(tmp_path)
    path.write_bytes(pickle.dumps({"not": "films"}))
    spool = PrintSpool(config(tmp_path))
    with caplog.at_level(logging.ERROR, logger="appliance.print.spool_format"):
        spool.start()
    try:
        assert (tmp_path / "spool" / "aside" / path.name).read_bytes() == \
            pickle.dumps({"not": "films"})
        assert "holds no films" in caplog.text
        job = spool.wait_job(uid)
        assert job["status"] == "FAILURE" and "kept aside" in job["status_info"]
    finally:
        spool.stop(5)


def test_a_job_of_a_newer_format_is_refused_and_kept(tmp_path, caplog):
    uid, path = pending_job(tmp_path)
    with zipfile.ZipFile(path) as archive:
        job = json.loads(archive.read("job.json"))
    newer = tmp_path / "newer.films"
    with zipfile.ZipFile(newer, "w") as archive:
        archive.writestr("job.json", json.dumps({**job, "format": 2, "films": []}))
    with pytest.raises(NewerSpoolFormat, match="newer firmware"):
        read_films(newer)
    newer.replace(path)
    content = path.read_bytes()
    spool = PrintSpool(config(tmp_path, reprint_keep=0, history=1))
    with caplog.at_level(logging.ERROR, logger="appliance.print.spool_format"):
        spool.start()
    try:
        assert "spool format 2, written by a newer firmware" in caplog.text
        job = spool.wait_job(uid)
        assert job["status"] == "FAILURE" and "kept aside" in job["status_info"]
        other = spool.submit("sim1", films()[1:])
        assert spool.wait_job(other)["status"] == "DONE"   # history trimmed past the job
        deadline = time.monotonic() + 5
        while spool.job(uid) is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert spool.job(uid) is None
        assert (tmp_path / "spool" / "aside" / path.name).read_bytes() == content
    finally:
        spool.stop(5)
