"""poststratify() and rake() against R's ``postStratify`` and ``rake``.

Golden values: tests/data/weighting/make_golden.R (R 4.2.2, survey 4.1.1,
``options(digits = 15)``), e.g.::

    postStratify(dclus1, ~stype, pop.types)
    rake(dclus1, list(~stype, ~sch.wide), list(pop.types, pop.schwide),
         control = list(maxit = 500, epsilon = 1e-14))

Weights row by row at 1e-9 relative; SEs of means and totals at 1e-8.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import analysis
import weighting
from survey.errors import WeightingError
from tests.weighting._golden import (
    POP_COMPIMP,
    POP_SCHWIDE,
    POP_TYPES,
    check_estimates,
    dclus1,
    dstrat,
    weights,
)


def test_poststratify_matches_r():
    p = weighting.poststratify(dclus1(), "stype", POP_TYPES)
    np.testing.assert_allclose(p.w, weights("ps_clus1"), rtol=1e-9)
    check_estimates(p, "ps_clus1")


def test_poststratify_on_a_cross_classification_with_r_layout_totals():
    cross = pd.DataFrame({"stype": ["E", "E", "H", "H", "M", "M"],
                          "comp.imp": ["No", "Yes", "No", "Yes", "No", "Yes"],
                          "Freq": [1500, 2921, 350, 405, 400, 618]})
    p = weighting.poststratify(dstrat(), ["stype", "comp.imp"], cross)
    np.testing.assert_allclose(p.w, weights("ps_cross_strat"), rtol=1e-9)
    check_estimates(p, "ps_cross_strat")


def test_uncalibrated_design_matches_r():
    check_estimates(dclus1(), "uncalibrated_clus1")


def test_rake_matches_r_to_convergence():
    r = weighting.rake(dclus1(), {"stype": POP_TYPES, "sch.wide": POP_SCHWIDE}, tol=1e-14)
    np.testing.assert_allclose(r.w, weights("rake_clus1"), rtol=1e-9)
    check_estimates(r, "rake_clus1")


def test_rake_three_margins_matches_r():
    margins = [pd.DataFrame({"stype": list(POP_TYPES), "Freq": list(POP_TYPES.values())}),
               {"sch.wide": POP_SCHWIDE}, {"comp.imp": POP_COMPIMP}]
    r = weighting.rake(dstrat(), margins, tol=1e-14)
    np.testing.assert_allclose(r.w, weights("rake3_strat"), rtol=1e-9)
    check_estimates(r, "rake3_strat")


def test_rake_with_one_margin_equals_poststratification():
    d = dstrat()  # weights constant within stype: the SE formulas coincide too
    r = weighting.rake(d, {"stype": POP_TYPES})
    p = weighting.poststratify(d, "stype", POP_TYPES)
    np.testing.assert_allclose(r.w, p.w, rtol=1e-12)
    vs = ["api00", "enroll"]
    np.testing.assert_allclose(analysis.mean(r, vs).se, analysis.mean(p, vs).se, rtol=1e-10)
    # on unequal weights the weights still agree (R's raking SE uses unweighted cell means)
    d2 = weighting.calibrate(dclus1(), {"(Intercept)": 6194, "api99": 3914069})
    np.testing.assert_allclose(weighting.rake(d2, {"stype": POP_TYPES}).w,
                               weighting.poststratify(d2, "stype", POP_TYPES).w, rtol=1e-12)


@pytest.mark.filterwarnings("ignore::pandas.errors.PerformanceWarning")  # 120 weight columns
def test_raking_equals_iterated_poststratification():
    d = dclus1()
    x = d
    for _ in range(60):
        x = weighting.poststratify(x, "stype", POP_TYPES)
        x = weighting.poststratify(x, "sch.wide", POP_SCHWIDE)
    r = weighting.rake(d, {"stype": POP_TYPES, "sch.wide": POP_SCHWIDE}, tol=1e-14)
    np.testing.assert_allclose(r.w, x.w, rtol=1e-10)


def test_rake_non_convergence_names_the_margin():
    with pytest.raises(WeightingError, match=r"raking did not converge in 2 iterations: margin 'sch.wide'"):
        weighting.rake(dclus1(), {"sch.wide": POP_SCHWIDE, "stype": POP_TYPES}, max_iter=2)


def test_poststratify_bad_inputs():
    with pytest.raises(WeightingError, match="category 'X' has a population total"):
        weighting.poststratify(dclus1(), "stype", {**POP_TYPES, "X": 3})
    with pytest.raises(WeightingError, match="category 'H' is in the sample but has no population total"):
        weighting.poststratify(dclus1(), "stype", {"E": 4421, "M": 1018})
    with pytest.raises(WeightingError, match="not categorical"):
        weighting.rake(dclus1(), {"api99": 1.0})
    with pytest.raises(WeightingError, match="column not found"):
        weighting.poststratify(dclus1(), "stratum", POP_TYPES)
    # a zero total for a category absent from the sample is dropped, as R does
    p = weighting.poststratify(dclus1(), "stype", {**POP_TYPES, "X": 0})
    assert p.w.sum() == pytest.approx(6194)


def _naive_rake(w: np.ndarray, codes: list[np.ndarray], totals: list[np.ndarray], sweeps: int) -> np.ndarray:
    """Row-by-row iterative proportional fitting, the textbook loop, as a reference."""
    w = w.copy()
    for _ in range(sweeps):
        for c, t in zip(codes, totals):
            w = w * (t / np.bincount(c, weights=w, minlength=len(t)))[c]
    return w


@pytest.mark.parametrize("levels", [(3, 4, 2), (20, 25, 30)])  # few cross-classes, and more than rows
def test_rake_on_cross_classes_equals_row_by_row_fitting(levels: tuple[int, int, int]) -> None:
    """Raking runs on the table of the margins' cross-classes; scaled back to rows it
    must equal the row-by-row fitting, whether the cross-classes are few (a direct
    code) or outnumber the rows (only the observed ones are numbered)."""
    from survey import Design

    rng = np.random.default_rng(7)
    n = 400
    cols = {f"m{i}": rng.permutation(np.arange(n) % k) for i, k in enumerate(levels)}
    df = pd.DataFrame({**cols, "w": rng.uniform(1, 3, n), "id": np.arange(n)})
    N = 2.0 * df["w"].sum()
    totals = [np.bincount(df[c], weights=rng.uniform(0.8, 1.2, n), minlength=k) / n * N
              for c, k in zip(cols, levels)]
    totals = [t * N / t.sum() for t in totals]
    margins = {c: dict(enumerate(t)) for c, t in zip(cols, totals)}
    d = Design(df, weights="w", psu="id")
    raked = weighting.rake(d, margins, tol=1e-13, max_iter=500)
    iters = raked.calibrations[-1].iterations
    ref = _naive_rake(df["w"].to_numpy(), [df[c].to_numpy() for c in cols], totals, iters)
    np.testing.assert_allclose(raked.w, ref, rtol=1e-10)
    for c, t in zip(cols, totals):
        np.testing.assert_allclose(np.bincount(df[c], weights=raked.w, minlength=len(t)), t, rtol=1e-12)
    table = raked.calibrations[-1].table
    np.testing.assert_allclose(table["after"], np.concatenate(totals), rtol=1e-12)
    np.testing.assert_allclose(table["before"], np.concatenate(
        [np.bincount(df[c], weights=df["w"], minlength=len(t)) for c, t in zip(cols, totals)]), rtol=1e-12)
