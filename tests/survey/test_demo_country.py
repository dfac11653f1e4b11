"""Tests of the synthetic demo country: frame, households, known effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from survey.demo import (
    DEFAULT_REGIONS,
    EFFECTS,
    census_totals,
    make_country,
    simulate_households,
    write_demo_inputs,
)
from survey.project import init_project


def test_country_frame_shape_and_totals():
    frame = make_country(np.random.default_rng(1), n_eas=2_000, households=300_000)
    assert len(frame) == 2_000
    assert frame["households"].sum() == 300_000
    assert (frame["households"] >= 1).all()
    assert frame["ea_id"].is_unique
    assert set(frame["region"]) == {r.name for r in DEFAULT_REGIONS}
    assert set(frame["urban"]) == {"urban", "rural"}
    # every region has both urban and rural EAs, so every stratum exists
    assert frame.groupby("region")["urban"].nunique().eq(2).all()
    assert frame["stratum"].eq(frame["region"] + " / " + frame["urban"]).all()
    assert frame["migrant_share"].between(0, 1).all()


def test_migration_prevalence_varies_by_region():
    frame = make_country(np.random.default_rng(2), n_eas=6_000, households=600_000)
    by_region = frame.groupby("region")["migrant_share"].mean()
    assert by_region["East"] > 3 * by_region["Highlands"]
    assert by_region.max() - by_region.min() > 0.15


def test_same_seed_same_country():
    a = make_country(np.random.default_rng(7), n_eas=500, households=50_000)
    b = make_country(np.random.default_rng(7), n_eas=500, households=50_000)
    pd.testing.assert_frame_equal(a, b)


def test_census_totals_add_up():
    frame = make_country(np.random.default_rng(3), n_eas=300, households=40_000)
    totals = census_totals(frame)
    assert list(totals.columns) == ["margin", "level", "total"]
    for margin, block in totals.groupby("margin"):
        assert block["total"].sum() == 40_000, margin


def test_only_the_given_eas_get_households():
    frame = make_country(np.random.default_rng(4), n_eas=1_000, households=150_000)
    listed = frame.iloc[[3, 10, 500]]
    before = listed.copy()
    hh = simulate_households(listed, np.random.default_rng(5))
    pd.testing.assert_frame_equal(listed, before)
    assert len(hh) == listed["households"].sum()
    counts = hh.groupby("ea_id")["hh_number"].agg(["min", "max", "count"])
    assert (counts["min"] == 1).all()
    assert counts["max"].equals(counts["count"])
    assert hh["hh_id"].is_unique
    assert set(hh["group"]) <= {"emigrant", "returnee", "none"}
    assert (hh["n_enrolled"] <= hh["n_children"]).all()
    assert (hh.loc[hh["group"] == "emigrant", "n_emigrants"] >= 1).all()
    assert (hh.loc[hh["group"] != "emigrant", "n_emigrants"] == 0).all()


@pytest.fixture(scope="module")
def population():
    rng = np.random.default_rng(11)
    frame = make_country(rng, n_eas=1_500, households=300_000)
    return simulate_households(frame, rng)


def _ols(hh: pd.DataFrame, outcome: str) -> pd.Series:
    X = pd.get_dummies(hh[["region", "urban", "group"]].astype(str), drop_first=False, dtype=float)
    X = X.drop(columns=["region_Capital", "urban_rural", "group_none"])
    for c in ("hh_size", "head_age", "head_education", "head_female"):
        X[c] = hh[c].astype(float)
    X["const"] = 1.0
    beta, *_ = np.linalg.lstsq(X.to_numpy(), hh[outcome].to_numpy(dtype=float), rcond=None)
    return pd.Series(beta, index=X.columns)


@pytest.mark.parametrize(("outcome", "tol"), [
    ("education_spending", 3.0),
    ("receives_remittances", 0.01),
    ("health_insurance", 0.01),
])
def test_adjusted_effects_recover_the_known_effects(population, outcome, tol):
    beta = _ols(population, outcome)
    for group, effect in EFFECTS[outcome].items():
        assert beta[f"group_{group}"] == pytest.approx(effect, abs=tol), (outcome, group)


def test_female_headship_and_enrolment_effects(population):
    hh = population
    none = hh["group"] == "none"
    for g, effect in EFFECTS["female_head"].items():
        diff = hh.loc[hh["group"] == g, "head_female"].mean() - hh.loc[none, "head_female"].mean()
        # headship depends on group and urban only: the raw gap is close to the effect
        assert diff == pytest.approx(effect, abs=0.02)
    kids = hh[hh["n_children"] > 0]
    rate = _ols(kids.assign(rate=kids["n_enrolled"] / kids["n_children"]), "rate")
    assert rate["group_emigrant"] == pytest.approx(EFFECTS["enrolled"]["emigrant"], abs=0.01)


def test_raw_differences_are_confounded(population):
    """Migrants live in larger households, which spend more: raw gaps overstate effects."""
    hh = population
    mean = hh.groupby("group")["education_spending"].mean()
    raw = mean["emigrant"] - mean["none"]
    assert raw > EFFECTS["education_spending"]["emigrant"] + 20
    sizes = hh.groupby("group")["hh_size"].mean()
    assert sizes["emigrant"] > sizes["none"] + 0.5


def test_write_demo_inputs(tmp_path):
    project = init_project(tmp_path / "demo", "Demoland")
    paths = write_demo_inputs(project, n_eas=200, households=20_000)
    frame = pd.read_csv(paths["frame"])
    assert len(frame) == 200 and frame["households"].sum() == 20_000
    totals = pd.read_csv(paths["totals"])
    assert set(totals["margin"]) == {"region", "urban"}
    again = write_demo_inputs(project, n_eas=200, households=20_000)
    pd.testing.assert_frame_equal(pd.read_csv(again["frame"]), frame)  # seeded from config
