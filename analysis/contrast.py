"""Linear combinations of estimates, with their covariance (R's ``svycontrast``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from survey.errors import EstimationError
from survey.estimate import Estimate

__all__ = ["contrast", "row_labels"]

_KEYS = ("variable", "term", "level", "quantile")


def row_labels(estimate: Estimate) -> list[str]:
    """A label per row of an estimate, used to name rows in :func:`contrast`.

    The ``term`` of a coefficient; otherwise the domain values joined by ``":"``,
    preceded by the variable when the estimate has several and by the level or
    quantile when there is one (e.g. ``"H"``, ``"api00:H"``, ``"Yes:E"``).
    """
    t = estimate.table
    if "term" in t:
        return [str(x) for x in t["term"]]
    parts = []
    if "variable" in t and t["variable"].nunique() > 1:
        parts.append(t["variable"].astype(str))
    for c in ("level", "quantile"):
        if c in t:
            parts.append(t[c].astype(str))
    parts.extend(t[c].astype(str) for c in estimate.by if c in t)
    if not parts:
        return [str(x) for x in t["variable"]] if "variable" in t else [str(i) for i in range(len(t))]
    out = parts[0]
    for p in parts[1:]:
        out = out + ":" + p
    return out.tolist()


def _matrix(estimate: Estimate, weights) -> tuple[list[str], np.ndarray]:
    k = len(estimate)
    labels = row_labels(estimate)
    index = {lab: i for i, lab in enumerate(labels)}

    def one(w) -> np.ndarray:
        if isinstance(w, Mapping):
            row = np.zeros(k)
            for lab, v in w.items():
                if lab not in index:
                    raise EstimationError(f"no row labelled {lab!r} in the estimate",
                                          hint=f"rows are {', '.join(map(repr, labels))}")
                row[index[lab]] = float(v)
            return row
        row = np.asarray(w, dtype=float)
        if row.shape != (k,):
            raise EstimationError(f"contrast weights have shape {row.shape}, expected ({k},)",
                                  hint="give one weight per row of the estimate, or a dict of row labels")
        return row

    if isinstance(weights, Mapping) and weights and all(
            isinstance(v, Mapping | Sequence | np.ndarray) and not isinstance(v, str)
            for v in weights.values()):
        names = [str(n) for n in weights]
        return names, np.vstack([one(v) for v in weights.values()])
    arr = weights if isinstance(weights, Mapping) else np.asarray(weights, dtype=float)
    if isinstance(arr, np.ndarray) and arr.ndim == 2:
        return [f"contrast{i + 1}" for i in range(arr.shape[0])], np.vstack([one(r) for r in arr])
    return ["contrast"], one(arr)[None, :]


def contrast(estimate: Estimate, weights, *, level: float | None = None) -> Estimate:
    """Linear combinations ``L theta`` of the rows of an estimate, with ``L V L'``.

    Parameters
    ----------
    estimate
        An estimate that carries its covariance matrix (``vcov``): glm
        coefficients, or domain estimates computed with their covariance.
    weights
        One combination: a sequence of one weight per row, or a dict of row labels
        (see :func:`row_labels`) to weights, e.g. ``{"H": 1, "E": -1}``. Several: a
        2-D array (one combination per row) or a dict of names to either form,
        e.g. ``{"H-E": {"H": 1, "E": -1}, "M-E": [-1, 0, 1]}``.
    level
        Confidence level (default: the estimate's).

    Returns
    -------
    Estimate
        ``statistic="contrast"``, one row per combination, with ``vcov``. ``df`` is
        the smallest df among the rows combined; intervals are t intervals when the
        estimate's are, normal otherwise (as R's ``confint`` of ``svycontrast``).

    Notes
    -----
    The variance of a linear combination of estimates needs their covariances,
    not only their standard errors: two domain means from the same clusters are
    correlated, and ignoring it misstates the SE of their difference.

    References
    ----------
    Lumley (2010), section 3.4 (``svycontrast``).
    """
    V = estimate.vcov
    if V is None:
        raise EstimationError(f"the {estimate.statistic} estimate has no covariance matrix",
                              hint="compute it with its covariance (vcov=True), or use glm coefficients")
    names, L = _matrix(estimate, weights)
    theta = estimate.estimate
    used = L != 0
    if np.isnan(theta[used.any(axis=0)]).any():
        raise EstimationError("a row used by the contrast has no estimate (NaN)")
    est = L @ np.where(used.any(axis=0), theta, 0.0)
    cov = L @ np.where(np.outer(used.any(axis=0), used.any(axis=0)), V, 0.0) @ L.T
    df_rows = estimate.table["df"].to_numpy(dtype=float) if "df" in estimate.table \
        else np.full(len(estimate), np.inf)
    df = np.array([df_rows[u].min() if u.any() else np.nan for u in used])
    table = pd.DataFrame({"variable": np.asarray(names, dtype=object), "estimate": est,
                          "se": np.sqrt(np.maximum(np.diag(cov), 0.0)), "df": df,
                          "deff": np.nan, "n": np.nan})
    ci = "t" if estimate.ci == "t" else "normal"
    return Estimate("contrast", table, vcov=cov, ci=ci, level=estimate.level if level is None else level)
