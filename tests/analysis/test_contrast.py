"""Tests of analysis.contrast against R survey's svycontrast.

Golden values: tests/data/analysis/contrast_golden.csv, made by
tests/data/analysis/make_goldens.R with R 4.2.2 and survey 4.1.1,
``options(digits = 15)``::

    b <- svyby(~api00, ~stype, d, svymean, covmat = TRUE)
    svycontrast(b, c(-1, 1, 0))                      # H - E, and M-E, M-H, average
    m <- svyglm(api00 ~ ell + meals + mobility, design = d)
    L <- c(0, 1, -1, 0); sum(L * coef(m)); sqrt(t(L) %*% vcov(m) %*% L)

(svycontrast fails on an svrepglm in survey 4.1.1, so the coefficient contrast is
written out). Designs: apistrat, apiclus1 with and without fpc, apiclus2 and the
JK1 replicate design of apiclus1. Estimates to 1e-9 relative, SEs to 1e-8.

Until the domain estimators return their covariance, the domain means here are
built with ``linearized_vcov`` (or ``replicate_vcov``) from their influence values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.contrast import contrast, row_labels
from analysis.glm import glm
from survey import Design, Estimate
from survey.errors import EstimationError
from survey.variance import linearized_vcov, replicate_vcov
from tests.analysis._api import DATA, api_designs

DESIGNS = api_designs()
GOLD = pd.read_csv(DATA / "contrast_golden.csv")
WEIGHTS = {"H-E": [-1, 1, 0], "M-E": [-1, 0, 1], "M-H": [0, -1, 1], "avg": [1 / 3, 1 / 3, 1 / 3],
           "ell-meals": [0, 1, -1, 0], "predict": [1, 20, 50, 10]}


def _means_by_stype(d: Design) -> Estimate:
    """Domain means of api00 by stype with their full covariance matrix."""
    y, w = d.data["api00"].to_numpy(float), d.w
    g = d.data["stype"].to_numpy(dtype=object)
    levels = ["E", "H", "M"]
    ind = np.column_stack([g == lev for lev in levels]).astype(float)
    W = w @ ind
    m = (w * y) @ ind / W
    if d.replicates is None:
        V = linearized_vcov(d, ind * (w * 1.0)[:, None] * (y[:, None] - m) / W)
    else:
        Wr = d.replicates.weights
        V = replicate_vcov(d, m, ((ind * y[:, None]).T @ Wr) / (ind.T @ Wr))
    table = pd.DataFrame({"variable": "api00", "stype": levels, "estimate": m,
                          "se": np.sqrt(np.diag(V)), "df": float(d.degf()), "deff": np.nan, "n": 0.0})
    return Estimate("mean", table, vcov=V, by=("stype",))


@pytest.mark.parametrize("i", range(len(GOLD)))
def test_matches_r_svycontrast(i):
    r = GOLD.iloc[i]
    d = DESIGNS[r["design"]]
    est = _means_by_stype(d) if r["what"] == "mean_by_stype" else glm(d, "api00 ~ ell + meals + mobility")
    got = contrast(est, WEIGHTS[r["contrast"]])
    assert got.estimate[0] == pytest.approx(r["estimate"], rel=1e-9, abs=1e-12)
    assert got.se[0] == pytest.approx(r["se"], rel=1e-8, abs=0)


def test_labels_dicts_and_several_contrasts():
    d = DESIGNS["clus1"]
    est = _means_by_stype(d)
    assert row_labels(est) == ["E", "H", "M"]
    many = contrast(est, {"H-E": {"H": 1, "E": -1}, "M-E": [-1, 0, 1]})
    assert list(many.table["variable"]) == ["H-E", "M-E"]
    one = contrast(est, [-1, 1, 0])
    assert many.estimate[0] == one.estimate[0] and many.se[0] == one.se[0]
    assert many.vcov.shape == (2, 2) and many.statistic == "contrast"
    mat = contrast(est, np.array([[-1, 1, 0], [-1, 0, 1]]))
    np.testing.assert_array_equal(mat.vcov, many.vcov)
    # the covariance matters: the SE is not sqrt(se_H^2 + se_E^2) in a cluster sample
    naive = np.hypot(est.se[0], est.se[1])
    assert abs(one.se[0] - naive) > 1e-3 * naive


def test_glm_contrast_by_term_name_uses_t_intervals():
    est = glm(DESIGNS["strat"], "api00 ~ ell + meals + mobility")
    c = contrast(est, {"ell": 1, "meals": -1})
    assert c.ci == "t" and c.table["df"].item() == est.table["df"].iloc[0]
    assert c.estimate[0] == pytest.approx(est.estimate[1] - est.estimate[2], rel=1e-12)


def test_inputs_are_not_mutated():
    est = _means_by_stype(DESIGNS["strat"])
    before = est.table.copy()
    contrast(est, [1, -1, 0])
    pd.testing.assert_frame_equal(est.table, before)


@pytest.mark.parametrize(("weights", "match"), [
    ([1, -1], "shape"),
    ({"X": 1}, "no row labelled"),
])
def test_bad_weights(weights, match):
    with pytest.raises(EstimationError, match=match):
        contrast(_means_by_stype(DESIGNS["strat"]), weights)


def test_estimate_without_vcov_is_refused():
    est = Estimate("mean", pd.DataFrame({"variable": ["a", "b"], "estimate": [1.0, 2.0],
                                         "se": [0.1, 0.2], "df": [10.0, 10.0]}))
    with pytest.raises(EstimationError, match="no covariance") as err:
        contrast(est, [1, -1])
    assert "vcov" in err.value.hint
