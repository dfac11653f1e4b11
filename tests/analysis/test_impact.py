"""Tests of analysis.impact: golden values from R, a coverage simulation, equivalences
and bad input.

Golden values: tests/data/analysis/impact_golden.csv, made by
tests/data/analysis/impact_goldens.R with R 4.2.2 and survey 4.1.1,
``options(digits = 15)``, on impact_data.csv (a stratified cluster sample: strata
``region``, PSUs ``ea``, weights ``w``; controls ``region + hh_size + female_head``)::

    svyttest(y ~ migrant, des)                                         # raw
    svyglm(y ~ migrant + region + hh_size + female_head, des)          # regression
    ps <- svyglm(migrant ~ region + hh_size + female_head, des, family = quasibinomial())
    # min-max common support on fitted(ps), refit on subset(des, S), then
    # ipw_w = w (migrants), w p / (1 - p) (non-migrants)
    svyglm(y ~ migrant, subset(svydesign(~ea, strata = ~region, weights = ~ipw_w), S))
    # stacked estimating equations for IPW and AIPW written out with matrices in R;
    # the SE is SE(svytotal(~z / w, des)) of their influence values z

for a continuous (``spend``) and a binary (``insured``) outcome, with the degrees of
freedom, the 95% t interval and the t p-value of each (``confint`` and ``summary`` of
the svyglm fits, i.e. t on ``degf - p + 1``; ``svyttest``'s for the raw difference,
df ``degf - 1``; for stacked IPW/AIPW the same ``degf(support) - 1`` as the
fixed-weight svyglm, with ``qt``/``pt`` written out); and
impact_replicate_golden.csv (same script): ``withReplicates(as.svrepdesign(des,
type = "JKn"), theta)`` where ``theta`` refits the propensity (``glm(...,
quasibinomial)``) and, for AIPW, the outcome model with each replicate's weights on
the full-sample support (SEs to 1e-10; estimates to 2e-8, R's glm being stopped at
a relative deviance change of 1e-14 there). Estimates and SEs to
1e-8 relative (R's IRLS stops at a relative deviance change of 1e-8); the suite does
not need R.

Simulation (:func:`test_coverage_simulation`): a population of 24,000 households in
400 EAs and 4 regions with migration confounded by region and household size, and a
known effect of 107 (``survey.demo.EFFECTS["education_spending"]["emigrant"]``) on
education spending; 40 EAs sampled per replicate (stratified by region, migrants
oversampled within EAs; about 396 households, 36 design df, so 35 df for the
differences). 200 replicate samples (seed 20260301), default settings (min-max common
support, stacked linearisation): the raw difference is biased by more than 50; IPW and
AIPW have |bias| below 0.3 SD of the estimator, and their 95% t intervals
(``ImpactFit.confint``, t on 35 df) cover 107 in 90%-99% of samples: about +/- 3
binomial SEs (sqrt(0.95 * 0.05 / 200) = 0.015) around 95%, and they are never less
often right than normal intervals. Observed when written: raw 198.3 (cover 0.00);
IPW 104.9, SD 15.9, cover 0.925 (normal quantiles: 0.925); AIPW 108.0, SD 14.0,
cover 0.920 (normal: 0.915). A longer run (1000 samples, seed 7, binomial SE 0.007)
gave IPW 0.930 (normal 0.924) and AIPW 0.925 (normal 0.915), with root-mean-square
SEs within 1% of the simulated SDs (IPW 14.8 vs 14.9, AIPW 13.5 vs 13.6): the t
quantile adds 0.6-1 point and the SEs are right on average, so the remaining 2-2.5
points of undercoverage come from the variability of the SE itself (40 PSUs in 4
unequal strata carry fewer effective df than 35) and, for IPW, the min-max rule's
shift of about -2. The band is therefore not narrowed around 95%.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.impact import impact, impact_fit, treatment_indicator
from survey import Design
from survey.errors import EstimationError, SurveyWarning

DATA = Path(__file__).parent.parent / "data" / "analysis"
CONTROLS = ["region", "hh_size", "female_head"]
REGIONS = ["north", "south", "east", "west"]


# -- a synthetic population and its samples -----------------------------------------------

def population(rng: np.random.Generator, effect: float, n_ea: int = 400,
               hh_per_ea: int = 60) -> pd.DataFrame:
    """Households whose migration depends on region and size, as does their spending."""
    ea = np.repeat(np.arange(n_ea), hh_per_ea)
    r = ea % 4
    size = 1 + rng.poisson(np.array([2.0, 2.8, 3.5, 4.2])[r])
    lp = -2.2 + np.array([0.0, 0.6, 1.2, -0.5])[r] + 0.35 * (size - 3)
    migrant = rng.random(len(ea)) < 1 / (1 + np.exp(-lp))
    # noise centred within (region, size, migrant) cells: the finite population itself
    # then has no chance imbalance of Y(0) between migrants and others with the same
    # covariates, so its effect on the treated is exactly ``effect`` for every estimator
    noise = pd.Series(rng.normal(0, 100, len(ea)))
    noise = (noise - noise.groupby([r, size, migrant]).transform("mean")).to_numpy()
    spend = 150 + np.array([0, 60, 120, -40])[r] + 45 * size + effect * migrant + noise
    return pd.DataFrame({"ea": ea, "region": np.array(REGIONS)[r], "hh_size": size,
                         "migrant": migrant.astype(float), "spend": spend})


def sample(pop: pd.DataFrame, rng: np.random.Generator, eas=(10, 12, 8, 10),
           take=(4, 6)) -> Design:
    """EAs by SRS within regions; within each EA, ``take`` non-migrant and migrant
    households (all if fewer); weight = (EAs / sampled EAs) * (listed / taken)."""
    ea_region = pop.groupby("ea")["region"].first()
    chosen, f1 = [], {}
    for j, reg in enumerate(REGIONS):
        ids = ea_region.index[ea_region == reg].to_numpy()
        chosen.append(rng.choice(ids, eas[j], replace=False))
        f1[reg] = eas[j] / len(ids)
    s = pop[pop["ea"].isin(np.concatenate(chosen))]
    s = s.assign(_u=rng.random(len(s)))
    g = s.groupby(["ea", "migrant"])["_u"]
    listed = g.transform("size").to_numpy()
    rank = g.rank(method="first").to_numpy()
    m = np.minimum(np.where(s["migrant"] == 1, take[1], take[0]), listed)
    keep = rank <= m
    w = 1 / s["region"].map(f1).to_numpy() * listed / m
    s = s[keep].assign(w=w[keep]).drop(columns="_u").reset_index(drop=True)
    return Design(s, weights="w", strata="region", psu="ea")


# -- golden values from R ----------------------------------------------------------------

GOLD = pd.read_csv(DATA / "impact_golden.csv")


@pytest.fixture(scope="module")
def golden_design() -> Design:
    dat = pd.read_csv(DATA / "impact_data.csv")
    return Design(dat, weights="w", strata="region", psu="ea")


@pytest.mark.parametrize("row", GOLD.to_dict("records"),
                         ids=[f"{r.outcome}-{r.method}-{r.variance}" for r in GOLD.itertuples()])
def test_golden_vs_r(golden_design, row):
    variance = row["variance"] if row["method"] == "ipw" else None
    f = impact_fit(golden_design, row["outcome"], "migrant", CONTROLS, row["method"],
                   variance=variance)
    assert f.estimate == pytest.approx(row["estimate"], rel=1e-8)
    assert f.se == pytest.approx(row["se"], rel=1e-8)
    assert f.df == row["df"]
    assert (f.n_treated, f.n_control) == (row["n_treated"], row["n_control"])
    # t interval and p-value on that df: R's confint/summary of the svyglm fits,
    # svyttest's for the raw difference
    lo, hi = f.confint()
    assert lo == pytest.approx(row["ci_low"], rel=1e-8, abs=1e-10)
    assert hi == pytest.approx(row["ci_high"], rel=1e-8, abs=1e-10)
    assert f.p_value == pytest.approx(row["p"], rel=1e-6)
    est = f.to_estimate()
    assert est.confint()[0] == pytest.approx([lo, hi], rel=1e-12)
    assert est.table["p"].iloc[0] == f.p_value


REP = pd.read_csv(DATA / "impact_replicate_golden.csv")


@pytest.mark.parametrize("row", REP.to_dict("records"),
                         ids=[f"{r.outcome}-{r.method}" for r in REP.itertuples()])
def test_replicate_golden_vs_r(golden_design, row):
    f = impact_fit(golden_design, row["outcome"], "migrant", CONTROLS, row["method"],
                   variance="replicate")
    assert f.variance == "replicate"
    assert f.estimate == pytest.approx(row["estimate"], rel=2e-8)
    assert f.se == pytest.approx(row["se"], rel=1e-10)


def test_impact_estimate_table(golden_design):
    est = impact(golden_design, "spend", "migrant", CONTROLS, "ipw")
    t = est.to_frame()
    assert list(t["variable"]) == ["spend"] and t["method"].iloc[0] == "ipw"
    r = GOLD[(GOLD.outcome == "spend") & (GOLD.method == "ipw")
             & (GOLD.variance == "linearization")].iloc[0]
    q = stats.t.ppf(0.975, r["df"])
    assert t["ci_low"].iloc[0] == pytest.approx(r["estimate"] - q * r["se"], rel=1e-8)
    assert t["p"].iloc[0] == pytest.approx(2 * stats.t.sf(abs(r["estimate"] / r["se"]), r["df"]))
    assert t["n"].iloc[0] == r["n_treated"] + r["n_control"]
    assert t["dropped"].iloc[0] == 396 - t["n"].iloc[0]


# -- equivalences ------------------------------------------------------------------------

def test_treatment_by_levels_equals_indicator(golden_design):
    d = golden_design.map(lambda df: df.assign(
        group=np.where(df["migrant"] == 1, "emigrant", "none")))
    a = impact_fit(d, "spend", "group", CONTROLS, "ipw", treated="emigrant", control="none")
    b = impact_fit(golden_design, "spend", "migrant", CONTROLS, "ipw")
    assert a.estimate == pytest.approx(b.estimate, rel=1e-12)
    assert a.se == pytest.approx(b.se, rel=1e-12)
    t = treatment_indicator(d, "group", ["emigrant"], "none")
    assert np.array_equal(t, golden_design.data["migrant"].to_numpy())


def test_ipw_without_controls_is_the_raw_difference(golden_design):
    """A propensity model with an intercept only gives every comparison unit the same
    odds: IPW equals the raw difference, and so does its SE."""
    raw = impact_fit(golden_design, "spend", "migrant", [], "raw")
    ipw = impact_fit(golden_design, "spend", "migrant", [], "ipw")
    assert ipw.estimate == pytest.approx(raw.estimate, rel=1e-10)
    assert ipw.se == pytest.approx(raw.se, rel=1e-8)


def test_replicate_variance_refits_the_propensity(golden_design):
    """JKn replicates that refit the propensity agree with the stacked linearisation
    (both account for the estimated propensity), not with the fixed-weight SE."""
    lin = impact_fit(golden_design, "spend", "migrant", CONTROLS, "ipw")
    rep = impact_fit(golden_design, "spend", "migrant", CONTROLS, "ipw", variance="replicate")
    assert rep.estimate == pytest.approx(lin.estimate, rel=1e-8)  # IRLS stopping point
    assert rep.variance == "replicate"
    assert rep.se == pytest.approx(lin.se, rel=0.15)
    aipw = impact_fit(golden_design, "spend", "migrant", CONTROLS, "aipw", variance="replicate")
    lin_a = impact_fit(golden_design, "spend", "migrant", CONTROLS, "aipw")
    assert aipw.se == pytest.approx(lin_a.se, rel=0.15)


def test_balance_improves_after_weighting(golden_design):
    f = impact_fit(golden_design, "spend", "migrant", CONTROLS, "ipw")
    b = f.balance
    assert set(b["covariate"]) == {"region=east", "region=north", "region=south", "region=west",
                                   "hh_size", "female_head"}
    assert (b["smd_before"].abs() > 0.1).any()
    assert (b["smd_after"].abs() < 0.1).all()
    assert not b["imbalanced"].any()


def test_matching(golden_design):
    f = impact_fit(golden_design, "spend", "migrant", CONTROLS, "psm")
    lin = impact_fit(golden_design, "spend", "migrant", CONTROLS, "ipw")
    assert abs(f.estimate - lin.estimate) < 3 * lin.se
    assert f.se > 0 and f.n_treated == lin.n_treated
    w = f.weights
    t = golden_design.data["migrant"].to_numpy()
    # matched comparison weights carry the treated units' design weights
    assert w[t == 0].sum() == pytest.approx(w[t == 1].sum(), rel=1e-12)
    f3 = impact_fit(golden_design, "spend", "migrant", CONTROLS, "psm", k=3, caliper=0.05)
    assert f3.dropped_treated >= f.dropped_treated


def test_domain_via_mask(golden_design):
    mask = golden_design.data["region"].isin(["north", "south"]).to_numpy()
    f = impact_fit(golden_design, "spend", "migrant", CONTROLS, "regression", mask=mask)
    sub = Design(golden_design.data[mask].reset_index(drop=True), weights="w", strata="region",
                 psu="ea")
    g = impact_fit(sub, "spend", "migrant", CONTROLS, "regression")
    assert f.estimate == pytest.approx(g.estimate, rel=1e-10)
    assert f.se == pytest.approx(g.se, rel=1e-10)  # the strata outside add nothing here


def test_inputs_not_mutated(golden_design):
    before = golden_design.data.copy()
    impact_fit(golden_design, "spend", "migrant", CONTROLS, "aipw")
    pd.testing.assert_frame_equal(golden_design.data, before)


# -- bad input -----------------------------------------------------------------------------

def test_domain_without_migrants_is_an_error(golden_design):
    mask = (golden_design.data["migrant"] == 0).to_numpy()
    with pytest.raises(EstimationError, match="no 'treated' units|no .*treated") as err:
        impact(golden_design, "spend", "migrant", CONTROLS, "ipw", mask=mask)
    assert "0 treated" in str(err.value) and "domain" in str(err.value)


def test_unknown_columns_suggest(golden_design):
    with pytest.raises(EstimationError, match="hh_size"):
        impact(golden_design, "spend", "migrant", ["hh_sise"], "ipw")
    with pytest.raises(EstimationError, match="treatment column"):
        impact(golden_design, "spend", "migrnt", [], "raw")
    with pytest.raises(EstimationError, match="0/1"):
        impact(golden_design, "spend", "region", [], "raw")
    with pytest.raises(EstimationError, match="method"):
        impact(golden_design, "spend", "migrant", [], "teffects")


def test_perfect_separation_by_a_level_warns_and_trims(golden_design):
    """Every household of the west is made a migrant: the region separates them. They
    are left out by the common-support rule, counted, with a SurveyWarning."""
    d = golden_design.map(lambda df: df.assign(
        migrant=np.where(df["region"] == "west", 1.0, df["migrant"])))
    west = (d.data["region"] == "west").to_numpy()
    with pytest.warns(SurveyWarning, match="separates perfectly.*region = 'west'"):
        f = impact_fit(d, "spend", "migrant", CONTROLS, "ipw")
    assert f.dropped_treated >= int(west.sum())
    assert not f.support[west].any()
    assert np.isfinite(f.estimate) and f.se > 0


def test_complete_separation_is_a_clear_error(golden_design):
    d = golden_design.map(lambda df: df.assign(
        migrant=(df["hh_size"] > 4).astype(float)))
    with pytest.raises(EstimationError, match="separate") as err:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SurveyWarning)
            impact_fit(d, "spend", "migrant", ["hh_size"], "ipw")
    assert err.value.hint


# -- the simulation ------------------------------------------------------------------------

def test_coverage_simulation():
    from survey.demo import EFFECTS

    effect = EFFECTS["education_spending"]["emigrant"]
    rng = np.random.default_rng(20260301)
    pop = population(rng, effect)
    reps = 200
    out = {m: np.empty((reps, 5)) for m in ("raw", "ipw", "aipw")}
    for r in range(reps):
        d = sample(pop, rng)
        for m in out:
            f = impact_fit(d, "spend", "migrant", ["region", "hh_size"], m)
            out[m][r] = (f.estimate, f.se, f.df, *f.confint())  # the package's t interval
    res = {}
    for m, a in out.items():
        assert (a[:, 2] == a[:, 2].round()).all() and (a[:, 2] >= 30).all()
        res[m] = {"bias": a[:, 0].mean() - effect, "sd": a[:, 0].std(),
                  "cover": np.mean((a[:, 3] <= effect) & (effect <= a[:, 4])),
                  "cover_normal": np.mean(np.abs(a[:, 0] - effect) <= 1.959964 * a[:, 1])}
    assert res["raw"]["bias"] > 50, res
    assert res["raw"]["cover"] < 0.2, res
    for m in ("ipw", "aipw"):
        assert abs(res[m]["bias"]) < 0.3 * res[m]["sd"], (m, res)
        assert 0.90 <= res[m]["cover"] <= 0.99, (m, res)
        assert res[m]["cover"] >= res[m]["cover_normal"], (m, res)  # t intervals are wider


def test_singular_replicate_refit_is_a_clear_error(golden_design):
    """A control that varies only inside one EA: the replicate that deletes that EA
    cannot refit the propensity model. A clear EstimationError, not a LinAlgError."""
    ea = golden_design.data["ea"]
    one = golden_design.map(lambda df: df.assign(only_here=(ea == ea.iloc[0]).astype(float)))
    impact_fit(one, "spend", "migrant", [*CONTROLS, "only_here"], "ipw")  # the full sample fits
    with pytest.raises(EstimationError) as e:
        impact_fit(one, "spend", "migrant", [*CONTROLS, "only_here"], "ipw", variance="replicate")
    assert "singular" in str(e.value) and "linearization" in str(e.value)
