"""The export stage: weighted, labelled data files for Stata, SPSS, Excel and Parquet.

One file per questionnaire table (household, members, emigrants, ...) holding the
respondents only, with the design columns (stratum, EA, group, ``L_hig``, ``m_hig``,
``pi1``, ``pi2``), every weight of the chain, the final ``weight`` and, on the
household file, the replicate weights. Direct identifiers (fields marked
``privacy = direct`` in the XLSForm: names, phones, GPS, free text) never leave the
store. Select-one answers become labelled integer codes in Stata and SPSS files.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from survey.errors import ConfigError
from survey.project import Project
from survey.stages._common import StageResult, require

__all__ = ["EXPORT_FORMATS", "export"]

#: Formats ``survey export`` writes (``html`` in ``[output] formats`` is the report's).
EXPORT_FORMATS = ("dta", "sav", "xlsx", "parquet", "csv")

_DESIGN_LABELS = {
    "hh_id": "Household id", "ea_id": "Enumeration area (PSU)", "stratum": "Stratum",
    "region": "Region", "urban": "Urban or rural", "group": "Listing group (phase-2 stratum)",
    "L_hig": "Households listed in the EA and group", "m_hig": "Households selected in the EA and group",
    "pi1": "EA inclusion probability", "pi2": "Household inclusion probability in the EA",
    "certainty": "EA selected with certainty", "disposition": "Final disposition",
    "w_base": "Base weight 1/(pi1 pi2)", "w_nonresponse": "Weight adjusted for nonresponse",
    "w_calibrated": "Weight calibrated to census totals", "w_trimmed": "Trimmed weight",
    "weight": "Final household weight",
}


def _direct_columns(form, table: str, columns: pd.Index) -> list[str]:
    out = []
    for f in form.table_fields(table):
        if f.privacy == "direct":
            out += [c for c in columns if c == f.column or c.startswith(f.column + "__")]
    return out


def _safe_names(columns: list[str]) -> dict[str, str]:
    """Stata/SPSS variable names: letters, digits, underscores, at most 32 characters."""
    out, seen = {}, set()
    for c in columns:
        name = re.sub(r"\W", "_", c)[:32]
        if not re.match(r"[A-Za-z_]", name):
            name = ("v" + name)[:32]
        base, i = name, 1
        while name.lower() in seen:
            suffix = f"_{i}"
            name, i = base[:32 - len(suffix)] + suffix, i + 1
        seen.add(name.lower())
        out[c] = name
    return out


def _labelled(df: pd.DataFrame, form, table: str) -> tuple[pd.DataFrame, dict, dict]:
    """Plain dtypes for pyreadstat; select-one answers coded 1..k with value labels."""
    fields = {f.column: f for f in form.table_fields(table)}
    labels, values, cols = {}, {}, {}
    for c in df.columns:
        s = df[c]
        f = fields.get(c)
        labels[c] = (f.label() if f else _DESIGN_LABELS.get(c, c))[:80]
        if f is not None and f.type == "select_one" and f.choices is not None:
            names = list(f.choices.names)
            code = pd.Index(names).get_indexer(s.astype("string").fillna("").to_numpy(dtype=object))
            cols[c] = np.where(code >= 0, code + 1, np.nan)
            values[c] = {float(i + 1): _choice_label(ch)[:80]
                         for i, ch in enumerate(f.choices.choices)}
        elif s.dtype.kind in "biuf" or pd.api.types.is_numeric_dtype(s) or s.dtype == "boolean":
            cols[c] = pd.to_numeric(s.astype("Float64"), errors="coerce").to_numpy(
                dtype=float, na_value=np.nan)
        elif pd.api.types.is_datetime64_any_dtype(s):
            cols[c] = s
        else:
            cols[c] = s.astype("string").fillna("").to_numpy(dtype=object)
    return pd.DataFrame(cols, index=df.index), labels, values


def _choice_label(choice) -> str:
    """The first-language label of a choice (its name when it has none)."""
    return str(next(iter(choice.labels.values()), choice.name)) if choice.labels else choice.name


def _tables(project: Project, form) -> dict[str, pd.DataFrame]:
    """Respondent rows of every form table, with design columns and weights."""
    with project.store(read_only=True) as st:
        w = st.read("weights")
        rep = st.read("replicate_weights") if st.has("replicate_weights") else None
        raw = {t: st.read(f"data.{t}") for t in form.tables if st.has(f"data.{t}")}
    w = w[w["weight"] > 0]
    design = [c for c in w.columns if c not in ("eligible", "responded", "visit_result")]
    root = form.form_id
    out = {}
    sub = raw[root]
    hh = w[design].merge(sub.drop(columns=[c for c in design if c in sub.columns and c != "key"]),
                         on="key", how="left")
    if rep is not None:
        rcols = [c for c in rep.columns if c.startswith("repw_")]
        hh = hh.merge(rep[["hh_id", *rcols]], on="hh_id", how="left")
    out[root] = hh
    link = w[["key", "hh_id", "ea_id", "stratum", "group", "weight"]].rename(
        columns={"key": "submission_key"})
    for t, df in raw.items():
        if t == root:
            continue
        out[t] = link.merge(df, on="submission_key", how="inner")
    for t, df in out.items():
        drop = _direct_columns(form, t, df.columns) + [c for c in ("batch_id",) if c in df.columns]
        out[t] = _naive_times(df.drop(columns=drop))
    return out


def _naive_times(df: pd.DataFrame) -> pd.DataFrame:
    """Time-zone aware columns as UTC without a zone (Excel, Stata and SPSS have none)."""
    aware = {c: df[c].dt.tz_convert("UTC").dt.tz_localize(None) for c in df.columns
             if isinstance(df[c].dtype, pd.DatetimeTZDtype)}
    return df.assign(**aware) if aware else df


def _write_xlsx(tables: dict[str, pd.DataFrame], path: Path) -> Path:
    """One sheet per table (openpyxl's streaming writer; replicate weights left out)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    for name, df in tables.items():
        df = df[[c for c in df.columns if not c.startswith("repw_")]]
        ws = wb.create_sheet(name[:31])
        ws.append([str(c) for c in df.columns])
        values = df.astype(object).where(df.notna(), None)
        for row in values.itertuples(index=False, name=None):
            ws.append(row)
    notes = wb.create_sheet("notes")
    for line in ("One row per responding household (household sheet) or person/emigrant.",
                 "weight is the final household weight; members and emigrants carry it.",
                 "Replicate weights (repw_*) are in the .dta, .sav and .parquet files."):
        notes.append([line])
    wb.save(path)
    return path


def export(project: Project, formats: tuple[str, ...] | None = None) -> StageResult:
    """Write the weighted respondent data in each format to ``out/data/``.

    Parameters
    ----------
    project
        The project.
    formats
        Any of :data:`EXPORT_FORMATS`; default: those in ``[output] formats``.
    """
    import pyreadstat

    from survey.stages.fieldwork import read_project_form

    require(project, "weight", by="survey export")
    start = time.perf_counter()
    chosen = tuple(f for f in (formats or project.config.output.formats) if f in EXPORT_FORMATS)
    bad = [f for f in (formats or ()) if f not in EXPORT_FORMATS]
    if bad:
        raise ConfigError(f"cannot export to {bad[0]!r}", key="output.formats",
                          hint=f"export formats: {', '.join(EXPORT_FORMATS)}")
    if not chosen:
        raise ConfigError("no export format chosen", key="output.formats",
                          hint=f"add one of {', '.join(EXPORT_FORMATS)}")
    form = read_project_form(project)
    tables = _tables(project, form)
    folder = project.out_dir / "data"
    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for name, df in tables.items():
        if "parquet" in chosen:
            files.append(folder / f"{name}.parquet")
            df.to_parquet(files[-1], index=False)
        if "csv" in chosen:
            files.append(folder / f"{name}.csv")
            df.to_csv(files[-1], index=False)
        if "dta" in chosen or "sav" in chosen:
            plain, labels, values = _labelled(df, form, name)
            names = _safe_names(list(plain.columns))
            plain = plain.rename(columns=names)
            labels = {names[k]: v for k, v in labels.items()}
            values = {names[k]: v for k, v in values.items()}
            title = f"{project.config.survey.title or project.config.survey.country}: {name}"[:80]
            if "dta" in chosen:
                files.append(folder / f"{name}.dta")
                pyreadstat.write_dta(plain, str(files[-1]), file_label=title,
                                     column_labels=labels, variable_value_labels=values)
            if "sav" in chosen:
                files.append(folder / f"{name}.sav")
                pyreadstat.write_sav(plain, str(files[-1]), file_label=title,
                                     column_labels=labels, variable_value_labels=values)
    if "xlsx" in chosen:
        files.append(_write_xlsx(tables, folder / "survey_data.xlsx"))
    counts = {f"{t}_rows": len(df) for t, df in tables.items()} | {"files": len(files)}
    summary = pd.DataFrame({"table": list(tables), "rows": [len(d) for d in tables.values()],
                            "columns": [d.shape[1] for d in tables.values()]})
    seconds = time.perf_counter() - start
    with project.store() as st:
        st.replace_stage("export", {}, counts=counts, seconds=seconds, detail=", ".join(chosen))
    return StageResult("export", counts, seconds, summary, tuple(files), ", ".join(chosen))
