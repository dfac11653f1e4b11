"""The normalised raw layout every reader produces and every writer consumes.

One DataFrame per table (the root and each repeat), all values as strings exactly as
the XForm instance holds them (``""``/missing when unanswered; select_multiple as the
space-separated answer; geopoint as ``"lat lon alt acc"``), with these key columns:

``key``
    the row's own key: the submission's ``instanceID`` for the root (``uuid:...``),
    ``<parent key>/<repeat>[<n>]`` for repeat rows (as ODK Central and SurveyCTO
    write them; other formats are rebuilt into this form).
``parent_key``
    the key of the parent row (missing on the root).

and, on the root, the submission metadata in :data:`META`. Columns are named by
:attr:`Field.column`. Readers do not type or judge values: that is
:mod:`instruments.validate`'s job, so every format gives byte-identical raw tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .form import Field, Form

__all__ = ["KEYS", "META", "RawData", "join_geopoint", "raw_columns", "split_key"]

KEYS = ("key", "parent_key")
#: submission metadata on the root table, in this order.
META = (
    "instance_id",
    "deprecated_id",
    "submission_date",
    "submitter",
    "review_state",
    "form_version",
    "status",
)
GEO_PARTS = ("latitude", "longitude", "altitude", "precision")


@dataclass(frozen=True)
class RawData:
    """Submissions in the normalised raw layout.

    Attributes
    ----------
    form_id
        The form the data claims to come from.
    tables
        Table name -> DataFrame of strings (see the module docstring).
    format
        The export format read (``"odk_central_zip"``, ...), or ``"simulated"``.
    sources
        Table name -> the file (or member of a zip) it was read from.
    extra_columns
        Table name -> columns found in the export that match no field of the form.
    """

    form_id: str
    tables: Mapping[str, pd.DataFrame]
    format: str = "simulated"
    sources: Mapping[str, str] = field(default_factory=dict)
    extra_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def raw_columns(form: Form, table: str) -> list[str]:
    """Column order of a raw table: keys, metadata on the root, then fields."""
    cols = list(KEYS)
    if form.tables[table].parent is None:
        cols += list(META)
    return cols + [f.column for f in form.table_fields(table)]


def stored_fields(form: Form, table: str) -> list[Field]:
    return form.table_fields(table)


def split_key(keys: pd.Series) -> pd.Series:
    """1-based position of a repeat row, read from the ``[n]`` ending of its key."""
    arr = arrow_strings(keys)
    found = pc.extract_regex(arr, pattern=r"\[(?P<n>\d+)\]$").field("n")
    n = pc.cast(found, pa.int64()).to_numpy(zero_copy_only=False)
    return pd.Series(pd.array(n, dtype="Float64"), index=keys.index).astype("Int64")


def missing_strings(n: int) -> pd.api.extensions.ExtensionArray:
    """``n`` missing values as a pandas ``string`` array (``pd.array([pd.NA] * n)``)."""
    return string_array(pa.nulls(n, pa.large_string()))


def arrow_strings(s: pd.Series) -> pa.Array:
    """A string column as one contiguous ``large_string`` arrow array.

    No copy when the column is arrow-backed in one chunk (pandas keeps ``string``
    columns as ``large_string``); value sets compared with it use the same type.
    """
    arr = pa.array(s.astype("string").array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_string()) if arr.type != pa.large_string() else arr


def split_parts(s: pd.Series, k: int) -> list[pd.Series]:
    """The first ``k`` whitespace-separated parts of each string (missing when absent)."""
    tokens = pc.utf8_split_whitespace(arrow_strings(s))
    flat = pc.list_flatten(tokens)
    rows = pc.list_parent_indices(tokens).to_numpy()
    offsets = tokens.offsets.to_numpy()
    at = np.arange(len(flat)) - offsets[rows] if len(flat) else np.zeros(0, dtype=np.int64)
    flat = pc.list_flatten(tokens)
    out = []
    for i in range(k):
        idx = np.full(len(s), -1, dtype=np.int64)
        m = at == i
        idx[rows[m]] = np.flatnonzero(m)
        col = flat.take(pa.array(idx, mask=idx < 0)) if len(flat) else \
            pa.nulls(len(s), pa.string())
        out.append(pd.Series(string_array(col), index=s.index))
    return out


def string_array(arr: pa.Array | pa.ChunkedArray) -> pd.api.extensions.ExtensionArray:
    """An arrow string array as a pandas ``string`` array, without a copy of the text."""
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    return pd.array(arr, dtype="string")


def join_geopoint(parts: list[pd.Series]) -> pd.Series:
    """``lat lon alt acc`` from split columns (missing when latitude is missing)."""
    if parts and all(len(p) == len(parts[0]) for p in parts):
        text = [arrow_strings(p).fill_null("") for p in parts]
        sep = pa.scalar(" ", pa.large_string())
        out = pc.utf8_trim_whitespace(pc.binary_join_element_wise(*text, sep))
        out = pc.if_else(pc.equal(text[0], ""), pa.scalar(None, out.type), out)
        return pd.Series(string_array(out), index=parts[0].index)
    return _join_geopoint_pandas(parts)


def _join_geopoint_pandas(parts: list[pd.Series]) -> pd.Series:
    text = [p.astype("string").fillna("") for p in parts]
    out = text[0]
    for p in text[1:]:
        out = out + " " + p
    out = out.str.strip()
    return out.where(text[0] != "", pd.NA)


def to_text(frame: pd.DataFrame) -> pd.DataFrame:
    """All columns as pandas strings with missing for empty cells."""
    out = frame.astype("string")
    return out.replace("", pd.NA) if len(out) else out


def empty_table(form: Form, table: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype="string") for c in raw_columns(form, table)})


def as_object(s: pd.Series) -> np.ndarray:
    """Strings as a numpy object array with ``""`` for missing (XPath's empty node)."""
    return s.astype("string").fillna("").to_numpy(dtype=object)
