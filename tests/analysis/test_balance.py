"""Tests of analysis.balance: standardised differences by hand, weighting equivalences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.balance import balance, covariate_matrix
from survey import Design
from survey.errors import EstimationError


@pytest.fixture
def design() -> Design:
    rng = np.random.default_rng(5)
    n = 300
    df = pd.DataFrame({
        "psu": np.repeat(np.arange(30), 10),
        "w": rng.uniform(1, 5, n),
        "age": rng.normal(45, 12, n),
        "region": pd.array(rng.choice(["a", "b", "c"], n), dtype="string"),
        "t": (rng.random(n) < 0.4).astype(float),
    })
    df.loc[df.index[:5], "age"] = np.nan
    return Design(df, weights="w", psu="psu")


def _smd(x, t, w):
    ok = ~np.isnan(x)
    x, t, w = x[ok], t[ok], w[ok]
    m1 = np.average(x[t == 1], weights=w[t == 1])
    m0 = np.average(x[t == 0], weights=w[t == 0])
    v1 = np.average((x[t == 1] - m1) ** 2, weights=w[t == 1])
    v0 = np.average((x[t == 0] - m0) ** 2, weights=w[t == 0])
    return (m1 - m0) / np.sqrt((v1 + v0) / 2), np.sqrt((v1 + v0) / 2)


def test_smd_by_hand(design):
    t = design.data["t"].to_numpy()
    b = balance(design, t, ["age", "region"])
    assert list(b["covariate"]) == ["age", "region=a", "region=b", "region=c"]
    age = design.data["age"].to_numpy()
    smd, _ = _smd(age, t, design.w)
    assert b.loc[0, "smd_before"] == pytest.approx(smd, rel=1e-12)
    reg_b = (design.data["region"] == "b").to_numpy(dtype=float)
    assert b.loc[2, "smd_before"] == pytest.approx(_smd(reg_b, t, design.w)[0], rel=1e-12)


def test_after_uses_the_before_sd(design):
    t = design.data["t"].to_numpy()
    a = np.where(t == 1, design.w, design.w * 2.0)  # doubling comparison weights: same means
    b = balance(design, t, ["age"], weights=a)
    assert b.loc[0, "smd_after"] == pytest.approx(b.loc[0, "smd_before"], rel=1e-12)
    age = design.data["age"].to_numpy()
    rng = np.random.default_rng(1)
    a2 = design.w * rng.uniform(0.5, 2, design.n)
    b2 = balance(design, t, ["age"], weights=a2)
    m1 = np.average(age[(t == 1) & ~np.isnan(age)], weights=a2[(t == 1) & ~np.isnan(age)])
    m0 = np.average(age[(t == 0) & ~np.isnan(age)], weights=a2[(t == 0) & ~np.isnan(age)])
    sd = _smd(age, t, design.w)[1]
    assert b2.loc[0, "smd_after"] == pytest.approx((m1 - m0) / sd, rel=1e-12)


def test_integer_weights_equal_replicated_rows(design):
    """Weights of 1-3 give the same table as repeating each row that many times."""
    df = design.data.assign(w=np.random.default_rng(3).integers(1, 4, design.n).astype(float))
    d = Design(df, weights="w", psu="psu")
    rep = df.loc[df.index.repeat(df["w"].astype(int))].assign(w=1.0).reset_index(drop=True)
    r = Design(rep, weights="w", psu="psu")
    a = balance(d, df["t"].to_numpy(), ["age", "region"])
    b = balance(r, rep["t"].to_numpy(), ["age", "region"])
    np.testing.assert_allclose(a["smd_before"], b["smd_before"], rtol=1e-10)


def test_mask_and_flags(design):
    t = design.data["t"].to_numpy()
    mask = (design.data["region"] != "c").to_numpy()
    b = balance(design, t, ["region"], mask=mask)
    c = b.set_index("covariate")
    assert np.isnan(c.loc["region=c", "smd_before"]) or c.loc["region=c", "smd_before"] == 0
    assert b["imbalanced"].dtype == bool


def test_bad_input(design):
    with pytest.raises(EstimationError, match="age"):
        balance(design, design.data["t"].to_numpy(), ["agee"])
    with pytest.raises(EstimationError, match="shape"):
        balance(design, np.ones(3), ["age"])


def test_covariate_matrix_keeps_missing():
    df = pd.DataFrame({"x": [1.0, None], "g": pd.array(["u", None], dtype="string")})
    X, names = covariate_matrix(df, ["x", "g"])
    assert names == ["x", "g=u"]
    assert np.isnan(X[1]).all()
