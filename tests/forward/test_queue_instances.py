"""`appliance queue NAME --instances` (issue 18): a destination's stuck instances with patient,
study, SOP Instance UID, attempts and the error that instance got; `--skip-instance UID` gives
one up for that destination and `--retry-instance UID` sends it again at once (its backoff is
long), against a real pynetdicom SCP on 127.0.0.1 that refuses one instance with 0xA700."""

from __future__ import annotations

import json

from tests.forward.conftest import wait_until
from tests.forward.test_forward_orthanc import queue_cli, queue_json, uids
from tests.forward.test_poison_instance import held_destination, picky_pacs  # noqa: F401
from tests.storage.dicom_files import make_study, storescu


def refused_one(appliance, picky_pacs, tmp_path):  # noqa: F811
    """A running appliance whose destination took two instances and refused the third."""
    study = make_study(tmp_path / "study", 3)
    refused = uids(study[:1])[0]
    pacs = picky_pacs(refuse_uid=refused)
    port, config = held_destination(appliance, pacs.peer())
    assert storescu(port, study).returncode == 0
    wait_until(lambda: queue_json(config)["picky"]["pending"] == 3, 10, what="3 queued")
    assert queue_cli(config, "release", "picky").returncode == 0
    wait_until(lambda: queue_json(config)["picky"]["done"] == 2, 20, what="2 delivered")
    wait_until(lambda: queue_json(config)["picky"]["instance_errors"], 10, what="its error")
    return pacs, config, refused


def stuck(config) -> dict:
    answer = queue_cli(config, "picky", "--instances", "--json")
    assert answer.returncode == 0, answer.stderr
    return {r["sop_instance_uid"]: r for r in json.loads(answer.stdout)["instances"]}


def test_instances_show_their_own_error_and_skip_and_retry_work(appliance, picky_pacs,  # noqa: F811
                                                                tmp_path):
    pacs, config, refused = refused_one(appliance, picky_pacs, tmp_path)
    [row] = stuck(config).values()
    assert row["sop_instance_uid"] == refused and row["state"] == "pending"
    assert row["attempts"] == 1 and row["error"].endswith("answered C-STORE status 0xA700")
    assert row["patient_name"] == "Test Patient" and row["study_date"] == "2024-01-01"
    table = queue_cli(config, "picky", "--instances").stdout
    assert refused in table and "0xA700" in table and "Test Patient" in table
    assert "2024-01-01" in table and "PATIENT" in table.splitlines()[0]

    answer = queue_cli(config, "picky", "--skip-instance", refused)
    assert answer.returncode == 0 and "skipped" in answer.stdout
    row = stuck(config)[refused]
    assert row["state"] == "failed" and row["error"].startswith("skipped by the operator")
    assert "0xA700" in row["error"]
    assert queue_json(config)["picky"]["failed"] == 1

    pacs.refuse_uid = ""  # the PACS takes it now; without the retry it would wait minutes
    answer = queue_cli(config, "picky", "--retry-instance", refused)
    assert answer.returncode == 0 and "sent again now" in answer.stdout, answer.stderr
    wait_until(lambda: refused in pacs.received(), 15, what="the retried instance delivered")
    wait_until(lambda: not stuck(config), 10, what="nothing stuck")
    assert "no stuck instances" in queue_cli(config, "picky", "--instances").stdout


def test_unknown_names_and_misplaced_options_are_refused_in_words(appliance, picky_pacs,  # noqa: F811
                                                                  tmp_path):
    pacs = picky_pacs()
    _, config = held_destination(appliance, pacs.peer())
    answer = queue_cli(config, "nosuch", "--instances")
    assert answer.returncode == 2 and "no destination named 'nosuch'" in answer.stderr
    answer = queue_cli(config, "picky", "--retry-instance", "1.2.3")
    assert answer.returncode == 2 and "no undelivered instance '1.2.3'" in answer.stderr
    answer = queue_cli(config, "hold", "picky", "--skip-instance", "1.2.3")
    assert answer.returncode == 2 and "go with a destination NAME alone" in answer.stderr
    assert queue_cli(config, "hold").returncode == 2
    assert queue_cli(config, "release", "picky").returncode == 0  # the old actions still work
