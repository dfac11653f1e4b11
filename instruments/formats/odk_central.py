"""ODK Central's CSV zip: ``<form>.csv`` for submissions, ``<form>-<repeat>.csv`` per repeat.

Columns are group paths joined by ``-`` (or bare names with Central's "remove group
names" option), geopoints split into ``-Latitude``, ``-Longitude``, ``-Altitude``,
``-Accuracy``, select-multiple answers optionally split into ``<field>/<choice>`` 0/1
columns, repeat rows linked by ``PARENT_KEY`` and ``KEY``, and Central's metadata
(``SubmissionDate``, ``KEY``, ``SubmitterName``, ``ReviewState``, ``FormVersion`` ...).
"""

from __future__ import annotations

import io
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from survey.errors import InstrumentError

from ..form import Form
from ..raw import RawData
from ._common import (
    assemble,
    open_zip,
    read_csv_text,
    read_member,
    relative_path,
    split_geopoint,
    split_multi,
)

__all__ = ["read_odk_central_zip", "write_odk_central_zip"]

_GEO = ("-Latitude", "-Longitude", "-Altitude", "-Accuracy")
_ROOT_META = {
    "SubmissionDate": "submission_date", "meta-instanceID": "instance_id",
    "meta-deprecatedID": "deprecated_id", "KEY": "key", "SubmitterName": "submitter",
    "ReviewState": "review_state", "FormVersion": "form_version", "Status": "status",
}  # fmt: skip
_REPEAT_META = {"PARENT_KEY": "parent_key", "KEY": "key"}
_IGNORED = {"SubmitterID", "AttachmentsPresent", "AttachmentsExpected", "DeviceID", "Edits",
            "instanceID"}


def _file(form: Form, table: str) -> str:
    return f"{form.form_id}.csv" if form.tables[table].parent is None else \
        f"{form.form_id}-{table}.csv"


def _column_name(form: Form, f, group_names: bool) -> str:
    return relative_path(form, f).replace("/", "-") if group_names else f.name


def write_odk_central_zip(
    submissions: RawData,
    path: str | Path,
    form: Form,
    *,
    group_names: bool = True,
    split_select_multiple: bool = True,
) -> Path:
    """Write submissions as ODK Central writes its CSV zip export.

    Parameters
    ----------
    submissions
        Raw tables (from :func:`~instruments.simulate_submissions` or any reader).
    path
        The ``.zip`` to write.
    form
        The form the submissions answer.
    group_names
        False for Central's "remove group names" option (bare field names).
    split_select_multiple
        Add one 0/1 column per choice after each select-multiple column.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in form.tables:
            raw = submissions.tables[name]
            cols: dict[str, pd.Series] = {}
            root = form.tables[name].parent is None
            if root:
                cols["SubmissionDate"] = raw["submission_date"]
            for f in form.table_fields(name):
                col = _column_name(form, f, group_names)
                if f.type == "geopoint":
                    for suffix, part in zip(_GEO, split_geopoint(raw[f.column])):
                        cols[col + suffix] = part
                    continue
                cols[col] = raw[f.column]
                if f.type == "select_multiple" and split_select_multiple and f.choices:
                    for c, v in split_multi(raw[f.column], f.choices.names).items():
                        cols[f"{col}/{c}"] = v
            if root:
                cols["meta-instanceID"] = raw["instance_id"]
                cols["meta-deprecatedID"] = raw["deprecated_id"]
                cols["KEY"] = raw["key"]
                cols["SubmitterID"] = pd.Series(range(1, len(raw) + 1), index=raw.index)
                cols["SubmitterName"] = raw["submitter"]
                cols["AttachmentsPresent"] = pd.Series(0, index=raw.index)
                cols["AttachmentsExpected"] = pd.Series(0, index=raw.index)
                cols["Status"] = raw["status"]
                cols["ReviewState"] = raw["review_state"]
                cols["Edits"] = raw["deprecated_id"].notna().astype(int)
                cols["FormVersion"] = raw["form_version"]
            else:
                cols["PARENT_KEY"] = raw["parent_key"]
                cols["KEY"] = raw["key"]
            zf.writestr(_file(form, name), pd.DataFrame(cols).to_csv(index=False))
    return path


def read_odk_central_zip(path: str | Path, form: Form) -> RawData:
    """Read an ODK Central CSV zip into the normalised raw tables."""
    path = Path(path)
    with open_zip(path) as zf:
        members = {Path(n).name: n for n in zf.namelist() if n.lower().endswith(".csv")}
        root_file = _file(form, form.form_id)
        if root_file not in members:
            roots = sorted(n for n in members if "-" not in n) or sorted(members)
            raise InstrumentError(
                f"this export holds {', '.join(roots) or 'no CSV'}, not {root_file}: "
                "it is an export of a different form",
                file=str(path), hint=f"export form {form.form_id!r}, or read it with its own form",
            )
        tables, sources, extra = {}, {}, {}
        # inflate and parse the CSVs side by side (zlib and arrow release the GIL);
        # results are taken in form order, so the first error is the one reported
        with ThreadPoolExecutor(max_workers=3) as pool:
            frames = {
                name: pool.submit(_read_csv_member, zf, members[_file(form, name)], path,
                                  f"{path}:{_file(form, name)}")
                for name in form.tables if _file(form, name) in members
            }
            try:
                frames = {name: job.result() for name, job in frames.items()}
            finally:
                for job in frames.values():
                    if isinstance(job, Future):
                        job.cancel()
        for name in form.tables:
            fname = _file(form, name)
            root = form.tables[name].parent is None
            if fname not in members:
                if root:
                    raise InstrumentError(f"{fname} missing", file=str(path))
                frame = pd.DataFrame({"PARENT_KEY": pd.Series([], dtype="string"),
                                      "KEY": pd.Series([], dtype="string")})
            else:
                frame = frames[name]
                sources[name] = f"{path.name}:{fname}"
            names = {f.column: [_column_name(form, f, True), f.name]
                     for f in form.table_fields(name)}
            raw, unclaimed = assemble(form, name, frame, names,
                                      _ROOT_META if root else _REPEAT_META,
                                      geo={"suffixes": list(_GEO)})
            tables[name] = raw
            extra[name] = tuple(c for c in unclaimed if c not in _IGNORED)
    return RawData(form_id=form.form_id, tables=tables, format="odk_central_zip",
                   sources=sources, extra_columns=extra)


def _read_csv_member(zf: zipfile.ZipFile, member: str, path: Path, source: str) -> pd.DataFrame:
    return read_csv_text(read_member(zf, member, path), source)


def looks_like(names: list[str], head: dict[str, bytes]) -> bool:
    """A zip of CSVs whose root CSV has Central's ``KEY`` and ``SubmissionDate``."""
    return any(b"SubmissionDate" in h and b"KEY" in h and b"SET-OF-" not in h
               for h in head.values())


def _peek(zf: zipfile.ZipFile) -> dict[str, bytes]:
    out = {}
    for n in zf.namelist():
        if n.lower().endswith(".csv"):
            with zf.open(n) as fh:
                out[n] = io.BufferedReader(fh).readline()
    return out
