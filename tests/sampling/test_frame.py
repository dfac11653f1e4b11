"""Frame reading and checks: errors name file, row (header = row 1), column and a hint."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sampling.frame import check_frame, read_frame
from survey.errors import SamplingError, SurveyWarning


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ea_id": ["0001", "0002", "0003", "0004"],
            "region": ["North", "North", "South", "South"],
            "urban": ["urban", "rural", "urban", "rural"],
            "households": [120, 80, 95, 60],
        }
    )


def _write(df: pd.DataFrame, path, fmt: str):
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "xlsx":
        df.to_excel(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet"])
def test_read_frame_formats_keep_leading_zeros_and_add_stratum(tmp_path, fmt):
    path = _write(_frame(), tmp_path / f"frame.{fmt}", fmt)
    df = read_frame(path, strata=["region", "urban"])
    assert df["ea_id"].tolist() == ["0001", "0002", "0003", "0004"]
    assert df["stratum"].tolist() == [
        "North / urban",
        "North / rural",
        "South / urban",
        "South / rural",
    ]
    assert df["households"].sum() == 355


def test_duplicate_ea_id_names_file_row_and_column(tmp_path):
    df = _frame()
    df.loc[3, "ea_id"] = "0002"
    path = _write(df, tmp_path / "frame.csv", "csv")
    with pytest.raises(SamplingError) as err:
        read_frame(path, strata=["region"])
    e = err.value
    assert e.row == 5 and e.column == "ea_id" and e.file == str(path)
    assert "appears twice" in str(e) and "row 3" in str(e) and "hint" in str(e)


@pytest.mark.parametrize("bad", [0, -5])
def test_zero_or_negative_size_is_an_error(tmp_path, bad):
    df = _frame()
    df.loc[2, "households"] = bad
    path = _write(df, tmp_path / "frame.xlsx", "xlsx")
    with pytest.raises(SamplingError) as err:
        read_frame(path, strata=["region"])
    assert err.value.row == 4 and err.value.column == "households"
    assert str(path) in str(err.value)


def test_zero_size_can_be_dropped_and_is_reported():
    df = _frame()
    df.loc[[0, 2], "households"] = 0
    with pytest.warns(SurveyWarning, match="dropped 2 EA"):
        out = check_frame(df, strata="region", zero_size="drop")
    assert out["ea_id"].tolist() == ["0002", "0004"]
    assert out.attrs["dropped_zero_size"] == ["0001", "0003"]
    assert df["households"].tolist() == [0, 80, 0, 60]  # input untouched


def test_missing_stratum_value_and_non_numeric_size(tmp_path):
    df = _frame()
    df.loc[1, "region"] = None
    path = _write(df, tmp_path / "frame.csv", "csv")
    with pytest.raises(SamplingError) as err:
        read_frame(path, strata=["region", "urban"])
    assert err.value.row == 3 and err.value.column == "region"

    df = _frame().astype({"households": object})
    df.loc[0, "households"] = "many"
    with pytest.raises(SamplingError, match="not a number") as err:
        check_frame(df, strata="region")
    assert err.value.key == "index 0"


def test_missing_column_and_missing_design_variable(tmp_path):
    with pytest.raises(SamplingError, match="no column 'hh'"):
        check_frame(_frame(), size="hh", strata="region")
    df = _frame().assign(district=["a", np.nan, "b", "c"])
    with pytest.raises(SamplingError, match="design variable") as err:
        check_frame(df, strata="region", columns=["district"])
    assert err.value.column == "district"


def test_infinite_size_and_blank_lines_keep_file_row_numbers(tmp_path):
    path = tmp_path / "frame.csv"
    path.write_text("ea_id,stratum,households\nA,s1,10\n\nB,s1,inf\n")
    with pytest.raises(SamplingError) as err:
        read_frame(path)
    assert err.value.row == 4


def test_unsupported_format_and_missing_file(tmp_path):
    with pytest.raises(SamplingError, match="unsupported"):
        read_frame(tmp_path / "frame.sav")
    with pytest.raises(SamplingError, match="not found"):
        read_frame(tmp_path / "nope.csv")
