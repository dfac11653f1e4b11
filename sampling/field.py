"""Field outputs: enumerators' assignment workbook and the questionnaire preload CSV.

Names and location descriptions go only to the assignment workbook (for the field
team); the preload that travels inside the questionnaire carries ids, the design
variables and the probabilities, never personal data.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font

from survey.errors import SamplingError

from ._util import require_columns

__all__ = ["PRELOAD_COLUMNS", "assignment_workbook", "preload_csv"]

#: Columns of the preload, in order. ``name`` is the key the form's
#: ``select_one_from_file households.csv`` and ``pulldata('households', col, 'name', ${hh_id})`` use.
PRELOAD_COLUMNS = (
    "name",
    "label",
    "hh_id",
    "ea_id",
    "stratum",
    "group",
    "L_hig",
    "m_hig",
    "pi1",
    "pi2",
)

_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def _sheet_title(value: object, used: set[str]) -> str:
    """Excel sheet name: at most 31 characters, none of []:*?/\\, unique in the book."""
    base = _BAD_SHEET_CHARS.sub("_", str(value)).strip("'") or "sheet"
    title = base[:31]
    k = 2
    while title.lower() in used:
        suffix = f"~{k}"
        title = base[: 31 - len(suffix)] + suffix
        k += 1
    used.add(title.lower())
    return title


def assignment_workbook(
    sample: pd.DataFrame,
    path: str | Path,
    by: Literal["team", "ea"] = "team",
    *,
    team: str = "team",
    ea: str = "ea_id",
    hh: str = "hh_id",
    group: str = "group",
    name: str = "head_name",
    location: str = "location",
) -> Path:
    """Write the enumerators' assignment workbook: one sheet per team or per EA.

    Each sheet lists, in the sample's order (main sample first, then reserves in
    order within EA and group): EA id, household id, head's name, location
    description, migration group, reserve flag and reserve order. Name and location
    columns are left blank when the sample has none.

    Parameters
    ----------
    sample
        The result of :func:`sampling.select_households` (with a ``team`` column when
        ``by="team"``).
    path
        The ``.xlsx`` file to write.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    if by not in ("team", "ea"):
        raise SamplingError(f"by must be 'team' or 'ea', got {by!r}")
    key = team if by == "team" else ea
    require_columns(sample, (key, hh, group, "reserve"), "sample",
                    {team: "assign teams to EAs first (a 'team' column), or use by='ea'",
                     "": "pass the result of select_households"})
    if sample[key].isna().any():
        i = int(np.flatnonzero(sample[key].isna().to_numpy())[0])
        raise SamplingError(
            f"{key} is missing for a household",
            column=key,
            key=str(sample[hh].iloc[i]),
            hint=f"give every household a {key}",
        )
    headers = ["EA", "Household ID", "Head's name", "Location", "Group", "Reserve", "Reserve order"]
    table = pd.DataFrame(
        {
            "EA": sample[ea].astype("string") if ea in sample.columns else "",
            "Household ID": sample[hh].astype("string"),
            "Head's name": sample[name].astype("string") if name in sample.columns else "",
            "Location": sample[location].astype("string") if location in sample.columns else "",
            "Group": sample[group].astype("string"),
            "Reserve": np.where(sample["reserve"].to_numpy(dtype=bool), "reserve", ""),
            "Reserve order": sample["reserve_order"]
            if "reserve_order" in sample.columns
            else pd.NA,
        }
    )
    wb = Workbook()
    wb.remove(wb.active)
    used: set[str] = set()
    bold = Font(bold=True)
    for value, rows in table.groupby(sample[key].astype("string").to_numpy(), sort=True):
        ws = wb.create_sheet(_sheet_title(value, used))
        ws.append(headers)
        for cell in ws[1]:
            cell.font = bold
        for rec in rows.itertuples(index=False):  # one sheet's rows: openpyxl writes cell by cell
            ws.append(
                [
                    None if pd.isna(v) else (int(v) if isinstance(v, (np.integer,)) else v)
                    for v in rec
                ]
            )
        ws.freeze_panes = "A2"
        for letter, width in zip("ABCDEFG", (12, 18, 26, 36, 10, 9, 13)):
            ws.column_dimensions[letter].width = width
    path = Path(path)
    wb.save(path)
    return path


def preload_csv(
    sample: pd.DataFrame,
    path: str | Path,
    *,
    ea: str = "ea_id",
    hh: str = "hh_id",
    stratum: str = "stratum",
    group: str = "group",
    include_reserve: bool = True,
) -> pd.DataFrame:
    """Write the questionnaire preload (``households.csv``) with exactly these columns:
    ``name, label, hh_id, ea_id, stratum, group, L_hig, m_hig, pi1, pi2``.

    ``name`` is the household id (the key for ``select_one_from_file`` and
    ``pulldata``); ``label`` is the household id and group. No names, locations or
    other personal data are written.

    Parameters
    ----------
    sample
        Households with ``pi1`` (pass ``eas=`` to :func:`sampling.select_households`).
    include_reserve
        Also write reserve households (default), so a substitute can be interviewed.

    Returns
    -------
    pandas.DataFrame
        The table written.
    """
    needed = [hh, ea, stratum, group, "L_hig", "m_hig", "pi1", "pi2"]
    require_columns(sample, needed, "sample",
                    "select households with select_households(listing, take, eas=selected_eas)",
                    purpose="for the preload")
    rows = (
        sample
        if include_reserve or "reserve" not in sample.columns
        else sample.loc[~sample["reserve"]]
    )
    ids = rows[hh].astype("string")
    if ids.isna().any() or not ids.is_unique:
        raise SamplingError(
            "household ids must be present and unique for the preload key",
            column=hh,
            hint="run check_listing",
        )
    out = pd.DataFrame(
        {
            "name": ids.to_numpy(),
            "label": (ids + " (" + rows[group].astype("string") + ")").to_numpy(),
            "hh_id": ids.to_numpy(),
            "ea_id": rows[ea].astype("string").to_numpy(),
            "stratum": rows[stratum].astype("string").to_numpy(),
            "group": rows[group].astype("string").to_numpy(),
            "L_hig": rows["L_hig"].to_numpy(dtype=np.int64),
            "m_hig": rows["m_hig"].to_numpy(dtype=np.int64),
            "pi1": rows["pi1"].to_numpy(dtype=float),
            "pi2": rows["pi2"].to_numpy(dtype=float),
        }
    )
    out.to_csv(path, index=False, float_format="%.17g")
    return out
