"""Shared plumbing of the weighting steps: new designs, cell codes, checks.

Every weighting step returns a new :class:`~survey.design.Design`; none mutates its
input. The helpers here build that design, factorise cell columns once and check
user input with messages that name the column, row and cell.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from survey.design import Calibration, Design
from survey.errors import WeightingError

__all__ = ["as_list", "cell_codes", "new_design", "unique_name"]


def as_list(x: str | Sequence[str] | None) -> list[str]:
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    return list(x)


def unique_name(data: pd.DataFrame, name: str) -> str:
    """``name``, or ``name_2``, ``name_3``... when a column of that name exists."""
    if name not in data.columns:
        return name
    i = 2
    while f"{name}_{i}" in data.columns:
        i += 1
    return f"{name}_{i}"


def new_design(design: Design, values: np.ndarray, name: str, *,
               calibration: Calibration | None = None,
               replicate_values: np.ndarray | None = None) -> Design:
    """A copy of ``design`` whose weights are ``values`` in a new column ``name``.

    Earlier weight columns stay in the data; ``history`` lists the weight columns of
    the chain (the first entry is the column the chain started from), which is what
    :func:`weighting.weight_chain` reads. ``calibration`` is appended to the
    design's calibrations; for a replicate design ``replicate_values`` (n x R)
    replaces the replicate weights.
    """
    w = np.asarray(values, dtype=float)
    if w.shape != (design.n,):  # internal invariant, not user input
        raise WeightingError(f"new weights have shape {w.shape}, expected ({design.n},)", column=name)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise WeightingError(f"the step produced an invalid weight {w[i]}", column=name, row=i + 1,
                             hint="check the inputs of the weighting step (totals, bounds, cells)")
    name = unique_name(design.data, name)
    new = design.with_weights(w, name, calibration=calibration, step=name,
                              replicate_values=replicate_values)
    if not design.history:
        # record where the chain started, for weight_chain(); the new design is ours
        object.__setattr__(new, "history", (design.weights, *new.history))
    return new


def cell_codes(data: pd.DataFrame, columns: Sequence[str], active: np.ndarray | None = None,
               what: str = "cell") -> tuple[np.ndarray, pd.DataFrame]:
    """Codes 0..C-1 of the combinations of ``columns`` (sorted), and the key table.

    Rows outside ``active`` get code -1 and may have missing values; an active row
    with a missing value is an error naming the column and row.
    """
    cols = list(columns)
    for c in cols:
        if c not in data.columns:
            raise WeightingError(f"{what} column not found in the data", column=c,
                                 hint="check the column name against the design's data")
    n = len(data)
    act = np.ones(n, dtype=bool) if active is None else np.asarray(active, dtype=bool)
    for c in cols:
        na = data[c].isna().to_numpy() & act
        if na.any():
            i = int(np.flatnonzero(na)[0])
            raise WeightingError(f"{int(na.sum())} missing value(s) in a {what} column", column=c,
                                 row=i + 1, hint=f"every unit in the step needs its {what}; "
                                                 "recode missing values to a category")
    if len(cols) == 1:
        col = data[cols[0]] if act.all() else data[cols[0]].where(act)
        codes, uniq = pd.factorize(col, sort=True)
        keys = pd.DataFrame({cols[0]: uniq})
    else:
        sub = data[cols].loc[act]
        g = sub.groupby(cols, sort=True, observed=True, dropna=False)
        inner = g.ngroup().to_numpy(dtype=np.int64)
        codes = np.full(n, -1, dtype=np.int64)
        codes[act] = inner
        keys = g.size().index.to_frame(index=False)
    codes = np.asarray(codes, dtype=np.int64)
    if not act.all():
        codes[~act] = -1
    return codes, keys.reset_index(drop=True)


def cell_label(keys: pd.DataFrame, c: int) -> str:
    """Readable name of cell ``c``: ``stype=E, grp=emigrant``."""
    row = keys.iloc[c]
    return ", ".join(f"{k}={row[k]}" for k in keys.columns)


def group_sums(codes: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Sums of ``values`` (n,) or (n, R) within codes 0..size-1 (rows with -1 left out)."""
    if values.ndim == 1:
        if codes.min(initial=0) >= 0:  # fast path: no row left out, no masked copies
            return np.bincount(codes, weights=values, minlength=size)
        keep = codes >= 0
        return np.bincount(codes[keep], weights=values[keep], minlength=size)
    keep = codes >= 0
    import scipy.sparse as sp

    rows = np.flatnonzero(keep)
    ind = sp.csr_matrix((np.ones(len(rows)), (codes[rows], rows)), shape=(size, len(codes)))
    return np.asarray(ind @ values)
