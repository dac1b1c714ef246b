"""The C-FIND answer fast path sends exactly the bytes pydicom would have sent: answers handed
to pydicom as pre-encoded raw elements (appliance/dicom/find_answers.py); end to end through the
native engine to findscu and a pynetdicom SCU."""

from __future__ import annotations

import pytest
from pydicom.dataelem import RawDataElement
from pynetdicom import AE
from pynetdicom.dsutils import encode

from appliance.dicom.find_answers import answer_charset, answer_dataset, json_to_dataset
from tests.worklist.conftest import ITEMS, findscu, item


def pn(*names):
    return {"vr": "PN", "Value": [{"Alphabetic": n} if isinstance(n, str) else n for n in names]}


ANSWERS = {
    "ascii": {"00100010": pn("DOE^JOHN"), "00100020": {"vr": "LO", "Value": ["1001"]},
              "0020000D": {"vr": "UI", "Value": ["1.2.3"]},  # odd length: NUL padded
              "00100030": {"vr": "DA"}, "00080050": {"vr": "SH", "Value": [""]}},
    "latin-1": {"00100010": pn("MÜLLER^JÜRGEN"), "00321060": {"vr": "LO", "Value": ["Kopf"]}},
    "chinese": {"00100010": pn("李^华"), "00100020": {"vr": "LO", "Value": ["1004"]}},
    "multi-valued": {"00080060": {"vr": "CS", "Value": ["CT", "MR"]},
                     "00100010": pn("A^B", "C^D"),
                     "00400002": {"vr": "DA", "Value": ["20260115"]}},
    "ideographic group is left out, as before": {
        "00100010": pn({"Alphabetic": "YAMADA^TARO", "Ideographic": "山田^太郎"})},
    "nested non-ASCII": {"00400100": {"vr": "SQ", "Value": [{
        "00400006": pn("SØRENSEN^ÅSE"), "00400001": {"vr": "AE", "Value": ["CT1"]},
        "00400003": {"vr": "TM", "Value": ["093000"]}}]},
        "00100010": pn("DOE")},
    "empty and nested sequences": {"00400100": {"vr": "SQ"},
                                   "00081110": {"vr": "SQ", "Value": [{}]},
                                   "00321064": {"vr": "SQ", "Value": [{
                                       "00080100": {"vr": "SH", "Value": ["X1"]},
                                       "00080104": {"vr": "LO", "Value": ["Ä"]}}]}},
    "numbers and binary VRs go through pydicom": {
        "00101030": {"vr": "DS", "Value": [72.5]}, "00101020": {"vr": "DS", "Value": [1.8]},
        "00280010": {"vr": "US", "Value": [512]}, "00100020": {"vr": "LO", "Value": ["1"]}},
    "non-ASCII in a default-repertoire VR goes through pydicom": {
        "00100040": {"vr": "CS", "Value": ["É"]}, "00100010": pn("É")},
    "long text": {"00321060": {"vr": "LT", "Value": ["line one\\still one"]},
                  "00400007": {"vr": "LO", "Value": ["STEP"]}},
}


def reference(answer: dict, query_charset: str, implicit: bool) -> bytes | None:
    """What the previous code sent: a data set of typed elements, encoded by pydicom."""
    ds = json_to_dataset(answer)
    charset = answer_charset(answer, query_charset)
    if charset:
        ds.SpecificCharacterSet = charset
    return encode(ds, implicit, True)


@pytest.mark.parametrize("name", list(ANSWERS))
@pytest.mark.parametrize("query_charset", ["", "ISO_IR 100", "ISO_IR 192"])
@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
def test_answers_encode_to_the_same_bytes_as_typed_elements(name, query_charset, implicit):
    answer = ANSWERS[name]
    expected = reference(answer, query_charset, implicit)
    assert expected  # the reference itself encodes
    assert encode(answer_dataset(answer, query_charset, implicit), implicit, True) == expected


def test_ascii_hint_gives_the_same_answer():
    answer = ANSWERS["ascii"]
    for query_charset in ("", "ISO_IR 100", "ISO_IR 192", "ISO_IR 6"):
        assert (encode(answer_dataset(answer, query_charset, True, ascii_only=True), True, True)
                == reference(answer, query_charset, True))


def test_text_values_are_written_without_being_converted_again():
    """pydicom copies the pre-encoded values: had it taken its slow path (decode the raw
    elements and encode them again), they would no longer be raw after writing."""
    for implicit in (True, False):
        ds = answer_dataset(ANSWERS["nested non-ASCII"], "ISO_IR 100", implicit)
        assert encode(ds, implicit, True)
        assert isinstance(ds.get_item(0x00100010), RawDataElement)
        sps = ds.get_item(0x00400100).value[0]
        assert isinstance(sps.get_item(0x00400006), RawDataElement)
        assert ds.SpecificCharacterSet == "ISO_IR 100"


# -- end to end -------------------------------------------------------------------------------

EXTRA = item("1007", "SØRENSEN^ÅSE", "A1007", "MR", "MR1", "20260118", "070000",
             study="1.2.3.77", performing="李^华", sps_id="S7")


def check_answer(answer):
    assert answer.SpecificCharacterSet == "ISO_IR 192"  # 李 does not fit ISO_IR 100
    assert str(answer.PatientName) == "SØRENSEN^ÅSE"
    assert answer.StudyInstanceUID == "1.2.3.77"
    sps = answer.ScheduledProcedureStepSequence[0]
    assert sps.Modality == "MR" and str(sps.ScheduledPerformingPhysicianName) == "李^华"
    assert "PatientBirthDate" not in answer  # only what was asked for


def test_answers_over_implicit_vr_to_findscu(worklist_server):
    port, _ = worklist_server(items=[*ITEMS, EXTRA])
    result = findscu(port, "SpecificCharacterSet=ISO_IR 100", "PatientID=1007", "PatientName",
                     "StudyInstanceUID", "ScheduledProcedureStepSequence[0].Modality",
                     "ScheduledProcedureStepSequence[0].ScheduledPerformingPhysicianName",
                     extra=("-d", "-xi"))
    assert result.returncode == 0, result.log
    assert "Accepted Transfer Syntax: =LittleEndianImplicit" in result.log
    [answer] = result.answers
    check_answer(answer)


def test_answers_over_explicit_vr(worklist_server):
    """findscu always offers Implicit VR too (which the SCP prefers), so a pynetdicom SCU
    offering only Explicit VR Little Endian asks here."""
    from pydicom import Dataset
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom.sop_class import ModalityWorklistInformationFind

    port, _ = worklist_server(items=[*ITEMS, EXTRA])
    query = Dataset()
    query.SpecificCharacterSet = "ISO_IR 100"
    query.PatientID, query.PatientName, query.StudyInstanceUID = "1007", "", ""
    sps = Dataset()
    sps.Modality, sps.ScheduledPerformingPhysicianName = "", ""
    query.ScheduledProcedureStepSequence = [sps]
    scu = AE(ae_title="EXPLICIT")
    scu.add_requested_context(ModalityWorklistInformationFind, [ExplicitVRLittleEndian])
    assoc = scu.associate("127.0.0.1", port, ae_title="EDGEBOX")
    assert assoc.is_established
    try:
        assert assoc.accepted_contexts[0].transfer_syntax[0] == ExplicitVRLittleEndian
        answers = [(status.Status, ident) for status, ident
                   in assoc.send_c_find(query, ModalityWorklistInformationFind)]
    finally:
        assoc.release()
    assert [s for s, _ in answers] == [0xFF00, 0x0000]
    check_answer(answers[0][1])


def test_only_really_ascii_rows_skip_the_character_set_check(tmp_path):
    """The store says which rows are plain ASCII; a row whose JSON escapes its non-ASCII
    characters (\\u00dc) is not, so its answer still gets a character set that carries them."""
    import json

    from appliance.config.schema import ApplianceConfig
    from appliance.worklist.scp import WorklistService
    from tests.worklist.conftest import load

    service = WorklistService(ApplianceConfig.model_validate(
        {"device": {"data_dir": str(tmp_path)}}))
    load(service, ITEMS)
    store = service.store
    with store.db.transaction() as tx:
        row = tx.execute("SELECT item_json FROM worklist_items WHERE patient_id='1003'").fetchone()
        tx.execute("UPDATE worklist_items SET item_json=? WHERE patient_id='1003'",
                   (json.dumps(json.loads(row[0]), ensure_ascii=True),))
    flags = {item["00100020"]["Value"][0]: ascii_only
             for item, ascii_only in store.scan_items("1", ())}
    assert flags == {"1001": True, "1002": True, "1003": False, "1004": False, "1005": True,
                     "1006": True}
    [(escaped, ascii_only)] = [r for r in store.scan_items("patient_id='1003'", ())]
    answer = {"00100010": escaped["00100010"]}
    assert answer_dataset(answer, "", True, ascii_only).SpecificCharacterSet == "ISO_IR 192"
