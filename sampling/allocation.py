"""Allocating a number of EAs (or households) to strata.

Proportional, equal, Neyman, optimal (with costs) and power allocation, with a
minimum and a maximum per stratum (the stratum's number of EAs: take-all), solved
exactly and then rounded to integers that keep the total (largest remainder).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from survey.errors import SamplingError

from ._util import require_columns

__all__ = ["allocate", "round_total", "strata_summary"]

Method = Literal["proportional", "equal", "neyman", "optimal", "power"]
_METHODS = ("proportional", "equal", "neyman", "optimal", "power")

PerStratum = str | float | int | Mapping | Sequence | pd.Series | np.ndarray | None


def strata_summary(
    frame: pd.DataFrame, strata: str = "stratum", size: str = "households"
) -> pd.DataFrame:
    """One row per stratum: total measure of size and number of EAs.

    Returns a DataFrame with columns ``strata``, ``size`` (sum over EAs) and ``eas``
    (count), the input that :func:`allocate` expects.
    """
    require_columns(frame, (strata, size), "frame", "name it with strata= / size=")
    g = frame.groupby(strata, sort=True, observed=True)[size]
    out = pd.DataFrame({size: g.sum(), "eas": g.size()}).reset_index()
    return out


def _per_stratum(value: PerStratum, table: pd.DataFrame, stratum: str, what: str) -> np.ndarray:
    """Turn a column name, mapping, sequence or scalar into one float per stratum."""
    if isinstance(value, str):
        if value not in table.columns:
            raise SamplingError(
                f"strata table has no column {value!r} for {what}",
                column=value,
                hint=f"give {what} as a column name, a mapping stratum -> value, or a number",
            )
        out = pd.to_numeric(table[value], errors="coerce").to_numpy(dtype=float)
    elif isinstance(value, Mapping):
        missing = [s for s in table[stratum] if s not in value]
        if missing:
            raise SamplingError(
                f"{what} not given for this stratum",
                stratum=str(missing[0]),
                hint=f"give {what} for every stratum",
            )
        out = np.array([value[s] for s in table[stratum]], dtype=float)
    elif np.ndim(value) == 0:
        out = np.full(len(table), float(value), dtype=float)
    else:
        out = np.asarray(value, dtype=float)
        if out.shape != (len(table),):
            raise SamplingError(
                f"{what} has {out.size} values for {len(table)} strata",
                hint="give one value per stratum, in the table's order",
            )
    bad = ~np.isfinite(out) | (out < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SamplingError(
            f"{what} must be a non-negative number, got {out[i]!r}",
            stratum=str(table[stratum].iloc[i]),
            column=what,
            hint=f"correct {what}",
        )
    return out


def _bounded(n: float, basis: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Real allocation ``clip(lam * basis, lo, hi)`` with the multiplier chosen so it sums to n.

    The sum is piecewise linear and non-decreasing in ``lam``; its breakpoints are
    ``lo/basis`` and ``hi/basis``, so the multiplier is found exactly by evaluating it at
    the sorted breakpoints and interpolating within one segment (KKT solution of the
    box-constrained allocation problem).
    """
    pos = basis > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        bps = np.concatenate([lo[pos] / basis[pos], hi[pos] / basis[pos], [0.0]])
    bps = np.unique(bps[np.isfinite(bps)])

    def total(lam: np.ndarray) -> np.ndarray:
        return np.clip(np.multiply.outer(lam, basis), lo, hi).sum(axis=-1)

    g = total(bps)
    k = int(np.searchsorted(g, n, side="left"))
    if k < len(bps) and np.isclose(g[k], n, rtol=0, atol=1e-9):
        lam = bps[k]
    elif k == len(bps):  # beyond the last breakpoint: only unbounded strata still grow
        slope = basis[pos & ~np.isfinite(hi)].sum()
        if slope == 0:  # every stratum at its cap, short of n by rounding noise only
            if n - g[-1] > 1e-6 * max(1.0, n):
                raise SamplingError("the strata cannot take this many units", hint="lower n")
            lam = bps[-1]
        else:
            lam = bps[-1] + (n - g[-1]) / slope
    else:
        lam = bps[k - 1] + (n - g[k - 1]) * (bps[k] - bps[k - 1]) / (g[k] - g[k - 1])
    x = np.clip(lam * basis, lo, hi)
    return x * (n / x.sum()) if not np.isclose(x.sum(), n) else x


def round_total(x: np.ndarray, n: int, hi: np.ndarray | None = None) -> np.ndarray:
    """Round non-negative reals to integers summing to ``n`` (largest remainder).

    Each value becomes its floor or its ceiling; the ``n - sum(floor)`` largest
    fractional parts are rounded up (ties: first in order). Values at an integer
    bound ``hi`` are never rounded above it.
    """
    x = np.asarray(x, dtype=float)
    base = np.floor(x + 1e-9)
    short = int(round(n - base.sum()))
    frac = x - base
    if hi is not None:
        frac = np.where(base >= hi, -np.inf, frac)
    if short > 0:
        order = np.argsort(-frac, kind="stable")[:short]
        base[order] += 1
    elif short < 0:  # only through rounding noise: take back from the smallest fractions
        order = np.argsort(frac, kind="stable")[:-short]
        base[order] -= 1
    return base.astype(np.int64)


def allocate(
    strata_table: pd.DataFrame,
    n: int,
    method: Method = "proportional",
    *,
    stratum: str = "stratum",
    size: str = "households",
    sd: PerStratum = None,
    cost: PerStratum = None,
    power_q: float = 0.5,
    minimum: int = 2,
    maximum: PerStratum = None,
    eas: str = "eas",
) -> pd.DataFrame:
    """Allocate ``n`` sampling units (EAs) to strata.

    Parameters
    ----------
    strata_table
        One row per stratum (see :func:`strata_summary`) with the stratum, its size
        (households) and, when present, the column ``eas`` (number of EAs), which
        caps the allocation: a stratum can get at most all its EAs (take-all).
    n
        Total number of units to allocate; the result sums to ``n`` exactly.
    method
        ``"proportional"``: n_h proportional to ``size``; ``"equal"``: the same in every
        stratum; ``"neyman"``: proportional to N_h S_h; ``"optimal"``: proportional to
        N_h S_h / sqrt(c_h); ``"power"``: proportional to N_h ** power_q.
    sd, cost
        Within-stratum standard deviation S_h and cost per unit c_h: a column name,
        a mapping stratum -> value, one value per stratum, or a number.
    power_q
        Exponent of the power allocation (0 = equal, 1 = proportional).
    minimum
        Least number of units per stratum (default 2, so that each stratum has two
        PSUs for variance estimation); a stratum with fewer EAs gets all of them.
    maximum
        Most units per stratum, as for ``sd``; combined with the ``eas`` cap.

    Returns
    -------
    pandas.DataFrame
        The strata table (a copy) with ``basis`` (the allocation weight), ``n_exact``
        (the real-valued allocation within the bounds), ``n`` (integers summing to the
        total) and ``take_all`` (every EA of the stratum selected).

    Notes
    -----
    Bounds are met by the exact solution of the constrained problem,
    ``n_h = min(max(lambda * basis_h, minimum), maximum_h)`` with lambda chosen so
    the n_h sum to ``n``; for Neyman allocation this is the variance-minimising
    allocation under the bounds (the excess of a capped stratum goes to the
    others in proportion to their basis). Rounding keeps the total: each n_h is the
    floor or ceiling of its exact value (largest remainder method).

    References
    ----------
    Cochran, W. G. (1977). *Sampling Techniques*, 3rd ed., sections 5.5 and 5.9.
    Lohr, S. L. (2022). *Sampling: Design and Analysis*, 3rd ed., section 3.4.
    Bankier, M. D. (1988). Power allocations. *Survey Methodology* 14, 175-185.
    """
    if method not in _METHODS:
        raise SamplingError(
            f"unknown allocation method {method!r}", hint=f"use one of {', '.join(_METHODS)}"
        )
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise SamplingError(
            f"n must be a positive integer, got {n!r}", hint="give the total number of EAs"
        )
    for col in (stratum, size):
        if col not in strata_table.columns:
            raise SamplingError(
                f"strata table has no column {col!r}",
                column=col,
                hint="build it with sampling.strata_summary(frame)",
            )
    table = strata_table.reset_index(drop=True).copy()
    dup = table[stratum].duplicated()
    if dup.any():
        raise SamplingError(
            "stratum appears twice in the strata table",
            stratum=str(table[stratum][dup].iloc[0]),
            hint="give one row per stratum: sampling.strata_summary(frame) builds it from a frame",
        )
    sizes = _per_stratum(size, table, stratum, "size")
    if method == "equal":
        basis = np.ones(len(table))
    elif method == "proportional":
        basis = sizes
    elif method == "power":
        basis = sizes**power_q
    else:
        if sd is None:
            raise SamplingError(
                f"{method} allocation needs sd=", hint="give the within-stratum standard deviation"
            )
        basis = sizes * _per_stratum(sd, table, stratum, "sd")
        if method == "optimal":
            if cost is None:
                raise SamplingError(
                    "optimal allocation needs cost=", hint="give the cost per unit in each stratum"
                )
            c = _per_stratum(cost, table, stratum, "cost")
            if (c <= 0).any():
                i = int(np.flatnonzero(c <= 0)[0])
                raise SamplingError(
                    "cost must be positive", stratum=str(table[stratum].iloc[i]), column="cost"
                )
            basis = basis / np.sqrt(c)
    if not (basis > 0).any():
        raise SamplingError(
            f"{method} allocation has no positive basis in any stratum",
            hint="check the sizes and standard deviations",
        )

    hi = np.full(len(table), np.inf)
    if eas in table.columns:
        hi = np.minimum(hi, _per_stratum(eas, table, stratum, "eas"))
    if maximum is not None:
        hi = np.minimum(hi, np.floor(_per_stratum(maximum, table, stratum, "maximum")))
    lo = np.minimum(float(minimum), hi)
    if lo.sum() > n:
        raise SamplingError(
            f"the minimum of {minimum} per stratum needs {int(lo.sum())} units but n = {n}",
            hint="raise n, lower minimum=, or merge small strata",
        )
    if hi.sum() < n:
        raise SamplingError(
            f"n = {n} is more than the {int(hi.sum())} units the strata can give (their number of EAs or maximum)",
            hint="lower n: every EA of every stratum would already be selected",
        )
    exact = _bounded(float(n), basis, lo, hi)
    table["basis"] = basis
    table["n_exact"] = exact
    table["n"] = round_total(exact, int(n), hi)
    table["take_all"] = table["n"].to_numpy() >= hi
    return table
