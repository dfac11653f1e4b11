"""The catalogue of import problems: one stable code per kind of violation.

Every row an import cannot take at face value leaves a row in ``problems`` with one of
these codes, the table, the row's key, the field, the raw value and a message. Tests
and analysts filter on the code; the name after it is for people.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import pandas as pd

__all__ = ["CODES", "PROBLEM_COLUMNS", "problem_frame"]

PROBLEM_COLUMNS = ("code", "table", "key", "field", "value", "message")

CODES: Mapping[str, str] = MappingProxyType({
    # typing (value kept in problems, missing in the typed column)
    "E101": "not_integer",
    "E102": "not_decimal",
    "E103": "not_date",
    "E104": "not_datetime",
    "E105": "not_geopoint",
    "E106": "unknown_choice",
    "E107": "unknown_choice_in_multiple",
    "E108": "not_time",
    # logic (value kept in the typed table)
    "E201": "required_missing",
    "E202": "constraint_violated",
    "E203": "answered_when_not_relevant",
    "E204": "repeat_count_mismatch",
    "W209": "expression_not_evaluable",
    # structure (row quarantined)
    "E301": "orphan_repeat_row",
    "E302": "missing_key",
    "E303": "conflicting_duplicate",
    "E304": "parent_quarantined",
    # duplicates and edits (row counted as a duplicate)
    "D401": "exact_duplicate",
    "D402": "superseded_by_edit",
    # review (row quarantined)
    "R501": "rejected_in_review",
    "R502": "not_approved_in_kobo",
    # columns and versions
    "W601": "column_not_in_form",
    # link to the sample
    "L701": "not_in_sample",
    "L702": "several_submissions_for_one_household",
    "L703": "sampled_household_without_submission",
})  # fmt: skip


def problem_frame(
    code: str,
    table: str,
    keys,
    field: str | None = None,
    values=None,
    message: str = "",
) -> pd.DataFrame:
    """Problems of one code for many rows at once (vectorised, no row loop)."""
    if code not in CODES:  # programming error
        raise KeyError(code)
    keys = np.asarray(pd.Series(keys, dtype="string").fillna("").to_numpy(dtype=object))
    n = len(keys)
    vals = (pd.Series(values, dtype="string") if values is not None
            else pd.Series([pd.NA] * n, dtype="string"))
    return pd.DataFrame({
        "code": pd.array([code] * n, dtype="string"),
        "table": pd.array([table] * n, dtype="string"),
        "key": pd.array(np.where(keys == "", None, keys), dtype="string"),
        "field": pd.array([field] * n, dtype="string"),
        "value": pd.array(vals.to_numpy(), dtype="string"),
        "message": pd.array([f"{CODES[code]}: {message}"] * n, dtype="string"),
    })  # fmt: skip


def empty_problems() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype="string") for c in PROBLEM_COLUMNS})


def concat_problems(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_problems()
    return pd.concat(frames, ignore_index=True)
