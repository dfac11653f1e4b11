"""SurveyCTO long-format CSVs: ``<form>.csv`` plus ``<form>-<repeat>.csv`` per repeat.

Columns are field names without group paths; repeat rows carry ``PARENT_KEY`` and
``KEY`` (``<parent key>/<repeat>[n]``) and ``SET-OF-<repeat>``; the parent carries a
``SET-OF-<repeat>`` column naming the set. Metadata: ``SubmissionDate``, ``KEY``,
``instanceID``, ``formdef_version``, ``review_status``. Geopoints are split into
``<name>-Latitude`` ... columns. Read from a folder or a ``.zip``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd

from survey.errors import InstrumentError

from ..form import Form
from ..raw import RawData
from ._common import assemble, open_zip, read_csv_text, read_member, split_geopoint

__all__ = ["read_surveycto", "write_surveycto"]

_GEO = ("-Latitude", "-Longitude", "-Altitude", "-Accuracy")
_ROOT_META = {"SubmissionDate": "submission_date", "KEY": "key", "instanceID": "instance_id",
              "deprecatedID": "deprecated_id", "formdef_version": "form_version",
              "review_status": "review_state", "username": "submitter"}
_REPEAT_META = {"PARENT_KEY": "parent_key", "KEY": "key"}
_REVIEW = {"rejected": "rejected", "approved": "approved", "none": None}


def _name(form: Form, table: str) -> str:
    return f"{form.form_id}.csv" if form.tables[table].parent is None else \
        f"{form.form_id}-{table}.csv"


def write_surveycto(submissions: RawData, path: str | Path, form: Form) -> Path:
    """Write SurveyCTO long CSVs into a folder, or a ``.zip`` if ``path`` ends so."""
    path = Path(path)
    files = {}
    for name in form.tables:
        raw = submissions.tables[name]
        root = form.tables[name].parent is None
        cols: dict[str, pd.Series] = {}
        if root:
            cols["SubmissionDate"] = raw["submission_date"]
        for f in form.table_fields(name):
            if f.type == "geopoint":
                for suffix, part in zip(_GEO, split_geopoint(raw[f.column])):
                    cols[f.name + suffix] = part
            else:
                cols[f.name] = raw[f.column]
        for c in form.children(name):
            cols[f"SET-OF-{c}"] = raw["key"] + f"/{c}"
        if root:
            cols["instanceID"] = raw["instance_id"]
            cols["deprecatedID"] = raw["deprecated_id"]
            cols["formdef_version"] = raw["form_version"]
            cols["review_status"] = raw["review_state"]
            cols["username"] = raw["submitter"]
            cols["KEY"] = raw["key"]
        else:
            cols["PARENT_KEY"] = raw["parent_key"]
            cols["KEY"] = raw["key"]
            cols[f"SET-OF-{name}"] = raw["parent_key"] + f"/{name}"
        files[_name(form, name)] = pd.DataFrame(cols).to_csv(index=False)
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for n, text in files.items():
                zf.writestr(n, text)
    else:
        path.mkdir(parents=True, exist_ok=True)
        for n, text in files.items():
            (path / n).write_text(text, encoding="utf-8")
    return path


def read_surveycto(path: str | Path, form: Form) -> RawData:
    """Read SurveyCTO long CSVs from a folder, a ``.zip`` or the main ``.csv``."""
    path = Path(path)
    if path.is_dir():
        blobs = {p.name: p.read_bytes() for p in path.glob("*.csv")}
    elif path.suffix.lower() == ".zip":
        with open_zip(path) as zf:
            blobs = {Path(n).name: read_member(zf, n, path) for n in zf.namelist() if n.lower().endswith(".csv")}
    else:
        blobs = {p.name: p.read_bytes() for p in path.parent.glob("*.csv")}
    main = _name(form, form.form_id)
    if main not in blobs:
        raise InstrumentError(
            f"found {', '.join(sorted(blobs)) or 'no CSV'}, not {main}: "
            "an export of a different form, or the wide format",
            file=str(path), hint="export the long format of this form from SurveyCTO")
    tables, extra, sources = {}, {}, {}
    for name in form.tables:
        root = form.tables[name].parent is None
        fname = _name(form, name)
        if fname in blobs:
            frame = read_csv_text(blobs[fname], f"{path}:{fname}")
            sources[name] = fname
        else:
            frame = pd.DataFrame({"PARENT_KEY": pd.Series([], dtype="string"),
                                  "KEY": pd.Series([], dtype="string")})
        if root and "review_status" in frame:
            frame = frame.assign(review_status=frame["review_status"].map(
                lambda v: _REVIEW.get(v, v) if pd.notna(v) else v).astype("string"))
        names = {f.column: [f.name, f.path.replace("/", "-")] for f in form.table_fields(name)}
        raw, unclaimed = assemble(form, name, frame, names, _ROOT_META if root else _REPEAT_META,
                                  geo={"suffixes": list(_GEO)})
        tables[name] = raw
        extra[name] = tuple(c for c in unclaimed if not c.startswith("SET-OF-"))
    return RawData(form_id=form.form_id, tables=tables, format="surveycto_csv",
                   sources=sources, extra_columns=extra)
