"""Design construction: validation errors that name the place, and derived weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from survey import Design
from survey.datasets import load_api
from survey.errors import DesignError


@pytest.fixture
def strat() -> pd.DataFrame:
    return load_api("apistrat")


@pytest.fixture
def clus1() -> pd.DataFrame:
    return load_api("apiclus1")


def test_missing_column_suggests_close_names(strat: pd.DataFrame) -> None:
    with pytest.raises(DesignError) as e:
        Design(strat, weights="pww", strata="stype")
    assert e.value.column == "pww"
    assert "'pw'" in str(e.value)


@pytest.mark.parametrize(("value", "what"), [(np.nan, "missing"), (-1.0, "negative"), (0.0, "zero"),
                                             (np.inf, "infinite")])
def test_bad_weights_name_row_and_column(strat: pd.DataFrame, value: float, what: str) -> None:
    df = strat.copy()
    df.loc[7, "pw"] = value
    with pytest.raises(DesignError) as e:
        Design(df, weights="pw", strata="stype")
    assert e.value.column == "pw"
    assert e.value.row == 8
    assert what in str(e.value)


def test_non_numeric_weights(strat: pd.DataFrame) -> None:
    df = strat.assign(pw=strat["pw"].astype(str))
    with pytest.raises(DesignError, match="numeric"):
        Design(df, weights="pw")


def test_lonely_psu_fails_by_default_and_names_stratum(clus1: pd.DataFrame) -> None:
    df = clus1.assign(st=np.where(clus1["dnum"] == clus1["dnum"].min(), "solo", "rest"))
    with pytest.raises(DesignError) as e:
        Design(df, weights="pw", strata="st", psu="dnum")
    assert e.value.stratum == "solo"
    assert "only one PSU" in str(e.value)
    # every other policy accepts it
    for how in ("adjust", "average", "certainty", "remove"):
        assert Design(df, weights="pw", strata="st", psu="dnum", lonely_psu=how).lonely_psu == how


def test_psus_not_nested_in_strata(strat: pd.DataFrame) -> None:
    df = strat.assign(psu=np.arange(len(strat)) % 30)
    with pytest.raises(DesignError) as e:
        Design(df, weights="pw", strata="stype", psu="psu")
    assert e.value.psu is not None and "nest=True" in str(e.value)
    d = Design(df, weights="pw", strata="stype", psu="psu", nest=True)
    # with nest=True the same id in two strata is two PSUs
    assert d.stages[0].n_unit_total == df.groupby(["stype", "psu"]).ngroups


def test_later_stage_units_not_nested_in_their_strata_is_a_clear_error() -> None:
    """A stage-2 unit found in two stage-2 strata of its PSU was an IndexError deep in
    the build; it is a DesignError naming the unit, its PSU, the strata and the row."""
    df = pd.DataFrame({"st": np.repeat([1, 2], 12), "psu": np.repeat([11, 12, 21, 22], 6),
                       "ssu": np.tile([1, 1, 2, 2, 3, 3], 4), "w": 2.0})
    df["sst"] = np.tile(["a", "b", "a", "b", "a", "b"], 4)  # ssu 1 is in strata a and b
    with pytest.raises(DesignError) as e:
        Design(df, weights="w", strata=["st", "sst"], psu=["psu", "ssu"])
    msg = str(e.value)
    assert "stage-2 unit 1 in psu 11" in msg and "strata a, b" in msg and "nest=True" in msg
    assert e.value.column == "ssu" and e.value.row == 1
    nested = Design(df, weights="w", strata=["st", "sst"], psu=["psu", "ssu"], nest=True)
    assert nested.stages[1].n_unit_total == 24  # each (stratum, id) a unit of its own


def test_fpc_smaller_than_sample(strat: pd.DataFrame) -> None:
    df = strat.assign(fpc=np.where(strat["stype"] == "H", 10, strat["fpc"]))
    with pytest.raises(DesignError) as e:
        Design(df, weights="pw", strata="stype", fpc="fpc")
    assert e.value.stratum == "H" and "50 units sampled" in str(e.value)


def test_fpc_varying_within_stratum(strat: pd.DataFrame) -> None:
    df = strat.copy()
    df.loc[3, "fpc"] = df.loc[3, "fpc"] + 1
    with pytest.raises(DesignError) as e:
        Design(df, weights="pw", strata="stype", fpc="fpc")
    assert e.value.stratum == df.loc[3, "stype"] and e.value.column == "fpc"


def test_fpc_mixing_counts_and_fractions(strat: pd.DataFrame) -> None:
    df = strat.assign(fpc=np.where(strat["stype"] == "H", 0.5, strat["fpc"]))
    with pytest.raises(DesignError, match="mixes"):
        Design(df, weights="pw", strata="stype", fpc="fpc")


def test_fpc_as_fraction_equals_count(strat: pd.DataFrame) -> None:
    n_h = strat.groupby("stype")["stype"].transform("size")
    a = Design(strat, weights="pw", strata="stype", fpc="fpc")
    b = Design(strat.assign(f=n_h / strat["fpc"]), weights="pw", strata="stype", fpc="f")
    np.testing.assert_allclose(a.stages[0].popsize, b.stages[0].popsize, rtol=1e-12)


def test_missing_strata_values(strat: pd.DataFrame) -> None:
    df = strat.copy()
    df.loc[4, "stype"] = None
    with pytest.raises(DesignError) as e:
        Design(df, weights="pw", strata="stype")
    assert e.value.row == 5 and e.value.column == "stype"


def test_unknown_lonely_policy(strat: pd.DataFrame) -> None:
    with pytest.raises(DesignError, match="lonely_psu"):
        Design(strat, weights="pw", lonely_psu="ignore")  # type: ignore[arg-type]


def test_single_psu_design(clus1: pd.DataFrame) -> None:
    with pytest.raises(DesignError, match="only one PSU"):
        Design(clus1.assign(one=1), weights="pw", psu="one")


def test_weights_derived_from_fpc_as_r_does() -> None:
    c2 = load_api("apiclus2")
    d = Design(c2, psu=["dnum", "snum"], fpc=["fpc1", "fpc2"])
    # R: weights = prod over stages of N/n; apiclus2's pw column holds exactly that
    np.testing.assert_allclose(d.w, c2["pw"].to_numpy(), rtol=1e-12)


def test_design_is_frozen_and_input_untouched(strat: pd.DataFrame) -> None:
    before = strat.copy()
    d = Design(strat, strata="stype", fpc="fpc")
    with pytest.raises(AttributeError):
        d.weights = "x"  # type: ignore[misc]
    pd.testing.assert_frame_equal(strat, before)
    assert "_weight" in d.data.columns and "_weight" not in strat.columns


def test_with_weights_keeps_history(strat: pd.DataFrame) -> None:
    d = Design(strat, weights="pw", strata="stype")
    d2 = d.with_weights(d.w * 2, "w2", step="doubled")
    assert d2.weights == "w2" and "pw" in d2.data.columns and d.weights == "pw"
    assert d2.history == ("doubled",)
    with pytest.raises(DesignError) as e:
        d.with_weights(np.where(np.arange(d.n) == 3, -1.0, d.w), "bad")
    assert e.value.row == 4


def test_degf_counts_psus_minus_strata(strat: pd.DataFrame, clus1: pd.DataFrame) -> None:
    assert Design(strat, weights="pw", strata="stype").degf() == 200 - 3
    assert Design(clus1, weights="pw", psu="dnum").degf() == 15 - 1
