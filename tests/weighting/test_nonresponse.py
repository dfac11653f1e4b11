"""nonresponse(): weighting classes, propensity classes, collapsing, variance.

No R function adjusts for nonresponse: the factors are checked by hand (Kalton and
Flores-Cervantes 2003, section 2.1), the linearised SE against a jackknife that
repeats the adjustment on every replicate, and the bias removal by simulation.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import analysis
import weighting
from survey import Design
from survey.errors import SurveyWarning, WeightingError


def _sample(seed: int, n_ea: int = 40, per_ea: int = 30) -> pd.DataFrame:
    """Households in EAs in 4 strata; response depends on ``urban``, as does y."""
    rng = np.random.default_rng(seed)
    n = n_ea * per_ea
    ea = np.repeat(np.arange(n_ea), per_ea)
    stratum = ea % 4
    urban = rng.random(n) < 0.4
    group = np.where(rng.random(n) < 0.3, "migrant", "none")
    y = 10 + 5 * urban + rng.normal(0, 2, n)
    p = np.where(urban, 0.4, 0.9)
    return pd.DataFrame({"ea": ea, "stratum": stratum, "urban": urban.astype(int), "group": group,
                         "y": y, "w": 50.0 + 10 * stratum, "resp": rng.random(n) < p})


def _design(df: pd.DataFrame) -> Design:
    return Design(df, weights="w", strata="stratum", psu="ea")


def test_class_adjustment_by_hand_and_zero_for_nonrespondents():
    df = _sample(1)
    d = weighting.nonresponse(_design(df), "resp", ["stratum", "group"])
    w, r = df["w"].to_numpy(), df["resp"].to_numpy()
    for _, cell in df.groupby(["stratum", "group"]):
        i = cell.index.to_numpy()
        f = w[i].sum() / w[i][r[i]].sum()
        np.testing.assert_allclose(d.w[i][r[i]], w[i][r[i]] * f, rtol=1e-12)
    assert (d.w[~r] == 0).all()
    assert d.w.sum() == pytest.approx(w.sum(), rel=1e-12)
    table = d.calibrations[-1].table
    assert len(table) == 8 and (table["factor"] > 1).all()
    assert d.history == ("w", "w_nonresponse")


def test_full_response_is_the_identity_with_the_same_ses():
    df = _sample(2).assign(resp=True)
    d0 = _design(df)
    d = weighting.nonresponse(d0, "resp", ["stratum", "group"])
    np.testing.assert_allclose(d.w, d0.w, rtol=1e-14)
    np.testing.assert_allclose(analysis.mean(d, "y").se, analysis.mean(d0, "y").se, rtol=1e-12)
    np.testing.assert_allclose(analysis.total(d, "y").se, analysis.total(d0, "y").se, rtol=1e-12)


def test_ineligible_units_are_not_nonrespondents():
    df = _sample(3)
    df["eligible"] = np.arange(len(df)) % 10 != 0
    df["resp"] = df["resp"] & df["eligible"]
    d0 = _design(df)
    aside = weighting.nonresponse(d0, "resp", ["stratum"], eligible="eligible")
    keep = weighting.nonresponse(d0, "resp", ["stratum"], eligible="eligible", ineligible="keep")
    e = df["eligible"].to_numpy()
    assert aside.w.sum() == pytest.approx(df["w"][e].sum(), rel=1e-12)  # ineligibles give nothing
    assert (aside.w[~e] == 0).all()
    np.testing.assert_allclose(keep.w[~e], df["w"][~e])
    np.testing.assert_allclose(keep.w[e], aside.w[e])


def test_empty_cell_fails_by_name_and_collapse_merges_with_the_next_cell():
    df = _sample(4)
    df.loc[(df["stratum"] == 1) & (df["group"] == "migrant"), "resp"] = False
    with pytest.raises(WeightingError, match=r"key 'stratum=1, group=migrant'.*no respondents"):
        weighting.nonresponse(_design(df), "resp", ["stratum", "group"])
    with pytest.warns(SurveyWarning, match=r"stratum=1, group=migrant -> stratum=1, group=none"):
        d = weighting.nonresponse(_design(df), "resp", ["stratum", "group"], collapse="next")
    t = d.calibrations[-1].table
    assert len(t) == 7 and "stratum=1, group=migrant, stratum=1, group=none" in set(t["merged"])
    with pytest.raises(WeightingError, match=r"fewer than 500"):
        weighting.nonresponse(_design(df), "resp", ["stratum"], min_respondents=500)


def test_bad_indicators_are_errors():
    df = _sample(5)
    df["resp"] = df["resp"].astype(int) * 2
    with pytest.raises(WeightingError, match="True/False or 1/0"):
        weighting.nonresponse(_design(df), "resp", ["stratum"])
    with pytest.raises(WeightingError, match="needs covariates"):
        weighting.nonresponse(_design(_sample(5)), "resp", method="propensity")


def test_linearised_se_agrees_with_a_jackknife_that_repeats_the_adjustment():
    df = _sample(6, n_ea=80)
    d0 = _design(df)
    lin = analysis.mean(weighting.nonresponse(d0, "resp", ["stratum", "urban"]), "y").se[0]
    rep = weighting.rerun_on_replicates(d0, [(weighting.nonresponse, {"responded": "resp",
                                                                     "cells": ["stratum", "urban"]})])
    jk = analysis.mean(rep, "y").se[0]
    assert lin == pytest.approx(jk, rel=0.1)


def test_simulation_propensity_and_calibration_remove_the_nonresponse_bias():
    """Response depends on ``urban`` (0.9 rural, 0.4 urban) and so does y: the
    respondent mean is biased by about -0.86; the adjusted estimators are not.
    200 samples, seeds 0..199; tolerance 0.1 on the mean of the estimates (their
    Monte Carlo SE is about 0.01)."""
    truth = 10 + 5 * 0.4
    raw, prop, cal = [], [], []
    for seed in range(200):
        df = _sample(seed)
        d0 = _design(df)
        raw.append(np.average(df["y"][df["resp"]], weights=df["w"][df["resp"]]))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            dp = weighting.nonresponse(d0, "resp", method="propensity", covariates=["urban"], classes=5,
                                       collapse="next")
        prop.append(analysis.mean(dp, "y").estimate[0])
        N = float(df["w"].sum())
        dc = weighting.calibrate(dp, {"urban": {0: 0.6 * N, 1: 0.4 * N}})
        cal.append(analysis.mean(dc, "y").estimate[0])
    assert np.mean(raw) - truth < -0.7
    assert abs(np.mean(prop) - truth) < 0.1
    assert abs(np.mean(cal) - truth) < 0.1


def test_a_cell_left_small_does_not_stop_the_collapse_of_later_cells():
    """Stratum 0 has 2 respondents in all (fewer than 3, nothing to merge with): it is
    left small and reported, and stratum 1's empty migrant cell is still merged."""
    df = _sample(4)
    s0 = np.flatnonzero(df["stratum"] == 0)
    keep = [s0[(df["group"].to_numpy()[s0] == g)][0] for g in ("migrant", "none")]
    df.loc[s0, "resp"] = False
    df.loc[keep, "resp"] = True
    df.loc[(df["stratum"] == 1) & (df["group"] == "migrant"), "resp"] = False
    with pytest.warns(SurveyWarning, match=r"stratum=1, group=migrant -> stratum=1, group=none.*"
                                           r"still below 3: stratum=0, group=migrant"):
        d = weighting.nonresponse(_design(df), "resp", ["stratum", "group"], min_respondents=3,
                                  collapse="next")
    t = d.calibrations[-1].table.set_index("cell")
    # a merged cell is named by its first member
    assert len(t) == 6 and t.loc["stratum=0, group=migrant", "respondents"] == 2
    assert t.loc["stratum=1, group=migrant", "merged"] == "stratum=1, group=migrant, stratum=1, group=none"
    assert d.w.sum() == pytest.approx(df["w"].sum(), rel=1e-12)
