"""Means, totals, ratios and proportions against R ``survey``, number for number.

Golden values: ``tests/data/core/golden.csv``, made by ``tests/data/core/make_golden.R``
(run from the repository root) with R 4.2.2 Patched (2022-11-10 r83330) and survey
4.1.1, ``options(digits = 15)``, values written with ``sprintf("%.17g")``. The R calls
are, per design ``d``:

    svymean(~v, d, na.rm=TRUE, deff=TRUE); svymean(~v, d, na.rm=TRUE, deff="replace")
    svytotal(...) likewise; svyby(~v, ~stype, d, svymean|svytotal, na.rm=TRUE, deff=TRUE)
    svymean(~api00 + enroll, d, na.rm=TRUE)             # complete cases
    svyratio(~api00, ~api99, d, deff=TRUE); svyratio(~enroll, ~api.stu, d, na.rm=TRUE, deff="replace")
    svyby(~api00, ~stype, d, svyratio, denominator=~api99, deff=TRUE)
    svymean(~factor(sch.wide), d); svyciprop(~I(sch.wide == lev), d, method="logit")
    svyby(~I(sch.wide == "Yes"), ~stype, d, svyciprop, vartype=c("se","ci"))
    svymean(~api00, subset(d, both == "Yes"))

for the api designs, lonely-PSU designs under every ``survey.lonely.psu`` option, and
replicate designs (JK1, JKn, bootstrap, Fay, JK1 with mse=TRUE). Estimates agree to
1e-9 relative, standard errors to 1e-8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis
from survey import Design
from survey.datasets import load_api

DATA = Path(__file__).parents[1] / "data" / "core"
GOLD = pd.read_csv(DATA / "golden.csv", dtype={"domain": "string"}, keep_default_na=False,
                   na_values=["NA"])
GOLD["domain"] = GOLD["domain"].fillna("")
REL_EST, REL_SE = 1e-9, 1e-8


def _designs() -> dict[str, Design]:
    strat, clus1, clus2, srs = (load_api(n) for n in ("apistrat", "apiclus1", "apiclus2", "apisrs"))
    lon = pd.read_csv(DATA / "lonely.csv", dtype={"cds": "string"})
    out = {
        "strat": Design(strat, weights="pw", strata="stype", fpc="fpc"),
        "strat_nofpc": Design(strat, weights="pw", strata="stype"),
        "clus1": Design(clus1, weights="pw", psu="dnum", fpc="fpc"),
        "clus1_nofpc": Design(clus1, weights="pw", psu="dnum"),
        "clus2": Design(clus2, psu=["dnum", "snum"], fpc=["fpc1", "fpc2"]),
        "clus2_nofpc": Design(clus2, weights="pw", psu=["dnum", "snum"]),
        "srs": Design(srs, fpc="fpc"),
    }
    for how in ("adjust", "average", "certainty", "remove"):
        out[f"lonely_{how}_none"] = Design(lon, weights="pw", strata="st", psu="dnum", lonely_psu=how)
        out[f"lonely_{how}_N"] = Design(lon, weights="pw", strata="st", psu="dnum", fpc="N", lonely_psu=how)
    out["lonely_fail_certainty"] = Design(lon, weights="pw", strata="st", psu="dnum", fpc="Ncert")
    reps = lambda f: pd.read_csv(DATA / f, dtype={"cds": "string"})  # noqa: E731
    jkn_rscales = pd.read_csv(DATA / "jkn_rscales.csv")["rscales"].to_numpy()
    out["rep_jk1"] = Design.from_replicates(reps("jk1_weights.csv"), "pw", r"^rep\d+$", "jk1")
    out["rep_jk1_mse"] = Design.from_replicates(reps("jk1_weights.csv"), "pw", r"^rep\d+$", "jk1",
                                                scale=14 / 15, mse=True)
    out["rep_jkn"] = Design.from_replicates(reps("jkn_weights.csv"), "pw", r"^rep\d+$", "jkn",
                                            rscales=jkn_rscales)
    out["rep_boot"] = Design.from_replicates(reps("boot_weights.csv"), "pw", r"^rep\d+$", "bootstrap")
    out["rep_fay"] = Design.from_replicates(reps("jkn_weights.csv"), "pw", r"^rep\d+$", "fay", rho=0.3)
    return out


DESIGNS = _designs()


def _check(frame: pd.DataFrame, gold: pd.DataFrame, keys: list[str], what: tuple[str, ...] = ("estimate", "se")):
    assert len(gold) > 0
    m = gold.merge(frame, on=keys, suffixes=("_r", ""), how="left", validate="one_to_one")
    assert not m["estimate"].isna().all(), "no rows matched"
    for col in what:
        tol = REL_EST if col == "estimate" else REL_SE
        r = m[f"{col}_r"].to_numpy(dtype=float)
        ours = m[col].to_numpy(dtype=float)
        np.testing.assert_allclose(ours, r, rtol=tol, atol=0, err_msg=f"{col} differs from R")


def _gold(design: str, stat: str) -> pd.DataFrame:
    return GOLD[(GOLD["design"] == design) & (GOLD["stat"] == stat)].reset_index(drop=True)


LINEAR = [n for n in DESIGNS if not n.startswith(("lonely", "rep"))]


@pytest.mark.parametrize("name", LINEAR)
@pytest.mark.parametrize("stat", ["mean", "total"])
def test_mean_total_with_deff(name: str, stat: str) -> None:
    d = DESIGNS[name]
    fn = getattr(analysis, stat)
    est = fn(d, ["api00", "enroll", "api99"], deff=True).to_frame()
    _check(est, _gold(name, stat), ["variable"], ("estimate", "se", "deff", "df"))
    est = fn(d, ["api00", "enroll", "api99"], deff="replace").to_frame()
    _check(est, _gold(name, f"{stat}_replace"), ["variable"], ("estimate", "se", "deff"))


@pytest.mark.parametrize("name", LINEAR)
@pytest.mark.parametrize("stat", ["mean", "total"])
def test_by_domain_with_deff(name: str, stat: str) -> None:
    d = DESIGNS[name]
    est = getattr(analysis, stat)(d, ["api00", "enroll", "api99"], by="stype", deff=True).to_frame()
    gold = _gold(name, f"{stat}_by").rename(columns={"domain": "stype"})
    _check(est, gold, ["variable", "stype"], ("estimate", "se", "deff", "df"))


@pytest.mark.parametrize("name", LINEAR)
def test_complete_cases(name: str) -> None:
    est = analysis.mean(DESIGNS[name], ["api00", "enroll"], na="complete").to_frame()
    _check(est, _gold(name, "mean_complete"), ["variable"])


@pytest.mark.parametrize("name", [n for n in DESIGNS if not n.startswith("lonely")])
def test_ratio(name: str) -> None:
    d = DESIGNS[name]
    _check(analysis.ratio(d, "api00", "api99").to_frame(), _gold(name, "ratio"), ["variable"])
    if not name.startswith("rep"):
        _check(analysis.ratio(d, "api00", "api99", deff=True).to_frame(), _gold(name, "ratio"),
               ["variable"], ("estimate", "se", "deff"))
        _check(analysis.ratio(d, "enroll", "api.stu", deff="replace").to_frame(),
               _gold(name, "ratio_replace"), ["variable"], ("estimate", "se", "deff"))
        gold = _gold(name, "ratio_by").rename(columns={"domain": "stype"})
        _check(analysis.ratio(d, "api00", "api99", by="stype", deff=True).to_frame(), gold,
               ["variable", "stype"], ("estimate", "se", "deff"))


@pytest.mark.parametrize("name", [n for n in DESIGNS if not n.startswith("lonely")])
def test_proportion_levels(name: str) -> None:
    est = analysis.proportion(DESIGNS[name], "sch.wide").to_frame()
    gold = _gold(name, "prop").rename(columns={"variable": "level"})
    _check(est, gold, ["level"])


@pytest.mark.parametrize("name", LINEAR)
def test_proportion_logit_interval(name: str) -> None:
    est = analysis.proportion(DESIGNS[name], "sch.wide").to_frame()
    gold = _gold(name, "prop_logit_exact").rename(columns={"variable": "level"})
    _check(est, gold, ["level"], ("estimate", "se", "ci_low", "ci_high", "df"))
    by = analysis.proportion(DESIGNS[name], "sch.wide", by="stype").to_frame()
    gold = _gold(name, "prop_logit_exact_by").rename(columns={"variable": "level", "domain": "stype"})
    _check(by, gold, ["level", "stype"], ("estimate", "se", "ci_low", "ci_high", "df"))


@pytest.mark.parametrize("name", LINEAR)
def test_proportion_logit_matches_svyciprop(name: str) -> None:
    """svyciprop itself: its IRLS stops at glm's tolerance, so agreement is to ~1e-9."""
    for stat, keys, by in (("prop_logit", ["level"], None), ("prop_logit_by", ["level", "stype"], "stype")):
        est = analysis.proportion(DESIGNS[name], "sch.wide", by=by).to_frame()
        gold = _gold(name, stat).rename(columns={"variable": "level", "domain": "stype"})
        m = gold.merge(est, on=keys, suffixes=("_r", ""))
        assert len(m) == len(gold) > 0
        for col in ("estimate", "ci_low", "ci_high"):
            np.testing.assert_allclose(m[col], m[f"{col}_r"], rtol=1e-6)


@pytest.mark.parametrize("name", LINEAR)
def test_domain_by_mask_equals_subset(name: str) -> None:
    d = DESIGNS[name]
    mask = (d.data["both"] == "Yes").to_numpy()
    est = analysis.mean(d, "api00", mask=mask).to_frame()
    _check(est, _gold(name, "mean_subset_both"), ["variable"])


LONELY = [n for n in DESIGNS if n.startswith("lonely_") and n != "lonely_fail_certainty"]


@pytest.mark.parametrize("name", LONELY)
def test_lonely_psu_options(name: str) -> None:
    d = DESIGNS[name]
    for stat in ("mean", "total"):
        fn = getattr(analysis, stat)
        _check(fn(d, ["api00", "enroll"]).to_frame(), _gold(name, stat), ["variable"])
        gold = _gold(name, f"{stat}_by").rename(columns={"domain": "stype"})
        _check(fn(d, ["api00", "enroll"], by="stype").to_frame(), gold, ["variable", "stype"])


def test_certainty_stratum_passes_under_fail() -> None:
    d = DESIGNS["lonely_fail_certainty"]
    for stat in ("mean", "total"):
        _check(getattr(analysis, stat)(d, "api00").to_frame(), _gold("lonely_fail_certainty", stat),
               ["variable"])


REPS = [n for n in DESIGNS if n.startswith("rep_")]


@pytest.mark.parametrize("name", REPS)
def test_replicate_designs(name: str) -> None:
    d = DESIGNS[name]
    for stat in ("mean", "total"):
        _check(getattr(analysis, stat)(d, ["api00", "enroll"]).to_frame(), _gold(name, stat), ["variable"])
    gold = _gold(name, "mean_by").rename(columns={"domain": "stype"})
    _check(analysis.mean(d, ["api00", "enroll"], by="stype").to_frame(), gold, ["variable", "stype"])
