"""The per-minute statistics inside `appliance run`: images stored through the real DICOM port
with DCMTK's storescu, forwarded to a storescp peer and waiting for one that is down, show up
in the database's minute buckets, in GET /api/v1/stats, in /metrics and as plotted points on
the landing page."""

from __future__ import annotations

import re
import time

import httpx

from appliance.store.database import Database
from appliance.web.charts import disk_bar, line_chart
from tests.conftest import free_port
from tests.web.conftest import read_setup_code


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_stored_and_forwarded_images_are_counted_per_minute(appliance, storescp, tmp_path):
    from tests.storage.dicom_files import make_study, storescu

    web_port, pacs = free_port(), storescp("PACS")
    _, port, _ = appliance({
        "web": {"port": web_port},
        "peers": [{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": pacs},
                  {"name": "down", "ae_title": "DOWN", "host": "127.0.0.1",
                   "port": free_port()}],
        "destinations": [{"peer": "pacs"}, {"peer": "down", "retry_initial": 60.0}],
    })
    with httpx.Client(base_url=f"http://127.0.0.1:{web_port}", timeout=20) as client:
        client.post("/api/v1/setup", json={"password": "stats password",
                                           "setup_code": read_setup_code(tmp_path / "data")})
        assert storescu(port, make_study(tmp_path / "study", 3)).returncode == 0

        def stats():
            return client.get("/api/v1/stats", params={"minutes": 60}).json()

        wait_for(lambda: sum(stats()["forwarded"].get("pacs", [])) == 3)
        answer = stats()
        assert answer["minutes"] == 60 and answer["step_seconds"] == 60
        assert len(answer["received"]) == 60 and sum(answer["received"]) == 3
        assert "down" not in answer["forwarded"]
        depth = [d for d in answer["queue_depth"]["down"] if d is not None]
        assert depth[-1] == 3
        assert [d for d in answer["disk_used_percent"] if d is not None]
        assert client.get("/api/v1/stats", params={"minutes": 0}).status_code == 400

        metrics = client.get("/metrics").text
        assert 'appliance_instances_total{event="forwarded"} 3.0' in metrics
        assert 'appliance_instances_total{event="received"} 3.0' in metrics
        assert 'appliance_queue_depth{destination="down"} 3.0' in metrics
        assert "appliance_received_per_minute " in metrics
        assert re.search(r"appliance_disk_used_percent \d", metrics)
        families = re.findall(r"^# TYPE (\S+) ", metrics, re.M)
        assert len(families) == len(set(families))  # every series once, no duplicates

        landing = client.get("/").text
        images = re.search(r'<svg class="chart" role="img" aria-label="images per minute[^"]*"'
                           r'[^>]*data-points="(\d+)"', landing)
        assert images and int(images.group(1)) > 0
        assert "<polyline" in landing and 'id="received-today">3<' in landing

    # the buckets themselves, in the shared database
    rows = Database.in_data_dir(tmp_path / "data").connection().execute(
        "SELECT series, label, SUM(value) FROM stats_minute WHERE series IN "
        "('received', 'forwarded') GROUP BY series, label").fetchall()
    assert {(r[0], r[1]): r[2] for r in rows} == {("received", ""): 3.0,
                                                  ("forwarded", "pacs"): 3.0}


def test_a_chart_draws_its_points_and_escapes_its_text():
    svg = line_chart("a <b>", {"x&y": [1, None, 3, 2]}, unit="%")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert 'data-points="3"' in svg and "a &lt;b&gt;" in svg and "<b>" not in svg
    points = re.search(r'<polyline[^>]* points="([^"]+)"', svg).group(1).split()
    assert len(points) == 3
    empty = line_chart("nothing", {"x": [None, None]})
    assert 'data-points="0"' in empty and "no data yet" in empty
    long = line_chart("day", {"x": list(range(1440))}, width=360)
    assert int(re.search(r'data-points="(\d+)"', long).group(1)) == 180
    bar = disk_bar(50.0, 90, 2.0)
    assert 'width="180.0"' in bar and "C-STORE refused above 98.0%" in bar
