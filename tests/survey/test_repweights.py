"""Replicate weights (survey.repweights) against R's ``as.svrepdesign``.

Golden values: tests/data/weighting/make_golden.R (R 4.2.2, survey 4.1.1,
``options(digits = 15)``)::

    as.svrepdesign(dclus1, type = "JK1", compress = FALSE)
    as.svrepdesign(svydesign(id = ~dnum, strata = ~stype, weights = ~pw, data = apistrat,
                             nest = TRUE), type = "JKn", compress = FALSE)
    as.svrepdesign(dbrr, type = "BRR")  ;  as.svrepdesign(dbrr, type = "Fay", fay.rho = 0.3)
    set.seed(20240501); as.svrepdesign(dstratpsu, type = "subbootstrap", replicates = 60)

Replicate weights are compared row by row; variances of means and totals at 1e-8.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import analysis
import weighting
from survey import Design
from survey.datasets import load_api
from survey.errors import DesignError
from survey.repweights import hadamard, make_replicates
from tests.weighting._golden import (
    DATA,
    POP_SCHWIDE,
    POP_TOTALS,
    POP_TYPES,
    check_estimates,
    dclus1,
    dstrat,
    dstratpsu,
)

REP = "golden_replicates.csv"


def _w(case: str) -> np.ndarray:
    return pd.read_csv(DATA / f"{case}_weights.csv").to_numpy(dtype=float)


def test_jk1_weights_row_by_row():
    r = make_replicates(dclus1(), "jk1")
    np.testing.assert_allclose(r.replicates.weights, _w("jk1_clus1"), rtol=1e-12)
    assert r.replicates.scale == pytest.approx(0.914839277851167, rel=1e-12)
    check_estimates(r, "jk1_clus1", ("api00", "enroll"), file=REP)


def test_jkn_weights_row_by_row_and_rscales():
    r = make_replicates(dstratpsu(), "jkn")
    np.testing.assert_allclose(r.replicates.weights, _w("jkn_stratpsu"), rtol=1e-12)
    rs = pd.read_csv(DATA / "jkn_stratpsu_rscales.csv")["rscales"].to_numpy()
    np.testing.assert_allclose(r.replicates.rscales, rs, rtol=1e-12)
    check_estimates(r, "jkn_stratpsu", ("api00", "enroll"), file=REP)


def test_jkn_with_fpc_matches_r():
    r = make_replicates(dstrat(), "jkn")
    np.testing.assert_allclose(r.replicates.weights, _w("jkn_strat_fpc"), rtol=1e-12)
    rs = pd.read_csv(DATA / "jkn_strat_fpc_rscales.csv")["rscales"].to_numpy()
    np.testing.assert_allclose(r.replicates.rscales, rs, rtol=1e-12)
    check_estimates(r, "jkn_strat_fpc", ("api00", "enroll"), file=REP)


def _brr_design() -> Design:
    return Design(pd.read_csv(DATA / "brr_data.csv"), weights="pw", strata="strat", psu="psu")


def test_brr_with_r_hadamard_matrix_matches_weights_and_variances():
    H = pd.read_csv(DATA / "brr_hadamard.csv").to_numpy()
    r = make_replicates(_brr_design(), "brr", hadamard_matrix=H)
    np.testing.assert_allclose(r.replicates.weights, _w("brr"), rtol=1e-12)
    check_estimates(r, "brr", ("api00", "enroll"), file=REP)


def test_brr_and_fay_with_our_hadamard_give_r_variances_of_totals():
    d = _brr_design()
    for method, case, kw in (("brr", "brr", {}), ("fay", "fay", {"rho": 0.3})):
        r = make_replicates(d, method, **kw)
        g = pd.read_csv(DATA / REP)
        exp = g[g["case"] == case].set_index("variable")
        t = analysis.total(r, ["api00", "enroll"])
        # full orthogonal balance: every Hadamard matrix gives the same variance of a total
        np.testing.assert_allclose(t.se, exp.loc[["api00", "enroll"], "total_se"], rtol=1e-10)
    H = pd.read_csv(DATA / "brr_hadamard.csv").to_numpy()
    fay = make_replicates(d, "fay", rho=0.3, hadamard_matrix=H)
    check_estimates(fay, "fay", ("api00", "enroll"), file=REP)


def test_bootstrap_variance_from_given_replicate_weights():
    W = _w("subboot")
    df = dstratpsu().data.copy()
    cols = [f"b{i + 1}" for i in range(W.shape[1])]
    df = pd.concat([df, pd.DataFrame(W, columns=cols, index=df.index)], axis=1)
    d = Design.from_replicates(df, "pw", cols, method="bootstrap")
    check_estimates(d, "subboot", ("api00", "enroll"), file=REP)


def test_rao_wu_bootstrap_is_reproducible_and_unbiased_for_the_weights():
    d = dstratpsu()
    a = make_replicates(d, "bootstrap", replicates=400, rng=np.random.default_rng(7))
    b = make_replicates(d, "bootstrap", replicates=400, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.replicates.weights, b.replicates.weights)
    # E[m_hi] n_h/(n_h - 1) = 1: replicate weights average to the full-sample weights
    ratio = a.replicates.weights.mean(axis=1) / d.w
    assert np.abs(ratio - 1).max() < 0.25 and abs(ratio.mean() - 1) < 0.02
    # the bootstrap SE of a total is close to the linearised one (with replacement)
    lin = analysis.total(d, "enroll").se[0]
    boot = analysis.total(a, "enroll").se[0]
    assert boot == pytest.approx(lin, rel=0.15)


def test_replicates_carry_through_calibration_like_r():
    jk1 = make_replicates(dclus1(), "jk1")
    check_estimates(weighting.poststratify(jk1, "stype", POP_TYPES), "jk1_ps", ("api00", "enroll"), file=REP)
    check_estimates(weighting.rake(jk1, {"stype": POP_TYPES, "sch.wide": POP_SCHWIDE}, tol=1e-14),
                    "jk1_rake", ("api00", "enroll"), file=REP)
    check_estimates(weighting.calibrate(jk1, POP_TOTALS), "jk1_cal_linear", ("api00", "enroll"), file=REP)
    check_estimates(weighting.calibrate(jk1, POP_TOTALS, method="raking", tol=1e-13),
                    "jk1_cal_raking", ("api00", "enroll"), file=REP)
    jkn = make_replicates(dstratpsu(), "jkn")
    check_estimates(weighting.calibrate(jkn, POP_TOTALS, method="logit", bounds=(0.5, 2), tol=1e-13),
                    "jkn_cal_logit", ("api00", "enroll"), file=REP)


def test_hadamard_matrices_are_hadamard():
    for n in (1, 2, 5, 8, 11, 18, 27, 40):
        H = hadamard(n)
        k = H.shape[0]
        assert k > n and (H @ H.T == k * np.eye(k)).all()


def test_bad_requests_are_clear_errors():
    with pytest.raises(DesignError, match="JK1 is for unstratified designs"):
        make_replicates(dstratpsu(), "jk1")
    with pytest.raises(DesignError, match=r"BRR needs exactly 2 PSUs per stratum; this stratum has"):
        make_replicates(dstratpsu(), "brr")
    with pytest.raises(DesignError, match="needs rng="):
        make_replicates(dstratpsu(), "bootstrap")
    with pytest.raises(DesignError, match="not one of"):
        make_replicates(dstratpsu(), "sdr")


@pytest.mark.parametrize("method", ["jk1", "jkn"])
def test_jackknife_degf_shortcut_equals_the_rank(method: str) -> None:
    """The closed-form jackknife df (PSUs - strata) equals R's definition, the rank of
    the replicate weights minus one, computed here by pivoted QR."""
    from survey.replicates import _rank

    base = Design(load_api("apiclus1"), weights="pw", psu="dnum") if method == "jk1" else \
        Design(load_api("apistrat"), weights="pw", strata="stype", psu="dnum", nest=True)
    r = make_replicates(base, method)
    assert r.replicates.degf_value == base.degf()
    assert r.degf() == _rank(r.replicates.weights) - 1
