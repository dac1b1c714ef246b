"""QIDO-RS on the box, searched with dicomweb-client: the same matches as a C-FIND with the
same keys (one matcher), paging, includefield, and refusals of keys the box cannot use."""

from __future__ import annotations

from tests.dicomweb.conftest import S4, STUDIES
from tests.query.conftest import findscu

S1, S2, S3 = (STUDIES[k]["uid"] for k in ("S1", "S2", "S3"))


def values(answers, keyword_tag):
    return sorted(str(a[keyword_tag]["Value"][0]) for a in answers if a[keyword_tag].get("Value"))


def test_search_studies_all_and_by_keys(box):
    client = box.client()
    assert values(client.search_for_studies(), "0020000D") == sorted([S1, S2, S3, S4])
    found = client.search_for_studies(search_filters={"PatientID": "P1"})
    assert values(found, "0020000D") == [S1, S2]
    # a tag works as a keyword does; a date range; a wildcard on the name
    assert values(client.search_for_studies(search_filters={"00080050": "ACC3"}),
                  "0020000D") == [S3]
    assert values(client.search_for_studies(search_filters={"StudyDate": "20261130-20261203"}),
                  "0020000D") == [S2, S3]
    assert values(client.search_for_studies(search_filters={"PatientName": "Doe*"}),
                  "0020000D") == [S1, S2]
    assert values(client.search_for_studies(search_filters={"ModalitiesInStudy": "MR"}),
                  "0020000D") == [S1]


def test_study_answer_attributes(box):
    [study] = box.client().search_for_studies(search_filters={"AccessionNumber": "ACC1"})
    assert study["00100010"]["Value"] == [{"Alphabetic": "Doe^Jane"}]
    assert study["00201206"]["Value"] == [2]          # Number of Study Related Series
    assert study["00201208"]["Value"] == [4]          # Number of Study Related Instances
    assert study["00080061"]["Value"] == ["CT", "MR"]  # Modalities in Study
    assert study["00080056"]["Value"] == ["ONLINE"]
    # dicomweb-client sends a Host header without the port: Retrieve URL follows the Host
    assert study["00081190"]["Value"][0].endswith(f"/dicom-web/studies/{S1}")
    answer = box.logged_in().get(f"{box.dicomweb}/studies", params={"AccessionNumber": "ACC1"})
    assert answer.headers["Content-Type"] == "application/dicom+json"
    assert answer.json()[0]["00081190"]["Value"] == [f"{box.dicomweb}/studies/{S1}"]
    assert "00080052" not in study  # no Query/Retrieve Level in QIDO answers


def test_search_series_and_instances_nested_and_relational(box):
    client = box.client()
    series = client.search_for_series(study_instance_uid=S1)
    assert values(series, "0020000E") == [f"{S1}.1", f"{S1}.2"]
    assert [s["00201209"]["Value"] for s in sorted(series, key=lambda s: s["0020000E"]["Value"])
            ] == [[3], [1]]
    # all series of the box with a modality: relational, the study's attributes returned too
    ct = client.search_for_series(search_filters={"Modality": "CT"})
    assert values(ct, "0020000E") == [f"{S1}.1", f"{S2}.1", f"{S4}.1"]
    assert all("00100020" in s for s in ct)
    instances = client.search_for_instances(study_instance_uid=S1,
                                            series_instance_uid=f"{S1}.1")
    assert values(instances, "00080018") == [f"{S1}.1.{n}" for n in (1, 2, 3)]
    assert instances[0]["00081190"]["Value"][0].endswith(
        f"/studies/{S1}/series/{S1}.1/instances/{instances[0]['00080018']['Value'][0]}")
    in_study = client.search_for_instances(study_instance_uid=S2)
    assert values(in_study, "00080018") == [f"{S2}.1.1", f"{S2}.1.2"]
    everywhere = client.search_for_instances(search_filters={"PatientID": "P2"})
    assert values(everywhere, "00080018") == [f"{S3}.1.1"]


def test_limit_offset_and_includefield(box):
    client = box.client()
    every = values(client.search_for_instances(), "00080018")
    assert len(every) == 10
    first = client.search_for_instances(limit=4)
    rest = client.search_for_instances(offset=4, limit=100)
    assert sorted(values(first, "00080018") + values(rest, "00080018")) == every
    assert len(first) == 4
    [study] = client.search_for_studies(search_filters={"PatientID": "P2"},
                                        fields=["StudyDescription", "00101010"])
    assert study["00081030"]["Value"] == ["US ABDOMEN"]
    [study] = client.search_for_studies(search_filters={"PatientID": "P2"}, fields=["all"])
    assert study["00080020"]["Value"] == ["20261203"]


def test_empty_search_is_204(box):
    answer = box.logged_in().get(f"{box.dicomweb}/studies", params={"PatientID": "NOBODY"},
                                 headers={"Accept": "application/dicom+json"})
    assert answer.status_code == 204
    assert box.client().search_for_studies(search_filters={"PatientID": "NOBODY"}) == []


def test_bad_keys_are_400_with_the_reason(box):
    session = box.logged_in()

    def get(path, **params):
        return session.get(f"{box.dicomweb}{path}", params=params)

    answer = get("/studies", NoSuchKeyword="1")
    assert answer.status_code == 400 and "NoSuchKeyword" in answer.json()["detail"]
    answer = get("/studies", Modality="CT")  # a series attribute at the study level
    assert answer.status_code == 400 and "Modality" in answer.json()["detail"]
    answer = get("/studies", StudyDate="2026-99-99")
    assert answer.status_code == 400 and "StudyDate" in answer.json()["detail"]
    assert get("/studies", limit="-1").status_code == 400
    assert get("/series", NumberOfSeriesRelatedInstances="3").status_code == 400
    answer = get("/studies", fuzzymatching="true")
    assert answer.status_code == 200 and "fuzzymatching" in answer.headers["Warning"]
    answer = session.get(f"{box.dicomweb}/studies", headers={"Accept": "image/png"})
    assert answer.status_code == 406


def test_qido_and_cfind_find_the_same(box, tmp_path):
    """The same keys through QIDO-RS and through DCMTK findscu (the Q/R SCP): one matcher."""
    import tomllib

    port = tomllib.loads(box.config_path.read_text())["dicom"]["port"]
    client = box.client()
    for keys in ({"StudyDate": "20261101-20261202", "PatientName": "*Jane"},
                 {"ModalitiesInStudy": "US"}, {"StudyTime": "0800-1000"}):
        result, answers = findscu(port, tmp_path / "find", "-S",
                                  ["QueryRetrieveLevel=STUDY", "StudyInstanceUID",
                                   *(f"{k}={v}" for k, v in keys.items())])
        assert result.returncode == 0, result.stderr
        dimse = sorted(str(a.StudyInstanceUID) for a in answers)
        assert dimse  # every one of these keys matches something
        assert values(client.search_for_studies(search_filters=keys), "0020000D") == dimse
