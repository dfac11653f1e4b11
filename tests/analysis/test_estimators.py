"""Estimator invariants (property tests) and bad input."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import analysis
from survey import Design
from survey.datasets import load_api
from survey.errors import EstimationError


@st.composite
def samples(draw, min_n: int = 4, max_n: int = 40):
    n = draw(st.integers(min_n, max_n))
    y = draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=n, max_size=n))
    w = draw(st.lists(st.integers(1, 6), min_size=n, max_size=n))
    g = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
    return pd.DataFrame({"y": y, "w": w, "g": g})


@settings(max_examples=60, deadline=None)
@given(samples())
def test_integer_weights_equal_replicated_rows(df: pd.DataFrame) -> None:
    weighted = Design(df, weights="w")
    rows = df.loc[df.index.repeat(df["w"])].reset_index(drop=True).assign(one=1.0)
    expanded = Design(rows, weights="one")
    for fn in (analysis.mean, analysis.total):
        a, b = fn(weighted, "y", by="g").to_frame(), fn(expanded, "y", by="g").to_frame()
        np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-9, atol=1e-9)
    pa = analysis.proportion(weighted, "g").estimate
    pb = analysis.proportion(expanded, "g").estimate
    np.testing.assert_allclose(pa, pb, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(samples(min_n=6))
def test_domain_by_equals_domain_by_mask(df: pd.DataFrame) -> None:
    d = Design(df, weights="w")
    by = analysis.mean(d, "y", by="g", deff=True).to_frame().set_index("g")
    for level in by.index:
        one = analysis.mean(d, "y", mask=(df["g"] == level).to_numpy(), deff=True).to_frame().iloc[0]
        for col in ("estimate", "se", "n", "df"):
            np.testing.assert_allclose(one[col], by.loc[level, col], rtol=1e-9, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=3, max_size=50), st.integers(0, 500))
def test_one_psu_per_row_equals_srs_formula(y: list[float], extra: int) -> None:
    n = len(y)
    N = n + extra
    df = pd.DataFrame({"y": y, "w": N / n, "N": N})
    est = analysis.mean(Design(df, weights="w", fpc="N"), "y")
    s2 = np.var(y, ddof=1)
    se = np.sqrt((1 - n / N) * s2 / n)
    assert est.estimate[0] == pytest.approx(np.mean(y), rel=1e-9, abs=1e-9)
    assert est.se[0] == pytest.approx(se, rel=1e-7, abs=1e-9)
    tot = analysis.total(Design(df, weights="w", fpc="N"), "y")
    assert tot.se[0] == pytest.approx(N * se, rel=1e-7, abs=1e-7)


def test_missing_values_are_a_domain_not_a_filter() -> None:
    c2 = load_api("apiclus2")
    d = Design(c2, psu=["dnum", "snum"], fpc=["fpc1", "fpc2"])
    with_na = analysis.mean(d, "enroll").to_frame().iloc[0]
    as_mask = analysis.mean(d.map(lambda x: x.assign(e0=x["enroll"].fillna(0))), "e0",
                            mask=c2["enroll"].notna().to_numpy()).to_frame().iloc[0]
    assert with_na["n"] == c2["enroll"].notna().sum() < len(c2)
    assert with_na["estimate"] == pytest.approx(as_mask["estimate"], rel=1e-12)
    assert with_na["se"] == pytest.approx(as_mask["se"], rel=1e-12)


def test_vcov_diagonal_equals_variances_and_contrast_of_domains() -> None:
    s = load_api("apistrat")
    d = Design(s, weights="pw", strata="stype", fpc="fpc")
    est = analysis.mean(d, ["api00", "api99"], by="stype", vcov=True)
    np.testing.assert_allclose(np.sqrt(np.diag(est.vcov)), est.se, rtol=1e-10)
    # strata are independent: domains that are strata have zero covariance between them
    v = est.vcov
    assert abs(v[0, 2]) < 1e-9 * np.sqrt(v[0, 0] * v[2, 2])
    # within a domain the two variables are strongly correlated
    assert v[0, 1] / np.sqrt(v[0, 0] * v[1, 1]) > 0.9


def test_many_variables_and_domains_match_one_at_a_time() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    df = pd.DataFrame({"st": rng.integers(0, 5, n), "psu": rng.integers(0, 40, n),
                       "w": rng.uniform(1, 5, n), "dom": rng.integers(0, 7, n)})
    df["psu"] = df["st"] * 100 + df["psu"]
    for j in range(19):  # more than one chunk of variables
        df[f"y{j}"] = rng.normal(j, 1 + j, n)
        df.loc[rng.random(n) < 0.05, f"y{j}"] = np.nan
    d = Design(df, weights="w", strata="st", psu="psu")
    names = [f"y{j}" for j in range(19)]
    allv = analysis.mean(d, names, by="dom").to_frame().set_index(["variable", "dom"])
    for v in ("y0", "y9", "y18"):
        one = analysis.mean(d, v, by="dom").to_frame().set_index(["variable", "dom"])
        pd.testing.assert_frame_equal(allv.loc[one.index], one, rtol=1e-12)


def test_non_numeric_outcome_for_mean() -> None:
    d = Design(load_api("apistrat"), weights="pw", strata="stype")
    with pytest.raises(EstimationError) as e:
        analysis.mean(d, "sch.wide")
    assert e.value.column == "sch.wide" and "proportion" in str(e.value)


def test_by_column_all_missing() -> None:
    s = load_api("apistrat").assign(empty=np.nan)
    d = Design(s, weights="pw", strata="stype")
    with pytest.raises(EstimationError) as e:
        analysis.mean(d, "api00", by="empty")
    assert e.value.column == "empty"


def test_unknown_variable_suggests() -> None:
    d = Design(load_api("apistrat"), weights="pw", strata="stype")
    with pytest.raises(EstimationError) as e:
        analysis.total(d, "api0")
    assert e.value.column == "api0" and "api00" in str(e.value)


def test_empty_domain_gives_nan_not_error() -> None:
    s = load_api("apistrat")
    d = Design(s, weights="pw", strata="stype")
    est = analysis.mean(d, "api00", mask=np.zeros(len(s), dtype=bool)).to_frame().iloc[0]
    assert np.isnan(est["estimate"]) and est["n"] == 0


def test_t_interval_uses_design_df() -> None:
    d = Design(load_api("apiclus1"), weights="pw", psu="dnum")
    est = analysis.mean(d, "api00", ci="t")
    lo, hi = est.confint()[0]
    from scipy import stats
    q = stats.t.ppf(0.975, 14)
    assert hi - lo == pytest.approx(2 * q * est.se[0], rel=1e-12)


@pytest.mark.parametrize("method", ["jk1", "jkn", "bootstrap"])
def test_replicates_from_psu_totals_equal_explicit_weights(method: str) -> None:
    """Replicates made from a design are PSU multipliers; their totals come from PSU
    totals. Rebuilding the same design from the explicit (rows x R) weights must give
    identical estimates and SEs, with and without domains and missing values."""
    c2 = load_api("apiclus2")
    base = Design(c2, weights="pw", psu="dnum") if method == "jk1" else \
        Design(load_api("apistrat"), weights="pw", strata="stype", psu="dnum", nest=True,
               lonely_psu="adjust")
    kw = {"replicates": 40, "rng": np.random.default_rng(5)} if method == "bootstrap" else {}
    fact = base.replicate(method, **kw)
    assert fact.replicates.factors is not None
    cols = [f"r{i}" for i in range(fact.replicates.n_replicates)]
    data = pd.concat([base.data, pd.DataFrame(fact.replicates.weights, columns=cols)], axis=1)
    explicit = Design.from_replicates(data, base.weights, cols, method,
                                      scale=fact.replicates.scale, rscales=fact.replicates.rscales)
    assert not explicit.replicates.factored_for(explicit.w)
    for fn, by in ((analysis.mean, None), (analysis.total, "stype"), (analysis.mean, "stype")):
        a = fn(fact, ["api00", "enroll"], by=by).to_frame()
        b = fn(explicit, ["api00", "enroll"], by=by).to_frame()
        np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-12)
        np.testing.assert_allclose(a["se"], b["se"], rtol=1e-10)
    r1 = analysis.ratio(fact, "api00", "api99").se
    r2 = analysis.ratio(explicit, "api00", "api99").se
    np.testing.assert_allclose(r1, r2, rtol=1e-10)


def _replicate_pair(method: str = "jkn") -> tuple[Design, Design]:
    """The same replicate design twice: as PSU factors and as explicit (rows x R) weights."""
    base = Design(load_api("apistrat"), weights="pw", strata="stype", psu="dnum", nest=True,
                  lonely_psu="adjust")
    fact = base.replicate(method)
    cols = [f"r{i}" for i in range(fact.replicates.n_replicates)]
    data = pd.concat([base.data, pd.DataFrame(fact.replicates.weights, columns=cols)], axis=1)
    explicit = Design.from_replicates(data, base.weights, cols, method,
                                      scale=fact.replicates.scale, rscales=fact.replicates.rscales)
    return fact, explicit


@pytest.mark.parametrize("which", [0, 1])
def test_replicate_missing_values_outside_the_domain_do_not_count(which: int) -> None:
    """A value missing only in rows outside the domain changes nothing in the domain:
    not its n, not its estimate, not its replicate SE (PSU factors and explicit weights)."""
    d = _replicate_pair()[which]
    inside = (d.data["stype"] == "E").to_numpy()
    y = d.data["api00"].to_numpy(dtype=float).copy()
    y[~inside & (np.arange(d.n) % 3 == 0)] = np.nan
    holed = _evolve_data(d, d.data.assign(yh=y))
    a = analysis.mean(holed, ["yh", "enroll"], mask=inside, deff=True).to_frame()
    b = analysis.mean(holed, ["api00", "enroll"], mask=inside, deff=True).to_frame()
    for c in ("estimate", "se", "deff", "n"):
        np.testing.assert_allclose(a[c], b[c], rtol=1e-12)
    assert not np.isnan(a["se"]).any()


def _evolve_data(d: Design, data: pd.DataFrame) -> Design:
    """The design with extra columns (same rows, weights and replicates)."""
    if d.replicates.factors is not None:
        base = Design(data, weights="pw", strata="stype", psu="dnum", nest=True, lonely_psu="adjust")
        return base.replicate(d.replicates.method)
    return Design.from_replicates(data, d.weights, list(d.replicates.columns), d.replicates.method,
                                  scale=d.replicates.scale, rscales=d.replicates.rscales)


@pytest.mark.parametrize("which", [0, 1])
def test_replicate_blocks_of_variables_equal_one_block(which: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replicate designs read variables in blocks bounded in memory; blocks of one or
    two variables give the one-block answer (missing values, deff, domains, ratios)."""
    import analysis.estimators as est

    d = _replicate_pair()[which]
    names = ["api00", "target", "api99", "meals", "acs.k3"]  # target and acs.k3 have missing values
    floats = ["target", "acs.k3", "acs.46", "acs.core"]  # all float64: read as one block
    calls = [lambda: analysis.mean(d, names, by="sch.wide", deff=True, vcov=True),
             lambda: analysis.mean(d, floats, by="stype", deff="replace"),
             lambda: analysis.total(d, names, deff="replace", na="complete"),
             lambda: analysis.ratio(d, ["api00", "target", "meals"], "acs.46", by="stype", deff=True),
             lambda: analysis.proportion(d, "awards", by="stype")]
    whole = [c() for c in calls]
    assert d.data[["target", "acs.k3", "acs.46"]].isna().any().all()
    assert (d.data[floats].dtypes == np.float64).all()
    for rows in (1, 2):
        monkeypatch.setattr(est, "_BLOCK_FLOATS", rows * d.n)
        for c, ref in zip(calls, whole):
            got = c()
            a, b = got.to_frame(), ref.to_frame()
            for col in ("estimate", "se", "deff", "n", "df"):
                np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=1e-12)
            if ref.vcov is not None:
                np.testing.assert_allclose(got.vcov, ref.vcov, rtol=1e-10, atol=1e-14)


def test_rows_with_missing_by_value_are_in_no_domain() -> None:
    s = load_api("apistrat")
    s2 = s.assign(g=s["stype"].where(np.arange(len(s)) % 4 != 0))  # a quarter missing
    d = Design(s2, weights="pw", strata="stype")
    by = analysis.mean(d, "api00", by="g").to_frame().set_index("g")
    for level in ("E", "H", "M"):
        mask = (s2["g"] == level).fillna(False).to_numpy(dtype=bool)
        one = analysis.mean(d, "api00", mask=mask).to_frame().iloc[0]
        assert by.loc[level, "n"] == mask.sum()
        assert by.loc[level, "estimate"] == pytest.approx(one["estimate"], rel=1e-12)
        assert by.loc[level, "se"] == pytest.approx(one["se"], rel=1e-12)
    assert by["n"].sum() == s2["g"].notna().sum()


def test_threaded_scatter_equals_sequential(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large designs scatter columns, and take each column's variance, on a thread pool;
    the numbers must not change (two stages with fpc; lonely PSUs averaged; missing
    values; with and without design effects; ratios)."""
    import analysis.estimators as est

    c2 = load_api("apiclus2")
    s = load_api("apistrat")
    designs = [Design(c2, psu=["dnum", "snum"], fpc=["fpc1", "fpc2"]),
               Design(s, weights="pw", strata="stype", psu="dnum", nest=True, lonely_psu="average")]
    names = ["api00", "enroll", "api99", "meals", "acs.k3", "target"]  # the last two have missing values

    def run() -> list[pd.DataFrame]:
        out = []
        for d in designs:
            have = [v for v in names if v in d.data.columns]
            for deff in (False, True):
                out.append(analysis.mean(d, have, by="stype", deff=deff).to_frame())
                out.append(analysis.total(d, have, deff=deff).to_frame())
            out.append(analysis.ratio(d, ["api00", "meals"], "api99", by="stype", deff=True).to_frame())
        return out

    monkeypatch.setattr(est, "_PARALLEL_ROWS", 10**9)
    monkeypatch.setattr(est, "_PARALLEL_CELLS", 10**9)
    seq = run()
    monkeypatch.setattr(est, "_PARALLEL_ROWS", 0)
    monkeypatch.setattr(est, "_PARALLEL_CELLS", 0)
    assert est._POOL is not None or (os.cpu_count() or 1) == 1
    for a, b in zip(seq, run()):
        pd.testing.assert_frame_equal(a, b)
    assert all(((t["n"] == 0) == t["se"].isna()).all() for t in seq)  # NaN only for empty domains
