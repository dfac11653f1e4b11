"""calibrate(): linear, raking and logit, bounded, against R's ``calibrate``.

Golden values: tests/data/weighting/make_golden.R, run with R 4.2.2 and survey 4.1.1,
``options(digits = 15)``; for example::

    dclus1 <- svydesign(id = ~dnum, weights = ~pw, data = apiclus1, fpc = ~fpc)
    pop.totals <- c(`(Intercept)` = 6194, stypeH = 755, stypeM = 1018, api99 = 3914069)
    calibrate(dclus1, ~stype + api99, pop.totals, calfun = "logit", bounds = c(0.7, 1.7),
              epsilon = 1e-13)

Weights are compared row by row at 1e-9 relative, SEs of means and totals at 1e-8.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import analysis
import weighting
from survey.errors import WeightingError
from tests.weighting._golden import (
    POP_TOTALS,
    POP_TYPES,
    check_estimates,
    dclus1,
    dstrat,
    weights,
)

CASES = [
    ("cal_linear_clus1", dclus1, POP_TOTALS, "linear", None),
    ("cal_raking_clus1", dclus1, POP_TOTALS, "raking", None),
    ("cal_logit_clus1", dclus1, POP_TOTALS, "logit", (0.7, 1.7)),
    ("cal_linbound_clus1", dclus1, POP_TOTALS, "linear", (0.7, 1.7)),
    ("cal_linear_strat", dstrat, {**POP_TOTALS, "sch.wide": {"No": 1072, "Yes": 5122}}, "linear", None),
    ("cal_raking_strat", dstrat, {**POP_TOTALS, "sch.wide": {"No": 1072, "Yes": 5122}}, "raking", None),
]


@pytest.mark.parametrize(("case", "make", "totals", "method", "bounds"), CASES, ids=[c[0] for c in CASES])
def test_calibrate_matches_r_weights_and_ses(case, make, totals, method, bounds):
    d = make()
    c = weighting.calibrate(d, totals, method=method, bounds=bounds, tol=1e-13, maxit=200)
    np.testing.assert_allclose(c.w, weights(case), rtol=1e-9)
    check_estimates(c, case)


def test_calibrated_weights_hit_the_totals_and_the_input_is_untouched():
    d = dclus1()
    before = d.data.copy()
    c = weighting.calibrate(d, POP_TOTALS, method="raking")
    assert d.weights == "pw" and "w_calibrated" not in d.data.columns
    pd.testing.assert_frame_equal(d.data, before)
    s = c.data.groupby("stype")[c.weights].sum()
    np.testing.assert_allclose(s.to_numpy(), [4421, 755, 1018], rtol=1e-9)
    assert c.w @ c.data["api99"].to_numpy() == pytest.approx(3914069, rel=1e-9)
    assert c.history == ("pw", "w_calibrated")


def test_bounds_are_respected():
    c = weighting.calibrate(dclus1(), POP_TOTALS, method="logit", bounds=(0.7, 1.7))
    g = c.w / c.data["pw"].to_numpy()
    assert g.min() >= 0.7 - 1e-12 and g.max() <= 1.7 + 1e-12


def test_totals_as_dataframe_equal_totals_as_mapping():
    frame = pd.DataFrame({"variable": ["stype", "stype", "stype", "api99"],
                          "level": ["E", "H", "M", np.nan],
                          "total": [4421, 755, 1018, 3914069]})
    a = weighting.calibrate(dclus1(), frame)
    b = weighting.calibrate(dclus1(), POP_TOTALS)
    np.testing.assert_allclose(a.w, b.w, rtol=1e-13)


def test_linear_calibration_to_one_margin_equals_poststratification():
    d = dclus1()
    c = weighting.calibrate(d, {"stype": POP_TYPES})
    p = weighting.poststratify(d, "stype", POP_TYPES)
    np.testing.assert_allclose(c.w, p.w, rtol=1e-12)
    vs = ["api00", "enroll"]
    np.testing.assert_allclose(analysis.mean(c, vs).se, analysis.mean(p, vs).se, rtol=1e-10)
    np.testing.assert_allclose(analysis.total(c, vs).se, analysis.total(p, vs).se, rtol=1e-10)


def test_numeric_only_with_intercept_is_a_ratio_type_estimator():
    d = dclus1()
    c = weighting.calibrate(d, {"(Intercept)": 6194, "api99": 3914069})
    assert c.w.sum() == pytest.approx(6194, rel=1e-12)
    assert c.w @ c.data["api99"].to_numpy() == pytest.approx(3914069, rel=1e-12)


# -- bad input -----------------------------------------------------------------------------

def test_category_absent_from_sample_is_an_error():
    with pytest.raises(WeightingError, match=r"category 'X' has a population total .* no unit"):
        weighting.calibrate(dclus1(), {"stype": {**POP_TYPES, "X": 10}})


def test_sample_category_without_total_is_an_error():
    with pytest.raises(WeightingError, match=r"category 'M' is in the sample but has no population total"):
        weighting.calibrate(dclus1(), {"stype": {"E": 4421, "H": 755}})


def test_totals_disagreeing_across_margins():
    with pytest.raises(WeightingError, match=r"disagree across margins.*'stype'.*6194.*'sch.wide'.*6000"):
        weighting.calibrate(dclus1(), {"stype": POP_TYPES, "sch.wide": {"No": 1000, "Yes": 5000}})


def test_infeasible_bounds_state_the_achievable_range():
    with pytest.raises(WeightingError, match=r"infeasible for margin 'stype', category 'H'.*"
                                             r"achievable range \[331\.7.*, 616\.0"):
        weighting.calibrate(dclus1(), POP_TOTALS, bounds=(0.7, 1.3))


@pytest.mark.parametrize("bad", [-5, np.nan, None])
def test_negative_or_missing_totals(bad):
    with pytest.raises(WeightingError, match=r"margin 'stype', category 'H'"):
        weighting.calibrate(dclus1(), {"stype": {"E": 4421, "H": bad, "M": 1018}})


def test_logit_needs_finite_bounds_and_method_is_checked():
    with pytest.raises(WeightingError, match="logit calibration needs finite bounds"):
        weighting.calibrate(dclus1(), POP_TOTALS, method="logit")
    with pytest.raises(WeightingError, match="method='probit'"):
        weighting.calibrate(dclus1(), POP_TOTALS, method="probit")


def test_missing_auxiliary_value_names_column_and_row():
    df = dclus1().data.copy()
    df.loc[5, "api99"] = np.nan
    from survey import Design
    d = Design(df, weights="pw", psu="dnum", fpc="fpc")
    with pytest.raises(WeightingError, match=r"row 6.*column 'api99'|column 'api99'.*row 6"):
        weighting.calibrate(d, POP_TOTALS)


def test_negative_linear_weights_are_refused_with_a_hint():
    with pytest.raises(WeightingError, match=r"(?s)negative weight.*bounds"):
        weighting.calibrate(dclus1(), {"stype": POP_TYPES, "api99": 2_000_000})
