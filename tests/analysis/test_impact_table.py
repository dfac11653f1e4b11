"""Tests of analysis.impact_table: group estimates and the DotM impact table, on
simulated interviews with the bundled household form (see test_indicators)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

import analysis
from analysis.impact import impact_fit
from analysis.impact_table import group_estimates, impact_table, stars
from analysis.indicators import prepare
from survey.errors import SurveyWarning
from tests.analysis.test_indicators import simulated_survey

INDS = ["remittances_received", "rem_amount_year", "spend_edu", "enrol_6_17", "insured_person",
        "female_head"]


@pytest.fixture(scope="module")
def data():
    design, tables = simulated_survey(n=520, seed=3, eas=40)
    return prepare(design, tables)


@pytest.fixture(scope="module")
def table(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SurveyWarning)
        return impact_table(data, INDS, methods=("raw", "regression", "ipw", "aipw"))


def test_group_estimates_match_the_estimator(data):
    g = group_estimates(data, INDS, domains=["urban"], min_n=50, max_cv=0.2)
    cols = {"area", "indicator", "label", "statistic", "domain", "domain_value", "group",
            "estimate", "se", "ci_low", "ci_high", "deff", "n", "cv", "flag_small_n",
            "flag_high_cv"}
    assert cols <= set(g.columns)
    row = g[(g.indicator == "spend_edu") & (g.domain == "urban") & (g.domain_value == "rural")
            & (g.group == "emigrant") & (g.statistic == "mean")].iloc[0]
    with warnings.catch_warnings():  # a by= column with missing values (see _prep.domains)
        warnings.simplefilter("ignore", RuntimeWarning)
        e = analysis.mean(data.household, "spend_edu", by=["urban", "migration_group"],
                          deff=True).to_frame()
    e = e[(e.urban == "rural") & (e.migration_group == "emigrant")].iloc[0]
    assert row.estimate == pytest.approx(e.estimate, rel=1e-12)
    assert row.se == pytest.approx(e.se, rel=1e-12)
    assert row.deff == pytest.approx(e.deff, rel=1e-12)
    assert row.cv == pytest.approx(e.se / e.estimate, rel=1e-12)
    assert (g["flag_small_n"] == (g["n"] < 50)).all()
    assert (g["flag_high_cv"] == ~(g["cv"] <= 0.2)).all()
    # person-level rows use the person design; medians for skewed amounts
    assert {"share", "mean", "median"} <= set(g["statistic"])
    med = g[(g.indicator == "rem_amount_year") & (g.statistic == "median")]
    assert len(med) and set(med.group) >= {"none", "emigrant", "all"}
    assert set(g[g.indicator == "enrol_6_17"].group) == {"none", "emigrant", "returnee", "all"}


def test_group_estimates_by_remittance_receiving(data):
    g = group_estimates(data, ["spend_edu"], group="remittance_receiving", overall=False)
    assert set(g.group) == {"receiving", "not receiving"}


def test_impact_table_columns_and_numbers(data, table):
    for c in ("area", "indicator", "label", "mean_none", "mean_emigrant", "mean_returnee",
              "raw_diff", "raw_se", "raw_p", "adj_diff", "adj_se", "adj_p", "ipw_diff", "ipw_se",
              "ipw_ci_low", "ipw_ci_high", "ipw_p", "ipw_support_n", "ipw_dropped", "aipw_diff",
              "n", "n_treated", "n_control", "stars", "flag"):
        assert c in table.columns, c
    assert list(table.indicator) == INDS
    row = table.set_index("indicator").loc["spend_edu"]
    f = impact_fit(data.household, "spend_edu", "migration_group",
                   [c for c in ("head_age", "head_female", "head_education", "hh_size",
                                "n_children", "n_elderly", "urban", "region")],
                   "ipw", treated=["emigrant", "returnee"], control="none")
    assert row.ipw_diff == pytest.approx(f.estimate, rel=1e-12)
    assert row.ipw_se == pytest.approx(f.se, rel=1e-12)
    assert row.ipw_support_n == f.n_treated + f.n_control
    h = data.household.data
    y, w = h["spend_edu"].to_numpy(dtype=float), data.household.w
    sel = (h["migration_group"] == "none").fillna(False).to_numpy(dtype=bool) & ~np.isnan(y)
    assert row.mean_none == pytest.approx(np.average(y[sel], weights=w[sel]), rel=1e-12)
    assert row.stars == stars(row.aipw_p)[0]


def test_p_values_stars_and_intervals_agree(data, table):
    """Every method's p-value and interval come from one t distribution on the
    estimate's df: p < 0.05 exactly when the 95% interval excludes 0, the stars follow
    the named method's p-value."""
    checked = 0
    for key in ("raw", "adj", "ipw", "aipw"):
        t = table[table[f"{key}_diff"].notna()]
        assert len(t) == len(table), key
        q = stats.t.ppf(0.975, t[f"{key}_df"])
        np.testing.assert_allclose(t[f"{key}_ci_low"], t[f"{key}_diff"] - q * t[f"{key}_se"],
                                   rtol=1e-12)
        np.testing.assert_allclose(t[f"{key}_ci_high"], t[f"{key}_diff"] + q * t[f"{key}_se"],
                                   rtol=1e-12)
        np.testing.assert_allclose(
            t[f"{key}_p"], 2 * stats.t.sf((t[f"{key}_diff"] / t[f"{key}_se"]).abs(),
                                          t[f"{key}_df"]), rtol=1e-12)
        excludes = (t[f"{key}_ci_low"] > 0) | (t[f"{key}_ci_high"] < 0)
        assert ((t[f"{key}_p"] < 0.05) == excludes).all(), key
        checked += int(excludes.sum())
    assert checked > 0  # some intervals exclude 0, so the equivalence is not vacuous
    assert (table["stars_of"] == "aipw").all()
    assert list(table["stars"]) == list(stars(table["aipw_p"]))
    # the degrees of freedom: design df of a difference of two means (svyttest's) for
    # raw and the propensity methods, svyglm's residual df for the adjusted difference
    h = data.household
    row = table.set_index("indicator").loc["spend_edu"]
    has_y = h.data["spend_edu"].notna().to_numpy()
    assert row.raw_df == h.degf(has_y) - 1
    f = impact_fit(h, "spend_edu", "migration_group", ["hh_size", "region"], "regression",
                   treated=["emigrant", "returnee"], control="none")
    assert f.df == h.degf(has_y) - (1 + 1 + 1 + (h.data["region"].nunique() - 1)) + 1
    lo, hi = f.confint()
    assert (lo < 0 < hi) == (f.p_value >= 0.05)


def test_stars():
    assert list(stars([0.001, 0.02, 0.07, 0.5])) == ["***", "**", "*", ""]


def test_domain_without_migrants_is_an_empty_flagged_row(data):
    """An urban domain of non-migrant households only: impact() raises, the table keeps
    the row with missing differences and a flag."""
    h = data.household
    keep = ~(h.data["urban"].eq("urban").fillna(False).to_numpy(dtype=bool)
             & h.data["migration_group"].isin(["emigrant", "returnee"]).fillna(False).to_numpy())
    g = h.data["migration_group"].where(keep, "other")
    d2 = type(data)(household=h.map(lambda df: df.assign(grp=g)), person=None,
                    indicators=data.indicators)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SurveyWarning)
        t = impact_table(d2, ["spend_edu"], group="grp", domains=["urban"])
    urban = t[t.domain_value == "urban"].iloc[0]
    assert np.isnan(urban.raw_diff) and np.isnan(urban.ipw_diff)
    assert "no treated units in domain" in urban.flag
    assert urban.n_treated == 0
    rural = t[t.domain_value == "rural"].iloc[0]
    assert np.isfinite(rural.ipw_diff)


def test_domains_drop_the_constant_control(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SurveyWarning)
        t = impact_table(data, ["spend_edu"], domains=["region"], methods=("raw", "regression"))
    assert set(t.domain) == {"national", "region"}
    assert t["adj_diff"].notna().all()


def test_missing_controls_warn(data):
    with pytest.warns(SurveyWarning, match="not_a_column"):
        impact_table(data, ["spend_edu"], controls=("hh_size", "not_a_column"),
                     methods=("raw", "regression"))


def test_domain_labels_and_order(data):
    g = group_estimates(data, ["spend_edu"], domains=["head_female"], medians=False)
    assert g["domain"].iloc[0] == "national"
    assert set(g.loc[g.domain == "head_female", "domain_value"]) == {"0", "1"}
