"""nonresponse(): weighting classes, propensity classes, collapsing, variance.

No R function adjusts for nonresponse: the factors are checked by hand (Kalton and
Flores-Cervantes 2003, section 2.1), the linearised SE against a jackknife that
repeats the adjustment on every replicate, and the bias removal by simulation.
"""

from __future__ import annotations

import re
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


# -- replicate designs: the whole step on every replicate --------------------------------


def _propensity_sample(seed: int) -> pd.DataFrame:
    """_sample with a continuous covariate x that drives response (with urban), so the
    fitted model and the class boundaries move from replicate to replicate."""
    df = _sample(seed)
    rng = np.random.default_rng(seed + 1000)
    x = rng.normal(0, 1, len(df))
    p = 1 / (1 + np.exp(-(0.6 + 1.2 * x - 1.0 * df["urban"])))
    return df.assign(x=x, y=df["y"] + 2 * x, resp=rng.random(len(df)) < p)


def _on_replicate(df: pd.DataFrame, W: np.ndarray, r: int, *args, **kwargs) -> tuple[np.ndarray, Design]:
    """The full-sample step run on a plain design whose weights are replicate r's (the
    rows of weight 0 left out: a Design needs positive weights)."""
    pos = W[:, r] > 0
    sub = df.loc[pos].assign(w_r=W[pos, r]).reset_index(drop=True)
    return pos, weighting.nonresponse(Design(sub, weights="w_r"), *args, **kwargs)


@pytest.mark.parametrize("method, options", [("jkn", {}), ("bootstrap", {"replicates": 30, "rng": 11})])
def test_refit_each_equals_the_full_sample_step_run_on_each_replicate(method, options):
    """The batched refit (one Newton iteration for all replicates, classes and cell sums
    as array operations) gives replicate r exactly what nonresponse() gives a design
    whose weights are replicate r's: its own model, classes and factors."""
    df = _propensity_sample(21)
    d = _design(df).replicate(method, **options)
    W = d.replicates.weights
    kw = {"method": "propensity", "covariates": ["x", "urban", "group"], "classes": 5}
    each = weighting.nonresponse(d, "resp", ["stratum"], **kw)
    once = weighting.nonresponse(d, "resp", ["stratum"], **kw, refit="once")
    assert each.calibrations[-1].refit == "each" and once.calibrations[-1].refit == "once"
    R = W.shape[1]
    moved = 0
    for r in sorted({0, 5, R // 2, R - 2, R - 1, int(np.argmax((W == 0).sum(axis=0)))}):
        pos, ref = _on_replicate(df, W, r, "resp", ["stratum"], **kw)
        np.testing.assert_allclose(each.replicates.weights[pos, r], ref.w, rtol=1e-10, atol=0)
        assert (each.replicates.weights[~pos, r] == 0).all()
        moved += not np.allclose(once.replicates.weights[pos, r], ref.w, rtol=1e-6)
    assert moved >= 3  # refitting changes these replicates: the comparison has teeth
    np.testing.assert_array_equal(each.w, once.w)  # the full sample is the same either way
    assert each.calibrations[-1].replicate_collapses.empty


def test_refit_each_collapses_each_replicate_by_the_full_sample_rule():
    """With min_respondents and collapse="next" every replicate collapses its own cells
    as the full sample collapses its cells; the merges are listed and summarised."""
    df = _propensity_sample(22)
    d = _design(df).replicate("jkn")
    W = d.replicates.weights
    kw = {"method": "propensity", "covariates": ["x"], "classes": 8, "min_respondents": 25,
          "collapse": "next"}
    with pytest.warns(SurveyWarning) as record:
        out = weighting.nonresponse(d, "resp", ["stratum", "urban"], **kw)
    rep_warnings = [str(w.message) for w in record if "replicates" in str(w.message)]
    assert len(rep_warnings) == 1 and re.search(r"collapsed in \d+ of 40 replicates \(replicate 1: ",
                                                rep_warnings[0])
    merges = out.calibrations[-1].replicate_collapses
    assert set(merges.columns) == {"replicate", "cell", "merged_into", "respondents"}
    for r in (0, 13, 39):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SurveyWarning)
            pos, ref = _on_replicate(df, W, r, "resp", ["stratum", "urban"], **kw)
        np.testing.assert_allclose(out.replicates.weights[pos, r], ref.w, rtol=1e-10, atol=0)
        mine = merges[merges["replicate"] == r + 1]
        t = ref.calibrations[-1].table
        assert len(mine[mine["cell"] != mine["merged_into"]]) == (t["merged"].str.count("_propensity_class")
                                                                  - 1).sum()
    # collapse="fail": 6 respondents in every full-sample cell, fewer in a replicate's own cell
    fail = {**kw, "classes": 3, "min_respondents": 6, "collapse": "fail"}
    assert weighting.nonresponse(_design(df), "resp", ["stratum", "urban"], **fail).calibrations[-1].n_cells == 24
    with pytest.raises(WeightingError, match=r"key 'stratum=\d, urban=\d, _propensity_class=\d': replicate \d+: "
                                             r"its nonresponse cell has \d respondent\(s\), fewer than 6.*\n"
                                             r"  hint: collapse=\"next\""):
        weighting.nonresponse(d, "resp", ["stratum", "urban"], **fail)


def test_refit_once_keeps_the_full_sample_classes():
    """refit="once" is the behaviour before refit=: the replicates adjust within the
    full-sample cells (propensity classes x cells), factor E_r / R_r per cell."""
    df = _propensity_sample(23)
    d0 = _design(df)
    d = d0.replicate("jkn")
    kw = {"method": "propensity", "covariates": ["x", "urban"], "classes": 5}
    once = weighting.nonresponse(d, "resp", ["stratum"], **kw, refit="once")
    np.testing.assert_array_equal(once.w, weighting.nonresponse(d0, "resp", ["stratum"], **kw).w)
    adj = once.calibrations[-1]
    W, e, r = d.replicates.weights, adj.codes >= 0, df["resp"].to_numpy()
    expected = np.zeros_like(W)
    for c in range(adj.n_cells):
        cell = adj.codes == c
        expected[cell & r] = W[cell & r] * (W[cell & e].sum(axis=0) / W[cell & r].sum(axis=0))
    np.testing.assert_allclose(once.replicates.weights, expected, rtol=1e-12, atol=1e-9)
    assert adj.replicate_collapses.empty


def _one_psu_answers(seed: int = 4) -> tuple[pd.DataFrame, Design, int]:
    """Migrant households in stratum 1 respond only in EA 5: the JKn replicate that
    deletes EA 5 has eligible migrants in that cell but no respondent."""
    df = _sample(seed)
    cell = (df["stratum"] == 1) & (df["group"] == "migrant")
    df.loc[cell & (df["ea"] != 5), "resp"] = False
    d = _design(df).replicate("jkn")
    r = int(np.flatnonzero((d.replicates.weights[df["ea"].to_numpy() == 5] == 0).all(axis=0))[0])
    return df, d, r


def test_a_replicate_that_empties_a_cell_collapses_it_in_that_replicate_only():
    df, d, r = _one_psu_answers()
    with pytest.warns(SurveyWarning, match=rf"collapsed in 1 of 40 replicates \(replicate {r + 1}: "
                                           r"stratum=1, group=migrant -> stratum=1, group=none\)"):
        out = weighting.nonresponse(d, "resp", ["stratum", "group"], collapse="next")
    merges = out.calibrations[-1].replicate_collapses
    assert merges[["replicate", "cell", "merged_into"]].values.tolist() == [
        [r + 1, "stratum=1, group=migrant", "stratum=1, group=none"]]
    W, Wn = d.replicates.weights, out.replicates.weights
    with pytest.warns(SurveyWarning, match="stratum=1, group=migrant -> stratum=1, group=none"):
        pos, ref = _on_replicate(df, W, r, "resp", ["stratum", "group"], collapse="next")
    np.testing.assert_allclose(Wn[pos, r], ref.w, rtol=1e-10, atol=0)
    # the other replicates keep the full-sample cells
    other = np.delete(np.arange(W.shape[1]), r)
    cells = out.calibrations[-1].codes
    resp = df["resp"].to_numpy()
    for c in range(out.calibrations[-1].n_cells):
        rows = cells == c
        f = W[rows][:, other].sum(axis=0) / W[rows & resp][:, other].sum(axis=0)
        np.testing.assert_allclose(Wn[rows & resp][:, other], W[rows & resp][:, other] * f, rtol=1e-12)
    np.testing.assert_array_equal(out.w, weighting.nonresponse(_design(df), "resp", ["stratum", "group"]).w)


def test_a_replicate_that_empties_a_cell_fails_by_replicate_and_cell():
    _, d, r = _one_psu_answers()
    with pytest.raises(WeightingError, match=rf"key 'stratum=1, group=migrant': replicate {r + 1} has no "
                                             r"respondent.*\n  hint: collapse=\"next\""):
        weighting.nonresponse(d, "resp", ["stratum", "group"])


def test_refitting_the_propensity_model_changes_the_replicate_se():
    """The SE of a mean after propensity-class adjustment: refitting the model and the
    classes on every replicate (refit="each") adds their variability, which keeping
    the full-sample classes (refit="once") leaves out."""
    df = _propensity_sample(24)
    d = _design(df).replicate("jkn")
    kw = {"method": "propensity", "covariates": ["x", "urban"], "classes": 5}
    each = analysis.mean(weighting.nonresponse(d, "resp", **kw), "y")
    once = analysis.mean(weighting.nonresponse(d, "resp", **kw, refit="once"), "y")
    assert each.estimate[0] == once.estimate[0]
    assert np.isfinite(each.se[0]) and np.isfinite(once.se[0]) and once.se[0] > 0
    assert abs(each.se[0] / once.se[0] - 1) > 0.01


def test_batched_collapse_follows_the_full_sample_rule():
    """The vectorised collapse of many replicates merges exactly as _collapse does,
    cell by cell, on random respondent counts (zeros included)."""
    from weighting.nonresponse import _collapse, _merge_replicates

    rng = np.random.default_rng(5)
    keys = pd.DataFrame({"h": np.repeat(["a", "b", "c"], [4, 1, 6]), "c": [*range(4), 0, *range(6)]})
    parent = np.repeat([0, 1, 2], [4, 1, 6])
    for minimum in (1, 2, 5):
        counts = rng.poisson(1.5, (len(keys), 60)).astype(float)
        for lo, hi in ((0, 4), (4, 5), (5, 11)):  # a respondent somewhere in each higher-level cell
            none = np.flatnonzero(counts[lo:hi].sum(axis=0) == 0)
            counts[rng.integers(lo, hi, len(none)), none] = 1
        root, _ = _merge_replicates(counts, np.ones(counts.shape, bool), parent, minimum, str, np.arange(60))
        for r in range(60):
            target, _ = _collapse(keys, counts[:, r], minimum, "next")
            np.testing.assert_array_equal(root[:, r], target)


@pytest.mark.parametrize("kw", [{}, {"method": "propensity", "covariates": ["x"], "classes": 2}])
def test_a_cell_that_a_replicate_deletes_entirely_needs_no_collapse(kw):
    """Migrant households of stratum 1 live only in EA 5: the replicate that deletes EA 5
    has no eligible unit in that cell, so there is nothing to adjust (not an error)."""
    df = _propensity_sample(28)
    cell = (df["stratum"] == 1) & (df["group"] == "migrant")
    df.loc[cell & (df["ea"] != 5), "group"] = "none"
    d = _design(df).replicate("jkn")
    r = int(np.flatnonzero((d.replicates.weights[df["ea"].to_numpy() == 5] == 0).all(axis=0))[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = weighting.nonresponse(d, "resp", ["stratum", "group"], **kw)
        pos, ref = _on_replicate(df, d.replicates.weights, r, "resp", ["stratum", "group"], **kw)
    assert out.calibrations[-1].replicate_collapses.empty
    np.testing.assert_allclose(out.replicates.weights[pos, r], ref.w, rtol=1e-10, atol=0)
