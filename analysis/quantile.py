"""Quantiles of a weighted distribution with Woodruff confidence intervals.

The estimate is a quantile rule applied to the weighted empirical distribution
function; its interval inverts a confidence interval for the proportion of the
population at or below the estimate (Woodruff 1952), as R ``survey``'s
``svyquantile`` does (``interval.type = "mean"``, survey >= 4.1). The proportion's
standard error is the design-based SE of a domain mean, so every design, domain and
calibration the core supports carries over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from analysis._prep import as_list, domains, numeric_matrix
from survey.design import Design
from survey.errors import EstimationError
from survey.estimate import Estimate
from survey.variance import linearized_variance, replicate_variance

__all__ = ["RULES", "quantile", "weighted_quantile"]

Rule = Literal["math", "school", "shahvaish", "hf1", "hf2", "hf3", "hf4", "hf5", "hf6", "hf7",
               "hf8", "hf9"]
RULES = ("math", "school", "shahvaish", "hf1", "hf2", "hf3", "hf4", "hf5", "hf6", "hf7", "hf8", "hf9")
Interval = Literal["mean", "xlogit", "asin"]


# -- quantile rules (R survey's qrule_*) ------------------------------------------------

def _cumsum(w: np.ndarray) -> np.ndarray:
    # R's cumsum accumulates in long double; the "cumw <= p W" comparison of the
    # step rules is exact, so accumulate the same way to land on the same side of ties.
    return np.cumsum(w.astype(np.longdouble)).astype(float)


def _qs(x: np.ndarray, cumw: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, ...]:
    """R's ``survey:::qs`` for sorted x, vectorised over p (0-based positions)."""
    n = len(x)
    total = cumw[-1]
    cnt = np.searchsorted(cumw, p * total, side="right")  # how many cumw <= p W
    pos = np.where(cnt > 0, cnt - 1, 0)  # R's last(): the first element when none
    nxt = np.minimum(pos + 1, n - 1)
    wlow = p - cumw[pos] / total
    wup = cumw[nxt] / total - p
    return x[pos], x[nxt], pos, wlow, wup


def _approx(pk: np.ndarray, x: np.ndarray, p: np.ndarray, linear: bool) -> np.ndarray:
    """R's ``approx(pk, x, p, rule = 2)``, linear or constant (f = 0).

    As R, the points are put in order of ``pk`` first and tied ``pk`` share the
    mean of their ``x`` (only Shah-Vaish's ``pk`` can be out of order).
    """
    if (np.diff(pk) <= 0).any():
        o = np.argsort(pk, kind="stable")
        pk, x = pk[o], x[o]
        pk, inv, cnt = np.unique(pk, return_inverse=True, return_counts=True)
        x = np.bincount(inv, weights=x) / cnt
    n = len(pk)
    i = np.clip(np.searchsorted(pk, p, side="right") - 1, 0, n - 1)
    j = np.minimum(i + 1, n - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        between = x[i] + (x[j] - x[i]) * ((p - pk[i]) / (pk[j] - pk[i])) if linear else x[i]
    out = np.where(p == pk[i], x[i], between)
    out = np.where(p < pk[0], x[0], out)
    return np.where(p > pk[-1], x[-1], out)


def weighted_quantile(x: np.ndarray, w: np.ndarray, probs: np.ndarray | float,
                      rule: Rule = "math", *, presorted: bool = False) -> np.ndarray:
    """Quantiles of the weighted distribution of ``x`` by one of R's quantile rules.

    Zero weights are dropped first; ``x`` must have no missing values.

    Parameters
    ----------
    x, w
        Values and positive weights.
    probs
        Probabilities in [0, 1].
    rule
        ``"math"``/``"hf1"`` (inverse of the empirical CDF, R's default),
        ``"school"``/``"hf2"`` (average at jumps), ``"hf3"``, ``"hf4"``,
        ``"shahvaish"``, and the interpolating ``"hf5"``-``"hf9"`` (``"hf7"`` is the
        weighted version of R's ``quantile(type = 7)``).
    presorted
        ``x`` is already in ascending order (ties in their original order).

    References
    ----------
    Hyndman and Fan (1996), Sample quantiles in statistical packages. *The American
    Statistician* 50, 361-365. Lumley (2010), section 2.4.
    """
    if rule not in RULES:
        raise EstimationError(f"quantile rule {rule!r} is not one of {', '.join(RULES)}",
                              hint='use "math" (R\'s default) or "hf7" (interpolating)')
    p = np.atleast_1d(np.asarray(probs, dtype=float))
    x = np.asarray(x, dtype=float)
    w = np.asarray(w, dtype=float)
    keep = w != 0
    x, w = x[keep], w[keep]
    if not presorted:
        o = np.argsort(x, kind="stable")
        x, w = x[o], w[o]
    n = len(x)
    if n == 0:
        return np.full(len(p), np.nan)
    if n == 1:
        return np.full(len(p), x[0])
    if rule == "hf3":
        ux, start = np.unique(x, return_index=True)
        x, w = ux, np.add.reduceat(w, start)
        n = len(x)
    cumw = _cumsum(w)
    if rule in ("math", "hf1", "school", "hf2", "hf3", "hf4"):
        qlow, qup, pos, wlow, wup = _qs(x, cumw, p)
        if rule in ("math", "hf1"):
            return np.where(wlow == 0, qlow, qup)
        if rule in ("school", "hf2"):
            return np.where(wlow == 0, (qlow + qup) / 2, qup)
        if rule == "hf3":  # R's ilow %% 2 == 0 with 1-based ilow
            return np.where((wlow == 0) & ((pos + 1) % 2 == 0), qlow, qup)
        with np.errstate(invalid="ignore", divide="ignore"):
            gamma = wlow / (wup + wlow)
        return qlow * (1 - gamma) + qup * gamma
    prev = np.concatenate([[0.0], cumw[:-1]])
    if rule == "shahvaish":
        s = _cumsum(w / w.mean())
        return _approx((s + 0.5 - w / 2) / (n + 1), x, p, linear=False)
    if rule == "hf5":
        pk = (cumw - w / 2) / cumw[-1]
    elif rule == "hf6":
        pk = cumw / (cumw[-1] + w[-1])
    elif rule == "hf7":
        pk = prev / cumw[-2]
    elif rule == "hf8":
        pk = (prev / 3 + cumw * 2 / 3) / (cumw[-1] + w[-1] / 3)
    else:  # hf9
        pk = (prev * 3 / 8 + cumw * 5 / 8) / (cumw[-1] + w[-1] / 4)
    return _approx(pk, x, p, linear=True)


# -- the estimator -----------------------------------------------------------------------

def quantile(design: Design, variables: str | Sequence[str], probs: float | Sequence[float],
             by: str | Sequence[str] | None = None, *, mask: np.ndarray | None = None,
             rule: Rule = "math", ci: Literal["woodruff"] = "woodruff",
             interval: Interval = "mean", level: float = 0.95) -> Estimate:
    """Quantiles with Woodruff confidence intervals and the standard errors R reports.

    Parameters
    ----------
    design
        The sample design (linearisation or replicate weights).
    variables
        One numeric column or a list of them.
    probs
        One probability or a list, each in [0, 1].
    by, mask
        Domains, as in :func:`analysis.mean`: every combination of the ``by``
        columns, restricted to ``mask``. Rows missing the variable are a domain too
        (R's ``na.rm = TRUE``), never dropped from the design.
    rule
        Quantile rule (see :func:`weighted_quantile`): ``"math"`` (default, R's
        ``qrule = "math"``) or the interpolating ``"hf7"``, among others.
    ci
        Only ``"woodruff"``: the interval is computed on the scale of the CDF.
    interval
        How the CDF interval is formed (R's ``interval.type``): ``"mean"`` (a
        t interval for the proportion at or below the estimate), ``"xlogit"`` (on
        the logit scale) or ``"asin"`` (on the arcsine-square-root scale).
    level
        Confidence level.

    Returns
    -------
    Estimate
        ``statistic="quantile"``; columns ``variable``, domain columns,
        ``quantile`` (the probability), ``estimate``, ``se``, ``df``, ``deff`` (NaN),
        ``n``, ``ci_low``, ``ci_high``.

    Notes
    -----
    With ``p_hat`` the estimated share of the domain at or below the quantile
    estimate and ``se(p_hat)`` its design-based SE, the interval is
    ``[Q(p_hat - t se), Q(p_hat + t se)]`` where ``Q`` applies the same rule and
    ``t`` is the t quantile with the domain's design degrees of freedom. The
    standard error is the interval width divided by ``2 t``, which is how R's
    ``SE(svyquantile(...))`` reports it: with a step rule it moves in steps of the
    data. An interval end whose probability leaves [0, 1] is NaN, as in R.

    References
    ----------
    Woodruff, R. S. (1952). Confidence intervals for medians and other position
    measures. *JASA* 47, 635-646. Francisco, C. A. and Fuller, W. A. (1991).
    Quantile estimation with a complex survey design. *Annals of Statistics* 19,
    454-469. Lumley (2010), section 2.4.
    """
    if ci != "woodruff":
        raise EstimationError(f"ci={ci!r} is not available for quantiles",
                              hint='quantile intervals are Woodruff intervals: ci="woodruff"')
    if interval not in ("mean", "xlogit", "asin"):
        raise EstimationError(f"interval={interval!r} is not one of mean, xlogit, asin")
    if rule not in RULES:
        raise EstimationError(f"quantile rule {rule!r} is not one of {', '.join(RULES)}",
                              hint='use "math" (R\'s default) or "hf7" (interpolating)')
    p = np.atleast_1d(np.asarray(probs, dtype=float))
    if p.ndim != 1 or len(p) == 0 or np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise EstimationError(f"probs must be numbers in [0, 1], got {probs!r}",
                              hint="e.g. probs=[0.25, 0.5, 0.75]")
    names = as_list(variables)
    dom = domains(design, by, mask)
    X = numeric_matrix(design, names, "quantile")
    w = design.w
    D, K = dom.n, len(p)
    alpha = 1 - level
    frames = []
    for j, name in enumerate(names):
        x = X[:, j]
        ok = ~np.isnan(x)
        code = np.where(ok, dom.code, -1)
        parts = _by_domain(x, w, code, D)
        est, nobs = _estimates(parts, p, rule)
        df = _degf(design, code, D)
        pm, var = _cdf_at(design, x, w, code, est)
        q = stats.t.ppf(1 - alpha / 2, np.where(df > 0, df, np.nan))[:, None]
        lo_p, hi_p = _cdf_interval(pm, np.sqrt(np.maximum(var, 0.0)), q, interval)
        lo, hi = _invert(parts, lo_p, hi_p, rule)
        table = pd.DataFrame({"variable": np.full(D * K, name, dtype=object)})
        for c in dom.by:
            table[c] = np.repeat(dom.keys[c].to_numpy(), K)
        table["quantile"] = np.tile(p, D)
        table["estimate"] = est.ravel()
        table["se"] = ((hi - lo) / (2 * q)).ravel()
        table["df"] = np.repeat(df, K)
        table["deff"] = np.nan
        table["n"] = np.repeat(nobs, K)
        table["ci_low"] = lo.ravel()
        table["ci_high"] = hi.ravel()
        frames.append(table)
    table = pd.concat(frames, ignore_index=True)
    if dom.by:  # domain-major order like the other estimators: domain, then variable
        order = np.lexsort((np.tile(np.arange(K), D * len(names)),
                            np.repeat(np.arange(len(names)), D * K),
                            np.tile(np.repeat(np.arange(D), K), len(names))))
        table = table.iloc[order].reset_index(drop=True)
    return Estimate("quantile", table, ci="woodruff", level=level, by=dom.by)


def _by_domain(x: np.ndarray, w: np.ndarray, code: np.ndarray, D: int) -> list:
    """Per domain, the (sorted x, w) of its rows with nonzero weight."""
    rows = np.flatnonzero((code >= 0) & (w != 0))
    o = rows[np.argsort(x[rows], kind="stable")]  # ties keep row order, as R's order()
    c = code[o].astype(np.int16 if D < 2**15 else np.int64)  # small ints: radix sort
    o = o[np.argsort(c, kind="stable")]
    bounds = np.searchsorted(code[o], np.arange(D + 1))
    return [(x[o[bounds[d]: bounds[d + 1]]], w[o[bounds[d]: bounds[d + 1]]]) for d in range(D)]


def _degf(design: Design, code: np.ndarray, D: int) -> np.ndarray:
    """``degf`` of each domain's subset design (PSUs minus strata with weight there)."""
    if design.replicates is not None:
        return np.array([design.degf(code == d) for d in range(D)], dtype=float)
    st = design.stages[0]
    out = np.empty(D)
    inset = design.w != 0
    for d in range(D):  # bincounts, not np.unique: O(n) per domain
        sel = inset & (code == d)
        out[d] = (np.count_nonzero(np.bincount(st.unit[sel], minlength=st.n_unit_total))
                  - np.count_nonzero(np.bincount(st.group[sel], minlength=st.n_groups)))
    return out


def _estimates(parts: list, p: np.ndarray, rule: str) -> tuple[np.ndarray, np.ndarray]:
    est = np.full((len(parts), len(p)), np.nan)
    nobs = np.zeros(len(parts))
    for d, (xs, ws) in enumerate(parts):
        nobs[d] = len(xs)
        if len(xs):
            est[d] = weighted_quantile(xs, ws, p, rule, presorted=True)
    return est, nobs


def _cdf_at(design: Design, x: np.ndarray, w: np.ndarray, code: np.ndarray,
            est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of each domain at or below each estimate, and its variance: (D, K) each."""
    D, K = est.shape
    inside = code >= 0
    c = np.where(inside, code, 0)
    ind = np.where(inside[:, None], x[:, None] <= est[c], False).astype(float)  # (n, K)
    wd = np.where(inside, w, 0.0)
    W = np.bincount(c, weights=wd, minlength=D)
    num = np.column_stack([np.bincount(c, weights=wd * ind[:, k], minlength=D) for k in range(K)])
    with np.errstate(invalid="ignore", divide="ignore"):
        pm = num / W[:, None]
    if design.replicates is not None:
        Wr = design.replicates.weights
        rows = np.flatnonzero(inside)
        n = design.n
        den = np.asarray(sp.csr_matrix((np.ones(len(rows)), (code[rows], rows)), shape=(D, n)) @ Wr)
        var = np.empty((D, K))
        for k in range(K):
            S = sp.csr_matrix((ind[rows, k], (code[rows], rows)), shape=(D, n))
            with np.errstate(invalid="ignore", divide="ignore"):
                theta = np.asarray(S @ Wr) / den
            var[:, k] = replicate_variance(design, pm[:, k], theta)
        return pm, var
    # influence values of each domain's proportions, a block of domains at a time:
    # z = w (1[x <= q] - p) / W inside the domain, zero outside (R's subset design)
    var = np.empty((D, K))
    step = max(1, int(4_000_000 // max(design.n * K, 1)))
    for lo in range(0, D, step):
        doms = np.arange(lo, min(lo + step, D))
        z = np.zeros((design.n, len(doms), K))
        for i, d in enumerate(doms):
            rows = code == d
            if W[d] > 0:
                z[rows, i, :] = wd[rows, None] * (ind[rows] - pm[d]) / W[d]
        var[doms] = linearized_variance(design, z.reshape(design.n, -1)).reshape(len(doms), K)
    return pm, var


def _cdf_interval(pm: np.ndarray, se: np.ndarray, q: np.ndarray,
                  interval: str) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        if interval == "mean":
            return pm - q * se, pm + q * se
        if interval == "xlogit":
            eta = np.log(pm / (1 - pm))
            h = q * se / (pm * (1 - pm))
            return 1 / (1 + np.exp(-(eta - h))), 1 / (1 + np.exp(-(eta + h)))
        a = np.arcsin(np.sqrt(pm))
        h = q * se / (2 * np.sqrt(pm * (1 - pm)))
        return np.sin(a - h) ** 2, np.sin(a + h) ** 2


def _invert(parts: list, lo_p: np.ndarray, hi_p: np.ndarray,
            rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Apply the rule at the CDF interval ends; ends outside [0, 1] are NaN (as R)."""
    lo = np.full(lo_p.shape, np.nan)
    hi = np.full(hi_p.shape, np.nan)
    for d, (xs, ws) in enumerate(parts):
        if not len(xs):
            continue
        a, b = lo_p[d], hi_p[d]
        ga = ~np.isnan(a) & (a >= 0)
        gb = ~np.isnan(b) & (b <= 1)
        if ga.any():
            lo[d, ga] = weighted_quantile(xs, ws, a[ga], rule, presorted=True)
        if gb.any():
            hi[d, gb] = weighted_quantile(xs, ws, b[gb], rule, presorted=True)
    return lo, hi
