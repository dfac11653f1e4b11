"""Means, totals, ratios and proportions, for many variables and domains in one pass.

Each estimator reads the data once into (PSU x domain) cell sums and derives every
variance from them (see :mod:`survey.variance`). Domains are masks: rows outside a
domain keep their place in the design with weight zero, as R's ``svyby`` does, so
domain standard errors count every PSU of every stratum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from analysis._prep import Domains, as_list, check_column, domains, numeric_matrix, presence
from survey.design import Design
from survey.errors import EstimationError
from survey.estimate import Estimate
from survey.variance import (
    cell_sums,
    linearized_variance,
    linearized_vcov,
    ratio_variance,
    replicate_variance,
    replicate_vcov,
)

__all__ = ["mean", "proportion", "ratio", "total"]

Deff = bool | Literal["replace"]
NA = Literal["available", "complete"]
_CHUNK = 8  # variables per pass: bounds memory at n x 2 x _CHUNK floats


def _by_sum(code: np.ndarray, inside: np.ndarray, x: np.ndarray, D: int) -> np.ndarray:
    """Column sums of x (n, k) per domain -> (D, k)."""
    c = np.where(inside, code, D)  # rows outside go to a discard bin
    out = np.empty((D, x.shape[1]))
    for j in range(x.shape[1]):
        out[:, j] = np.bincount(c, weights=x[:, j], minlength=D + 1)[:D]
    return out


def _domain_degf(design: Design, dom: Domains) -> np.ndarray:
    """R's ``degf`` of each domain's subset design: PSUs minus strata with rows there."""
    if design.replicates is not None:
        return np.full(dom.n, design.degf(), dtype=float)
    st = design.stages[0]
    inside = (dom.code >= 0) & (design.w != 0)
    d = dom.code[inside]
    npsu = np.bincount(np.unique(d * st.n_unit_total + st.unit[inside]) // st.n_unit_total, minlength=dom.n)
    nstr = np.bincount(np.unique(d * st.n_groups + st.group[inside]) // st.n_groups, minlength=dom.n)
    return (npsu - nstr).astype(float)


def _linear(design: Design, y: np.ndarray, x: np.ndarray | None, dom: Domains,
            kind: str, want_vcov: bool = False) -> dict[str, np.ndarray]:
    """Estimates and variances of totals, means or ratios of the columns of y, per domain.

    Returns arrays of shape (D, k): estimate, var, n, wsum (sum of weights of rows
    with values), s2 (weighted variance of y, for design effects); and ``vcov``
    (D*k x D*k, domain-major) when ``want_vcov``.
    """
    n, k = y.shape
    D = dom.n
    w = design.w
    inside = dom.code >= 0
    code = np.where(inside, dom.code, 0)
    m = ~np.isnan(y) if x is None else ~np.isnan(y) & ~np.isnan(x)
    m &= inside[:, None]
    wm = np.where(m, w[:, None], 0.0)
    wy = np.where(m, y, 0.0) * wm
    wx = wm if x is None else np.where(m, x, 0.0) * wm
    Y = _by_sum(code, inside, wy, D)
    W = _by_sum(code, inside, wm, D)
    X = W if x is None else _by_sum(code, inside, wx, D)
    nobs = _by_sum(code, inside, (m & (w != 0)[:, None]).astype(float), D)
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "total":
            est, ratio, denom = Y, np.zeros_like(Y), np.ones_like(Y)
        else:
            est = Y / X
            ratio, denom = est, X
        ybar = Y / W
        dev = np.where(m, y - ybar[code], 0.0)
        s2 = _by_sum(code, inside, wm * dev * dev, D) / W * nobs / (nobs - 1)
    vcov = None
    if design.replicates is not None:
        var, reps = _replicate_linear(design, y, x, m, dom, kind, est)
        if want_vcov:
            vcov = replicate_vcov(design, est.ravel(), reps.reshape(D * k, -1))
    elif design.calibrations:
        var = _calibrated_linear(design, wy, wx, code, inside, ratio, denom, D)
    else:
        var = np.empty((D, k))
        pres = presence(design, dom, m, len(design.stages))
        for lo in range(0, k, _CHUNK):
            sl = slice(lo, min(lo + _CHUNK, k))
            vals = np.concatenate([wy[:, sl], wx[:, sl]], axis=1)
            cells = cell_sums(design, vals, dom.code, D)
            p = [q[:, sl] for q in pres] if pres is not None else None
            var[:, sl] = ratio_variance(design, cells, ratio[:, sl], denom[:, sl], sl.stop - lo, p)
    if want_vcov and design.replicates is None:
        # the full covariance (for contrasts) needs the influence values of every estimate
        cols = [(d, j) for d in range(D) for j in range(k)]
        vcov = linearized_vcov(design, _influence(wy, wx, code, inside, ratio, denom, cols))
    return {"estimate": est, "var": var, "n": nobs, "wsum": W, "s2": s2, "vcov": vcov}


def _influence(wy: np.ndarray, wx: np.ndarray, code: np.ndarray, inside: np.ndarray,
               ratio: np.ndarray, denom: np.ndarray, cols: Sequence[tuple[int, int]]) -> np.ndarray:
    """Weighted influence values (n x len(cols)) of the (domain, variable) estimates."""
    z = np.zeros((wy.shape[0], len(cols)))
    for c, (d, j) in enumerate(cols):  # per estimate column, not per row
        rows = inside & (code == d)
        z[rows, c] = (wy[rows, j] - ratio[d, j] * wx[rows, j]) / denom[d, j]
    return z


def _calibrated_linear(design: Design, wy: np.ndarray, wx: np.ndarray, code: np.ndarray,
                       inside: np.ndarray, ratio: np.ndarray, denom: np.ndarray, D: int) -> np.ndarray:
    """Variances on a calibrated design: materialise influence values, a chunk at a time."""
    n, k = wy.shape
    var = np.empty((D, k))
    cols = [(d, j) for d in range(D) for j in range(k)]
    step = max(1, min(len(cols), 4_000_000 // max(n, 1)))
    for lo in range(0, len(cols), step):
        chunk = cols[lo: lo + step]
        v = linearized_variance(design, _influence(wy, wx, code, inside, ratio, denom, chunk))
        for c, (d, j) in enumerate(chunk):
            var[d, j] = v[c]
    return var


def _replicate_linear(design: Design, y: np.ndarray, x: np.ndarray | None, m: np.ndarray,
                      dom: Domains, kind: str, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replicate variances, and the replicate estimates (D, k, R), from one sparse
    product per variable."""
    info = design.replicates
    Wr = info.weights
    n, k = y.shape
    D = dom.n
    rows = np.arange(n)
    var = np.empty((D, k))
    reps = np.empty((D, k, Wr.shape[1]))
    for j in range(k):
        r = rows[m[:, j]]
        d = dom.code[r]
        ind_y = sp.csr_matrix((y[r, j], (d, r)), shape=(D, n))
        xs = np.ones(len(r)) if x is None else x[r, j]
        ind_x = sp.csr_matrix((xs, (d, r)), shape=(D, n))
        Yr = np.asarray(ind_y @ Wr)
        if kind == "total":
            theta = Yr
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                theta = Yr / np.asarray(ind_x @ Wr)
        var[:, j] = replicate_variance(design, est[:, j], theta)
        reps[:, j] = theta
    return var, reps


def _deff(kind: str, deff: Deff, res: dict[str, np.ndarray]) -> np.ndarray:
    v, s2, nobs, N = res["var"], res["s2"], res["n"], res["wsum"]
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "mean":
            vsrs = s2 / nobs if deff == "replace" else np.where(N < nobs, np.nan, s2 * (N - nobs) / (N * nobs))
        else:
            vsrs = s2 * N * N / nobs if deff == "replace" else s2 * N * N * (N - nobs) / (N * nobs)
        return v / vsrs


def _table(statistic: str, names: Sequence[str], dom: Domains, res: dict[str, np.ndarray],
           deff: Deff, design: Design, extra: dict[str, Sequence] | None = None) -> pd.DataFrame:
    D, k = res["estimate"].shape
    df = _domain_degf(design, dom)
    parts = {"variable": np.tile(np.asarray(names, dtype=object), D)}
    if extra:
        for key, vals in extra.items():
            parts[key] = np.tile(np.asarray(vals, dtype=object), D)
    out = pd.DataFrame(parts)
    for c in dom.by:
        out[c] = np.repeat(dom.keys[c].to_numpy(), k)
    out["estimate"] = res["estimate"].ravel()
    out["se"] = np.sqrt(np.maximum(res["var"].ravel(), 0.0))
    out["df"] = np.repeat(df, k)
    out["deff"] = _deff(statistic if statistic != "proportion" else "mean", deff, res).ravel() \
        if deff else np.nan
    out["n"] = res["n"].ravel().astype(np.int64)
    return out


def _prepare_na(y: np.ndarray, x: np.ndarray | None, na: NA) -> tuple[np.ndarray, np.ndarray | None]:
    if na == "available":
        return y, x
    if na != "complete":
        raise EstimationError(f"na={na!r} is not 'available' or 'complete'")
    bad = np.isnan(y).any(axis=1) | (np.isnan(x).any(axis=1) if x is not None else False)
    y = np.where(bad[:, None], np.nan, y)
    return y, (np.where(bad[:, None], np.nan, x) if x is not None else None)


def mean(design: Design, variables: str | Sequence[str], by: str | Sequence[str] | None = None, *,
         mask: np.ndarray | None = None, deff: Deff = False, na: NA = "available",
         level: float = 0.95, ci: Literal["normal", "t"] = "normal", vcov: bool = False) -> Estimate:
    """Weighted means with design-based standard errors.

    Parameters
    ----------
    design
        The sample design.
    variables
        One numeric column or a list of them.
    by
        Domain column(s); every combination present in the data is a domain.
    mask
        A boolean domain restriction (one per row), combined with ``by``.
    deff
        Design effect against simple random sampling without replacement (True) or
        with replacement (``"replace"``).
    na
        ``"available"``: each variable uses the rows where it is recorded (R's
        ``svymean(~y, design, na.rm=TRUE)`` for each variable alone); ``"complete"``:
        rows missing any of the variables are left out of all (R's multi-variable
        call with ``na.rm=TRUE``). Either way missing rows are a domain, not a filter.
    level, ci
        Confidence level and interval type: normal (R's ``confint`` default) or t
        with the domain's design degrees of freedom.

    Notes
    -----
    The linearised variance uses ``z_i = w_i (y_i - ybar_d) / W_d`` in the domain.
    ``df`` is R's ``degf`` of the domain's subset design (PSUs minus strata with rows
    in the domain).

    References
    ----------
    Lumley (2010), section 2.2; Sarndal, Swensson and Wretman (1992), section 5.8.
    """
    names = as_list(variables)
    dom = domains(design, by, mask)
    y, _ = _prepare_na(numeric_matrix(design, names, "mean"), None, na)
    res = _linear(design, y, None, dom, "mean", vcov)
    return Estimate("mean", _table("mean", names, dom, res, deff, design), vcov=res["vcov"], ci=ci,
                    level=level, by=dom.by)


def total(design: Design, variables: str | Sequence[str], by: str | Sequence[str] | None = None, *,
          mask: np.ndarray | None = None, deff: Deff = False, na: NA = "available",
          level: float = 0.95, ci: Literal["normal", "t"] = "normal", vcov: bool = False) -> Estimate:
    """Weighted totals (Horvitz-Thompson) with design-based standard errors.

    Parameters are those of :func:`mean`. Under ``lonely_psu="adjust"`` a single-PSU
    stratum contributes its whole PSU total (R centres it at zero, not at the mean).

    References
    ----------
    Horvitz and Thompson (1952); Lumley (2010), section 2.2.
    """
    names = as_list(variables)
    dom = domains(design, by, mask)
    y, _ = _prepare_na(numeric_matrix(design, names, "total"), None, na)
    res = _linear(design, y, None, dom, "total", vcov)
    return Estimate("total", _table("total", names, dom, res, deff, design), vcov=res["vcov"], ci=ci,
                    level=level, by=dom.by)


def ratio(design: Design, numerator: str | Sequence[str], denominator: str | Sequence[str],
          by: str | Sequence[str] | None = None, *, mask: np.ndarray | None = None,
          level: float = 0.95, ci: Literal["normal", "t"] = "normal", vcov: bool = False) -> Estimate:
    """Ratios of weighted totals, ``sum(w y) / sum(w x)``, with linearised SEs.

    ``numerator`` and ``denominator`` are paired column by column (or one
    denominator for every numerator). Rows missing either value are a domain.

    References
    ----------
    Cochran (1977), section 6.3; Lumley (2010), section 2.2 (``svyratio``).
    """
    num, den = as_list(numerator), as_list(denominator)
    if len(den) == 1 and len(num) > 1:
        den = den * len(num)
    if len(den) != len(num):
        raise EstimationError(f"{len(num)} numerators but {len(den)} denominators",
                              hint="give one denominator, or one per numerator")
    dom = domains(design, by, mask)
    y = numeric_matrix(design, num, "ratio")
    x = numeric_matrix(design, den, "ratio")
    res = _linear(design, y, x, dom, "ratio", vcov)
    names = [f"{a}/{b}" for a, b in zip(num, den)]
    return Estimate("ratio", _table("ratio", names, dom, res, False, design), vcov=res["vcov"], ci=ci,
                    level=level, by=dom.by)


def _levels(s: pd.Series) -> list:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return list(s.cat.categories)
    return sorted(s.dropna().unique().tolist(), key=lambda v: (str(type(v)), v))


def proportion(design: Design, variable: str, by: str | Sequence[str] | None = None, *,
               mask: np.ndarray | None = None, deff: Deff = False, level: float = 0.95,
               ci: Literal["logit", "normal", "t"] = "logit", vcov: bool = False) -> Estimate:
    """The share of every level of a categorical variable, with logit intervals.

    Missing values are a domain: shares are of the rows where the variable is
    recorded. The default interval is R's ``svyciprop(method="logit")``:
    ``expit(logit(p) +/- t_df se / (p (1 - p)))`` with the domain's design df.

    References
    ----------
    Korn and Graubard (1998); Lumley (2010), section 2.3.
    """
    s = check_column(design, variable)
    levels = _levels(s)
    if not levels:
        raise EstimationError("the variable has only missing values", column=variable)
    na = s.isna().to_numpy()
    vals = s.to_numpy(dtype=object)
    y = np.column_stack([np.where(na, np.nan, (vals == lev).astype(float)) for lev in levels])
    dom = domains(design, by, mask)
    res = _linear(design, y, None, dom, "mean", vcov)
    table = _table("proportion", [variable] * len(levels), dom, res, deff, design,
                   extra={"level": levels})
    cols = ["variable", "level", *dom.by]
    table = table[cols + [c for c in table.columns if c not in cols]]
    method = "logit" if ci == "logit" else ci
    if ci == "logit":
        p, se, df = table["estimate"].to_numpy(), table["se"].to_numpy(), table["df"].to_numpy()
        q = stats.t.ppf(0.5 + level / 2, np.where(df > 0, df, np.nan))
        with np.errstate(divide="ignore", invalid="ignore"):
            lp = np.log(p / (1 - p))
            half = q * se / (p * (1 - p))
            lo = 1 / (1 + np.exp(-(lp - half)))
            hi = 1 / (1 + np.exp(-(lp + half)))
        edge = (p <= 0) | (p >= 1)
        table["ci_low"] = np.where(edge, p, lo)
        table["ci_high"] = np.where(edge, p, hi)
    return Estimate("proportion", table, vcov=res["vcov"], ci=method, level=level, by=dom.by)
