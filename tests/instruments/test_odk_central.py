"""ODK Central CSV zip: writer and reader round trip, variants, and broken input."""

import zipfile

import pandas as pd
import pytest

from instruments.formats.odk_central import read_odk_central_zip, write_odk_central_zip
from instruments.importer import import_raw, read_export
from survey.errors import InstrumentError

from .conftest import TODAY, assert_ledger_balances


def _same(a, b):
    for t in a.tables:
        pd.testing.assert_frame_equal(a.tables[t], b.tables[t])
    pd.testing.assert_frame_equal(a.problems, b.problems)


@pytest.mark.parametrize("group_names", [True, False])
@pytest.mark.parametrize("split", [True, False])
def test_round_trip_identical_typed_tables(household, messy_raw, tmp_path, group_names, split):
    path = write_odk_central_zip(messy_raw, tmp_path / "household.zip", household,
                                 group_names=group_names, split_select_multiple=split)
    direct = import_raw(messy_raw, household, today=TODAY)
    via = read_export(path, household, today=TODAY)
    _same(direct, via)
    assert_ledger_balances(via)
    assert set(via.ledger["format"]) == {"odk_central_zip"}
    assert via.ledger["sha256"].str.len().eq(64).all()


def test_central_layout(household, clean_raw, tmp_path):
    path = write_odk_central_zip(clean_raw, tmp_path / "x.zip", household)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["household-emigrants.csv", "household-members.csv",
                                         "household.csv"]
        root = pd.read_csv(zf.open("household.csv"), dtype=str)
        rep = pd.read_csv(zf.open("household-members.csv"), dtype=str)
    assert root.columns[0] == "SubmissionDate" and "KEY" in root and "ReviewState" in root
    assert "interview-remittances-rem_uses/food" in root
    assert "interview-gps-Latitude" in root and "interview-gps" not in root
    assert list(rep.columns[-2:]) == ["PARENT_KEY", "KEY"]


def test_geopoint_rebuilt_from_split_columns(household, clean_raw, tmp_path):
    path = write_odk_central_zip(clean_raw, tmp_path / "x.zip", household)
    raw = read_odk_central_zip(path, household)
    pd.testing.assert_series_equal(raw.tables["household"]["gps"],
                                   clean_raw.tables["household"]["gps"], check_names=False)


def test_truncated_zip(household, clean_raw, tmp_path):
    path = write_odk_central_zip(clean_raw, tmp_path / "x.zip", household)
    cut = tmp_path / "cut.zip"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InstrumentError, match="not a complete zip") as err:
        read_export(cut, household)
    assert err.value.file == str(cut)


def test_export_of_a_different_form(household, listing, sample, tmp_path):
    import numpy as np

    from instruments.simulate import simulate_submissions

    raw = simulate_submissions(listing, sample, np.random.default_rng(1), today=TODAY)
    path = write_odk_central_zip(raw, tmp_path / "listing.zip", listing)
    with pytest.raises(InstrumentError, match="different form") as err:
        read_export(path, household)
    assert "listing.csv" in str(err.value)


def test_unknown_columns_are_reported(household, clean_raw, tmp_path):
    path = write_odk_central_zip(clean_raw, tmp_path / "x.zip", household)
    with zipfile.ZipFile(path) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    root = pd.read_csv(pd.io.common.BytesIO(files["household.csv"]), dtype=str)
    files["household.csv"] = root.assign(mystery="1").to_csv(index=False).encode()
    out = tmp_path / "y.zip"
    with zipfile.ZipFile(out, "w") as zf:
        for n, b in files.items():
            zf.writestr(n, b)
    p = read_export(out, household, today=TODAY).problems
    assert p.loc[p["code"] == "W601", "value"].tolist() == ["mystery"]
