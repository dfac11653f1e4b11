"""Typing and validation of raw tables against the form.

Each column is typed by its XLSForm type in one vectorised pass; a value that does not
fit (text in an integer field, an unknown choice) becomes missing in the typed table
*and* a row in ``problems`` holding the raw value, so nothing is lost silently.
``required``, ``relevant`` and ``constraint`` are then evaluated over whole columns by
:mod:`instruments.xpath`, with ODK's semantics (constraints only on answered, relevant
questions; an answer to a question that was not relevant is reported, not deleted).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .form import Field, Form
from .problems import concat_problems, problem_frame
from .raw import GEO_PARTS, arrow_strings, missing_strings, split_parts, string_array
from .scope import Scope
from .xpath import Unevaluable

__all__ = ["type_tables"]

_TIME = r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?$"


def type_tables(
    form: Form,
    tables: Mapping[str, pd.DataFrame],
    today: date | None = None,
    present: Mapping[str, Mapping[str, np.ndarray]] | None = None,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Type every table and list every violation.

    Parameters
    ----------
    form
        The form (for several versions, their union: see :func:`instruments.versions`).
    tables
        Raw tables (strings), already cleared of duplicates and quarantined rows.
    today
        Date for ``today()`` in constraints (default: the real date).
    present
        Optional table -> field column -> boolean mask of the rows whose form version
        has that field; rows outside the mask are not checked for that field.

    Returns
    -------
    (typed tables, problems)
    """
    scope = Scope(form, tables, today=today)
    typed, problems = {}, []
    for name in form.tables:
        frame = tables[name]
        cols = _keys(form, scope, name, frame)
        for f in form.table_fields(name):
            raw = frame[f.column] if f.column in frame.columns else _missing(len(frame))
            out, bad, code = _type_column(f, raw)
            cols.update(out)
            if bad is not None and bad.any():
                problems.append(problem_frame(code, name, frame["key"][bad], f.column, raw[bad],
                                              _expected(f)))
            mask = None if present is None else present.get(name, {}).get(f.column)
            problems += _check(f, name, frame, scope, raw, bad, mask)
        typed[name] = pd.DataFrame(cols, index=pd.RangeIndex(len(frame)))
        problems += _repeat_counts(form, scope, name)
    return typed, concat_problems(problems)


def _missing(n: int) -> pd.Series:
    return pd.Series(missing_strings(n))


def _keys(form: Form, scope: Scope, name: str, frame: pd.DataFrame) -> dict[str, object]:
    key = frame["key"].astype("string").reset_index(drop=True)
    cols: dict[str, object] = {"key": key}
    if form.tables[name].parent is None:
        cols["parent_key"] = _missing(len(frame))
        cols["submission_key"] = key
        for meta in ("instance_id", "deprecated_id", "submitter", "review_state",
                     "form_version", "status"):
            cols[meta] = (frame[meta].astype("string").reset_index(drop=True)
                          if meta in frame.columns else _missing(len(frame)))
        cols["submission_date"] = pd.to_datetime(
            frame["submission_date"].reset_index(drop=True), format="ISO8601", utc=True,
            errors="coerce") if "submission_date" in frame.columns else _missing(len(frame))
    else:
        cols["parent_key"] = frame["parent_key"].astype("string").reset_index(drop=True)
        root = form.ancestors(name)[-1]
        pos = scope.ancestor_pos(name, root)
        root_keys = scope.raw_arrow(root, "key")  # "" for a missing key
        if len(root_keys):
            sub = root_keys.take(pa.array(np.maximum(pos, 0), mask=pos < 0))
            sub = pc.if_else(pc.equal(sub, ""), pa.scalar(None, sub.type), sub)
        else:
            sub = pa.nulls(len(pos), pa.large_string())
        cols["submission_key"] = string_array(sub)
        cols["row_index"] = pd.array(scope.position(name), dtype="Float64").astype("Int64")
    return cols


def _expected(f: Field) -> str:
    if f.type in ("select_one", "select_multiple") and f.choices is not None:
        shown = ", ".join(f.choices.names[:12])
        return f"expected one of the choices of list {f.choices.name!r} ({shown})"
    return f"expected a {f.type} value"


_CODES = {"integer": "E101", "decimal": "E102", "date": "E103", "datetime": "E104",
          "geopoint": "E105", "select_one": "E106", "select_multiple": "E107", "time": "E108"}


def _type_column(f: Field, raw: pd.Series) -> tuple[dict, np.ndarray | None, str | None]:
    s = raw.astype("string").reset_index(drop=True)
    answered = s.notna().to_numpy()
    code = _CODES.get(f.type)
    col = f.column
    if f.type in ("integer", "decimal"):
        v = _floats(s)
        ok = ~np.isnan(v)
        if f.type == "integer":
            with np.errstate(invalid="ignore"):
                ok &= np.where(ok, v, 0) % 1 == 0
            whole = np.where(ok, np.round(v), 0.0)
            if len(whole) and np.abs(whole).max() >= 2.0**63:  # beyond int64: pandas decides
                num = pd.Series(pd.array(v, dtype="Float64"))
                typed = num.where(pd.array(ok)).round().astype("Int64")
            else:
                typed = pd.arrays.IntegerArray(whole.astype(np.int64), ~ok)
        else:
            typed = pd.array(v, dtype="Float64")
        return {col: typed}, answered & ~ok, code
    if f.type == "date":
        d = pd.to_datetime(s.str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
        return {col: d}, answered & d.isna().to_numpy(), code
    if f.type == "datetime":
        d = pd.to_datetime(s, format="ISO8601", utc=True, errors="coerce")
        return {col: d}, answered & d.isna().to_numpy(), code
    if f.type == "time":
        ok = s.str.match(_TIME).fillna(False).to_numpy(dtype=bool)
        return {col: s.where(pd.array(ok))}, answered & ~ok, code
    if f.type == "geopoint":
        nums = [_floats(p) for p in split_parts(s, 4)]
        lat, lon = nums[0], nums[1]
        with np.errstate(invalid="ignore"):
            ok = (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
        out = {f"{col}__{p}": pd.array(np.where(ok, v, np.nan), dtype="Float64")
               for p, v in zip(GEO_PARTS, nums)}
        return out, answered & ~ok, code
    if f.type == "select_one" and f.choices is not None and not f.choices.external:
        names = list(f.choices.names)
        # arrow's hash lookup: much faster than pandas' object-based Categorical()
        codes = pc.index_in(arrow_strings(s),
                            value_set=pa.array(names, type=pa.large_string()))
        codes = codes.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        cat = pd.Categorical.from_codes(codes, categories=names)
        return {col: cat}, answered & (codes < 0), code
    if f.type == "select_multiple" and f.choices is not None and not f.choices.external:
        names = list(f.choices.names)
        tokens = pc.utf8_split_whitespace(arrow_strings(s))
        flat = pc.list_flatten(tokens)
        rows = pc.list_parent_indices(tokens).to_numpy()
        which = pc.index_in(flat, value_set=pa.array(names, type=pa.large_string()))
        which = which.fill_null(-1).to_numpy(zero_copy_only=False)
        out = {col: s}
        missing = pd.array(~answered)
        for i, c in enumerate(names):
            hit = np.bincount(rows[which == i], minlength=len(s)) > 0
            out[f"{col}__{c}"] = pd.array(hit.astype(np.int8), dtype="Int8").copy()
            out[f"{col}__{c}"][missing] = pd.NA
        bad = np.bincount(rows[which < 0], minlength=len(s)) > 0
        return out, answered & bad, code
    return {col: s}, None, None


def _check(f: Field, table: str, frame, scope: Scope, raw: pd.Series, bad, mask) -> list:
    out = []
    key = frame["key"].reset_index(drop=True)
    values = raw.astype("string").reset_index(drop=True)
    answered = values.notna().to_numpy()
    live = np.ones(len(frame), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    try:
        rel = scope.relevant(table, f.conditions)
    except Unevaluable as exc:
        return [problem_frame("W209", table, [None], f.column, [f.relevant], str(exc))]
    if f.required and not f.calculation:
        miss = live & rel & ~answered
        if miss.any():
            out.append(problem_frame("E201", table, key[miss], f.column, None,
                                     "required question is relevant but unanswered"))
    if not f.calculation:
        extra = live & ~rel & answered
        if extra.any():
            out.append(problem_frame("E203", table, key[extra], f.column, values[extra],
                                     "answered although its relevant condition is false"))
    if f.constraint:
        try:
            ok = scope.evaluate(table, f.constraint, f.name).bool()
        except Unevaluable as exc:
            return out + [problem_frame("W209", table, [None], f.column, [f.constraint], str(exc))]
        viol = live & rel & answered & ~ok
        if bad is not None:
            viol &= ~bad
        if viol.any():
            out.append(problem_frame("E202", table, key[viol], f.column, values[viol],
                                     f"violates {f.constraint}"))
    return out


def _repeat_counts(form: Form, scope: Scope, parent: str) -> list:
    out = []
    for child in form.children(parent):
        t = form.tables[child]
        if not t.repeat_count or scope.n(parent) == 0:
            continue
        try:
            expected = scope.evaluate(parent, t.repeat_count).num()
            live = scope.relevant(parent, t.conditions)
        except Unevaluable:
            continue
        pos = scope.parent_pos(child)
        actual = np.bincount(pos[pos >= 0], minlength=scope.n(parent))
        expected = np.where(live, expected, 0)
        wrong = ~np.isnan(expected) & (actual != expected)
        if wrong.any():
            keys = scope.tables[parent]["key"].reset_index(drop=True)[wrong]
            vals = [f"{a} rows, expected {int(e)}" for a, e in zip(actual[wrong], expected[wrong])]
            out.append(problem_frame("E204", parent, keys, child, vals,
                                     f"number of {child} rows differs from {t.repeat_count}"))
    return out


def _floats(s: pd.Series) -> np.ndarray:
    """Strings to float64 (NaN where missing or not a number), by arrow's cast when it can."""
    arr = arrow_strings(s)
    try:
        out = pc.cast(pc.utf8_trim_whitespace(arr), pa.float64())
        return np.asarray(out.to_numpy(zero_copy_only=False), dtype=float)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        num = pd.to_numeric(s, errors="coerce").astype("Float64")
        return num.to_numpy(dtype=float, na_value=np.nan)
