"""Sample size, Kish design effect of the oversample, and the trade-off table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sampling.plan import kish_deff, plan, tradeoff, tradeoff_figure, weighting_deff
from survey.errors import SamplingError


def test_kish_deff_domain_example_is_1_64():
    # DOMAIN.md: migrants at 10% of households sampled 50/50
    assert kish_deff([0.1, 0.9], [0.5, 0.5]) == pytest.approx(1.64, abs=1e-12)


def test_kish_formula_equals_one_plus_cv2_of_simulated_weights():
    rng = np.random.default_rng(20260101)
    N = 200_000
    migrant = rng.random(N) < 0.10
    # stratified SRS by group: 600 migrant and 600 non-migrant households
    pick_m = rng.choice(np.flatnonzero(migrant), 600, replace=False)
    pick_n = rng.choice(np.flatnonzero(~migrant), 600, replace=False)
    w = np.concatenate([np.full(600, migrant.sum() / 600), np.full(600, (~migrant).sum() / 600)])
    assert len(np.unique(np.concatenate([pick_m, pick_n]))) == 1200
    cv2 = np.var(w) / np.mean(w) ** 2
    W = [migrant.mean(), 1 - migrant.mean()]
    assert weighting_deff(w) == pytest.approx(1 + cv2, rel=1e-12)
    assert weighting_deff(w) == pytest.approx(kish_deff(W, [0.5, 0.5]), rel=1e-12)
    assert weighting_deff(w) == pytest.approx(1.64, abs=0.01)
    # Bernoulli sampling (random group sample sizes): close to 1.64, not exact
    take = rng.random(N) < np.where(migrant, 0.03, 0.0033)
    w2 = np.where(migrant, 1 / 0.03, 1 / 0.0033)[take]
    assert weighting_deff(w2) == pytest.approx(kish_deff(W, [0.5, 0.5]), abs=0.06)


def _strata(**extra) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "stratum": ["A"],
            "households": [100_000],
            "eas": [1000],
            "share_emigrant": [0.05],
            "share_returnee": [0.05],
        }
        | extra
    )


def test_plan_single_stratum_reproduces_hand_calculation():
    pl = plan(
        _strata(),
        100,
        {"emigrant": 5, "returnee": 5, "none": 10},
        icc=0.0,
        response_rate=1.0,
        cost_ea=500,
        cost_hh=20,
    )
    s = pl.summary
    assert s["eas"] == 100 and s["respondents"] == 2000
    # sample shares .25/.25/.5 against .05/.05/.9: .0025/.25*2 + .81/.5 = 1.64
    assert s["kish_deff"] == pytest.approx(1.64)
    assert s["deff_weighting"] == pytest.approx(1.64)
    z = 1.959963984540054
    assert s["moe_national"] == pytest.approx(z * np.sqrt(0.25 / (2000 / 1.64)))
    # migrant domain: 1000 respondents, equal weights within it; non-migrant: 1000
    assert s["moe_difference"] == pytest.approx(z * np.sqrt(0.25 / 1000 + 0.25 / 1000))
    assert s["cost"] == pytest.approx(100 * 500 + 2000 * 20)
    g = pl.groups.set_index("group")
    assert g.loc["emigrant", "n"] == 500 and g.loc["all", "n_eff"] == pytest.approx(2000 / 1.64)


def test_plan_clusters_response_and_take_all():
    # 100 households per EA, 2% emigrants -> 2 listed per EA, take 5 -> all 2 taken
    st = _strata(share_emigrant=[0.02])
    pl = plan(st, 100, {"emigrant": 5, "returnee": 5, "none": 10}, icc=0.1, response_rate=0.8)
    rows = pl.strata.set_index("group")
    assert rows.loc["emigrant", "m"] == pytest.approx(2.0)
    assert rows.loc["emigrant", "r"] == pytest.approx(1.6)
    g = pl.groups.set_index("group")
    b = g.loc["none", "n"] / 100
    assert g.loc["none", "deff_c"] == pytest.approx(1 + (b - 1) * 0.1)


def test_plan_target_moe_finds_smallest_number_of_eas():
    st = pd.DataFrame(
        {
            "stratum": ["A", "B"],
            "households": [60_000, 40_000],
            "eas": [600, 400],
            "share_emigrant": [0.08, 0.04],
            "share_returnee": [0.04, 0.02],
        }
    )
    take = {"emigrant": 7, "returnee": 7, "none": 7}
    pl = plan(st, None, take, target_moe=0.06)
    n = pl.summary["eas"]
    assert pl.summary["moe_difference"] <= 0.06
    assert plan(st, n - 1, take).summary["moe_difference"] > 0.06
    with pytest.raises(SamplingError, match="even all"):
        plan(st, None, take, target_moe=0.001)


def test_plan_bad_shares_name_the_stratum():
    st = _strata(share_emigrant=[0.7], share_returnee=[0.5])
    with pytest.raises(SamplingError) as err:
        plan(st, 10, {"emigrant": 7})
    assert err.value.stratum == "A"


def test_tradeoff_goes_from_proportional_to_equal():
    st = pd.DataFrame(
        {
            "stratum": ["A", "B"],
            "households": [60_000, 40_000],
            "eas": [600, 400],
            "share_emigrant": [0.08, 0.04],
            "share_returnee": [0.04, 0.02],
        }
    )
    t = tradeoff(st, 100, 21, steps=6, cost_ea=400, cost_hh=15)
    assert len(t) == 6 and t["split"].iloc[0] == 0 and t["split"].iloc[-1] == 1
    assert t["kish_deff"].iloc[0] == pytest.approx(1.0)
    assert t[["take_emigrant", "take_returnee", "take_none"]].iloc[-1].tolist() == pytest.approx(
        [7, 7, 7]
    )
    # the comparison gets much better; with three groups the equal split gives migrant
    # households 2/3 of the take, past the 50/50 optimum, so the curve turns up at the end
    assert t["moe_difference"].iloc[-1] < 0.75 * t["moe_difference"].iloc[0]
    assert (np.diff(t["moe_difference"].iloc[:3]) < 0).all()
    assert (np.diff(t["moe_national"]) > 0).all()  # national estimate pays for it
    fig = tradeoff_figure(t)
    assert len(fig.data) == 3 and list(fig.data[1].y) == t["moe_difference"].tolist()
