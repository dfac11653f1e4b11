"""The impact table as files: a formatted Excel workbook, CSV and Stata.

The workbook has one sheet per area (remittances, education, health, gender roles,
custom) with the impact table's columns under readable headers, a sheet of group
estimates when given, and a ``Notes`` sheet with the methods and the definition of
every indicator (its expression over the questionnaire's fields and its universe).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.indicators import Indicator
from survey.errors import EstimationError

__all__ = ["AREA_SHEETS", "HEADERS", "METHODS_NOTE", "write_csv", "write_excel", "write_stata"]

#: Sheet name of each area.
AREA_SHEETS = {"remittances": "Remittances", "education": "Education", "health": "Health",
               "gender": "Gender roles", "custom": "Custom"}

#: Readable headers of the impact table's columns (others keep their names).
HEADERS = {
    "indicator": "Indicator", "label": "Definition", "domain": "Domain",
    "domain_value": "Domain value", "mean_none": "Non-migrant", "mean_emigrant": "Emigrant",
    "mean_returnee": "Returnee", "raw_diff": "Raw difference", "raw_se": "SE (raw)",
    "raw_p": "p (raw)", "adj_diff": "Adjusted difference", "adj_se": "SE (adjusted)",
    "adj_p": "p (adjusted)", "ipw_diff": "IPW effect", "ipw_se": "SE (IPW)",
    "ipw_ci_low": "95% CI low (IPW)", "ipw_ci_high": "95% CI high (IPW)", "ipw_p": "p (IPW)",
    "ipw_support_n": "Common support n", "ipw_dropped": "Dropped (support)",
    "aipw_diff": "AIPW effect", "aipw_se": "SE (AIPW)", "aipw_ci_low": "95% CI low (AIPW)",
    "aipw_ci_high": "95% CI high (AIPW)", "aipw_p": "p (AIPW)", "psm_diff": "Matching effect",
    "psm_se": "SE (matching)", "psm_p": "p (matching)", "psm_ci_low": "95% CI low (matching)",
    "psm_ci_high": "95% CI high (matching)", "raw_ci_low": "95% CI low (raw)",
    "raw_ci_high": "95% CI high (raw)", "adj_ci_low": "95% CI low (adjusted)",
    "adj_ci_high": "95% CI high (adjusted)", "raw_df": "df (raw)", "adj_df": "df (adjusted)",
    "ipw_df": "df (IPW)", "aipw_df": "df (AIPW)", "psm_df": "df (matching)",
    "aipw_support_n": "Common support n (AIPW)", "aipw_dropped": "Dropped (AIPW support)",
    "psm_support_n": "Common support n (matching)", "psm_dropped": "Dropped (matching)",
    "stars_of": "Sig. of", "n": "Unweighted n",
    "n_treated": "n migrant", "n_control": "n non-migrant", "stars": "Sig.", "flag": "Notes",
}

METHODS_NOTE = (
    ("Estimates", "Weighted means (shares) with design-based standard errors by Taylor "
     "linearisation: strata and enumeration areas (PSUs) of the sample design, final weights."),
    ("Raw difference", "Mean of migrant (emigrant or returnee) households minus mean of "
     "non-migrant households; SE from the joint covariance of the two domain means."),
    ("Adjusted difference", "Coefficient of migrant status in a survey-weighted linear "
     "regression with the controls: head's age, sex, education; household size and "
     "composition; urban/rural; region."),
    ("IPW effect", "Effect on migrant households (ATT): non-migrant households weighted by "
     "w p/(1-p), p from a survey-weighted logistic model of migrant status on the controls. "
     "SE from stacked estimating equations (accounts for the estimated propensity)."),
    ("AIPW effect", "Doubly robust: IPW applied to the residuals of a weighted regression of "
     "the outcome on the controls among non-migrant households."),
    ("Common support", "Households whose propensity lies outside the range shared by migrant "
     "and non-migrant households are left out; their number is reported."),
    ("Significance", "*** p < 0.01, ** p < 0.05, * p < 0.1 (of the last method in the row "
     "that gave an estimate, named in 'Sig. of'). p-values and confidence intervals use the "
     "t distribution on the design degrees of freedom (PSUs minus strata, minus 1 for a "
     "difference of means; minus the number of coefficients plus 1 for the adjusted "
     "difference), so p < 0.05 exactly when the 95% interval excludes 0."),
    ("Missing values", "A household or person without a value is outside the indicator's "
     "domain (not imputed); person-level indicators use the household's design and weight."),
    ("References", "Rosenbaum and Rubin (1983); Hirano, Imbens and Ridder (2003); DuGoff, "
     "Schuler and Stuart (2014); Ridgeway et al. (2015); Austin (2011)."),
)


def _headers(columns: Sequence[str]) -> list[str]:
    return [HEADERS.get(c, c) for c in columns]


def write_excel(table: pd.DataFrame, path: str | Path, *, groups: pd.DataFrame | None = None,
                indicators: Sequence[Indicator] = (), balance: pd.DataFrame | None = None,
                title: str = "Impact of migration on households") -> Path:
    """Write the impact table as a formatted workbook.

    Parameters
    ----------
    table
        :func:`analysis.impact_table.impact_table` output.
    path
        ``.xlsx`` file to write (overwritten).
    groups
        :func:`analysis.impact_table.group_estimates` output, written to a sheet
        ``Group estimates``.
    indicators
        The indicators, for their definitions in the ``Notes`` sheet.
    balance
        A balance table (:func:`analysis.balance.balance`), written to ``Balance``.

    Returns
    -------
    pathlib.Path
        The file written. Sheets: one per area present in ``table`` (see
        :data:`AREA_SHEETS`), then ``Group estimates``, ``Balance`` and ``Notes``.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    if "area" not in table.columns:
        raise EstimationError("the table has no 'area' column",
                              hint="pass the output of analysis.impact_table.impact_table")
    path = Path(path)
    wb = Workbook()
    wb.remove(wb.active)
    bold, head_fill = Font(bold=True), PatternFill("solid", fgColor="DDE5F0")

    def sheet(name: str, frame: pd.DataFrame, heading: str) -> None:
        ws = wb.create_sheet(name[:31])
        ws.append([heading])
        ws["A1"].font = Font(bold=True, size=12)
        cols = list(frame.columns)
        ws.append(_headers(cols))
        for cell in ws[2]:
            cell.font, cell.fill = bold, head_fill
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        for rec in frame.itertuples(index=False):
            ws.append([_cell(v) for v in rec])
        for j, c in enumerate(cols, start=1):
            letter = get_column_letter(j)
            fmt = "0" if c in ("n", "n_treated", "n_control") or c.endswith(("_support_n",
                                                                            "_dropped", "_df")) \
                else "0.000" if c.endswith("_p") else "0.0000"
            for cell in ws[letter][2:]:
                if isinstance(cell.value, float | int) and not isinstance(cell.value, bool):
                    cell.number_format = fmt
            ws.column_dimensions[letter].width = 44 if c == "label" else 60 if c == "flag" else 14
        ws.freeze_panes = "C3"

    drop = [c for c in ("area", "kind") if c in table.columns]
    for area, name in AREA_SHEETS.items():
        part = table[table["area"] == area]
        if len(part):
            sheet(name, part.drop(columns=drop), f"{title}: {name.lower()}")
    if groups is not None:
        sheet("Group estimates", groups, "Estimates by migration group and domain")
    if balance is not None:
        sheet("Balance", balance, "Standardised differences before and after weighting")
    ws = wb.create_sheet("Notes")
    ws.append(["Methods"])
    ws["A1"].font = Font(bold=True, size=12)
    for k, v in METHODS_NOTE:
        ws.append([k, v])
    ws.append([])
    ws.append(["Indicator", "Definition", "Area", "Table", "Expression", "Universe", "Kind"])
    for cell in ws[ws.max_row]:
        cell.font, cell.fill = bold, head_fill
    for i in indicators:
        ws.append([i.name, i.label, i.area, i.table, i.expression, i.universe or "all", i.kind])
    ws.column_dimensions["A"].width = 24
    ws.column_dimensions["B"].width = 90
    ws.column_dimensions["E"].width = 50
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def _cell(v):
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def write_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """The table as UTF-8 CSV with its column names (missing values empty)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return path


def _stata_name(c: str, used: set[str]) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", str(c))[:32] or "v"
    if name[0].isdigit():
        name = ("v" + name)[:32]
    base, k = name, 1
    while name in used:
        k += 1
        name = f"{base[:29]}_{k}"
    used.add(name)
    return name


def write_stata(table: pd.DataFrame, path: str | Path) -> Path:
    """The table as a Stata ``.dta`` file (pyreadstat) with variable labels.

    Column names become valid Stata names (32 characters, letters, digits and
    underscores); the readable headers of :data:`HEADERS` are the variable labels.
    """
    import pyreadstat

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    names = [_stata_name(c, used) for c in table.columns]
    out = pd.DataFrame(index=range(len(table)))
    for c, n in zip(table.columns, names):
        s = table[c].reset_index(drop=True)
        if pd.api.types.is_bool_dtype(s):
            out[n] = s.astype(float).astype("int8")
        elif pd.api.types.is_numeric_dtype(s):
            out[n] = s.to_numpy(dtype=float, na_value=np.nan)
        else:
            out[n] = s.astype(object).where(s.notna(), "").astype(str).to_numpy(dtype=object)
    labels = [HEADERS.get(c, str(c))[:80] for c in table.columns]
    pyreadstat.write_dta(out, str(path), column_labels=labels)
    return path
