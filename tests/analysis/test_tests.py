"""Tests of analysis.ttest and analysis.chisq against R survey's svyttest and svychisq.

Golden values: tests/data/analysis/ttest_golden.csv and chisq_golden.csv, made by
tests/data/analysis/make_goldens.R with R 4.2.2 and survey 4.1.1,
``options(digits = 15)``::

    svyttest(api00 ~ comp.imp, d); svyttest(ell ~ 0, d)
    svychisq(~sch.wide + stype, d, statistic = "F")   # also "Chisq", "Wald", "adjWald"

on apistrat (stratified), apiclus1 with and without fpc, apiclus2 (two-stage) and
the JK1 replicate design of apiclus1. Statistics, df and p-values to 1e-9 relative;
the suite does not need R.

Calibrated designs (calibrated_golden.csv, same script): apiclus1 under
``postStratify(dclus1, ~stype, pop)`` and ``calibrate(dclus1, ~stype + api99, ...)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.estimators import mean
from analysis.tests import TestResult, chisq, ttest
from survey.errors import EstimationError
from tests.analysis._api import DATA, api_designs
from tests.analysis._api import calibrated as _calibrated

CAL = pd.read_csv(DATA / "calibrated_golden.csv")


DESIGNS = api_designs()
TGOLD = pd.read_csv(DATA / "ttest_golden.csv")
CGOLD = pd.read_csv(DATA / "chisq_golden.csv")


@pytest.mark.parametrize("i", range(len(TGOLD)))
def test_ttest_matches_r_svyttest(i):
    r = TGOLD.iloc[i]
    y, g = (s.strip() for s in r["formula"].split("~"))
    res = ttest(DESIGNS[r["design"]], y, None if g == "0" else g)
    got = {"estimate": res.estimate, "statistic": res.statistic, "df": res.df[0],
           "p": res.p_value, "ci_low": res.conf_int[0], "ci_high": res.conf_int[1]}
    for k, v in got.items():
        assert v == pytest.approx(r[k], rel=1e-9, abs=0), k


@pytest.mark.parametrize("i", range(len(CGOLD)))
def test_chisq_matches_r_svychisq(i):
    r = CGOLD.iloc[i]
    a, b = (s.strip() for s in r["formula"].strip("~").split("+"))
    res = chisq(DESIGNS[r["design"]], a, b, statistic=r["statistic_type"])
    assert res.statistic == pytest.approx(r["statistic"], rel=1e-9, abs=0)
    assert res.p_value == pytest.approx(r["p"], rel=1e-8, abs=1e-300)
    assert res.df[0] == pytest.approx(r["ndf"], rel=1e-9)
    if not np.isnan(r["ddf"]):
        assert res.df[1] == pytest.approx(r["ddf"], rel=1e-9)


def test_golden_covers_every_design_and_statistic():
    assert set(TGOLD.design) == set(CGOLD.design) == set(DESIGNS)
    assert set(CGOLD.statistic_type) == {"F", "Chisq", "Wald", "adjWald"}


def test_ttest_is_the_difference_of_domain_means():
    d = DESIGNS["clus2"]
    res = ttest(d, "api00", "comp.imp")
    m = mean(d, "api00", by="comp.imp").table
    diff = m.loc[m["comp.imp"] == "Yes", "estimate"].item() - m.loc[m["comp.imp"] == "No", "estimate"].item()
    assert res.estimate == pytest.approx(diff, rel=1e-12)
    assert res.method == "Design-based t-test" and res.statistic_name == "t"
    lo, hi = res.conf_int
    assert lo < res.estimate < hi


def test_ttest_group_coding_does_not_matter():
    d = DESIGNS["strat"].map(lambda df: df.assign(g01=(df["comp.imp"] == "Yes").astype(int),
                                                  gbool=df["comp.imp"] == "Yes"))
    a = ttest(d, "api00", "comp.imp")
    for g in ("g01", "gbool"):
        b = ttest(d, "api00", g)
        assert (b.statistic, b.p_value) == pytest.approx((a.statistic, a.p_value), rel=1e-12)


def test_result_table():
    f = chisq(DESIGNS["strat"], "sch.wide", "stype").to_frame()
    assert list(f.columns) == ["method", "statistic_name", "statistic", "ndf", "ddf", "p_value"]
    f = ttest(DESIGNS["strat"], "api00", "comp.imp").to_frame()
    assert {"df", "p_value", "estimate", "ci_low", "ci_high"} <= set(f.columns)
    assert isinstance(chisq(DESIGNS["strat"], "sch.wide", "stype", "Chisq"), TestResult)


def test_chisq_missing_values_are_a_domain():
    d = DESIGNS["strat"].map(lambda df: df.assign(
        sw=df["sch.wide"].where(df["api00"] > 500)))  # some missing
    res = chisq(d, "sw", "stype")
    assert np.isfinite(res.statistic) and 0 < res.p_value < 1


@pytest.mark.parametrize(("call", "match"), [
    (lambda d: ttest(d, "api00", "stype"), "two values"),
    (lambda d: ttest(d, "api0", "comp.imp"), "not found"),
    (lambda d: chisq(d, "sch.wide", "stype", statistic="G"), "statistic"),
    (lambda d: chisq(d, "sch.wide", "nope"), "not found"),
    (lambda d: chisq(d.map(lambda df: df.assign(one="a")), "sch.wide", "one"), "two values"),
    (lambda d: chisq(d.map(lambda df: df.assign(na=np.nan)), "sch.wide", "na"), "only missing"),
])
def test_bad_input(call, match):
    with pytest.raises(EstimationError, match=match):
        call(DESIGNS["strat"])


@pytest.mark.parametrize("design", ["ps1", "cal1"])
def test_calibrated_designs_match_r(design):
    # R: svyttest(api00 ~ comp.imp, dcal); svychisq(~sch.wide + stype, dcal)
    d = _calibrated(design)
    t = CAL[(CAL.design == design) & (CAL.what == "ttest")].iloc[0]
    res = ttest(d, "api00", "comp.imp")
    assert (res.estimate, res.statistic, res.p_value) == pytest.approx(
        (t["estimate"], t["se"], t["extra"]), rel=1e-9)
    c = CAL[(CAL.design == design) & (CAL.what == "chisq_F")].iloc[0]
    res = chisq(d, "sch.wide", "stype")
    assert (res.statistic, res.df[0], res.p_value) == pytest.approx(
        (c["estimate"], c["se"], c["extra"]), rel=1e-9)
