"""Write a public-use release: each table as CSV, Stata, SPSS, Excel or Parquet, and the
disclosure report (markdown and JSON) beside it. The crosswalk is never written here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from survey.errors import InstrumentError

from .public import PublicUse

__all__ = ["write_public_use"]

_FORMATS = ("csv", "dta", "sav", "xlsx", "parquet")


def _plain(df: pd.DataFrame, stata: bool = False) -> pd.DataFrame:
    """Columns as float (numbers) or str (text), for readstat writers."""
    out = {}
    for c in df.columns:
        s = df[c]
        name = re.sub(r"[^A-Za-z0-9_]", "_", str(c))[:32] if stata else str(c)
        if pd.api.types.is_bool_dtype(s) or (pd.api.types.is_numeric_dtype(s)
                                             and not isinstance(s.dtype, pd.CategoricalDtype)):
            out[name] = pd.to_numeric(s, errors="coerce").to_numpy(float, na_value=np.nan)
        else:
            out[name] = s.astype("string").fillna("").to_numpy(dtype=object)
    return pd.DataFrame(out)


def write_public_use(result: PublicUse, directory: str | Path,
                     formats: Sequence[str] = ("csv", "dta", "xlsx"),
                     prefix: str = "") -> list[Path]:
    """Write the public-use tables and the disclosure report.

    Parameters
    ----------
    result
        What :func:`~instruments.disclosure.public_use` returned.
    directory
        Folder to write into (created if needed).
    formats
        Any of ``csv``, ``dta`` (Stata), ``sav`` (SPSS), ``xlsx`` (one workbook, a
        sheet per table), ``parquet``.
    prefix
        Put before every file name (e.g. ``"dotm2026_"``).

    Returns
    -------
    list of Path
        The files written: tables, ``disclosure_report.md`` and ``.json``.
    """
    bad = set(formats) - set(_FORMATS)
    if bad:
        raise InstrumentError(f"unknown public-use format(s) {sorted(bad)}",
                              hint=f"use {', '.join(_FORMATS)}")
    import pyreadstat

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, df in result.tables.items():
        if "csv" in formats:
            written.append(d / f"{prefix}{name}.csv")
            df.to_csv(written[-1], index=False)
        if "parquet" in formats:
            written.append(d / f"{prefix}{name}.parquet")
            _plain(df).to_parquet(written[-1], index=False)
        if "dta" in formats:
            written.append(d / f"{prefix}{name}.dta")
            pyreadstat.write_dta(_plain(df, stata=True), str(written[-1]),
                                 file_label=f"{name} (public use)")
        if "sav" in formats:
            written.append(d / f"{prefix}{name}.sav")
            pyreadstat.write_sav(_plain(df, stata=True), str(written[-1]))
    if "xlsx" in formats:
        written.append(d / f"{prefix}public_use.xlsx")
        with pd.ExcelWriter(written[-1], engine="openpyxl") as xw:
            for name, df in result.tables.items():
                _plain(df).to_excel(xw, sheet_name=name[:31], index=False)
    written.append(d / f"{prefix}disclosure_report.md")
    written[-1].write_text(result.report.to_markdown(), encoding="utf-8")
    written.append(d / f"{prefix}disclosure_report.json")
    written[-1].write_text(result.report.to_json(), encoding="utf-8")
    return written
