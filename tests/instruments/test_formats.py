"""Every export format: simulate -> write -> read_export gives the same typed tables."""

import json
import shutil
import zipfile

import pandas as pd
import pytest

from instruments.formats.kobo import write_kobo_json, write_kobo_xlsx
from instruments.formats.odata import write_odata_json
from instruments.formats.odk_central import write_odk_central_zip
from instruments.formats.odk_xml import write_odk_xml
from instruments.formats.surveycto import write_surveycto
from instruments.importer import import_raw, read_export
from survey.errors import InstrumentError

from .conftest import TODAY, assert_ledger_balances

# metadata a format cannot carry is left out of the comparison, nothing else
FORMATS = {
    "odk_central_zip": (write_odk_central_zip, "x.zip", {}, ()),
    "kobo_xlsx": (write_kobo_xlsx, "x.xlsx", {}, ("review_state",)),
    "kobo_json": (write_kobo_json, "x.json", {}, ("review_state",)),
    "surveycto_csv": (write_surveycto, "scto", {}, ("status",)),
    "surveycto_zip": (write_surveycto, "scto.zip", {}, ("status",)),
    "odk_xml": (write_odk_xml, "instances", {}, ("review_state", "submission_date",
                                                 "submitter", "status")),
    "odk_xml_zip": (write_odk_xml, "instances.zip", {"namespaced_meta": True},
                    ("review_state", "submission_date", "submitter", "status")),
    "odata_json": (write_odata_json, "odata.json", {}, ()),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_round_trip(fmt, household, nested_messy, tmp_path):
    write, name, kw, unsupported = FORMATS[fmt]
    path = write(nested_messy, tmp_path / name, household, **kw)
    via = read_export(path, household, today=TODAY)
    direct = import_raw(nested_messy, household, today=TODAY)
    expected = {"surveycto_zip": "surveycto_csv", "odk_xml_zip": "odk_xml"}.get(fmt, fmt)
    assert set(via.ledger["format"]) == {expected}
    for t in direct.tables:
        drop = [c for c in unsupported if c in direct.tables[t]]
        pd.testing.assert_frame_equal(via.tables[t].drop(columns=drop),
                                      direct.tables[t].drop(columns=drop))
    pd.testing.assert_frame_equal(via.ledger.iloc[:, :5], direct.ledger.iloc[:, :5])
    pd.testing.assert_frame_equal(via.problems, direct.problems)
    assert_ledger_balances(via)


def test_kobo_labels_export_is_read_back_to_names(household, clean_raw, tmp_path):
    lab = {c.name: c.labels["English (en)"] for c in household.by_name("floor").choices.choices}
    t = dict(clean_raw.tables)
    t["household"] = t["household"].assign(floor=t["household"]["floor"].map(lab).astype("string"))
    from instruments.raw import RawData

    path = write_kobo_xlsx(RawData("household", t), tmp_path / "lab.xlsx", household)
    res = read_export(path, household, today=TODAY)
    assert "E106" not in set(res.problems["code"])
    direct = import_raw(clean_raw, household, today=TODAY).tables["household"]["floor"]
    pd.testing.assert_series_equal(res.tables["household"]["floor"], direct)


def test_kobo_not_approved_is_quarantined(household, clean_raw, tmp_path):
    from instruments.raw import RawData

    t = dict(clean_raw.tables)
    h = t["household"]
    t["household"] = h.assign(status=pd.Series(["not_approved"] + [None] * (len(h) - 1),
                                               dtype="string"))
    res = read_export(write_kobo_json(RawData("household", t), tmp_path / "k.json", household),
                      household, today=TODAY)
    assert res.quarantine["household"]["reason"].tolist() == ["R502"]
    assert_ledger_balances(res)


def test_xml_of_another_form(household, listing, sample, tmp_path):
    import numpy as np

    from instruments.simulate import simulate_submissions

    raw = simulate_submissions(listing, sample, np.random.default_rng(1), today=TODAY)
    path = write_odk_xml(raw, tmp_path / "inst", listing)
    with pytest.raises(InstrumentError, match="different form"):
        read_export(path, household)


def test_damaged_xml_instance(household, clean_raw, tmp_path):
    path = write_odk_xml(clean_raw, tmp_path / "inst", household)
    victim = sorted(path.rglob("*.xml"))[3]
    victim.write_bytes(victim.read_bytes()[:200])
    with pytest.raises(InstrumentError, match="not well-formed") as err:
        read_export(path, household)
    assert victim.name in err.value.file


def test_surveycto_of_another_form(household, clean_raw, tmp_path):
    path = write_surveycto(clean_raw, tmp_path / "scto", household)
    shutil.move(path / "household.csv", path / "census.csv")
    with pytest.raises(InstrumentError, match="census.csv"):
        read_export(path, household)


def test_unrecognised_inputs_say_what_was_found_and_accepted(household, tmp_path):
    odd = tmp_path / "data.json"
    odd.write_text(json.dumps({"rows": []}))
    with pytest.raises(InstrumentError, match="neither") as err:
        read_export(odd, household)
    assert "odk_central_zip" in err.value.hint
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(InstrumentError, match=r"\.txt file"):
        read_export(txt, household)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.md", "nothing")
    with pytest.raises(InstrumentError, match="readme.md"):
        read_export(empty, household)
