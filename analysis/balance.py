"""Covariate balance between treated and comparison units: standardised differences.

The balance table compares the design-weighted means of each covariate (each level
of a categorical one) among treated (migrant) and comparison (non-migrant) units,
before and after a reweighting (inverse probability or matching weights). The
standardised difference divides the difference of means by the pooled standard
deviation *before* weighting, so that a change from before to after reflects the
means only; an absolute value below 0.1 is the usual mark of adequate balance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis._prep import check_column
from survey.design import Design
from survey.errors import EstimationError

__all__ = ["balance", "covariate_matrix"]

#: |standardised difference| above this is flagged as imbalance (Austin 2011).
THRESHOLD = 0.1


def covariate_matrix(data: pd.DataFrame, covariates: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Covariates as columns: numeric ones as they are, categorical ones as one 0/1
    column per level (``name=level``). Missing values are NaN."""
    cols, names = [], []
    for c in covariates:
        s = data[c]
        if pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype) \
                or pd.api.types.is_bool_dtype(s):
            cols.append(s.to_numpy(dtype=float, na_value=np.nan))
            names.append(c)
            continue
        na = s.isna().to_numpy()
        vals = np.where(na, None, s.astype(object).to_numpy())  # None: comparisons are False
        levels = sorted({v for v, m in zip(vals, na) if not m}, key=str)
        for lev in levels:
            cols.append(np.where(na, np.nan, (vals == lev).astype(float)))
            names.append(f"{c}={lev}")
    X = np.column_stack(cols) if cols else np.zeros((len(data), 0))
    return X, names


def _wmean_var(X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    W = w.sum()
    m = (w[:, None] * X).sum(axis=0) / W
    v = (w[:, None] * (X - m) ** 2).sum(axis=0) / W
    return m, v


def balance(design: Design, treated: np.ndarray, covariates: Sequence[str], *,
            mask: np.ndarray | None = None, weights: np.ndarray | None = None) -> pd.DataFrame:
    """Standardised differences of covariates before and after weighting.

    Parameters
    ----------
    design
        The sample design (its weights are the "before" weights).
    treated
        Per row: 1 treated, 0 comparison, NaN neither (outside the comparison).
    covariates
        Columns of the design's data; categorical ones are split into levels.
    mask
        Rows to compare (e.g. the common support); default: every row with a
        treatment value.
    weights
        "After" weights per row (e.g. the IPW weights ``w p / (1 - p)`` for
        comparison units and ``w`` for treated ones); omitted: no "after" columns.

    Returns
    -------
    DataFrame
        One row per covariate (or level): ``covariate``, ``mean_treated``,
        ``mean_control``, ``smd_before``, and with ``weights``
        ``mean_control_after``, ``mean_treated_after``, ``smd_after``,
        ``variance_ratio_after``; ``imbalanced`` flags ``|smd| > 0.1`` (after if given).

    Notes
    -----
    Means and variances are design-weighted. The standardised difference is
    ``(m1 - m0) / sqrt((s1^2 + s0^2) / 2)`` with the design-weighted variances of the
    two groups before reweighting (Austin 2011); rows missing a covariate are left
    out of that covariate's comparison only.

    References
    ----------
    Austin, P. C. (2011). An introduction to propensity score methods for reducing
    the effects of confounding in observational studies. *Multivariate Behavioral
    Research* 46, 399-424.
    DuGoff, E. H., Schuler, M. and Stuart, E. A. (2014). Generalizing observational
    study results: applying propensity score methods to complex surveys. *Health
    Services Research* 49, 284-303.
    """
    for c in covariates:
        check_column(design, c, "covariate")
    t = np.asarray(treated, dtype=float)
    if t.shape != (design.n,):
        raise EstimationError(f"treated has shape {t.shape}, expected ({design.n},)")
    inside = ~np.isnan(t) if mask is None else (np.asarray(mask, dtype=bool) & ~np.isnan(t))
    X, names = covariate_matrix(design.data, covariates)
    w = design.w
    rows = []
    for j, name in enumerate(names):
        x = X[:, j]
        ok = inside & ~np.isnan(x) & (w > 0)
        g1, g0 = ok & (t == 1), ok & (t == 0)
        if not g1.any() or not g0.any():
            rows.append({"covariate": name, "mean_treated": np.nan, "mean_control": np.nan,
                         "smd_before": np.nan})
            continue
        m1, v1 = _wmean_var(x[g1, None], w[g1])
        m0, v0 = _wmean_var(x[g0, None], w[g0])
        sd = float(np.sqrt((v1[0] + v0[0]) / 2))
        row = {"covariate": name, "mean_treated": m1[0], "mean_control": m0[0],
               "smd_before": (m1[0] - m0[0]) / sd if sd > 0 else 0.0}
        if weights is not None:
            a = np.asarray(weights, dtype=float)
            a1, a0 = g1 & (a > 0), g0 & (a > 0)
            ma1, va1 = _wmean_var(x[a1, None], a[a1]) if a1.any() else (np.array([np.nan]),) * 2
            ma0, va0 = _wmean_var(x[a0, None], a[a0]) if a0.any() else (np.array([np.nan]),) * 2
            with np.errstate(divide="ignore", invalid="ignore"):
                row.update(mean_treated_after=ma1[0], mean_control_after=ma0[0],
                           smd_after=(ma1[0] - ma0[0]) / sd if sd > 0 else 0.0,
                           variance_ratio_after=va1[0] / va0[0])
        rows.append(row)
    out = pd.DataFrame(rows)
    key = "smd_after" if weights is not None else "smd_before"
    out["imbalanced"] = out[key].abs() > THRESHOLD
    return out
