"""Turning (design, variables, by) into arrays: checked once, shared by estimators."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from survey.design import Design
from survey.errors import EstimationError, did_you_mean

__all__ = ["Domains", "as_list", "check_column", "domains", "numeric_block", "numeric_column", "numeric_matrix"]


def as_list(x: str | Sequence[str] | None) -> list[str]:
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    return list(x)


def check_column(design: Design, col: str, what: str = "variable") -> pd.Series:
    if col not in design.data.columns:
        raise EstimationError(f"{what} not found in the data", column=col,
                              hint=did_you_mean(col, design.data.columns, "check the name against the data"))
    return design.data[col]


@dataclass(frozen=True)
class Domains:
    """Domain code per row (-1 outside every domain) and a table of domain keys."""

    code: np.ndarray  # (n,)
    keys: pd.DataFrame  # (D, len(by)), empty columns when no by
    by: tuple[str, ...]

    @property
    def n(self) -> int:
        return max(len(self.keys), 1)


def domains(design: Design, by: str | Sequence[str] | None, mask: np.ndarray | None = None) -> Domains:
    """Factorise the ``by`` columns once. Rows with a missing ``by`` value, or outside
    ``mask``, belong to no domain (their weights count as zero there, never dropped)."""
    cols = as_list(by)
    n = design.n
    if not cols:
        code = np.zeros(n, dtype=np.int64)
        keys = pd.DataFrame(index=range(1))
    else:
        for c in cols:
            s = check_column(design, c, "by= column")
            if s.isna().all():
                raise EstimationError("the by= column has only missing values", column=c,
                                      hint="choose a domain variable that is recorded for the sample")
        g = design.data.groupby(cols, sort=True, dropna=True, observed=True)
        # rows with a missing by= value belong to no domain (ngroup gives them NaN)
        code = g.ngroup().fillna(-1).to_numpy(dtype=np.int64)
        keys = g.size().index.to_frame(index=False)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != (n,):
            raise EstimationError(f"mask has shape {m.shape}, expected ({n},)",
                                  hint="a domain mask has one True/False per row of the design")
        code = np.where(m, code, -1)
    return Domains(code=code, keys=keys.reset_index(drop=True), by=tuple(cols))


def numeric_column(design: Design, name: str, statistic: str) -> np.ndarray:
    """One variable as a float array (a view when the column already is float64);
    NaN for missing; booleans as 0/1. Non-numeric columns are an error."""
    s = check_column(design, name)
    if s.dtype == np.float64:
        return s.to_numpy()
    if pd.api.types.is_bool_dtype(s) or (
        not isinstance(s.dtype, pd.CategoricalDtype) and pd.api.types.is_numeric_dtype(s)
    ):
        return s.to_numpy(dtype=float, na_value=np.nan)
    raise EstimationError(
        f"a {statistic} needs a numeric variable, got dtype {s.dtype}", column=name,
        hint="for a categorical variable use analysis.proportion(); "
             "convert numbers stored as text with pandas.to_numeric",
    )


def numeric_block(design: Design, variables: Sequence[str], statistic: str) -> np.ndarray:
    """The variables as an (n, k) float array with NaN for missing, to read, not to write:
    when every column is float64 it is one block taken from the frame (no per-column
    copy), else a new matrix from :func:`numeric_matrix`."""
    data = design.data
    cols = data.columns
    if cols.is_unique and all(v in cols for v in variables):
        pos = [cols.get_loc(v) for v in variables]
        dtypes = data.dtypes.to_numpy()
        if all(dtypes[p] == np.float64 for p in pos):
            return data.iloc[:, pos].to_numpy()
    return numeric_matrix(design, variables, statistic)


def numeric_matrix(design: Design, variables: Sequence[str], statistic: str) -> np.ndarray:
    """The variables as a new (n, k) float matrix with NaN for missing; booleans as 0/1.

    Column-major, so each variable is one contiguous column (written and read whole)."""
    out = np.empty((design.n, len(variables)), order="F")
    for j, v in enumerate(variables):
        out[:, j] = numeric_column(design, v, statistic)
    return out
