"""Weight diagnostics: Kish design effect, effective n, spread, the weight chain, totals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from survey.design import Design
from survey.errors import WeightingError
from weighting._common import as_list
from weighting.totals import parse_totals

__all__ = ["control_totals", "diagnostics", "weight_chain"]


def _summary(w: pd.Series | np.ndarray) -> dict:
    w = np.asarray(w, dtype=float)
    pos = w[w > 0]
    n, s, s2 = len(pos), pos.sum(), (pos**2).sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"n": n, "sum": s, "mean": s / n if n else np.nan, "min": pos.min() if n else np.nan,
                "max": pos.max() if n else np.nan, "ratio": pos.max() / pos.min() if n else np.nan,
                "cv": pos.std() / pos.mean() if n else np.nan,
                "deff_kish": n * s2 / s**2 if n else np.nan, "n_eff": s**2 / s2 if n else np.nan}


def diagnostics(design: Design, by: str | Sequence[str] | None = None, weights: str | None = None) -> pd.DataFrame:
    """Kish design effect from unequal weights and the spread of the weights.

    Parameters
    ----------
    design
        Any design. Units with zero weight (nonrespondents, set-aside) are left out.
    by
        Columns to break the table down by (e.g. ``["stratum", "group"]``); the
        first row is always the whole sample.
    weights
        A weight column to describe (default: the design's current weights).

    Returns
    -------
    DataFrame
        One row per group: ``n``, ``sum``, ``mean``, ``min``, ``max``, ``ratio``
        (max/min), ``cv``, ``deff_kish`` (``1 + CV^2 = n sum w^2 / (sum w)^2``) and
        ``n_eff`` (``n / deff``).

    References
    ----------
    Kish, L. (1965). *Survey Sampling*, section 11.7. Wiley.
    Kish, L. (1992). Weighting for unequal Pi. *J. Off. Stat.* 8, 183-200.
    """
    col = weights or design.weights
    if col not in design.data.columns:
        raise WeightingError("weight column not found", column=col)
    rows = [{**dict.fromkeys(as_list(by), "(all)"), **_summary(design.data[col])}]
    cols = as_list(by)
    if cols:
        for key, g in design.data.groupby(cols, sort=True, observed=True):
            key = key if isinstance(key, tuple) else (key,)
            rows.append({**dict(zip(cols, key)), **_summary(g[col])})
    return pd.DataFrame(rows)


def weight_chain(design: Design) -> pd.DataFrame:
    """One row per weight column of the chain (base -> nonresponse -> calibrated ->
    trimmed), in order, with :func:`diagnostics` and the adjustment factors of each
    step relative to the one before (among units with positive weight in both)."""
    cols = [c for c in (design.history or (design.weights,)) if c in design.data.columns]
    out, prev = [], None
    for c in cols:
        w = design.data[c].to_numpy(dtype=float)
        row = {"step": c, **_summary(w)}
        if prev is not None:
            both = (w > 0) & (prev > 0)
            f = w[both] / prev[both]
            row.update(factor_min=f.min() if f.size else np.nan, factor_max=f.max() if f.size else np.nan,
                       dropped=int(((prev > 0) & (w == 0)).sum()))
        out.append(row)
        prev = w
    return pd.DataFrame(out)


def control_totals(design: Design, totals) -> pd.DataFrame:
    """Weighted totals of the design against control totals (same forms as
    :func:`weighting.calibrate`): margin, level, control, estimate, difference."""
    rows = []
    w = design.w
    for m in parse_totals(totals):
        if m.kind == "intercept":
            rows.append({"margin": m.name, "level": None, "control": m.totals[0], "estimate": w.sum()})
        elif m.kind == "numeric":
            x = design.data[m.columns[0]].to_numpy(dtype=float, na_value=np.nan)
            rows.append({"margin": m.name, "level": None, "control": m.totals[0],
                         "estimate": np.nansum(np.where(w > 0, x, 0.0) * w)})
        else:
            key = design.data[list(m.columns)].apply(tuple, axis=1) if len(m.columns) > 1 \
                else design.data[m.columns[0]]
            est = pd.Series(w).groupby(key.to_numpy()).sum()
            for lev, t in zip(m.levels, m.totals):
                rows.append({"margin": m.name, "level": lev, "control": t, "estimate": float(est.get(lev, 0.0))})
    out = pd.DataFrame(rows)
    out["difference"] = out["estimate"] - out["control"]
    return out
