"""Tests of analysis.glm against R survey's svyglm.

Golden values: tests/data/analysis/glm_golden.csv (summary coefficients) and
glm_vcov_golden.csv (vcov), made by tests/data/analysis/make_goldens.R with R 4.2.2
and survey 4.1.1, ``options(digits = 15)``::

    m <- svyglm(api00 ~ ell + meals + mobility, design = d, family = gaussian())
    summary(m)$coefficients; vcov(m); m$df.residual

for gaussian, quasibinomial (``factor(sch.wide) ~ ...``) and quasipoisson models, on
the stratified apistrat design, one- and two-stage cluster designs (apiclus1,
apiclus2) and the JK1 replicate design of apiclus1 (apiclus1_jk1.csv). Estimates to
1e-9 relative, SEs and covariances to 1e-8; the suite does not need R.

Calibrated designs (calibrated_golden.csv, same script): apiclus1 under
``postStratify(dclus1, ~stype, pop)`` and ``calibrate(dclus1, ~stype + api99, ...)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.glm import GLMFit, glm, glm_fit
from survey import Design
from survey.datasets import load_api
from survey.errors import EstimationError
from survey.variance import linearized_vcov
from tests.analysis._api import DATA, api_designs
from tests.analysis._api import calibrated as _calibrated

CAL = pd.read_csv(DATA / "calibrated_golden.csv")


# the svyglm goldens cover every api design except apiclus1 without fpc
DESIGNS = {k: v for k, v in api_designs().items() if k != "clus1nofpc"}
MODELS = {  # R formula in make_goldens.R -> ours
    "lin": ("api00 ~ ell + meals + mobility", "gaussian"),
    "linfac": ("api00 ~ ell + meals + stype", "gaussian"),
    "linint": ("api00 ~ ell * stype + meals", "gaussian"),
    "logit": ("sch.wide ~ ell + meals + mobility", "binomial"),
    "logitfac": ("comp.imp ~ meals + C(stype) + api99", "binomial"),
    "pois": ("enroll ~ ell + meals + mobility", "poisson"),
    "poisfac": ("api.stu ~ meals + stype", "poisson"),
}
GOLD = pd.read_csv(DATA / "glm_golden.csv")
VGOLD = pd.read_csv(DATA / "glm_vcov_golden.csv")
CASES = [(d, m) for d in DESIGNS for m in MODELS]


def _r_name(term: str) -> str:
    return term.replace("C(stype)", "stype")


@pytest.mark.parametrize(("design", "model"), CASES)
def test_matches_r_svyglm(design, model):
    want = GOLD[(GOLD.design == design) & (GOLD.model == model)]
    est = glm(DESIGNS[design], *MODELS[model])
    got = est.table
    assert [_r_name(t) for t in got["term"]] == list(want["term"])
    np.testing.assert_allclose(got["estimate"], want["estimate"], rtol=1e-9, atol=0)
    np.testing.assert_allclose(got["se"], want["se"], rtol=1e-8, atol=0)
    np.testing.assert_allclose(got["t"], want["t"], rtol=1e-8, atol=0)
    np.testing.assert_allclose(got["p"], want["p"], rtol=1e-8, atol=0)
    np.testing.assert_array_equal(got["df"], want["df"])
    v = VGOLD[(VGOLD.design == design) & (VGOLD.model == model)]
    p = len(want)
    R = v["value"].to_numpy().reshape(p, p).T  # R writes column-major
    scale = np.sqrt(np.outer(np.diag(R), np.diag(R)))
    np.testing.assert_allclose(est.vcov / scale, R / scale, rtol=0, atol=1e-8)


def test_estimate_layout_and_t_interval():
    est = glm(DESIGNS["strat"], "api00 ~ ell + meals + mobility")
    assert est.statistic == "coefficient" and est.ci == "t" and est.vcov.shape == (4, 4)
    f = est.to_frame()
    assert list(f["term"]) == ["(Intercept)", "ell", "meals", "mobility"]
    assert {"variable", "term", "estimate", "se", "t", "p", "ci_low", "ci_high", "df", "n"} <= set(f)
    from scipy import stats
    q = stats.t.ppf(0.975, f["df"].iloc[0])
    np.testing.assert_allclose(f["ci_high"] - f["estimate"], q * f["se"], rtol=1e-12)
    assert (f["n"] == 200).all() and (f["variable"] == "api00").all()


@pytest.mark.parametrize("family", ["gaussian", "binomial", "poisson"])
def test_influence_gives_the_linearised_vcov(family):
    d = DESIGNS["clus2"]
    formula = {"gaussian": "api00 ~ ell + meals", "binomial": "sch.wide ~ ell + meals",
               "poisson": "enroll ~ ell + meals"}[family]
    fit = glm_fit(d, formula, family)
    assert isinstance(fit, GLMFit) and fit.influence.shape == (d.n, 3)
    np.testing.assert_allclose(linearized_vcov(d, fit.influence), fit.vcov, rtol=1e-12)
    # the score equations hold at the solution: influence totals are ~zero (R's stopping
    # rule leaves a one-step error far below the SE, which we reproduce rather than polish)
    assert (np.abs(fit.influence.sum(axis=0)) < 1e-3 * fit.se).all()
    # rows with a missing value (enroll in apiclus2) contribute nothing
    miss = d.data["enroll"].isna().to_numpy()
    if family == "poisson":
        assert miss.any() and (fit.influence[miss] == 0).all() and np.isnan(fit.fitted[miss]).all()


def test_predict_reproduces_fitted_values_and_uses_stored_levels():
    d = DESIGNS["strat"]
    fit = glm_fit(d, "sch.wide ~ ell + stype", "binomial")
    np.testing.assert_allclose(fit.predict(d.data), fit.fitted, rtol=1e-12)
    np.testing.assert_allclose(fit.predict(d.data, type="link"), fit.linear_predictor, rtol=1e-12)
    new = pd.DataFrame({"ell": [10.0, 10.0], "stype": ["H", "E"]})
    eta = fit.predict(new, type="link")
    b = dict(zip(fit.terms, fit.coef))
    np.testing.assert_allclose(eta, [b["(Intercept)"] + 10 * b["ell"] + b["stypeH"],
                                     b["(Intercept)"] + 10 * b["ell"]], rtol=1e-12)
    with pytest.raises(EstimationError, match="not a level"):
        fit.predict(pd.DataFrame({"ell": [1.0], "stype": ["X"]}))


def test_integer_weights_equal_replicated_rows():
    s = load_api("apisrs").head(60)
    w = np.tile([1.0, 2.0, 3.0], 20)
    a = Design(s.assign(w=w), weights="w")
    b = Design(s.loc[s.index.repeat(w.astype(int))].reset_index(drop=True).assign(w=1.0), weights="w")
    for formula, family, rtol in [("api00 ~ ell + meals", "gaussian", 1e-10),
                                  ("sch.wide ~ ell + meals", "binomial", 1e-6)]:
        np.testing.assert_allclose(glm_fit(a, formula, family).coef, glm_fit(b, formula, family).coef,
                                   rtol=rtol)


def test_mask_is_a_domain_like_r_subset():
    d = DESIGNS["clus2"]
    e = (d.data["stype"] == "E").to_numpy()
    fit = glm_fit(d, "api00 ~ ell + meals", mask=e)
    # the same coefficients as zeroing the weights outside the domain
    zero = d.with_weights(np.where(e, d.w, 0.0), "w_e")
    np.testing.assert_allclose(fit.coef, glm_fit(zero, "api00 ~ ell + meals").coef, rtol=1e-10)
    assert fit.df_residual == d.degf(e) + 1 - 3
    assert fit.n == e.sum()


def test_formula_terms_follow_r():
    d = DESIGNS["strat"]
    fit = glm_fit(d, "api00 ~ meals * stype - 1")
    assert fit.terms == ("meals", "stypeE", "stypeH", "stypeM", "meals:stypeH", "meals:stypeM")
    fit = glm_fit(d, "api00 ~ ell + meals:stype")  # no main effect: full dummy coding
    assert fit.terms == ("(Intercept)", "ell", "meals:stypeE", "meals:stypeH", "meals:stypeM")
    fit = glm_fit(d, "api00 ~ C(yr.rnd) + meals:stype")
    assert fit.terms[:2] == ("(Intercept)", "C(yr.rnd)Yes")


def test_inputs_are_not_mutated():
    d = DESIGNS["strat"]
    before = d.data.copy()
    glm(d, "sch.wide ~ ell + stype", "binomial")
    pd.testing.assert_frame_equal(d.data, before)


@pytest.mark.parametrize(("formula", "family", "match"), [
    ("api00 ~ ell + mealz", "gaussian", "not found"),
    ("api00 ell", "gaussian", "'~'"),
    ("api00 ~ ell + log(meals)", "gaussian", "cannot read"),
    ("api00 ~ ell", "gamma", "family"),
    ("api00 ~ ell", "binomial", r"\[0, 1\]"),
    ("stype ~ ell", "binomial", "two levels"),
    ("stype ~ ell", "gaussian", "numeric"),
    ("api00 ~ ell + meals + I", "gaussian", "not found"),
])
def test_bad_input(formula, family, match):
    with pytest.raises(EstimationError, match=match):
        glm(DESIGNS["strat"], formula, family)


def test_rank_deficient_model_names_the_terms():
    d = DESIGNS["strat"].map(lambda df: df.assign(ell2=df["ell"] * 2))
    with pytest.raises(EstimationError, match="rank deficient") as err:
        glm(d, "api00 ~ ell + ell2")
    assert "ell2" in str(err.value) and "collinear" in err.value.hint


@pytest.mark.parametrize("design", ["ps1", "cal1"])
@pytest.mark.parametrize("model", ["lin", "logit"])
def test_calibrated_designs_match_r(design, model):
    # R: svyglm(api00 ~ ell + meals + mobility, postStratify(dclus1, ~stype, pop)); the
    # sandwich uses the calibration residuals of the score contributions
    want = CAL[(CAL.design == design) & (CAL.what == f"glm_{model}")]
    got = glm(_calibrated(design), *MODELS[model]).table
    np.testing.assert_allclose(got["estimate"], want["estimate"], rtol=1e-9, atol=0)
    np.testing.assert_allclose(got["se"], want["se"], rtol=1e-8, atol=0)
    np.testing.assert_array_equal(got["df"], want["extra"])
