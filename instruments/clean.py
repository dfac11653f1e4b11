"""Structure, duplicates, edits and review: which raw rows are kept.

Every row read ends in exactly one of three places, so that
``read = kept + quarantined + duplicates`` for every table of every import:

* **duplicates** (dropped, counted): exact resubmissions (D401) and versions
  superseded by an edit through ``deprecatedID`` (D402), with their repeat rows;
* **quarantined** (kept aside with the reason): rows without a key (E302), repeat rows
  whose parent is not in the export (E301), different submissions sharing one key
  (E303), submissions rejected in review (R501, R502), and every repeat row below a
  quarantined submission (E304);
* **kept**: everything else, passed on to typing and validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.arrays import ArrowStringArray

from .form import Form
from .problems import problem_frame
from .raw import arrow_strings, string_array

__all__ = ["Cleaned", "clean_tables"]

KEPT, DUP, QUAR = 0, 1, 2
_REJECTED = {"rejected"}
_KOBO_NOT_APPROVED = {"validation_status_not_approved", "not_approved"}


@dataclass(frozen=True)
class Cleaned:
    """Kept rows, quarantined rows (with a ``reason`` column), problems and counts."""

    tables: dict[str, pd.DataFrame]
    quarantine: dict[str, pd.DataFrame]
    problems: list[pd.DataFrame]
    counts: dict[str, dict[str, int]]


def _order(form: Form) -> list[str]:
    out, todo = [], [form.form_id]
    while todo:
        t = todo.pop(0)
        out.append(t)
        todo += form.children(t)
    return out


def clean_tables(
    form: Form, tables: Mapping[str, pd.DataFrame], exclude_rejected: bool = True
) -> Cleaned:
    """Sort every raw row into kept, duplicate or quarantined (see the module notes)."""
    kept, quarantine, problems, counts = {}, {}, [], {}
    status_by_key: dict[str, pd.Series] = {}  # table -> key -> best status of that key
    code_by_key: dict[str, pd.Series] = {}
    keys_by_table: dict[str, pa.Array] = {}  # table -> the keys of status_by_key, in order
    for name in _order(form):
        df = tables[name].reset_index(drop=True)
        n = len(df)
        status = np.full(n, KEPT, dtype=np.int8)
        code = np.full(n, "", dtype=object)
        key = df["key"].astype("string")
        has_key = (key.notna() & (key.str.strip() != "")).to_numpy(dtype=bool)

        def mark(mask, st, c, *, _status=status, _code=code):
            mask = mask & (_status == KEPT)
            _status[mask] = st
            _code[mask] = c
            return mask

        mark(~has_key, QUAR, "E302")
        parent = form.tables[name].parent
        if parent is not None:
            pstat = status_by_key[parent]
            pk = df["parent_key"].astype("string")
            at = _lookup(arrow_strings(pk), keys_by_table[parent])
            known = at >= 0
            mark(~known, QUAR, "E301")
            p = np.where(known, pstat.to_numpy()[np.maximum(at, 0)], -1) if len(pstat) else \
                np.full(n, -1)
            pc_ = np.where(known, code_by_key[parent].to_numpy()[np.maximum(at, 0)], "") \
                if len(pstat) else np.full(n, "", dtype=object)
            mark(known & (p == QUAR), QUAR, "E304")
            superseded = known & (p == DUP)
            for c in ("D401", "D402"):
                mark(superseded & (pc_ == c), DUP, c)
        # one factorisation of the keys serves every per-key question below
        codes, uniques = _factorize(key)
        m = len(uniques)
        # exact copies share their key: compare whole rows only where a key repeats
        repeated = (np.bincount(codes[codes >= 0], minlength=m)[codes] > 1) & has_key
        dup = np.zeros(n, dtype=bool)
        if repeated.any():
            dup[repeated] = df[repeated].duplicated(keep="first").to_numpy(dtype=bool)
        mark(dup, DUP, "D401")
        live = status == KEPT
        live_codes = codes[live & (codes >= 0)]
        clash = live & (codes >= 0) & (np.bincount(live_codes, minlength=m)[codes] > 1)
        mark(clash, QUAR, "E303")
        if parent is None:
            if "deprecated_id" in df.columns:
                old = set(df["deprecated_id"].dropna()) - {""}
                ids = df["instance_id"].astype("string") if "instance_id" in df.columns else key
                mark(_isin(ids, list(old)), DUP, "D402")
            if exclude_rejected and "review_state" in df.columns:
                rej = df["review_state"].astype("string").str.lower().isin(_REJECTED)
                mark(rej.to_numpy(dtype=bool), QUAR, "R501")
            if exclude_rejected and "status" in df.columns:
                bad = df["status"].astype("string").str.lower().isin(_KOBO_NOT_APPROVED)
                mark(bad.to_numpy(dtype=bool), QUAR, "R502")
        # a key's status for its children: kept wins over duplicate over quarantined
        rank = np.where(status == KEPT, 0, np.where(status == DUP, 1, 2))
        ok = np.flatnonzero(has_key & (codes >= 0))
        best = ok[np.lexsort((rank[ok], codes[ok]))]          # by key, then rank
        first = best[np.r_[True, codes[best][1:] != codes[best][:-1]]] if len(best) else best
        first_keys = uniques.take(pa.array(codes[first], type=pa.int64()))
        keys_by_table[name] = first_keys
        index = pd.Index(string_array(first_keys), dtype="string")
        status_by_key[name] = pd.Series(status[first], index=index)
        code_by_key[name] = pd.Series(code[first], index=index)
        for c in sorted(set(code[status != KEPT])):
            m = code == c
            problems.append(problem_frame(c, name, key[m], None, None, _MESSAGES[c]))
        kept[name] = take_rows(df, status == KEPT)
        quarantine[name] = df[status == QUAR].assign(reason=code[status == QUAR]).reset_index(
            drop=True)
        counts[name] = {"read": n, "kept": int((status == KEPT).sum()),
                        "quarantined": int((status == QUAR).sum()),
                        "duplicates": int((status == DUP).sum())}
    return Cleaned(kept, quarantine, problems, counts)


def _factorize(key: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """``pd.factorize(key)`` by arrow: codes in order of first appearance, -1 for missing."""
    enc = pc.dictionary_encode(arrow_strings(key))
    codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, enc.dictionary


def _lookup(values: pa.Array, keys: pa.Array) -> np.ndarray:
    """Position of each value in ``keys`` (distinct, no missing), -1 when absent."""
    at = pc.index_in(values, value_set=keys)
    return at.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def take_rows(df: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """``df[mask].reset_index(drop=True)``, copying runs of kept rows in whole blocks.

    Arrow string columns are cut into the slices between dropped rows and joined into
    one contiguous array (a few block copies instead of a per-row take); with many
    short runs, or other column types, pandas' take is used.
    """
    n = len(df)
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if n == 0 or len(starts) * 64 > n:
        return df[mask].reset_index(drop=True)
    cols = {}
    for c in df.columns:
        values = df[c].array
        if not isinstance(values, ArrowStringArray):
            cols[c] = df[c][mask].reset_index(drop=True)
            continue
        arr = values._pa_array
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        parts = [arr.slice(a, b - a) for a, b in zip(starts.tolist(), ends.tolist())]
        joined = pa.concat_arrays(parts) if parts else pa.array([], type=arr.type)
        cols[c] = pd.Series(string_array(joined), name=c)
    return pd.DataFrame(cols, columns=df.columns, index=pd.RangeIndex(int(mask.sum())))


def _isin(s: pd.Series, values) -> np.ndarray:
    """``s.isin(values)`` by arrow's hash set (pandas builds a Python list of scalars)."""
    vals = pa.array(np.asarray(values, dtype=object), type=pa.large_string(), from_pandas=True)
    return pc.is_in(arrow_strings(s), value_set=vals).to_numpy(zero_copy_only=False)


_MESSAGES = {
    "E301": "repeat row whose parent is not in the export (quarantined)",
    "E302": "row without a key (quarantined)",
    "E303": "another, different row has the same key (all copies quarantined)",
    "E304": "the submission this row belongs to is quarantined",
    "D401": "identical to an earlier row (dropped)",
    "D402": "an edited version of this submission replaces it (dropped)",
    "R501": "submission rejected in review (quarantined)",
    "R502": "submission marked not approved in Kobo (quarantined)",
}
