"""Tests of analysis.quantile against R survey's svyquantile.

Golden values: tests/data/analysis/quantile_golden.csv, made by
tests/data/analysis/make_goldens.R with R 4.2.2 and survey 4.1.1,
``options(digits = 15)``; for each design, variable, domain and rule::

    svyquantile(~api00, subset(d, stype == "E"), c(0.1, 0.25, 0.5, 0.75, 0.9),
                qrule = "math", ci = TRUE, na.rm = TRUE)

with d one of ``svydesign(id=~1, strata=~stype, weights=~pw, fpc=~fpc, apistrat)``,
``svydesign(id=~dnum, weights=~pw, fpc=~fpc, apiclus1)`` (and without fpc),
``svydesign(id=~dnum+snum, fpc=~fpc1+fpc2, apiclus2)`` and the JK1 replicate design
of apiclus1 read back from apiclus1_jk1.csv. Estimates and interval ends are
checked to 1e-9 relative, SEs to 1e-8; the suite does not need R.

Calibrated designs (calibrated_golden.csv, same script): apiclus1 under
``postStratify(dclus1, ~stype, pop)`` and ``calibrate(dclus1, ~stype + api99, ...)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from analysis.quantile import RULES, quantile, weighted_quantile
from survey.errors import EstimationError
from tests.analysis._api import DATA, api_designs
from tests.analysis._api import calibrated as _calibrated

CAL = pd.read_csv(DATA / "calibrated_golden.csv")


DESIGNS = api_designs()
GOLD = pd.read_csv(DATA / "quantile_golden.csv", keep_default_na=False, na_values=["NA"])
CASES = sorted(GOLD.groupby(["design", "variable", "domain", "rule"]).groups)


def _close(got: np.ndarray, want: np.ndarray, rel: float) -> None:
    got, want = np.asarray(got, float), np.asarray(want, float)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=rel, atol=0)


@pytest.mark.parametrize(("design", "variable", "domain", "rule"), CASES)
def test_matches_r_svyquantile(design, variable, domain, rule):
    want = GOLD[(GOLD.design == design) & (GOLD.variable == variable)
                & (GOLD.domain == domain) & (GOLD.rule == rule)]
    d = DESIGNS[design]
    mask = None if domain == "" else (d.data["stype"] == domain).to_numpy()
    got = quantile(d, variable, want["prob"].to_numpy(), mask=mask, rule=rule).to_frame()
    _close(got["estimate"], want["estimate"], 1e-9)
    _close(got["ci_low"], want["ci_low"], 1e-9)
    _close(got["ci_high"], want["ci_high"], 1e-9)
    _close(got["se"], want["se"], 1e-8)
    np.testing.assert_array_equal(got["df"], want["df"])


def test_golden_covers_every_design_and_rule():
    assert set(GOLD.design) == set(DESIGNS)
    assert set(GOLD.rule) == set(RULES)
    # R gives NaN where an interval end falls outside [0, 1]; most rows have an SE
    assert (GOLD.se > 0).sum() > 0.5 * len(GOLD)


def test_by_equals_mask_and_table_layout():
    d = DESIGNS["clus2"]
    probs = [0.25, 0.5]
    by = quantile(d, ["api00", "enroll"], probs, by="stype")
    t = by.table
    assert list(t.columns[:3]) == ["variable", "stype", "quantile"]
    assert by.statistic == "quantile" and by.ci == "woodruff" and by.by == ("stype",)
    for dom in ["E", "H", "M"]:
        for v in ["api00", "enroll"]:
            one = quantile(d, v, probs, mask=(d.data["stype"] == dom).to_numpy()).table
            rows = t[(t.stype == dom) & (t.variable == v)]
            for c in ["estimate", "se", "ci_low", "ci_high", "df", "n"]:
                np.testing.assert_array_equal(rows[c].to_numpy(), one[c].to_numpy())


def test_missing_values_are_a_domain_not_a_filter():
    d = DESIGNS["clus2"]
    notna = d.data["enroll"].notna().to_numpy()
    a = quantile(d, "enroll", [0.5, 0.9]).table
    b = quantile(d, "enroll", [0.5, 0.9], mask=notna).table
    pd.testing.assert_frame_equal(a, b)
    assert (a["n"] == notna.sum()).all()


def test_several_variables_equal_single_calls():
    d = DESIGNS["strat"]
    both = quantile(d, ["api00", "api99"], [0.5], rule="hf7").table
    for v in ["api00", "api99"]:
        one = quantile(d, v, [0.5], rule="hf7").table
        np.testing.assert_array_equal(both.loc[both.variable == v, "estimate"], one["estimate"])
        np.testing.assert_array_equal(both.loc[both.variable == v, "se"], one["se"])


def test_equal_weights_match_numpy_quantile_types():
    rng = np.random.default_rng(7)
    x = rng.normal(size=101).round(1)  # ties included
    p = np.linspace(0, 1, 21)
    w = np.full(len(x), 2.5)
    np.testing.assert_allclose(weighted_quantile(x, w, p, "hf7"), np.quantile(x, p), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(weighted_quantile(x, w, p[1:], "math"),
                                  np.quantile(x, p[1:], method="inverted_cdf"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(1, 4)), min_size=2, max_size=30),
       st.floats(0.01, 0.99))
def test_integer_weights_equal_replicated_rows(rows, p):
    x = np.array([r[0] for r in rows], dtype=float)
    w = np.array([r[1] for r in rows], dtype=float)
    rep = np.repeat(x, w.astype(int))
    # below the first weight share R's qs() falls back to position 1 and returns the
    # second order statistic (see test_r_quirk_below_first_weight), so stay above it
    assume(p * w.sum() >= w[np.argsort(x, kind="stable")[0]])
    for rule in ("math", "school"):
        assert weighted_quantile(x, w, p, rule)[0] == weighted_quantile(rep, np.ones(len(rep)), p, rule)[0]


def test_r_quirk_below_first_weight():
    # survey 4.1.1: qs() uses last(cumw <= p W), which is 1 when no cumw qualifies, so
    # qrule_math returns x[2] for p below the first weight share; we follow R
    assert weighted_quantile(np.array([0.0, 1.0]), np.array([2.0, 1.0]), 0.5, "math")[0] == 1.0


def test_zero_weights_are_ignored_and_inputs_untouched():
    x = np.array([5.0, 1.0, 3.0, 2.0])
    w = np.array([1.0, 0.0, 1.0, 1.0])
    before = x.copy()
    assert weighted_quantile(x, w, 0.5, "math")[0] == weighted_quantile(x[w > 0], w[w > 0], 0.5)[0]
    np.testing.assert_array_equal(x, before)


def test_xlogit_and_asin_intervals_contain_the_estimate():
    d = DESIGNS["strat"]
    for interval in ("xlogit", "asin"):
        t = quantile(d, "api00", [0.25, 0.5, 0.75], interval=interval).table
        assert (t.ci_low <= t.estimate).all() and (t.estimate <= t.ci_high).all()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"variables": "api00", "probs": 1.5}, "probs"),
    ({"variables": "api00", "probs": 0.5, "rule": "hf10"}, "rule"),
    ({"variables": "stype", "probs": 0.5}, "numeric"),
    ({"variables": "api000", "probs": 0.5}, "not found"),
    ({"variables": "api00", "probs": 0.5, "ci": "normal"}, "woodruff"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(EstimationError, match=match):
        quantile(DESIGNS["strat"], **kwargs)


def test_missing_column_names_the_column():
    with pytest.raises(EstimationError) as err:
        quantile(DESIGNS["strat"], "api000", 0.5)
    assert err.value.column == "api000" and "api00" in err.value.hint


@pytest.mark.parametrize("design", ["ps1", "cal1"])
@pytest.mark.parametrize("rule", ["math", "hf7"])
def test_calibrated_designs_match_r(design, rule):
    # R: svyquantile(~api00, postStratify(dclus1, ~stype, pop), c(.25, .5, .75), qrule = rule)
    want = CAL[(CAL.design == design) & (CAL.what == f"quantile_{rule}")]
    got = quantile(_calibrated(design), "api00", [0.25, 0.5, 0.75], rule=rule).table
    _close(got["estimate"], want["estimate"], 1e-9)
    _close(got["se"], want["se"], 1e-8)
    _close(got["ci_low"], want["extra"], 1e-9)
