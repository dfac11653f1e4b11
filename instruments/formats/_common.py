"""Helpers shared by the format modules: column maps, zip and CSV reading."""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from survey.errors import InstrumentError

from ..form import Field, Form
from ..raw import GEO_PARTS, META, join_geopoint, missing_strings, raw_columns, string_array

__all__ = ["assemble", "open_zip", "read_csv_text", "relative_path"]


def relative_path(form: Form, f: Field) -> str:
    """Path of a field below its table's element (``remittances/rem_amount``)."""
    base = form.tables[f.table].path
    return f.path[len(base) + 1:] if base else f.path


def open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        raise InstrumentError(
            f"not a complete zip file ({exc})", file=str(path),
            hint="the download was probably interrupted: download the export again",
        ) from exc


def read_member(zf: zipfile.ZipFile, name: str, path: Path) -> bytes:
    """A zip member's bytes; a damaged member (CRC, truncation) is an InstrumentError."""
    try:
        return zf.read(name)
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        raise InstrumentError(f"zip member {name!r} is damaged ({exc})", file=str(path),
                              hint="download the export again") from exc


def read_csv_text(data: bytes | str, source: str) -> pd.DataFrame:
    """A CSV with every cell as a string and empty cells missing."""
    data = data.encode("utf-8") if isinstance(data, str) else data
    fast = _read_csv_arrow(data)
    if fast is not None:
        return fast
    buf = io.BytesIO(data)
    try:
        df = pd.read_csv(buf, dtype="string", keep_default_na=False, na_values=[""],
                         engine="pyarrow")
    except Exception as exc:  # pyarrow raises its own error types
        raise InstrumentError(f"cannot read the CSV: {exc}", file=source) from exc
    return df


def _read_csv_arrow(data: bytes) -> pd.DataFrame | None:
    """``read_csv_text`` straight from arrow's reader, every column typed as text.

    Gives what pandas' pyarrow engine gives (which adds a copy per column); returns
    None for what pandas treats specially (duplicate or missing header names, no
    header, unreadable input), so that pandas reads those.
    """
    try:
        first = data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8-sig")
        names = next(csv.reader([first]))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return None
    if not names or len(set(names)) != len(names) or any(n == "" for n in names):
        return None
    try:
        table = pa_csv.read_csv(
            io.BytesIO(data),
            convert_options=pa_csv.ConvertOptions(
                column_types={n: pa.large_string() for n in names},
                null_values=[""], strings_can_be_null=True),
        )
    except (pa.ArrowException, ValueError):
        return None
    if table.column_names != names:
        return None
    return pd.DataFrame({n: pd.Series(string_array(table.column(i)), name=n)
                         for i, n in enumerate(names)}, columns=names)


def assemble(
    form: Form,
    table: str,
    frame: pd.DataFrame,
    names: dict[str, list[str]],
    meta: dict[str, str],
    geo: dict[str, list[str]] | None = None,
    multi_sep: str = "/",
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Build the raw table from an export's columns.

    ``names`` maps each field column to the export column names that may hold it (full
    path first, bare name second); ``meta`` maps export columns to raw key/metadata
    columns; ``geo`` gives, per geopoint field, the suffixes of its split columns.
    Select-multiple answers missing as one column are rebuilt from split 0/1 columns.
    Returns the raw table and the export columns nothing claimed.
    """
    n = len(frame)
    cols = set(frame.columns)
    used: set[str] = set()
    out: dict[str, object] = {}
    for src, dst in meta.items():
        if src in cols:
            out[dst] = frame[src]
            used.add(src)
    for f in form.table_fields(table):
        hit = next((c for c in names[f.column] if c in cols), None)
        if hit is not None:
            out[f.column] = frame[hit]
            used.add(hit)
        if f.type == "geopoint":
            for stem in names[f.column]:
                parts = [f"{stem}{s}" for s in (geo or {}).get("suffixes", [])]
                if parts and parts[0] in cols:
                    used.update(p for p in parts if p in cols)
                    if hit is None:
                        out[f.column] = join_geopoint(
                            [frame[p] if p in cols else pd.Series([pd.NA] * n) for p in parts])
                        hit = parts[0]
                    break
        if f.type == "select_multiple" and f.choices is not None:
            for stem in names[f.column]:
                split = {c: f"{stem}{multi_sep}{c}" for c in f.choices.names}
                present = {c: s for c, s in split.items() if s in cols}
                if present:
                    used.update(present.values())
                    if hit is None:
                        out[f.column] = _join_multi(frame, present)
                        hit = stem
                    break
    blank = pd.Series(missing_strings(n), index=frame.index)
    raw = pd.DataFrame({c: out[c] if c in out else blank for c in raw_columns(form, table)},
                       index=frame.index)
    raw = raw.astype("string").reset_index(drop=True)
    extra = tuple(c for c in frame.columns if c not in used)
    return raw, extra


def _join_multi(frame: pd.DataFrame, present: dict[str, str]) -> pd.Series:
    parts = [np.where(frame[s].astype("string").isin(["1", "True", "true"]), c, "")
             for c, s in present.items()]
    joined = pd.Series([" ".join(x for x in row if x) for row in zip(*parts)], dtype="string")
    answered = np.zeros(len(frame), dtype=bool)
    for s in present.values():
        answered |= frame[s].notna().to_numpy()
    return joined.where(pd.array(answered), pd.NA).replace("", pd.NA)


def split_geopoint(s: pd.Series) -> list[pd.Series]:
    parts = s.astype("string").str.split(" ", n=3, expand=True)
    parts = parts.reindex(columns=range(4))
    return [parts[i].astype("string") for i in range(4)]


def split_multi(s: pd.Series, choices) -> dict[str, pd.Series]:
    padded = " " + s.astype("string") + " "
    return {c: padded.str.contains(f" {c} ", regex=False).astype("Int8").astype("string")
            for c in choices}


GEO = GEO_PARTS
RAW_META = META


def parent_rows(parent: pd.DataFrame, child: pd.DataFrame) -> np.ndarray:
    """Row position in ``parent`` of each child row (-1 when the parent is absent).

    When a parent key occurs several times (a resubmission), the k-th copy of a
    child row goes to the k-th copy of its parent, as the formats without repeat keys
    (Kobo, OData, XML) store them nested inside each copy.
    """
    pkeys = parent["key"].astype("string").reset_index(drop=True)
    copies = pkeys.groupby(pkeys, sort=False).cumcount()
    lookup = pd.Series(np.arange(len(parent)),
                       index=pd.MultiIndex.from_arrays([pkeys.fillna(""), copies]))
    ck = child.reset_index(drop=True)
    occ = ck.groupby(["parent_key", "key"], sort=False, dropna=False).cumcount()
    first = pd.MultiIndex.from_arrays([ck["parent_key"].astype("string").fillna(""), occ])
    pos = lookup.reindex(first).to_numpy(dtype=float)
    again = pd.MultiIndex.from_arrays([ck["parent_key"].astype("string").fillna(""),
                                       np.zeros(len(ck), dtype=int)])
    pos = np.where(np.isnan(pos), lookup.reindex(again).to_numpy(dtype=float), pos)
    return np.where(np.isnan(pos), -1, pos).astype(np.int64)
