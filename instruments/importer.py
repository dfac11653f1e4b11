"""``read_export``: any supported export -> typed tables, problems and a ledger.

The stages, each a plain function: detect the format and read it into raw tables
(:mod:`instruments.formats`), sort rows into kept / duplicate / quarantined
(:mod:`instruments.clean`), type and validate the kept rows
(:mod:`instruments.validate`), and count everything in the ledger. Several versions of
one form can be given; the tables then hold the union of their fields and each row is
checked only against the fields of its own version.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from importlib import import_module
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from survey.errors import InstrumentError

from .clean import clean_tables
from .form import Form
from .problems import concat_problems, problem_frame
from .raw import RawData
from .validate import type_tables

__all__ = ["FORMATS", "ImportResult", "import_raw", "merge_versions", "read_export"]

LEDGER_COLUMNS = ("table", "read", "kept", "quarantined", "duplicates", "format", "source",
                  "sha256")


@dataclass(frozen=True)
class ImportResult:
    """What an import produced.

    Attributes
    ----------
    tables
        Table name -> typed DataFrame (``key``, ``parent_key``, ``submission_key``,
        ``row_index`` on repeats, metadata on the root, then the fields).
    problems
        One row per violation: ``code, table, key, field, value, message``.
    ledger
        Per table: rows read, kept, quarantined, duplicates; format, source, sha256.
    quarantine
        Table name -> the raw rows set aside, with a ``reason`` code.
    form
        The form (union of versions) the tables follow.
    """

    tables: Mapping[str, pd.DataFrame]
    problems: pd.DataFrame
    ledger: pd.DataFrame
    quarantine: Mapping[str, pd.DataFrame]
    form: Form


def _sha256(path: Path) -> str:
    if path.is_dir():
        h = hashlib.sha256()
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(p.relative_to(path).as_posix().encode())
                h.update(p.read_bytes())
        return h.hexdigest()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- versions


def merge_versions(forms: Sequence[Form]) -> tuple[Form, dict[str, set[str]]]:
    """Union of several versions of one form, and the field paths of each version.

    The newest version (the last given) decides order and definitions; fields found
    only in older versions are appended to their table.
    """
    forms = list(forms)
    ids = {f.form_id for f in forms}
    if len(ids) != 1:
        raise InstrumentError(f"versions of different forms given: {sorted(ids)}",
                              hint="pass versions of one form only")
    base = forms[-1]
    fields = dict(base.fields)
    tables = {k: list(t.fields) for k, t in base.tables.items()}
    table_defs = dict(base.tables)
    for old in reversed(forms[:-1]):
        for t, tdef in old.tables.items():
            if t not in table_defs:
                table_defs[t] = tdef
                tables[t] = []
        for p, f in old.fields.items():
            if p not in fields:
                fields[p] = f
                tables[f.table].append(p)
    merged = replace(
        base,
        fields=MappingProxyType(fields),
        tables=MappingProxyType({k: replace(v, fields=tuple(tables[k]))
                                 for k, v in table_defs.items()}),
        choice_lists=MappingProxyType({k: v for f in forms for k, v in f.choice_lists.items()}),
    )
    return merged, {f.version: set(f.fields) for f in forms}


def _presence(form: Form, tables, versions: dict[str, set[str]]) -> dict:
    """Per table and field: rows whose own form version has the field."""
    root = form.form_id
    rv = tables[root]["form_version"].astype("string").fillna("")
    out = {}
    for name in form.tables:
        if name == root:
            ver = rv.to_numpy(dtype=object)
        else:
            from .scope import Scope

            pos = Scope(form, tables).ancestor_pos(name, root)
            rvals = rv.to_numpy(dtype=object)
            ver = np.where(pos >= 0, rvals[np.maximum(pos, 0)] if len(rvals) else "", "")
        known = np.isin(ver, list(versions))
        out[name] = {}
        for f in form.table_fields(name):
            has = [v for v, paths in versions.items() if f.path in paths]
            out[name][f.column] = ~known | np.isin(ver, has)
    return out


# ---------------------------------------------------------------- import


def import_raw(
    raw: RawData,
    form: Form | Sequence[Form],
    *,
    today: date | None = None,
    exclude_rejected: bool = True,
    source: str = "",
    sha256: str = "",
) -> ImportResult:
    """Clean, type and validate raw tables (the part of an import after reading)."""
    forms = [form] if isinstance(form, Form) else list(form)
    merged, versions = merge_versions(forms)
    if raw.form_id != merged.form_id:
        raise InstrumentError(
            f"the export is of form {raw.form_id!r}, not {merged.form_id!r}",
            file=source or None, hint="read it with the form it was collected with",
        )
    problems = []
    for name, cols in raw.extra_columns.items():
        if cols:
            problems.append(problem_frame("W601", name, [None] * len(cols), None, list(cols),
                                          "column of the export matches no field of the form"))
    cleaned = clean_tables(merged, raw.tables, exclude_rejected=exclude_rejected)
    problems += cleaned.problems
    present = _presence(merged, cleaned.tables, versions) if len(versions) > 1 else None
    typed, checks = type_tables(merged, cleaned.tables, today=today, present=present)
    problems.append(checks)
    ledger = pd.DataFrame([
        {"table": t, **c, "format": raw.format,
         "source": raw.sources.get(t, source), "sha256": sha256}
        for t, c in cleaned.counts.items()
    ], columns=list(LEDGER_COLUMNS))
    return ImportResult(
        tables=MappingProxyType(typed),
        problems=concat_problems(problems),
        ledger=ledger,
        quarantine=MappingProxyType(cleaned.quarantine),
        form=merged,
    )


_READERS = {
    "odk_central_zip": ("odk_central", "read_odk_central_zip"),
    "kobo_xlsx": ("kobo", "read_kobo_xlsx"),
    "kobo_json": ("kobo", "read_kobo_json"),
    "surveycto_csv": ("surveycto", "read_surveycto"),
    "odk_xml": ("odk_xml", "read_odk_xml"),
    "odata_json": ("odata", "read_odata_json"),
}


def _reader(fmt: str) -> Callable[[Path, Form], RawData]:
    if fmt not in _READERS:
        raise InstrumentError(f"unknown format {fmt!r}", hint=f"one of {', '.join(_READERS)}")
    module, func = _READERS[fmt]
    return getattr(import_module(f"instruments.formats.{module}"), func)


#: formats ``read_export`` accepts, with what identifies each.
FORMATS = {
    "odk_central_zip": "a .zip of CSVs from ODK Central (root CSV with SubmissionDate and KEY)",
    "kobo_xlsx": "a KoboToolbox .xlsx export (a sheet per repeat, _index/_parent_index)",
    "kobo_json": "KoboToolbox API JSON (a 'results' list with _id/_uuid)",
    "surveycto_csv": "SurveyCTO long CSVs (a folder or .zip; KEY, PARENT_KEY, SET-OF-...)",
    "odk_xml": "ODK XML submission instances (a folder or .zip of .xml files)",
    "odata_json": "ODK Central OData JSON (a 'value' list with __id)",
}


def detect_format(path: Path) -> str:
    """Name the format of an export, or say what was found and what is accepted."""
    accepted = "; ".join(f"{k}: {v}" for k, v in FORMATS.items())
    if not path.exists():
        raise InstrumentError("export not found", file=str(path), hint="check the path")
    found = "a folder"
    if path.is_dir():
        files = [p.name.lower() for p in path.rglob("*") if p.is_file()]
        if any(f.endswith(".xml") for f in files):
            return "odk_xml"
        if any(f.endswith(".csv") for f in files):
            return "surveycto_csv"
        found = f"a folder with {len(files)} files and no .xml or .csv"
    else:
        suffix = path.suffix.lower()
        with open(path, "rb") as fh:
            head = fh.read(4096)
        if suffix == ".zip" or head[:2] == b"PK" and suffix != ".xlsx":
            from .formats._common import open_zip

            with open_zip(path) as zf:
                names = [n.lower() for n in zf.namelist()]
                if any(n.endswith(".xml") for n in names):
                    return "odk_xml"
                csvs = [n for n in zf.namelist() if n.lower().endswith(".csv")]
                heads = b"".join(_first_line(zf, n) for n in csvs)
            if b"SET-OF-" in heads or b"formdef_version" in heads:
                return "surveycto_csv"
            if csvs:
                return "odk_central_zip"
            found = f"a zip of {', '.join(names[:5]) or 'nothing'}"
        elif suffix in (".xlsx", ".xlsm"):
            return "kobo_xlsx"
        elif suffix == ".json":
            text = head.decode("utf-8", "replace")
            if '"results"' in text or '"_uuid"' in text:
                return "kobo_json"
            if '"value"' in text or "@odata" in text:
                return "odata_json"
            found = "JSON with neither 'value' (OData) nor 'results' (Kobo)"
        elif suffix == ".csv":
            return "surveycto_csv"
        else:
            found = f"a {suffix or 'suffix-less'} file"
    raise InstrumentError(f"unrecognised export: found {found}", file=str(path),
                          hint=f"accepted formats: {accepted}")


def _first_line(zf: zipfile.ZipFile, name: str) -> bytes:
    with zf.open(name) as fh:
        return fh.readline()


def read_export(
    path: str | Path,
    form: Form | Sequence[Form],
    *,
    format: str | None = None,
    today: date | None = None,
    exclude_rejected: bool = True,
) -> ImportResult:
    """Import a field-data export into typed, validated tables.

    Parameters
    ----------
    path
        The export: a file or folder in any of :data:`FORMATS`.
    form
        The form, or several versions of it (oldest first) when the data mixes versions.
    format
        Skip detection and read as this format.
    today
        Date for ``today()`` in constraints (default: the real date).
    exclude_rejected
        Quarantine submissions rejected in ODK Central review or marked not approved
        in Kobo (default True).

    Returns
    -------
    ImportResult
        ``.tables``, ``.problems``, ``.ledger`` (``read = kept + quarantined +
        duplicates`` for every table), ``.quarantine``.

    Raises
    ------
    InstrumentError
        For an unreadable export (truncated zip), an unrecognised format (saying what
        was found and what is accepted), or an export of a different form.
    """
    path = Path(path)
    fmt = format or detect_format(path)
    reader = _reader(fmt)
    forms = [form] if isinstance(form, Form) else list(form)
    merged, _ = merge_versions(forms)
    raw = reader(path, merged)
    return import_raw(raw, forms, today=today, exclude_rejected=exclude_rejected,
                      source=path.name, sha256=_sha256(path))
