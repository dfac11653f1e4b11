"""The sampling frame: census enumeration areas (EAs) with their measure of size.

``read_frame`` reads a CSV, XLSX or Parquet frame and checks it; ``check_frame`` does
the checks on a DataFrame. Every error names the file, the row as the user sees it
(header = row 1), the column and what to do.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from survey.errors import SamplingError, SurveyWarning

from ._util import Source, as_list, read_table, require_columns

__all__ = ["check_frame", "read_frame"]

ZeroSize = Literal["error", "drop"]


def read_frame(
    path_or_df: str | Path | pd.DataFrame,
    ea: str = "ea_id",
    size: str = "households",
    strata: str | Sequence[str] = ("stratum",),
    *,
    columns: Sequence[str] = (),
    stratum: str = "stratum",
    zero_size: ZeroSize = "error",
    sheet: str | int | None = None,
) -> pd.DataFrame:
    """Read a frame of EAs from CSV, XLSX or Parquet and check it.

    Parameters
    ----------
    path_or_df
        A ``.csv``, ``.xlsx`` or ``.parquet`` file, or a DataFrame.
    ea
        Column holding the EA identifier (read as text so leading zeros survive).
    size
        Column holding the measure of size M_hi (census households).
    strata
        Stratum variables (e.g. ``["region", "urban"]``).
    columns
        Further columns the design uses (sort variables for implicit stratification);
        they must have no missing values.
    stratum
        Name of the combined stratum column added when ``strata`` is not just that
        column: the stratum variables' values joined by ``" / "``.
    zero_size
        ``"error"`` (default): an EA with zero households is an error. ``"drop"``:
        such EAs are removed, a :class:`SurveyWarning` says how many, and their ids
        are kept in ``result.attrs["dropped_zero_size"]``.
    sheet
        Sheet of an XLSX file (default: the first).

    Returns
    -------
    pandas.DataFrame
        A new, checked frame with ``size`` numeric and ``stratum`` present.

    Raises
    ------
    SamplingError
        Naming file, row, column and a hint, for a missing column, a missing or
        duplicated EA id, a size that is missing, not a number, negative, infinite
        or zero, or a missing stratum or design value.
    """
    df, src = read_table(path_or_df, sheet=sheet, text_columns=[ea], what="frame")
    return _check(df, src, ea, size, as_list(strata), list(columns), stratum, zero_size)


def check_frame(
    frame: pd.DataFrame,
    ea: str = "ea_id",
    size: str = "households",
    strata: str | Sequence[str] = ("stratum",),
    *,
    columns: Sequence[str] = (),
    stratum: str = "stratum",
    zero_size: ZeroSize = "error",
) -> pd.DataFrame:
    """Check a frame given as a DataFrame; see :func:`read_frame` for the checks.

    Rows are named by their index label (there is no file to count rows in).
    The input is not modified; a checked copy is returned.
    """
    return _check(
        frame,
        Source(None, None, None),
        ea,
        size,
        as_list(strata),
        list(columns),
        stratum,
        zero_size,
    )


def _fail(df: pd.DataFrame, src: Source, bad: np.ndarray, column: str, message: str, hint: str):
    pos = np.flatnonzero(bad)
    where = src.where(df, int(pos[0]))
    if len(pos) > 1:
        shown = ", ".join(str(r) for r in src.row_numbers(pos[:6], df))
        more = " ..." if len(pos) > 6 else ""
        message += f" ({len(pos)} rows in all: {shown}{more})"
    raise SamplingError(message, column=column, hint=hint, **where)


def _check(
    frame: pd.DataFrame,
    src: Source,
    ea: str,
    size: str,
    strata: list[str],
    columns: list[str],
    stratum: str,
    zero_size: ZeroSize,
) -> pd.DataFrame:
    if zero_size not in ("error", "drop"):
        raise SamplingError(f"zero_size must be 'error' or 'drop', got {zero_size!r}")
    needed = [ea, size, *strata, *columns]
    require_columns(frame, needed, "frame", "name the EA id, size and stratum columns with ea=, size=, strata=",
                    file=src.file)
    df = frame.copy()

    ids = df[ea]
    _missing = ids.isna().to_numpy()
    if _missing.any():
        _fail(df, src, _missing, ea, "EA id is missing", "give every EA an id")
    dup = ids.duplicated(keep="first").to_numpy()
    if dup.any():
        first = int(np.flatnonzero(dup)[0])
        twin = int(np.flatnonzero((ids == ids.iloc[first]).to_numpy())[0])
        first_at = src.row_numbers(np.array([twin]), df)[0]
        _fail(
            df,
            src,
            dup,
            ea,
            f"EA id {ids.iloc[first]!r} appears twice (first at row {first_at})",
            "make EA ids unique",
        )

    raw = df[size]
    sizes = pd.to_numeric(raw, errors="coerce")
    if sizes.isna().any():
        missing = raw.isna().to_numpy()
        if missing.any():
            _fail(
                df,
                src,
                missing,
                size,
                "measure of size is missing",
                "give every EA its census household count",
            )
        _fail(
            df,
            src,
            sizes.isna().to_numpy(),
            size,
            f"measure of size is not a number (got {raw[sizes.isna()].iloc[0]!r})",
            "give household counts as numbers",
        )
    values = sizes.to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        got = values[bad][0]
        _fail(
            df,
            src,
            bad,
            size,
            f"measure of size must be positive and finite, got {got:g}",
            "correct the census household count of this EA",
        )
    zero = values == 0
    if zero.any() and zero_size == "error":
        _fail(
            df,
            src,
            zero,
            size,
            "measure of size is zero (expected a positive household count)",
            "correct the count, or pass zero_size='drop' to leave such EAs out of the frame",
        )
    df[size] = sizes

    for col in [*strata, *columns]:
        miss = df[col].isna().to_numpy()
        if df[col].dtype.kind in "OUT" or isinstance(df[col].dtype, pd.StringDtype):
            miss = miss | (df[col].astype("string").str.strip() == "").fillna(False).to_numpy(
                dtype=bool
            )
        if miss.any():
            what = "stratum variable" if col in strata else "design variable"
            _fail(df, src, miss, col, f"{what} {col!r} is missing", "fill it in for every EA")

    if zero.any():
        dropped = df.loc[zero, ea].tolist()
        df = df.loc[~zero].reset_index(drop=True)
        warnings.warn(
            f"dropped {len(dropped)} EA(s) with zero households from the frame",
            SurveyWarning,
            stacklevel=3,
        )
        df.attrs["dropped_zero_size"] = dropped
    if strata and strata != [stratum]:
        parts = [df[c].astype("string") for c in strata]
        combined = parts[0]
        for p in parts[1:]:
            combined = combined + " / " + p
        df[stratum] = combined
    return df
