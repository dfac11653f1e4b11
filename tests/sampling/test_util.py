"""The shared helpers of the sampling modules."""

from __future__ import annotations

import pandas as pd
import pytest

from sampling._util import require_columns
from survey.errors import SamplingError


def test_require_columns_names_the_missing_column_the_columns_there_and_what_to_do() -> None:
    df = pd.DataFrame({"ea_id": ["1"], "hh_id": ["a"]})
    require_columns(df, ("ea_id", "hh_id"), "listing", "unused")  # nothing missing: no error
    with pytest.raises(SamplingError) as err:
        require_columns(df, ("ea_id", "group", "team"), "listing", "name it with group=", file="l.csv")
    e = err.value
    assert e.column == "group" and e.file == "l.csv"  # the first missing one
    assert "listing has no column 'group' (columns: ea_id, hh_id)" in str(e)
    assert "name it with group=" in str(e)


def test_require_columns_hint_per_column_with_a_default() -> None:
    df = pd.DataFrame({"hh_id": ["a"]})
    hints = {"team": "assign teams first", "": "pass the result of select_households"}
    with pytest.raises(SamplingError, match="assign teams first"):
        require_columns(df, ("team",), "sample", hints)
    with pytest.raises(SamplingError, match="select_households") as err:
        require_columns(df, ("reserve",), "sample", hints, purpose="for the preload")
    assert "sample has no column 'reserve' for the preload" in str(err.value)
