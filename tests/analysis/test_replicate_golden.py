"""Replicate designs made from a design, against R ``survey``.

Golden values: ``tests/data/core/golden_replicate.csv`` from
``tests/data/core/make_golden_replicate.R`` (R 4.2.2 Patched (2022-11-10 r83330), survey
4.1.1, ``options(digits = 15)``): ``as.svrepdesign`` of a stratified design (JKn), a
one-stage cluster design (JK1) and a stratified cluster design (JKn), then ``svymean``,
``svytotal`` (``na.rm=TRUE``, ``deff=TRUE`` and ``"replace"``), ``svyby`` and
``svyratio``. Here the same designs are made with ``Design.replicate``, which keeps
the replicates as PSU factors, so these values check the estimators' PSU-total path
(missing values, domains, design effects) against R. Estimates to 1e-9 relative,
SEs and design effects to 1e-8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis
from survey import Design
from survey.datasets import load_api

GOLD = pd.read_csv(Path(__file__).parents[1] / "data" / "core" / "golden_replicate.csv",
                   dtype={"domain": "string"}, keep_default_na=False, na_values=["NA"])
GOLD["domain"] = GOLD["domain"].fillna("")
VARS = ["api00", "acs.k3", "acs.46", "target"]


def _designs() -> dict[str, Design]:
    strat, clus1 = load_api("apistrat"), load_api("apiclus1")
    return {
        "jkn": Design(strat, weights="pw", strata="stype").replicate("jkn"),
        "jk1": Design(clus1, weights="pw", psu="dnum").replicate("jk1"),
        "jkn_clus": Design(strat, weights="pw", strata="stype", psu="dnum", nest=True).replicate("jkn"),
    }


DESIGNS = _designs()


def _close(ours: pd.DataFrame, stat: str, name: str, keys: list[str], cols=("estimate", "se")) -> None:
    gold = GOLD[(GOLD["design"] == name) & (GOLD["stat"] == stat)]
    assert len(gold) > 0
    m = gold.merge(ours, on=keys, suffixes=("_r", ""), how="left", validate="one_to_one")
    assert len(m) == len(gold) and not m["estimate"].isna().any()
    for c in cols:
        tol = 1e-9 if c == "estimate" else 1e-8
        np.testing.assert_allclose(m[c].to_numpy(float), m[f"{c}_r"].to_numpy(float), rtol=tol, atol=0,
                                   err_msg=f"{name} {stat} {c}")


@pytest.mark.parametrize("name", list(DESIGNS))
def test_replicate_means_totals_and_deff_match_r(name: str) -> None:
    d = DESIGNS[name]
    assert d.replicates.factors is not None  # the PSU-factor path is the one under test
    _close(analysis.mean(d, VARS, deff=True).to_frame(), "mean_deff", name, ["variable"],
           ("estimate", "se", "deff"))
    _close(analysis.mean(d, VARS, deff="replace").to_frame(), "mean_replace", name, ["variable"],
           ("estimate", "se", "deff"))
    _close(analysis.total(d, VARS, deff=True).to_frame(), "total_deff", name, ["variable"],
           ("estimate", "se", "deff"))
    _close(analysis.mean(d, ["api00", "meals"], deff=True, na="complete").to_frame(), "mean_two", name,
           ["variable"], ("estimate", "se", "deff"))


@pytest.mark.parametrize("name", list(DESIGNS))
def test_replicate_domains_and_ratios_match_r(name: str) -> None:
    d = DESIGNS[name]
    by = analysis.mean(d, VARS, by="sch.wide").to_frame().rename(columns={"sch.wide": "domain"})
    by["domain"] = by["domain"].astype("string")
    _close(by, "mean_by", name, ["variable", "domain"])
    r = pd.concat([analysis.ratio(d, "api00", "api99").to_frame(),
                   analysis.ratio(d, "acs.k3", "acs.46").to_frame()])
    _close(r, "ratio", name, ["variable"])
