"""Allocation to strata: methods, bounds, rounding that keeps the total."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sampling.allocation import allocate, round_total, strata_summary
from survey.errors import SamplingError

# Worked example of Valliant, Dever & Kreuter (2018), *Practical Tools for Designing
# and Weighting Survey Samples*, ch. 3 (the smho98 hospital strata), reproduced in the
# PracTools vignette "Singlestage-samsize": strAlloc(n.tot = 100, Nh, Sh, alloc = "neyman")
# and the cost-constrained allocation with ch.
NH = np.array([215, 65, 252, 50, 149, 144], dtype=float)
SH = np.array([26787207, 10645109, 6909676, 11085034, 9817762, 44553355], dtype=float)
CH = np.array([1400, 200, 300, 600, 450, 1000], dtype=float)


def _smho() -> pd.DataFrame:
    return pd.DataFrame(
        {"stratum": [f"h{i}" for i in range(1, 7)], "households": NH, "sd": SH, "cost": CH}
    )


def test_neyman_matches_the_textbook_formula_on_the_smho98_example():
    out = allocate(_smho(), 100, "neyman", sd="sd", minimum=0)
    # Cochran (1977) eq. 5.26: n_h = n N_h S_h / sum N_h S_h
    expected = 100 * NH * SH / (NH * SH).sum()
    np.testing.assert_allclose(out["n_exact"], expected, rtol=1e-12)
    assert out["n"].sum() == 100
    assert (np.abs(out["n"] - expected) < 1).all()
    # largest remainder by hand: floors, then +1 to the largest fractional parts
    floors = np.floor(expected)
    up = np.argsort(-(expected - floors))[: int(100 - floors.sum())]
    floors[up] += 1
    assert out["n"].tolist() == floors.astype(int).tolist()


def test_optimal_with_costs_is_proportional_to_NS_over_root_c():
    out = allocate(_smho(), 100, "optimal", sd="sd", cost="cost", minimum=0)
    basis = NH * SH / np.sqrt(CH)  # Cochran (1977) eq. 5.24
    np.testing.assert_allclose(out["n_exact"], 100 * basis / basis.sum(), rtol=1e-12)
    # the cost-constrained allocation of the same example: total cost C = 100000 gives
    # n = C sum(N S / sqrt c) / sum(N S sqrt c); check the shares agree
    n_tot = 100000 * basis.sum() / (NH * SH * np.sqrt(CH)).sum()
    out2 = allocate(_smho(), round(n_tot), "optimal", sd="sd", cost="cost", minimum=0)
    np.testing.assert_allclose(out2["n_exact"] / round(n_tot), basis / basis.sum(), rtol=1e-12)


def test_neyman_minimises_the_variance_among_integer_neighbours():
    out = allocate(_smho(), 100, "neyman", sd="sd", minimum=0)

    def var(n):
        return ((NH / NH.sum()) ** 2 * SH**2 / n * (1 - n / NH)).sum()

    v = var(out["n_exact"].to_numpy())
    rng = np.random.default_rng(1)
    for _ in range(200):
        alt = rng.dirichlet(np.ones(6)) * 100
        assert var(alt) >= v


def test_proportional_equal_power():
    t = pd.DataFrame({"stratum": list("abcd"), "households": [1000, 3000, 500, 5500]})
    prop = allocate(t, 100, "proportional", minimum=0)
    assert prop["n"].tolist() == [10, 30, 5, 55]
    eq = allocate(t, 10, "equal", minimum=0)
    assert sorted(eq["n"].tolist()) == [2, 2, 3, 3] and eq["n"].sum() == 10
    pw = allocate(t, 100, "power", power_q=0.5, minimum=0)
    np.testing.assert_allclose(
        pw["n_exact"], 100 * np.sqrt(t["households"]) / np.sqrt(t["households"]).sum()
    )


def test_cap_at_number_of_eas_redistributes_excess_and_minimum_applies():
    t = pd.DataFrame({"stratum": list("abc"), "households": [9000, 500, 500], "eas": [50, 3, 40]})
    out = allocate(t, 60, "proportional", minimum=4)
    assert out["n"].sum() == 60
    assert out.loc[1, "n"] == 3 and out.loc[1, "take_all"]  # only 3 EAs: all taken
    assert out.loc[0, "n"] == 50 and out.loc[0, "take_all"]  # capped at its 50 EAs
    assert out.loc[2, "n"] == 7  # gets the excess of a and b
    out = allocate(t, 20, "proportional", minimum=2)
    # 9000/10000 * 20 = 18 for a, but b and c need 2 each -> a gets 16
    assert out["n"].tolist() == [16, 2, 2]


def test_infeasible_allocations_explain():
    t = pd.DataFrame({"stratum": list("ab"), "households": [100, 100], "eas": [3, 4]})
    with pytest.raises(SamplingError, match="more than the 7 units"):
        allocate(t, 8)
    with pytest.raises(SamplingError, match="minimum"):
        allocate(t, 3, minimum=2)
    with pytest.raises(SamplingError, match="needs sd"):
        allocate(t, 4, "neyman")
    with pytest.raises(SamplingError, match="appears twice") as err:
        allocate(pd.concat([t, t]), 4)
    assert err.value.stratum == "a"
    with pytest.raises(SamplingError) as err:
        allocate(t, 4, "neyman", sd={"a": 1.0})
    assert err.value.stratum == "b"


def test_strata_summary_counts_eas():
    frame = pd.DataFrame({"stratum": ["x", "x", "y"], "households": [10, 20, 5]})
    s = strata_summary(frame)
    assert s.to_dict("list") == {"stratum": ["x", "y"], "households": [30, 5], "eas": [2, 1]}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0.01, 1e6), min_size=1, max_size=12),
    st.integers(1, 300),
    st.integers(0, 5),
)
def test_rounding_keeps_total_and_bounds(sizes, n, minimum):
    t = pd.DataFrame(
        {
            "stratum": range(len(sizes)),
            "households": sizes,
            "eas": [max(1, int(s) % 40) for s in sizes],
        }
    )
    cap = t["eas"].to_numpy()
    lo = np.minimum(minimum, cap)
    if lo.sum() > n or cap.sum() < n:
        with pytest.raises(SamplingError):
            allocate(t, n, minimum=minimum)
        return
    out = allocate(t, n, minimum=minimum)
    assert out["n"].sum() == n
    assert (out["n"] >= lo).all() and (out["n"] <= cap).all()
    assert (np.abs(out["n"] - out["n_exact"]) < 1 + 1e-9).all()


def test_round_total_largest_remainder():
    assert round_total(np.array([1.5, 1.3, 2.2]), 5).tolist() == [2, 1, 2]
