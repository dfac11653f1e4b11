"""Listing: reading with group normalisation, and the checks against the selected EAs."""

from __future__ import annotations

import pandas as pd
import pytest

from sampling.listing import check_listing, read_listing
from survey.errors import SamplingError


def _eas() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ea_id": ["E1", "E2", "E3", "E4"],
            "stratum": "s",
            "households": [4, 3, 10, 5],
            "pi1": [0.5, 0.4, 0.9, 0.3],
        }
    )


def _listing() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ea_id": ["E1", "E1", "E1", "E2", "E2", "E2", "E3", "E4"],
            "hh_id": ["E1-1", "E1-2", "E1-3", "E2-1", "E2-2", "E2-3", None, "E4-1"],
            "group": [
                "Emigrant",
                "return migrant",
                "none",
                "none",
                "Non-migrant",
                "emigrant",
                None,
                "none",
            ],
            "head_name": ["A. Synthetic"] * 8,
        }
    )


def test_read_listing_normalises_groups_and_keeps_file_rows(tmp_path):
    path = tmp_path / "listing.csv"
    _listing().to_csv(path, index=False)
    df = read_listing(path)
    assert df["group"].tolist()[:6] == ["emigrant", "returnee", "none", "none", "none", "emigrant"]
    assert df["listing_row"].tolist() == list(range(2, 10))
    problems = check_listing(df, _eas())
    codes = dict(zip(problems["ea_id"], problems["code"]))
    assert codes["E3"] == "empty_ea"  # listed, no households: allowed but flagged
    assert set(problems["severity"]) == {"warning"}
    # E3: 0 listed (flagged empty, not size); E4: 1 listed vs 5 in frame -> ratio 0.2
    mismatch = problems[problems["code"] == "size_mismatch"]
    assert mismatch["ea_id"].tolist() == ["E4"] and mismatch["value"].iloc[0] == pytest.approx(0.2)


def test_ea_not_selected_is_fatal_and_names_the_row(tmp_path):
    lst = _listing()
    lst.loc[7, "ea_id"] = "E9"
    path = tmp_path / "listing.xlsx"
    lst.to_excel(path, index=False)
    with pytest.raises(SamplingError, match="not selected") as err:
        check_listing(read_listing(path), _eas())
    assert err.value.row == 9 and err.value.psu == "E9" and err.value.column == "ea_id"
    codes = set(err.value.problems["code"])
    assert {"ea_not_selected", "ea_not_listed"} <= codes  # E4 is now missing too


def test_duplicates_unknown_groups_and_missing_eas_are_reported():
    lst = _listing()
    lst.loc[1, "hh_id"] = "E1-1"
    lst.loc[5, "group"] = "tourist"
    problems = check_listing(read_listing(lst), _eas().iloc[:3], on_error="return")
    codes = problems.groupby("code").size().to_dict()
    assert codes["duplicate_hh_id"] == 2 and codes["unknown_group"] == 1
    assert codes["ea_not_selected"] == 1  # E4 listed but not among the three selected
    with pytest.raises(SamplingError) as err:
        check_listing(read_listing(lst), _eas())
    assert err.value.key is not None and "fatal listing problems" in str(err.value)


def test_band_is_configurable():
    problems = check_listing(read_listing(_listing()), _eas(), band=(0.1, 10))
    assert "size_mismatch" not in set(problems["code"])
