"""Small helpers shared by the sampling modules: seeds, reading tables, locating rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from survey.errors import SamplingError

__all__ = ["Source", "as_list", "read_table", "require_columns", "resolve_seed"]

#: Upper bound of recorded seeds (they fit an int64 column).
_SEED_MAX = 2**63 - 1


def resolve_seed(rng: np.random.Generator | int | None) -> tuple[int, np.random.Generator]:
    """Turn ``rng`` into an integer seed that reproduces the selection, and its generator.

    A Generator passed in is advanced once (one integer is drawn from it), so that
    the recorded seed alone reproduces the selection: ``default_rng(seed)``.
    """
    if rng is None:
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))
    elif isinstance(rng, np.random.Generator):
        seed = int(rng.integers(0, _SEED_MAX))
    elif isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        seed = int(rng)
        if not 0 <= seed <= _SEED_MAX:
            raise SamplingError(
                f"seed must be between 0 and 2**63-1, got {seed}",
                hint="pass a non-negative integer",
            )
    else:
        raise SamplingError(
            f"rng must be a numpy Generator, an integer seed or None, got {type(rng).__name__}",
            hint="pass numpy.random.default_rng(seed) or an integer",
        )
    return seed, np.random.default_rng(seed)


def as_list(cols: str | Sequence[str] | None) -> list[str]:
    """Column argument given as one name or several, as a list."""
    if cols is None:
        return []
    if isinstance(cols, str):
        return [cols]
    return list(cols)


@dataclass(frozen=True)
class Source:
    """Where a table came from, to name rows the way the user sees them.

    ``rows`` holds, for each position of the DataFrame, the row number in the file
    (header = row 1). For a DataFrame given directly, ``file`` is None and rows are
    reported by index label as ``key``.
    """

    file: str | None
    sheet: str | None
    rows: np.ndarray | None

    def where(self, df: pd.DataFrame, position: int) -> dict:
        """Keyword arguments for :class:`SamplingError` locating row ``position``."""
        if self.rows is not None:
            return {"file": self.file, "sheet": self.sheet, "row": int(self.rows[position])}
        return {"key": f"index {df.index[position]!r}"}

    def row_numbers(self, positions: np.ndarray, df: pd.DataFrame) -> list:
        if self.rows is not None:
            return [int(r) for r in self.rows[positions]]
        return [df.index[p] for p in positions]


def require_columns(df: pd.DataFrame, columns: Sequence[str], what: str, hint: str | dict[str, str],
                    *, file: str | None = None, purpose: str = "") -> None:
    """A :class:`SamplingError` for the first of ``columns`` missing from ``df``, naming
    the column, the columns there are and (``hint`` per column, or one for all) what to do."""
    for col in columns:
        if col not in df.columns:
            raise SamplingError(
                f"{what} has no column {col!r}{' ' + purpose if purpose else ''} "
                f"(columns: {', '.join(map(str, df.columns))})",
                file=file, column=col, hint=hint.get(col, hint.get("")) if isinstance(hint, dict) else hint)


def read_table(
    source: str | Path | pd.DataFrame,
    *,
    sheet: str | int | None = None,
    text_columns: Sequence[str] = (),
    what: str = "table",
) -> tuple[pd.DataFrame, Source]:
    """Read CSV, XLSX or Parquet (or take a DataFrame) and remember file row numbers.

    Columns in ``text_columns`` are read as strings so that identifiers such as
    ``"0012"`` keep their leading zeros. Fully blank lines are dropped but the row
    numbers of the others stay those of the file.
    """
    if isinstance(source, pd.DataFrame):
        return source, Source(None, None, None)
    path = Path(source)
    if not path.exists():
        raise SamplingError(
            f"{what} file not found", file=str(path), hint="check the path in survey.toml"
        )
    suffix = path.suffix.lower()
    dtype = {c: "string" for c in text_columns}
    sheet_name: str | None = None
    if suffix in (".csv", ".txt"):
        df = pd.read_csv(path, dtype=dtype, skip_blank_lines=False)
        rows = np.arange(len(df)) + 2
    elif suffix in (".xlsx", ".xlsm"):
        sh = 0 if sheet is None else sheet
        try:
            df = pd.read_excel(path, sheet_name=sh, dtype=dict.fromkeys(text_columns, str))
        except ValueError as err:
            raise SamplingError(
                f"cannot read sheet {sh!r}: {err}", file=str(path), hint="name an existing sheet"
            ) from err
        sheet_name = str(sh) if isinstance(sh, str) else None
        for c in text_columns:
            if c in df.columns:
                df[c] = df[c].astype("string")
        rows = np.arange(len(df)) + 2
    elif suffix in (".parquet", ".pq"):
        df = pd.read_parquet(path)
        for c in text_columns:
            if c in df.columns:
                df[c] = df[c].astype("string")
        rows = np.arange(len(df)) + 1  # record number: Parquet has no header row
    else:
        raise SamplingError(
            f"unsupported {what} format {suffix!r}",
            file=str(path),
            hint="use a .csv, .xlsx or .parquet file",
        )
    blank = df.isna().all(axis=1).to_numpy()
    if blank.any():
        df = df.loc[~blank].reset_index(drop=True)
        rows = rows[~blank]
    return df, Source(str(path), sheet_name, rows)
