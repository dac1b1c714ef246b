"""C-FIND of the running appliance's store with DCMTK findscu, Patient Root (-P) and Study Root
(-S), at every level, with the computed keys; refusals (0xA900) and what retention deleted."""

from __future__ import annotations

from pydicom import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from appliance.store.instances import InstanceStore
from tests.query.conftest import STUDIES, final_find_status, findscu

S1, S2, S3 = (STUDIES[k]["uid"] for k in ("S1", "S2", "S3"))


def by(answers, keyword):
    return {str(a.get(keyword)): a for a in answers}


def test_patient_root_at_every_level_with_computed_keys(archive_box, tmp_path):
    port, _, _ = archive_box()
    out = tmp_path / "found"

    result, answers = findscu(port, out, "-P", [
        "QueryRetrieveLevel=PATIENT", "PatientID", "PatientName", "PatientBirthDate",
        "PatientSex", "NumberOfPatientRelatedStudies", "NumberOfPatientRelatedSeries",
        "NumberOfPatientRelatedInstances"])
    assert final_find_status(result.stderr) == "Success", result.stderr
    patients = by(answers, "PatientID")
    assert set(patients) == {"P1", "P2"}
    p1 = patients["P1"]
    assert str(p1.PatientName) == "Doe^Jane" and p1.PatientBirthDate == "19700101"
    assert (p1.NumberOfPatientRelatedStudies, p1.NumberOfPatientRelatedSeries,
            p1.NumberOfPatientRelatedInstances) == (2, 3, 6)
    assert p1.QueryRetrieveLevel == "PATIENT"

    result, answers = findscu(port, out, "-P", [
        "QueryRetrieveLevel=STUDY", "PatientID=P1", "StudyInstanceUID", "StudyDate",
        "StudyTime", "AccessionNumber", "StudyID", "StudyDescription", "ModalitiesInStudy",
        "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "SOPClassesInStudy"])
    assert final_find_status(result.stderr) == "Success", result.stderr
    studies = by(answers, "StudyInstanceUID")
    assert set(studies) == {S1, S2}
    s1 = studies[S1]
    assert (s1.StudyDate, s1.AccessionNumber, s1.StudyDescription) == \
        ("20261102", "ACC1", "CT HEAD")
    assert sorted(s1.ModalitiesInStudy) == ["CT", "MR"]
    assert (s1.NumberOfStudyRelatedSeries, s1.NumberOfStudyRelatedInstances) == (2, 4)
    assert sorted(s1.SOPClassesInStudy) == sorted(
        ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"])

    result, answers = findscu(port, out, "-P", [
        "QueryRetrieveLevel=SERIES", "PatientID=P1", f"StudyInstanceUID={S1}",
        "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
        "NumberOfSeriesRelatedInstances"])
    assert final_find_status(result.stderr) == "Success", result.stderr
    series = by(answers, "Modality")
    assert set(series) == {"CT", "MR"}
    assert series["CT"].NumberOfSeriesRelatedInstances == 3
    assert (series["CT"].SeriesNumber, series["CT"].SeriesDescription) == (1, "Axial")

    result, answers = findscu(port, out, "-P", [
        "QueryRetrieveLevel=IMAGE", "PatientID=P1", f"StudyInstanceUID={S1}",
        f"SeriesInstanceUID={S1}.1", "SOPInstanceUID", "SOPClassUID", "InstanceNumber"])
    assert final_find_status(result.stderr) == "Success", result.stderr
    assert sorted(a.SOPInstanceUID for a in answers) == [f"{S1}.1.{n}" for n in (1, 2, 3)]
    assert sorted(a.InstanceNumber for a in answers) == [1, 2, 3]


def test_study_root_at_every_level_with_matching(archive_box, tmp_path):
    port, _, _ = archive_box()
    out = tmp_path / "found"

    # range, wildcard and a computed matching key
    result, answers = findscu(port, out, "-S", [
        "QueryRetrieveLevel=STUDY", "StudyDate=20261115-", "StudyInstanceUID",
        "PatientName", "NumberOfStudyRelatedInstances", "NumberOfPatientRelatedStudies"])
    assert final_find_status(result.stderr) == "Success", result.stderr
    found = by(answers, "StudyInstanceUID")
    assert set(found) == {S2, S3}
    assert found[S2].NumberOfStudyRelatedInstances == 2
    assert found[S2].NumberOfPatientRelatedStudies == 2
    assert str(found[S3].PatientName) == "Roe^Max"

    _, answers = findscu(port, out, "-S", ["QueryRetrieveLevel=STUDY", "PatientName=Doe*",
                                           "AccessionNumber", "StudyInstanceUID"])
    assert sorted(a.AccessionNumber for a in answers) == ["ACC1", "ACC2"]
    _, answers = findscu(port, out, "-S", ["QueryRetrieveLevel=STUDY", "ModalitiesInStudy=MR",
                                           "StudyInstanceUID"])
    assert [a.StudyInstanceUID for a in answers] == [S1]
    _, answers = findscu(port, out, "-S", [
        "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={S1}\\{S3}", "AccessionNumber"])
    assert sorted(a.AccessionNumber for a in answers) == ["ACC1", "ACC3"]

    result, answers = findscu(port, out, "-S", [
        "QueryRetrieveLevel=SERIES", f"StudyInstanceUID={S2}", "SeriesInstanceUID",
        "Modality", "NumberOfSeriesRelatedInstances"])
    assert final_find_status(result.stderr) == "Success", result.stderr
    assert [(a.Modality, a.NumberOfSeriesRelatedInstances) for a in answers] == [("CT", 2)]

    result, answers = findscu(port, out, "-S", [
        "QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={S2}", f"SeriesInstanceUID={S2}.1",
        "SOPInstanceUID", "InstanceNumber=2"])
    assert final_find_status(result.stderr) == "Success", result.stderr
    assert [a.SOPInstanceUID for a in answers] == [f"{S2}.1.2"]


def test_identifiers_that_do_not_fit_the_model_are_refused(archive_box, tmp_path):
    port, _, _ = archive_box()
    out = tmp_path / "found"
    # PATIENT is no level of the Study Root model
    result, answers = findscu(port, out, "-S", ["QueryRetrieveLevel=PATIENT", "PatientID"])
    assert final_find_status(result.stderr) == "Error: DataSetDoesNotMatchSOPClass", \
        result.stderr
    assert not answers
    # a SERIES query without the study's unique key (hierarchical query): the reason told
    ae = AE(ae_title="VIEWER")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", port, ae_title="EDGEBOX")
    try:
        query = Dataset()
        query.QueryRetrieveLevel, query.Modality = "SERIES", "CT"
        [(status, identifier)] = list(assoc.send_c_find(
            query, StudyRootQueryRetrieveInformationModelFind))
    finally:
        assoc.release()
    assert status.Status == 0xA900 and identifier is None
    assert "StudyInstanceUID" in status.ErrorComment


def test_only_instances_still_held_are_found(archive_box, tmp_path):
    port, config_path, _ = archive_box()
    out = tmp_path / "found"
    store = InstanceStore(tmp_path / "data")
    try:  # what retention does to a forwarded copy
        for row in store.db.connection().execute(
                "SELECT id, path FROM instances WHERE study_uid = ?", (S3,)).fetchall():
            store.delete(row[0], row[1])
    finally:
        store.close()
    result, answers = findscu(port, out, "-S", ["QueryRetrieveLevel=STUDY",
                                                "StudyInstanceUID", "PatientID"])
    assert final_find_status(result.stderr) == "Success", result.stderr
    assert set(by(answers, "StudyInstanceUID")) == {S1, S2}
    _, answers = findscu(port, out, "-P", ["QueryRetrieveLevel=PATIENT", "PatientID"])
    assert set(by(answers, "PatientID")) == {"P1"}
