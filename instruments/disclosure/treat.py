"""Non-perturbative treatments of single columns: top-coding, grouping, codes, dates.

Each function takes a table (never modified) and returns a treated copy and a small
record of what it did, for the disclosure report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from survey.errors import InstrumentError

__all__ = ["TopCode", "band", "coarsen_dates", "group_rare", "pseudonymise", "top_code"]


@dataclass(frozen=True)
class TopCode:
    """How to top-code one column.

    Attributes
    ----------
    threshold
        Values above it are top-coded (takes precedence over ``quantile``).
    quantile
        Or: the threshold is this quantile of the observed values (e.g. 0.99).
    replace
        ``"threshold"``: values above become the threshold (ages: "80 or more");
        ``"mean"``: they become the weighted mean of the values above it, which keeps
        the weighted total and mean of the column unchanged.
    """

    threshold: float | None = None
    quantile: float | None = None
    replace: str = "threshold"

    def __post_init__(self):
        if self.threshold is None and self.quantile is None:
            raise InstrumentError("a top-code needs a threshold or a quantile")
        if self.quantile is not None and not 0 < self.quantile < 1:
            raise InstrumentError(f"top-code quantile {self.quantile} is not in (0, 1)")
        if self.replace not in ("threshold", "mean"):
            raise InstrumentError(f"top-code replace={self.replace!r}: use 'threshold' or 'mean'")


def top_code(df: pd.DataFrame, rules: Mapping[str, TopCode], weights=None
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Top-code numeric columns.

    Parameters
    ----------
    df
        The table (not modified).
    rules
        Column -> :class:`TopCode`; columns absent from ``df`` are skipped.
    weights
        One weight per row (for ``replace="mean"``); None for equal weights.

    Returns
    -------
    (DataFrame, DataFrame)
        The treated copy, and one row per column: ``column, threshold, replaced_by,
        records`` (records top-coded).

    Notes
    -----
    Large values (remittances, ages of the very old) are rare and visible; top-coding
    turns them into a class "threshold or more" (Hundepool et al. 2012, sec. 3.4.3).
    Replacing by the mean above the threshold keeps totals, at the cost of a released
    value nobody reported.
    """
    out = df.copy()
    w = np.ones(len(df)) if weights is None else np.asarray(weights, dtype=float)
    rows = []
    for col, rule in rules.items():
        if col not in df.columns:
            continue
        x = pd.to_numeric(df[col], errors="coerce").astype("Float64")
        obs = x.dropna().to_numpy(dtype=float)
        if len(obs) == 0:
            continue
        t = rule.threshold if rule.threshold is not None else float(
            np.quantile(obs, rule.quantile, method="inverted_cdf"))
        above = (x > t).fillna(False).to_numpy(dtype=bool)
        value = t
        if rule.replace == "mean" and above.any():
            value = float(np.average(x.to_numpy(dtype=float, na_value=np.nan)[above],
                                     weights=w[above]))
        if pd.api.types.is_integer_dtype(df[col]):
            value = round(value)
        new = x.mask(pd.array(above), value)
        out[col] = new.astype(df[col].dtype) if pd.api.types.is_integer_dtype(df[col]) else new
        rows.append({"column": col, "threshold": t, "replaced_by": value,
                     "records": int(above.sum())})
    return out, pd.DataFrame(rows, columns=["column", "threshold", "replaced_by", "records"])


def group_rare(df: pd.DataFrame, columns: Sequence[str], min_count: int = 10,
               other: str = "other") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merge categories held by fewer than ``min_count`` records into ``other``.

    Parameters
    ----------
    df
        The table (not modified).
    columns
        Categorical (or text) columns, e.g. destination country.
    min_count
        Smallest number of records a released category may have.
    other
        Name of the merged category (joined with an existing category of that name).

    Returns
    -------
    (DataFrame, DataFrame)
        The treated copy, and one row per merged category: ``column, category,
        records``.

    Notes
    -----
    Global recoding (Hundepool et al. 2012, sec. 3.4.2): a destination few migrants
    go to is itself a key to them; grouping it lowers every frequency count it held.
    """
    out = df.copy()
    rows = []
    for col in columns:
        if col not in df.columns:
            continue
        s = df[col]
        counts = s.value_counts(dropna=True)
        counts = counts[counts > 0]
        rare = [c for c, n in counts.items() if n < min_count and c != other]
        if isinstance(s.dtype, pd.CategoricalDtype):
            unused = [c for c in s.cat.categories if c not in counts.index]
            s = s.cat.remove_categories([c for c in unused if c != other])
            if not rare:
                out[col] = s
                continue
            if other not in s.cat.categories:
                s = s.cat.add_categories([other])
            new = s.where(~s.isin(rare), other).cat.remove_categories(rare)
        else:
            if not rare:
                continue
            new = s.where(~s.isin(rare), other)
        out[col] = new
        rows += [{"column": col, "category": str(c), "records": int(counts[c])} for c in rare]
    return out, pd.DataFrame(rows, columns=["column", "category", "records"])


def band(df: pd.DataFrame, columns: Sequence[str], width: int
         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Recode integers to bands of ``width``: each value becomes its band's lower bound.

    Returns
    -------
    (DataFrame, DataFrame)
        The treated copy, and one row per column: ``column, category`` (the band
        width, e.g. ``"bands of 5"``), ``records`` (values recoded).

    Notes
    -----
    Global recoding (Hundepool et al. 2012, sec. 3.4.2): five-year age groups keep the
    age structure while multiplying the frequency of each key about five-fold, so far
    fewer values need local suppression.
    """
    if width < 1:
        raise InstrumentError(f"band width {width} must be at least 1")
    out = df.copy()
    rows = []
    for col in columns:
        if col not in df.columns:
            continue
        x = df[col]
        out[col] = (x // width) * width
        rows.append({"column": col, "category": f"bands of {width} (lower bound)",
                     "records": int((out[col] != x).fillna(False).sum())})
    return out, pd.DataFrame(rows, columns=["column", "category", "records"])


def coarsen_dates(df: pd.DataFrame, columns: Sequence[str], to: str = "month") -> pd.DataFrame:
    """Dates and time stamps -> ``"YYYY-MM"`` (``to="month"``) or ``"YYYY"`` text.

    Notes
    -----
    The day and time of an interview, with the EA, point at one household's visit in
    the field teams' records; the month keeps seasonality for analysts.
    """
    fmt = {"month": "%Y-%m", "year": "%Y"}.get(to)
    if fmt is None:
        raise InstrumentError(f"dates={to!r}: use 'month', 'year', 'keep' or 'drop'")
    out = df.copy()
    for col in columns:
        if col in df.columns:
            d = df[col]
            if not pd.api.types.is_datetime64_any_dtype(d):
                d = pd.to_datetime(d, errors="coerce", utc=True, format="ISO8601")
            out[col] = d.dt.strftime(fmt).astype("string")
    return out


def pseudonymise(values: pd.Series, prefix: str, rng: np.random.Generator,
                 mapping: Mapping | None = None) -> tuple[pd.Series, dict]:
    """Replace identifiers by random codes ``<prefix>00001`` ... in random order.

    Parameters
    ----------
    values
        The identifiers (missing stays missing).
    prefix
        Letter(s) before the number.
    rng
        Random generator: the codes are a random permutation, so their order says
        nothing of the original order (of listing, selection or interview).
    mapping
        Codes already given (original -> code): reused, new values get new codes.

    Returns
    -------
    (Series, dict)
        The codes, and the full crosswalk original -> code (keep it only in the store).
    """
    mapping = dict(mapping or {})
    seen = pd.unique(values.dropna().astype(str))
    new = [v for v in seen if v not in mapping]
    if new:
        start = len(mapping)
        width = max(5, len(str(start + len(new))))
        numbers = start + 1 + rng.permutation(len(new))
        mapping.update({v: f"{prefix}{n:0{width}d}" for v, n in zip(new, numbers)})
    codes = values.astype("string").map(mapping).astype("string")
    return codes, mapping
