"""Labelled exports: Stata ``.dta`` and SPSS ``.sav`` per table, and an Excel codebook.

Variable labels are the question labels, value labels the choice labels, in the
language chosen. Choices are stored as integer codes (1, 2, ... in list order) with
value labels, as Stata and SPSS users expect; select-multiple dummies get ``0 No``,
``1 Yes``. Direct identifiers (``privacy = direct``) can be left out with
``drop_direct=True`` for files that leave the secure store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
from openpyxl import Workbook

from survey.errors import InstrumentError

from .form import Form
from .importer import ImportResult
from .raw import GEO_PARTS

__all__ = ["labelled_table", "write_codebook", "write_spss", "write_stata"]

_KEY_LABELS = {
    "key": "Row key", "parent_key": "Key of the parent row",
    "submission_key": "Key of the submission", "row_index": "Position within the parent",
    "instance_id": "Instance ID", "deprecated_id": "Instance ID this edit replaces",
    "submitter": "Submitted by", "review_state": "Review state", "form_version": "Form version",
    "status": "Server status", "submission_date": "Date of submission (UTC)",
}  # fmt: skip


def _language(form: Form, language: str | None) -> str | None:
    if language is None:
        return form.default_language or form.languages[0]
    if language not in form.languages:
        raise InstrumentError(f"the form has no language {language!r}",
                              hint=f"choose one of {', '.join(form.languages)}")
    return language


def _direct_columns(form: Form, table: str, columns) -> list[str]:
    out = []
    for f in form.table_fields(table):
        if f.privacy == "direct":
            out += [c for c in columns if c == f.column or c.startswith(f.column + "__")]
    return out


def labelled_table(
    result: ImportResult, table: str, language: str | None = None, drop_direct: bool = False
) -> tuple[pd.DataFrame, dict[str, str], dict[str, dict[int, str]]]:
    """A table ready for Stata/SPSS: plain dtypes, variable labels and value labels."""
    form = result.form
    lang = _language(form, language)
    df = result.tables[table]
    if drop_direct:
        df = df.drop(columns=_direct_columns(form, table, df.columns))
    var_labels = {c: lab for c, lab in _KEY_LABELS.items() if c in df.columns}
    value_labels: dict[str, dict[int, str]] = {}
    out: dict[str, object] = {}
    fields = {f.column: f for f in form.table_fields(table)}
    for col in df.columns:
        s = df[col]
        base, _, suffix = col.partition("__")
        f = fields.get(base)
        if f is not None:
            label = f.label(lang)
            if suffix and f.type == "select_multiple" and f.choices:
                choice = f.choices.labels(lang).get(suffix, suffix)
                var_labels[col] = f"{label}: {choice}"[:80]
                value_labels[col] = {0: "No", 1: "Yes"}
            elif suffix in GEO_PARTS:
                var_labels[col] = f"{label} ({suffix})"[:80]
            else:
                var_labels[col] = label[:80]
        if isinstance(s.dtype, pd.CategoricalDtype):
            codes = s.cat.codes.to_numpy().astype(float)
            codes[codes < 0] = np.nan
            out[col] = codes + 1
            labels = f.choices.labels(lang) if f is not None and f.choices else {}
            value_labels[col] = {i + 1: labels.get(c, str(c)) for i, c in
                                 enumerate(s.cat.categories)}
        elif pd.api.types.is_datetime64_any_dtype(s.dtype):
            if getattr(s.dt, "tz", None) is not None:
                s = s.dt.tz_convert("UTC").dt.tz_localize(None)
            out[col] = s.astype("datetime64[ns]")
        elif pd.api.types.is_numeric_dtype(s.dtype):
            out[col] = s.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        else:
            out[col] = s.astype("string").fillna("").to_numpy(dtype=object)
    return pd.DataFrame(out), var_labels, value_labels


def _write(result, folder, language, drop_direct, writer, suffix) -> dict[str, Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for table in result.tables:
        df, var_labels, value_labels = labelled_table(result, table, language, drop_direct)
        path = folder / f"{table}{suffix}"
        writer(df, str(path), column_labels=var_labels, variable_value_labels=value_labels)
        paths[table] = path
    return paths


def write_stata(result: ImportResult, folder: str | Path, language: str | None = None,
                drop_direct: bool = False) -> dict[str, Path]:
    """Write ``<table>.dta`` per table (Stata 15 format) with labels in ``language``."""
    return _write(result, folder, language, drop_direct, pyreadstat.write_dta, ".dta")


def write_spss(result: ImportResult, folder: str | Path, language: str | None = None,
               drop_direct: bool = False) -> dict[str, Path]:
    """Write ``<table>.sav`` per table with labels in ``language``."""
    return _write(result, folder, language, drop_direct, pyreadstat.write_sav, ".sav")


def write_codebook(form: Form, path: str | Path, result: ImportResult | None = None) -> Path:
    """An Excel codebook: variables, choices in every language, and the import ledger.

    Sheets: ``variables`` (table, column, type, labels, required, relevant, constraint,
    calculation, choice list, privacy, and with a result the answered count),
    ``choices`` (list, code, name, labels), and with a result ``ledger`` and
    ``problems`` (counts per code, table and field).
    """
    path = Path(path)
    wb = Workbook()
    ws = wb.active
    ws.title = "variables"
    langs = list(form.languages)
    ws.append(["table", "column", "type", *[f"label::{lg}" for lg in langs], "required",
               "relevant", "constraint", "calculation", "choice_list", "privacy", "answered"])
    for f in form.fields.values():
        answered = None
        if result is not None and f.column in result.tables[f.table]:
            answered = int(result.tables[f.table][f.column].notna().sum())
        ws.append([f.table, f.column, f.type, *[f.labels.get(lg, "") for lg in langs],
                   "yes" if f.required else "", " and ".join(f.conditions), f.constraint,
                   f.calculation, f.choices.name if f.choices else None, f.privacy, answered])
    ch = wb.create_sheet("choices")
    ch.append(["list_name", "code", "name", *[f"label::{lg}" for lg in langs]])
    for cl in form.choice_lists.values():
        for i, c in enumerate(cl.choices, start=1):
            ch.append([cl.name, i, c.name, *[c.labels.get(lg, "") for lg in langs]])
    if result is not None:
        led = wb.create_sheet("ledger")
        led.append(list(result.ledger.columns))
        for row in result.ledger.astype(object).itertuples(index=False):
            led.append([None if pd.isna(v) else v for v in row])
        pr = wb.create_sheet("problems")
        pr.append(["code", "table", "field", "rows"])
        counts = result.problems.groupby(["code", "table", "field"], dropna=False).size()
        for (code, table, field), n in counts.items():
            pr.append([code, table, None if pd.isna(field) else field, int(n)])
    wb.save(path)
    return path
