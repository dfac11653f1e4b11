"""The disclosure report that goes with a public-use file, and the information loss.

The report says what was removed, coarsened and suppressed, the re-identification risk
before and after, and how far estimates moved. It never holds an identifying value:
only column names, counts, thresholds and estimates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["DisclosureReport", "estimate_shift"]


def _weighted_mean(x: np.ndarray, w: np.ndarray) -> float:
    ok = ~np.isnan(x)
    return float(np.average(x[ok], weights=w[ok])) if ok.any() and w[ok].sum() > 0 else np.nan


def estimate_shift(
    before: Mapping[str, pd.DataFrame],
    after: Mapping[str, pd.DataFrame],
    columns: Sequence[tuple[str, str]],
    weights: Mapping[str, np.ndarray],
    weights_after: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Weighted means (numeric) and shares (categorical) on full and public data.

    Parameters
    ----------
    before, after
        Tables before and after treatment (rows in any order; all rows used).
    columns
        ``(table, column)`` pairs to compare.
    weights, weights_after
        One weight per row of each table, before and after (default: same as before,
        which requires the same row order).

    Returns
    -------
    DataFrame
        ``table, column, category, full, public, difference, relative``; a category
        row per level of a categorical column (share among non-missing answers),
        ``category`` missing for a numeric mean. ``relative`` is the difference over
        the full-data estimate.

    Notes
    -----
    Values blanked by local suppression are left out of the public-file estimate, as
    an analyst's software would; the shift is the information loss an analyst meets
    (Hundepool et al. 2012, sec. 3.7; Templ et al. 2015, sec. 5).
    """
    weights_after = weights_after or weights
    rows = []
    for table, col in columns:
        if table not in before or col not in before[table] or col not in after.get(table, {}):
            continue
        x0, x1 = before[table][col], after[table][col]
        w0 = np.asarray(weights[table], float)
        w1 = np.asarray(weights_after[table], float)
        if isinstance(x0.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(x0):
            levels = pd.unique(pd.concat([x0.astype("string"), x1.astype("string")]).dropna())
            for lev in sorted(levels):
                a = (x0.astype("string") == lev).astype("Float64").mask(x0.isna())
                b = (x1.astype("string") == lev).astype("Float64").mask(x1.isna())
                rows.append((table, col, str(lev),
                             _weighted_mean(a.to_numpy(float, na_value=np.nan), w0),
                             _weighted_mean(b.to_numpy(float, na_value=np.nan), w1)))
        elif pd.api.types.is_numeric_dtype(x0) and not pd.api.types.is_bool_dtype(x0):
            a = pd.to_numeric(x0, errors="coerce").to_numpy(float, na_value=np.nan)
            b = pd.to_numeric(x1, errors="coerce").to_numpy(float, na_value=np.nan)
            rows.append((table, col, None, _weighted_mean(a, w0), _weighted_mean(b, w1)))
    out = pd.DataFrame(rows, columns=["table", "column", "category", "full", "public"])
    out["difference"] = out["public"] - out["full"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["relative"] = out["difference"] / out["full"].abs()
    return out


@dataclass(frozen=True)
class DisclosureReport:
    """What was done to make a public-use file, and what it cost.

    Attributes
    ----------
    k
        The k-anonymity level required.
    removed
        ``table, column, reason``: direct identifiers left out.
    gps
        Summary of the GPS treatment (mode, points, displaced, dropped, bounds).
    top_coded
        ``table, column, threshold, replaced_by, records``.
    recoded
        ``table, column, category, records``: rare categories merged into "other".
    pseudonymised
        ``table, column, codes``: identifiers replaced by random codes.
    dates
        ``table, column``: dates coarsened.
    risk
        ``table, stage (before/after), records, keys, expected_reidentifications,
        global_risk, max_risk, below_k2, below_k3, below_k5``.
    suppressed
        ``table, column, cells``: key values blanked by local suppression.
    estimates
        See :func:`estimate_shift`.
    parameters
        The options used.
    """

    k: int
    removed: pd.DataFrame
    gps: Mapping
    top_coded: pd.DataFrame
    recoded: pd.DataFrame
    pseudonymised: pd.DataFrame
    dates: pd.DataFrame
    risk: pd.DataFrame
    suppressed: pd.DataFrame
    estimates: pd.DataFrame
    parameters: Mapping = field(default_factory=dict)

    _FRAMES = ("removed", "top_coded", "recoded", "pseudonymised", "dates", "risk",
               "suppressed", "estimates")

    def to_dict(self) -> dict:
        """Plain JSON-able dict (frames as lists of records)."""
        out = {"k": self.k, "gps": dict(self.gps), "parameters": dict(self.parameters)}
        for name in self._FRAMES:
            frame = getattr(self, name).astype(object)
            out[name] = frame.where(frame.notna(), None).to_dict(orient="records")
        return out

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), default=_jsonable, indent=kw.pop("indent", 2), **kw)

    def to_markdown(self) -> str:
        """A readable report (plain markdown tables, no extra dependency)."""
        parts = ["# Disclosure control report", "",
                 f"k-anonymity required on the key variables: k = {self.k}.", ""]
        titles = {"removed": "Direct identifiers removed",
                  "top_coded": "Top-coded variables", "recoded": "Rare categories grouped",
                  "pseudonymised": "Identifiers replaced by random codes",
                  "dates": "Dates coarsened", "risk": "Re-identification risk",
                  "suppressed": "Local suppression (cells set to missing)",
                  "estimates": "Estimates on full and public-use data"}
        for name in self._FRAMES:
            parts += [f"## {titles[name]}", "", _md_table(getattr(self, name)), ""]
            if name == "removed":
                parts += ["## GPS", "", "; ".join(f"{k}: {v}" for k, v in self.gps.items()), ""]
        return "\n".join(parts)


def _jsonable(x):
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def _md_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(none)"

    def cell(v):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return ""
        if isinstance(v, float | np.floating):
            return f"{v:.6g}"
        return str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |"
            for row in df.astype(object).itertuples(index=False)]
    return "\n".join([head, rule, *body])
