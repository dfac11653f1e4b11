"""Control totals: parsed once from plain mappings or DataFrames, checked, matched.

A calibration target is a list of :class:`Margin` objects. A categorical margin is
a variable (or a tuple of variables for a cross-classification such as region x
urban) with one population total per category; a numeric margin is a column with
its population total; ``"(Intercept)"`` is the population size, as in R.

Accepted forms::

    {"stype": {"E": 4421, "H": 755, "M": 1018}, "api99": 3914069}
    {("region", "urban"): {("N", "U"): 120, ("N", "R"): 80, ...}}
    pd.DataFrame({"variable": [...], "level": [...], "total": [...]})   # level NaN: numeric
    [pd.DataFrame({"stype": [...], "Freq": [...]}), ...]                 # R's margins
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from survey.errors import WeightingError
from weighting._common import cell_codes

__all__ = ["Margin", "match_margin", "parse_totals"]

INTERCEPT = "(Intercept)"


@dataclass(frozen=True)
class Margin:
    """One calibration constraint group: a categorical margin or a numeric total."""

    columns: tuple[str, ...]
    kind: str  # "categorical" | "numeric" | "intercept"
    levels: tuple  # category keys (scalars, or tuples for several columns); () otherwise
    totals: np.ndarray  # one per level, or a single total

    @property
    def name(self) -> str:
        return " x ".join(self.columns)


def _check_value(v, margin: str, level=None) -> float:
    where = f"margin {margin!r}" + (f", category {level!r}" if level is not None else "")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise WeightingError(f"{where}: total {v!r} is not a number",
                             hint="control totals are population counts or sums") from None
    if np.isnan(x):
        raise WeightingError(f"{where}: total is missing",
                             hint="give every category a total (0 if the category is empty)")
    if x < 0:
        raise WeightingError(f"{where}: total is negative ({x:g})",
                             hint="population totals of counts are >= 0")
    return x


def _from_mapping(totals: Mapping) -> list[Margin]:
    out = []
    for key, val in totals.items():
        cols = tuple(key) if isinstance(key, tuple) else (str(key),)
        name = " x ".join(cols)
        if key == INTERCEPT:
            out.append(Margin((INTERCEPT,), "intercept", (), np.array([_check_value(val, name)])))
        elif isinstance(val, Mapping | pd.Series):
            items = list(val.items())
            if not items:
                raise WeightingError(f"margin {name!r} has no categories")
            levels = tuple(k for k, _ in items)
            if len(cols) > 1 and not all(isinstance(k, tuple) and len(k) == len(cols) for k in levels):
                raise WeightingError(f"margin {name!r}: categories must be tuples of {len(cols)} values",
                                     hint="key a cross-classified margin as {(a, b): total}")
            out.append(Margin(cols, "categorical", levels,
                              np.array([_check_value(v, name, k) for k, v in items])))
        else:
            if len(cols) > 1:
                raise WeightingError(f"margin {name!r} needs a total per category, got one number")
            out.append(Margin(cols, "numeric", (), np.array([_check_value(val, name)])))
    return out


def _from_frame(df: pd.DataFrame) -> list[Margin]:
    need = {"variable", "level", "total"}
    if need <= set(df.columns):
        mapping: dict = {}
        for var, level, tot in df[["variable", "level", "total"]].itertuples(index=False):
            if pd.isna(level):
                mapping[var] = tot
            else:
                mapping.setdefault(var, {})[level] = tot
        return _from_mapping(mapping)
    count = [c for c in df.columns if str(c) in ("Freq", "total", "N", "count")]
    if len(count) != 1:
        raise WeightingError(
            f"cannot read totals from a DataFrame with columns {list(df.columns)}",
            hint="use columns variable/level/total, or the margin's columns plus one count "
                 "column named Freq, total, N or count (R's postStratify layout)")
    cols = [c for c in df.columns if c != count[0]]
    if len(cols) == 1:
        levels = tuple(df[cols[0]].tolist())
    else:
        levels = tuple(tuple(r) for r in df[cols].itertuples(index=False))
    return _from_mapping({tuple(cols) if len(cols) > 1 else cols[0]:
                          dict(zip(levels, df[count[0]].tolist()))})


def parse_totals(totals, *, categorical_only: bool = False) -> list[Margin]:
    """Margins from a mapping, a DataFrame, or a list of either; checked for sign,
    missing values, and agreement of the population size across margins."""
    if isinstance(totals, pd.DataFrame):
        margins = _from_frame(totals)
    elif isinstance(totals, Mapping):
        margins = _from_mapping(totals)
    elif isinstance(totals, Sequence) and not isinstance(totals, str):
        margins = [m for t in totals for m in parse_totals(t)]
    else:
        raise WeightingError(f"totals must be a mapping or a DataFrame, got {type(totals).__name__}",
                             hint='e.g. {"stype": {"E": 4421, "H": 755, "M": 1018}}')
    if not margins:
        raise WeightingError("no control totals given")
    if categorical_only:
        bad = [m for m in margins if m.kind != "categorical"]
        if bad:
            raise WeightingError(f"margin {bad[0].name!r} is not categorical",
                                 hint="post-stratification and raking take a total per category; "
                                      "use calibrate() for numeric auxiliaries")
    sizes = [(m.name, float(m.totals.sum())) for m in margins if m.kind in ("categorical", "intercept")]
    if sizes:
        ref_name, ref = sizes[0]
        for name, s in sizes[1:]:
            if abs(s - ref) > 1e-6 * max(abs(ref), 1.0):
                raise WeightingError(
                    f"totals disagree across margins: {ref_name!r} sums to {ref:.10g} but "
                    f"{name!r} sums to {s:.10g}",
                    hint="every categorical margin counts the same population; fix the totals "
                         "so that each margin adds up to the same population size")
    names = [m.name for m in margins]
    dup = {x for x in names if names.count(x) > 1}
    if dup:
        raise WeightingError(f"margin {sorted(dup)[0]!r} is given twice")
    return margins


def _lookup(levels: Sequence, sample_keys: list) -> tuple[dict, dict]:
    exact = {k: i for i, k in enumerate(sample_keys)}
    as_str = {tuple(map(str, k)) if isinstance(k, tuple) else str(k): i for i, k in enumerate(sample_keys)}
    return exact, as_str


def match_margin(data: pd.DataFrame, margin: Margin, active: np.ndarray,
                 sample_w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Cell code per row (-1 for inactive rows) in the order of ``margin.levels``.

    Categories present among active rows but without a total, and totals for
    categories absent from the sample (unless the total is 0, which is dropped as R
    does), are errors naming the margin and category. Returns codes, the totals of
    the kept categories and their levels.
    """
    codes, keys = cell_codes(data, margin.columns, active, what="calibration")
    if len(margin.columns) == 1:
        sample_keys = keys.iloc[:, 0].tolist()
    else:
        sample_keys = [tuple(r) for r in keys.itertuples(index=False)]
    exact, as_str = _lookup(margin.levels, sample_keys)
    pos = np.full(len(sample_keys), -1, dtype=np.int64)
    keep_levels, keep_tot = [], []
    for lev, tot in zip(margin.levels, margin.totals):
        i = exact.get(lev)
        if i is None:
            i = as_str.get(tuple(map(str, lev)) if isinstance(lev, tuple) else str(lev))
        if i is None:
            if tot == 0:
                continue
            raise WeightingError(
                f"margin {margin.name!r}: category {lev!r} has a population total ({tot:g}) "
                f"but no unit in the sample",
                column=margin.columns[0],
                hint="collapse it with a neighbouring category in both the data and the totals; "
                     f"sample categories are {sample_keys[:10]}")
        pos[i] = len(keep_levels)
        keep_levels.append(lev)
        keep_tot.append(tot)
    missing = np.flatnonzero(pos < 0)
    if len(missing):
        lev = sample_keys[int(missing[0])]
        raise WeightingError(
            f"margin {margin.name!r}: category {lev!r} is in the sample but has no population total",
            column=margin.columns[0],
            hint=f"add a total for {lev!r} (totals were given for {list(margin.levels)[:10]})")
    out = np.append(pos, -1)[codes]  # code -1 (inactive rows) picks the trailing -1
    totals = np.asarray(keep_tot, dtype=float)
    if sample_w is not None:
        from weighting._common import group_sums

        s = group_sums(out, sample_w, len(totals))
        zero = np.flatnonzero((s == 0) & (totals > 0))
        if len(zero):
            lev = keep_levels[int(zero[0])]
            raise WeightingError(
                f"margin {margin.name!r}: category {lev!r} has a total but its units all have weight 0",
                column=margin.columns[0], hint="collapse the category or check earlier steps")
    return out, totals, tuple(keep_levels)
