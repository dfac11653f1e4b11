"""Multistage designs against R ``survey``: stage-2 strata, three stages, nest=TRUE,
fpc as fractions, certainty PSUs and lonely units at stage 2.

Golden values: ``tests/data/core/golden_multistage.csv`` from
``tests/data/core/make_golden_multistage.R`` (R 4.2.2 Patched (2022-11-10 r83330),
survey 4.1.1, ``options(digits = 15)``), on a synthetic sample it writes to
``multistage.csv`` (6 strata, PSU ids restarting within strata, 2-4 SSUs per PSU).
Per design: ``svymean``/``svytotal`` of y1 and y2 (y2 has missing values) with
``na.rm=TRUE``, the same ``svyby(..., ~dom, ...)`` (domain "r" is absent from stratum
6), and ``svyratio(~y2, ~y1, na.rm=TRUE)``. Estimates to 1e-9 relative, SEs to 1e-8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis
from survey import Design
from survey.errors import DesignError

DATA = Path(__file__).parents[1] / "data" / "core"
GOLD = pd.read_csv(DATA / "golden_multistage.csv", keep_default_na=False, na_values=["NA"],
                   dtype={"domain": "string"})
DF = pd.read_csv(DATA / "multistage.csv")
LONE = pd.read_csv(DATA / "multistage_lonely.csv")


def _designs() -> dict[str, Design]:
    out = {
        "two_stage_fpc": Design(DF, weights="w", strata="st", psu=["psu", "ssu"], fpc=["N1", "N2"]),
        "two_stage_strata2": Design(DF, strata=["st", "sst"], psu=["psu", "ssu"], fpc=["N1", "N2s"],
                                    lonely_psu="adjust"),
        "three_stage": Design(DF, strata="st", psu=["psu", "ssu", "hh"], fpc=["N1", "N2", "N3"]),
        "nest": Design(DF, weights="w", strata="st", psu=["psu_in", "ssu"], fpc=["N1", "N2"], nest=True),
        "fractions": Design(DF, weights="w", strata="st", psu="psu", fpc="f1"),
        "certainty": Design(DF, weights="w", strata="st", psu=["psu", "ssu"], fpc=["Ncert", "N2"]),
        "no_fpc_two_ids": Design(DF, weights="w", strata="st", psu=["psu", "ssu"]),
    }
    for how in ("adjust", "average", "certainty", "remove"):
        out[f"lonely2_{how}"] = Design(LONE, weights="w", strata="st", psu=["psu", "ssu"],
                                       fpc=["N1", "N2"], lonely_psu=how)
    return out


DESIGNS = _designs()


def _check(design: str, stat: str, frame: pd.DataFrame, keys: list[str]) -> None:
    gold = GOLD[(GOLD["design"] == design) & (GOLD["stat"] == stat)].rename(columns={"domain": "dom"})
    gold = gold.drop(columns=[] if "dom" in keys else ["dom"])
    m = gold.merge(frame, on=keys, suffixes=("_r", ""), how="left", validate="one_to_one")
    assert len(m) > 0 and m["estimate"].notna().all()
    np.testing.assert_allclose(m["estimate"], m["estimate_r"].astype(float), rtol=1e-9)
    np.testing.assert_allclose(m["se"], m["se_r"].astype(float), rtol=1e-8)


@pytest.mark.parametrize("name", list(DESIGNS))
def test_multistage_against_r(name: str) -> None:
    d = DESIGNS[name]
    for stat in ("mean", "total"):
        fn = getattr(analysis, stat)
        _check(name, stat, fn(d, ["y1", "y2"]).to_frame(), ["variable"])
        _check(name, f"{stat}_by", fn(d, ["y1", "y2"], by="dom").to_frame(), ["variable", "dom"])
    _check(name, "ratio", analysis.ratio(d, "y2", "y1").to_frame(), ["variable"])


def test_weights_from_three_stage_fpc_equal_the_product_of_fractions() -> None:
    d = DESIGNS["three_stage"]
    np.testing.assert_allclose(d.w, DF["w"].to_numpy(), rtol=1e-12)


def test_lonely_unit_at_stage_two_fails_by_default_naming_the_psu() -> None:
    with pytest.raises(DesignError) as e:
        Design(LONE, weights="w", strata="st", psu=["psu", "ssu"], fpc=["N1", "N2"])
    assert "stage 2" in str(e.value) and "psu" in str(e.value.stratum)


def test_nest_false_with_restarting_ids_is_an_error() -> None:
    with pytest.raises(DesignError, match="nest=True"):
        Design(DF, weights="w", strata="st", psu=["psu_in", "ssu"], fpc=["N1", "N2"])
