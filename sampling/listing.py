"""Phase 1: the listing of households in the selected EAs, screened into migration groups.

``read_listing`` reads one row per household (EA id, household id, migration group)
and normalises the group labels once; ``check_listing`` compares it with the selected
EAs and returns a problems table (raising on fatal problems).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from survey.errors import SamplingError

from ._util import read_table, require_columns

__all__ = ["GROUPS", "check_listing", "read_listing"]

#: The migration groups of the screening, in the order used everywhere.
GROUPS = ("emigrant", "returnee", "none")

#: Spelling variants met in listing forms, normalised once here.
GROUP_ALIASES = {
    "emigrant": "emigrant",
    "emigrants": "emigrant",
    "current emigrant": "emigrant",
    "current_emigrant": "emigrant",
    "absent migrant": "emigrant",
    "absent": "emigrant",
    "migrant abroad": "emigrant",
    "returnee": "returnee",
    "returnees": "returnee",
    "return migrant": "returnee",
    "return_migrant": "returnee",
    "returned": "returnee",
    "return": "returnee",
    "none": "none",
    "non-migrant": "none",
    "nonmigrant": "none",
    "non_migrant": "none",
    "no migrant": "none",
    "no_migrant": "none",
}

PROBLEM_COLUMNS = ["code", "severity", "ea_id", "hh_id", "row", "column", "value", "message"]


def read_listing(
    path_or_df: str | Path | pd.DataFrame,
    ea: str = "ea_id",
    hh: str = "hh_id",
    group: str = "group",
    *,
    aliases: Mapping[str, str] | None = None,
    sheet: str | int | None = None,
) -> pd.DataFrame:
    """Read a household listing (CSV, XLSX, Parquet or a DataFrame).

    EA and household ids are read as text. Group labels are stripped, lower-cased
    and mapped through :data:`GROUP_ALIASES` (plus ``aliases``); unknown labels are
    kept as they are for :func:`check_listing` to report. When read from a file, the
    column ``listing_row`` holds each household's row in the file (header = row 1).
    A row with an EA id but no household id and no group marks an EA listed with no
    households.

    Returns
    -------
    pandas.DataFrame
        A new DataFrame; the input is not modified.
    """
    df, src = read_table(path_or_df, sheet=sheet, text_columns=[ea, hh], what="listing")
    require_columns(df, (ea, hh, group), "listing", "name the columns with ea=, hh=, group=", file=src.file)
    df = df.copy()
    table = dict(GROUP_ALIASES) | {k.strip().lower(): v for k, v in (aliases or {}).items()}
    raw = df[group].astype("string").str.strip()
    low = raw.str.lower()
    df[group] = low.map(table).fillna(raw).astype("string")
    for col in (ea, hh):
        df[col] = df[col].astype("string").str.strip()
    if src.rows is not None:
        df["listing_row"] = src.rows
    return df


def _problem(code, severity, ea=None, hh=None, row=None, column=None, value=None, message=""):
    return {
        "code": code,
        "severity": severity,
        "ea_id": ea,
        "hh_id": hh,
        "row": row,
        "column": column,
        "value": value,
        "message": message,
    }


def check_listing(
    listing: pd.DataFrame,
    selected_eas: pd.DataFrame,
    ea: str = "ea_id",
    group: str = "group",
    groups: Sequence[str] = GROUPS,
    *,
    hh: str = "hh_id",
    size: str = "households",
    band: tuple[float, float] = (0.5, 2.0),
    on_error: Literal["raise", "return"] = "raise",
) -> pd.DataFrame:
    """Check a listing against the selected EAs.

    Parameters
    ----------
    listing
        One row per household (see :func:`read_listing`).
    selected_eas
        The result of :func:`sampling.select_eas` (EA ids and, for the size check,
        the frame's measure of size).
    band
        Listed households divided by the frame's measure of size outside
        ``[low, high]`` is flagged (a warning: EAs grow, shrink and are re-drawn).
    on_error
        ``"raise"`` (default): fatal problems raise :class:`SamplingError`; the
        problems table is attached to the error as ``err.problems``. ``"return"``:
        only return the table.

    Returns
    -------
    pandas.DataFrame
        Columns ``code``, ``severity`` (``error`` or ``warning``), ``ea_id``,
        ``hh_id``, ``row`` (file row, when read from a file), ``column``, ``value``,
        ``message``. Codes: ``missing_ea_id``, ``missing_hh_id``, ``duplicate_hh_id``,
        ``ea_not_selected``, ``unknown_group`` (errors); ``ea_not_listed``,
        ``empty_ea``, ``size_mismatch`` (warnings).
    """
    require_columns(listing, (ea, hh, group), "listing", "name it with ea=, hh=, group=")
    if ea not in selected_eas.columns:
        raise SamplingError(f"selected EAs have no column {ea!r}", column=ea)
    rows = (
        listing["listing_row"].to_numpy()
        if "listing_row" in listing.columns
        else listing.index.to_numpy()
    )
    e = listing[ea].astype("string")
    h = listing[hh].astype("string")
    g = listing[group].astype("string")
    marker = (h.isna() & g.isna()).to_numpy(dtype=bool)
    out = []

    def add(mask: np.ndarray, code: str, severity: str, column: str, values, message: str) -> None:
        for i in np.flatnonzero(mask):
            out.append(
                _problem(
                    code,
                    severity,
                    e.iloc[i] if e.iloc[i] is not pd.NA else None,
                    h.iloc[i] if h.iloc[i] is not pd.NA else None,
                    rows[i],
                    column,
                    None if values is None else values.iloc[i],
                    message,
                )
            )

    add(e.isna().to_numpy(dtype=bool), "missing_ea_id", "error", ea, None, "household has no EA id")
    add(
        (h.isna().to_numpy(dtype=bool) & ~marker),
        "missing_hh_id",
        "error",
        hh,
        None,
        "household has no id",
    )
    dup = (h.duplicated(keep=False) & h.notna()).to_numpy(dtype=bool)
    add(
        dup,
        "duplicate_hh_id",
        "error",
        hh,
        h,
        "household id appears more than once (ids must be unique across EAs: e.g. EA id + number)",
    )
    selected = pd.Index(selected_eas[ea].astype("string"))
    not_sel = (~e.isin(selected) & e.notna()).to_numpy(dtype=bool)
    add(not_sel, "ea_not_selected", "error", ea, e, "EA was not selected at stage 1")
    unknown = (~g.isin(list(groups)) & g.notna()).to_numpy(dtype=bool) | (
        g.isna().to_numpy(dtype=bool) & ~marker
    )
    add(
        unknown,
        "unknown_group",
        "error",
        group,
        g,
        f"migration group must be one of {', '.join(groups)}",
    )

    counts = e[~marker].value_counts()
    seen = set(e.dropna())
    for eid in selected:
        if eid not in seen:
            out.append(
                _problem("ea_not_listed", "warning", eid, message="selected EA has no listing yet")
            )
        elif counts.get(eid, 0) == 0:
            out.append(
                _problem(
                    "empty_ea",
                    "warning",
                    eid,
                    message="selected EA was listed with no households (allowed; it gives no interviews)",
                )
            )
    if size in selected_eas.columns:
        mos = pd.Series(
            pd.to_numeric(selected_eas[size], errors="coerce").to_numpy(), index=selected
        )
        listed = counts.reindex(selected, fill_value=0).astype(float)
        ratio = listed / mos
        lo, hi = band
        far = (ratio < lo) | (ratio > hi)
        far = far & listed.gt(0)
        for eid in ratio.index[far.to_numpy(dtype=bool)]:
            out.append(
                _problem(
                    "size_mismatch",
                    "warning",
                    eid,
                    column=size,
                    value=float(ratio[eid]),
                    message=f"listed {int(listed[eid])} households against {mos[eid]:g} in the frame "
                    f"(ratio {ratio[eid]:.2f} outside {lo}-{hi}); check the EA boundary",
                )
            )
    problems = pd.DataFrame(out, columns=PROBLEM_COLUMNS)
    errors = problems[problems["severity"] == "error"]
    if on_error == "raise" and len(errors):
        first = errors.iloc[0]
        summary = ", ".join(f"{k}: {v}" for k, v in errors["code"].value_counts().items())
        from_file = "listing_row" in listing.columns
        err = SamplingError(
            f"{first['message']} ({len(errors)} fatal listing problems: {summary})",
            row=int(first["row"]) if from_file else None,
            key=None if from_file else f"index {first['row']!r}",
            column=first["column"],
            psu=first["ea_id"],
            hint="fix the listing and read it again; check_listing(..., on_error='return') lists every problem",
        )
        err.problems = problems
        raise err
    return problems
