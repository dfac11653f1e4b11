"""KoboToolbox exports: the XLSX download and the API's JSON.

XLSX: the first sheet holds submissions, one sheet per repeat; columns are XML paths
joined by ``/`` (or labels, with "labels" chosen at download); rows are linked by
``_index`` and ``_parent_index``/``_parent_table_name``; geopoints come with
``_<path>_latitude`` ... columns; select-multiple answers with ``<path>/<choice>`` 0/1
columns; metadata ``_id``, ``_uuid``, ``_submission_time``, ``_validation_status``,
``__version__``. JSON (``/api/v2/assets/<uid>/data``): a ``results`` list of flat
records keyed by full paths, repeats as lists of records.

Kobo has no repeat keys: they are rebuilt as ``<parent key>/<repeat>[n]`` in
``_index`` order, and the submission key is ``meta/instanceID``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
from openpyxl import Workbook, load_workbook

from survey.errors import InstrumentError

from ..form import Form
from ..raw import RawData, raw_columns
from ._common import assemble, parent_rows, split_geopoint, split_multi

__all__ = ["read_kobo_json", "read_kobo_xlsx", "write_kobo_json", "write_kobo_xlsx"]

_GEO = ("latitude", "longitude", "altitude", "precision")
_STATUS = {"approved": "validation_status_approved",
           "not_approved": "validation_status_not_approved",
           "on_hold": "validation_status_on_hold"}


def _sheet_name(text: str) -> str:
    bad = '[]:*?/\\'
    return "".join("_" if c in bad else c for c in text)[:31]


def _uuid(key: str) -> str:
    return key[5:] if isinstance(key, str) and key.startswith("uuid:") else key


# ---------------------------------------------------------------- XLSX


def write_kobo_xlsx(submissions: RawData, path: str | Path, form: Form, *,
                    split_select_multiple: bool = True) -> Path:
    """Write submissions as KoboToolbox's XLSX export ("XML values and headers")."""
    path = Path(path)
    wb = Workbook()
    wb.remove(wb.active)
    frames = {}
    root = form.form_id
    for name in form.tables:
        raw = submissions.tables[name].reset_index(drop=True)
        idx = pd.Series(np.arange(1, len(raw) + 1), index=raw.index)
        frames[name] = raw
        cols: dict[str, pd.Series] = {}
        for f in form.table_fields(name):
            cols[f.path] = raw[f.column]
            if f.type == "geopoint":
                for suffix, part in zip(_GEO, split_geopoint(raw[f.column])):
                    cols[f"_{f.path}_{suffix}"] = part
            if f.type == "select_multiple" and split_select_multiple and f.choices:
                for c, v in split_multi(raw[f.column], f.choices.names).items():
                    cols[f"{f.path}/{c}"] = v
        if name == root:
            cols["meta/instanceID"] = raw["instance_id"]
            cols["meta/deprecatedID"] = raw["deprecated_id"]
            cols["_id"] = idx.astype(str)
            cols["_uuid"] = raw["key"].map(_uuid)
            cols["_submission_time"] = raw["submission_date"]
            cols["_validation_status"] = raw["status"]
            cols["_submitted_by"] = raw["submitter"]
            cols["__version__"] = raw["form_version"]
        else:
            parent = form.tables[name].parent
            cols["_parent_table_name"] = pd.Series(
                [_sheet_name(form.title) if parent == root else parent] * len(raw))
            pos = parent_rows(frames[parent], raw) + 1
            cols["_parent_index"] = pd.Series(np.where(pos > 0, pos.astype(str), None),
                                              dtype="string")
        cols["_index"] = idx.astype(str)
        ws = wb.create_sheet(_sheet_name(form.title) if name == root else _sheet_name(name))
        frame = pd.DataFrame(cols)
        ws.append(list(frame.columns))
        for row in frame.astype(object).where(frame.notna(), None).itertuples(index=False):
            ws.append(list(row))
    wb.save(path)
    return path


def _cell(v) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, dt.datetime):
        return v.date().isoformat() if v.time() == dt.time(0) else v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


def _label_maps(form: Form, table: str) -> tuple[dict[str, list[str]], dict]:
    names = {}
    for f in form.table_fields(table):
        names[f.column] = [f.path, f.name, *f.labels.values()]
    return names, {}


def read_kobo_xlsx(path: str | Path, form: Form) -> RawData:
    """Read a KoboToolbox XLSX export (XML headers, or labels) into raw tables."""
    path = Path(path)
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise InstrumentError(f"cannot open the workbook ({exc})", file=str(path),
                              hint="download the export again") from exc
    sheets = {}
    for ws in wb.worksheets:
        rows = ws.iter_rows(values_only=True)
        header = [str(h) if h is not None else "" for h in next(rows, [])]
        data = [[_cell(v) for v in r] for r in rows]
        sheets[ws.title] = pd.DataFrame(data, columns=header, dtype="string") if data else \
            pd.DataFrame({h: pd.Series([], dtype="string") for h in header})
    wb.close()
    titles = list(sheets)
    root_frame = sheets[titles[0]]
    paths = {f.path for f in form.table_fields(form.form_id)}
    labels = {lab for f in form.table_fields(form.form_id) for lab in f.labels.values()}
    if not (set(root_frame.columns) & (paths | labels)):
        raise InstrumentError(
            f"the first sheet {titles[0]!r} has none of the fields of form {form.form_id!r}: "
            "it is an export of a different form",
            file=str(path), sheet=titles[0], hint="read it with the form it was collected with")
    frames = {form.form_id: root_frame}
    for name in form.tables:
        if name != form.form_id:
            frames[name] = sheets.get(_sheet_name(name), pd.DataFrame(
                {"_index": pd.Series([], dtype="string"),
                 "_parent_index": pd.Series([], dtype="string")}))
    return _from_frames(form, frames, path, "kobo_xlsx",
                        {name: f"{path.name}:{_sheet_name(name)}" for name in frames})


def _from_frames(form: Form, frames: dict[str, pd.DataFrame], path: Path, fmt: str,
                 sources: dict[str, str]) -> RawData:
    root = form.form_id
    tables, extra, keys_by_index = {}, {}, {}
    for name in form.tables:  # parents come before children in form order
        frame = frames[name].reset_index(drop=True)
        if name == root:
            inst = frame["meta/instanceID"] if "meta/instanceID" in frame else \
                pd.Series(pd.NA, index=frame.index, dtype="string")
            if "_uuid" in frame:
                inst = inst.fillna("uuid:" + frame["_uuid"])
            frame = frame.assign(__key=inst)
        else:
            parent = form.tables[name].parent
            pk = frame["_parent_index"].map(keys_by_index[parent]) if len(frame) else \
                pd.Series([], dtype="string")
            order = pd.to_numeric(frame["_index"], errors="coerce")
            pos = (frame.assign(__o=order).sort_values("__o", kind="stable")
                   .groupby("_parent_index", sort=False, dropna=False).cumcount() + 1)
            key = pk + f"/{name}[" + pos.reindex(frame.index).astype("string") + "]"
            frame = frame.assign(__key=key, __parent=pk.astype("string"))
        keys_by_index[name] = dict(zip(frame["_index"], frame["__key"])) if "_index" in frame \
            else {}
        status = frame["_validation_status"] if "_validation_status" in frame else None
        names, _ = _label_maps(form, name)
        meta = {"__key": "key", "__parent": "parent_key", "meta/instanceID": "instance_id",
                "meta/deprecatedID": "deprecated_id", "_submission_time": "submission_date",
                "_submitted_by": "submitter", "__version__": "form_version"}
        if status is not None:
            frame = frame.assign(__status=status.map(
                lambda s: s if pd.isna(s) else _STATUS.get(s, s)).astype("string"))
            meta["__status"] = "status"
        raw, unclaimed = assemble(form, name, frame, names, meta,
                                  geo={"suffixes": []})
        raw = _kobo_geo(form, name, frame, raw)
        tables[name] = _unlabel(form, name, raw)
        skip = {"_id", "_uuid", "_index", "_parent_index", "_parent_table_name", "_status",
                "_notes", "_tags", "_validation_status", "__status", "__key", "__parent",
                "_submission__id", "_submission__uuid", "_submission__submission_time",
                "_submission__validation_status", "_submission__notes", "_submission__status",
                "_submission__submitted_by", "_submission___version__", "_submission__tags"}
        geo_cols = {f"_{f.path}_{s}" for f in form.table_fields(name) for s in _GEO}
        extra[name] = tuple(c for c in unclaimed if c not in skip and c not in geo_cols)
    return RawData(form_id=root, tables=tables, format=fmt, sources=sources, extra_columns=extra)


def _kobo_geo(form, name, frame, raw):
    for f in form.table_fields(name):
        if f.type != "geopoint" or raw[f.column].notna().any():
            continue
        parts = [f"_{f.path}_{s}" for s in _GEO]
        if parts[0] in frame:
            from ..raw import join_geopoint

            raw = raw.assign(**{f.column: join_geopoint(
                [frame[p] if p in frame else pd.Series(pd.NA, index=frame.index) for p in parts])})
    return raw


def _unlabel(form: Form, name: str, raw: pd.DataFrame) -> pd.DataFrame:
    """Map choice labels back to names where a column holds labels (labels export)."""
    out = {}
    for f in form.table_fields(name):
        if f.type not in ("select_one", "select_multiple") or not f.choices or \
                f.choices.external:
            continue
        s = raw[f.column]
        known = set(f.choices.names)
        vals = set(s.dropna().unique())
        if not vals or vals <= known or f.type == "select_multiple":
            continue
        lab2name = {lab: c.name for c in f.choices.choices for lab in c.labels.values()}
        if vals <= set(lab2name) | known:
            out[f.column] = s.map(lambda v, m=lab2name: m.get(v, v) if pd.notna(v) else v)
    return raw.assign(**{k: v.astype("string") for k, v in out.items()}) if out else raw


# ---------------------------------------------------------------- JSON


def write_kobo_json(submissions: RawData, path: str | Path, form: Form) -> Path:
    """Write submissions as the Kobo API's JSON (``{"count", "results": [...]}``)."""
    path = Path(path)
    records = _records(form, submissions, form.form_id, None)
    body = {"count": len(records), "next": None, "previous": None, "results": records}
    path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    return path


def _records(form: Form, subs: RawData, table: str, parent_keys) -> list[dict]:
    raw = subs.tables[table]
    root = form.tables[table].parent is None
    fields = form.table_fields(table)
    children = form.children(table)
    kids = {}
    for c in children:
        child = subs.tables[c].reset_index(drop=True)
        kids[c] = child.groupby(parent_rows(raw, child), sort=False)
    out = []
    for i, row in enumerate(raw.astype(object).where(raw.notna(), None).to_dict("records")):
        rec = {f.path: row[f.column] for f in fields if row[f.column] is not None}
        for c in children:
            try:
                sub = kids[c].get_group(i)
            except KeyError:
                continue
            rec[form.tables[c].path] = _records(form, RawData(subs.form_id, {
                **subs.tables, c: sub}), c, None)
        if root:
            rec.update({"_id": i + 1, "_uuid": _uuid(row["key"]),
                        "meta/instanceID": row["instance_id"],
                        "_submission_time": row["submission_date"],
                        "_submitted_by": row["submitter"], "__version__": row["form_version"],
                        "_validation_status": {"uid": row["status"]} if row["status"] else {}})
            if row["deprecated_id"]:
                rec["meta/deprecatedID"] = row["deprecated_id"]
        out.append(rec)
    return out


def read_kobo_json(path: str | Path, form: Form) -> RawData:
    """Read Kobo API JSON (a ``results`` list, or a bare list of records)."""
    path = Path(path)
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InstrumentError(f"not valid JSON ({exc})", file=str(path)) from exc
    records = body["results"] if isinstance(body, dict) else body
    return kobo_records_to_raw(records, form, path)


def kobo_records_to_raw(records: list[dict], form: Form, path: Path) -> RawData:
    root = form.form_id
    rows: dict[str, list[dict]] = {t: [] for t in form.tables}
    paths = {f.path for f in form.table_fields(root)}
    if records and not any(set(r) & paths for r in records[:50]):
        raise InstrumentError(
            f"the records have none of the fields of form {form.form_id!r}: "
            "it is an export of a different form", file=str(path))

    def walk(rec: dict, table: str, key: str, parent: str | None):
        out = {"key": key, "parent_key": parent}
        for f in form.table_fields(table):
            v = rec.get(f.path)
            out[f.column] = None if v is None or v == "" else str(v)
        rows[table].append(out)
        for c in form.children(table):
            for j, item in enumerate(rec.get(form.tables[c].path) or [], start=1):
                walk(item, c, f"{key}/{c}[{j}]", key)
        return out

    for rec in records:
        key = rec.get("meta/instanceID") or f"uuid:{rec.get('_uuid')}"
        out = walk(rec, root, key, None)
        vs = rec.get("_validation_status") or {}
        out.update({"instance_id": rec.get("meta/instanceID"),
                    "deprecated_id": rec.get("meta/deprecatedID"),
                    "submission_date": rec.get("_submission_time"),
                    "submitter": rec.get("_submitted_by"),
                    "form_version": rec.get("__version__"),
                    "status": vs.get("uid") if isinstance(vs, dict) else vs})
    tables = {t: pd.DataFrame(r, columns=raw_columns(form, t), dtype="string")
              for t, r in rows.items()}
    return RawData(form_id=root, tables=tables, format="kobo_json",
                   sources=dict.fromkeys(tables, path.name))
