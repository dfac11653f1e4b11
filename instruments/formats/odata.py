"""ODK Central's OData JSON, and a pull from a Central server through pyodk.

``Submissions?$expand=*`` returns a ``value`` list of nested records: groups as
objects, repeats as lists, geopoints as GeoJSON, ``__id`` as the submission key and
``__system`` with ``submissionDate``, ``submitterName``, ``reviewState`` and
``formVersion``. Repeat keys are rebuilt as ``<parent key>/<repeat>[n]``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from survey.errors import InstrumentError

from ..form import Form
from ..raw import RawData, raw_columns
from ._common import parent_rows

__all__ = ["odata_to_raw", "pull_odk_central", "read_odata_json", "write_odata_json"]

_NUMERIC = {"integer", "decimal"}


def write_odata_json(submissions: RawData, path: str | Path, form: Form) -> Path:
    """Write submissions as Central's ``Submissions?$expand=*`` OData response."""
    path = Path(path)
    body = {"@odata.context": f"Submissions.svc/$metadata#Submissions/{form.form_id}",
            "value": _records(form, submissions.tables, form.form_id)}
    path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    return path


def _value(f, v):
    if v is None:
        return None
    if f.type in _NUMERIC:
        try:
            x = float(v)
            return int(x) if f.type == "integer" and x.is_integer() else x
        except ValueError:
            return v
    if f.type == "geopoint":
        parts = v.split()
        try:
            nums = [float(p) for p in parts]
        except ValueError:
            return v
        coords = [nums[1], nums[0]] + nums[2:3]
        geo = {"type": "Point", "coordinates": coords}
        if len(nums) > 3:
            geo["properties"] = {"accuracy": nums[3]}
        return geo
    return v


def _records(form: Form, tables, table: str, rows=None) -> list[dict]:
    raw = tables[table].reset_index(drop=True) if rows is None else rows
    base = form.tables[table].path
    kids = {}
    for c in form.children(table):
        child = tables[c].reset_index(drop=True)
        kids[c] = child.groupby(parent_rows(raw, child), sort=False)
    out = []
    for i, row in enumerate(raw.astype(object).where(raw.notna(), None).to_dict("records")):
        rec: dict = {}
        for f in form.table_fields(table):
            rel = f.path[len(base) + 1:] if base else f.path
            *groups, name = rel.split("/")
            node = rec
            for g in groups:
                node = node.setdefault(g, {})
            node[name] = _value(f, row[f.column])
        for c in form.children(table):
            p = form.tables[c].path
            *groups, name = (p[len(base) + 1:] if base else p).split("/")
            node = rec
            for g in groups:
                node = node.setdefault(g, {})
            try:
                sub = kids[c].get_group(i).reset_index(drop=True)
            except KeyError:
                sub = tables[c].iloc[0:0]
            node[name] = _records(form, tables, c, sub)
        rec["__id"] = row["key"]
        if form.tables[table].parent is None:
            rec["meta"] = {"instanceID": row["instance_id"]}
            if row["deprecated_id"]:
                rec["meta"]["deprecatedID"] = row["deprecated_id"]
            rec["__system"] = {"submissionDate": row["submission_date"],
                               "submitterName": row["submitter"],
                               "reviewState": row["review_state"],
                               "formVersion": row["form_version"], "status": row["status"]}
        out.append(rec)
    return out


def read_odata_json(path: str | Path, form: Form) -> RawData:
    """Read a saved OData response (``{"value": [...]}``) into raw tables."""
    path = Path(path)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InstrumentError(f"not valid JSON ({exc})", file=str(path)) from exc
    return odata_to_raw(body, form, source=path.name)


def _text(f, v) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, dict) and v.get("type") == "Point":
        c = v.get("coordinates") or []
        parts = [c[1], c[0], *c[2:3]]
        acc = (v.get("properties") or {}).get("accuracy")
        if acc is not None:
            parts.append(acc)
        return " ".join(repr(float(p)) for p in parts)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and f.type == "integer" else repr(v)
    return str(v)


def odata_to_raw(body: dict, form: Form, source: str = "odata") -> RawData:
    """Raw tables from an OData body (from a file or a pyodk pull)."""
    records = body.get("value") if isinstance(body, dict) else None
    if records is None:
        raise InstrumentError("no 'value' list: not an OData submissions response",
                              file=source, hint="save the response of Submissions?$expand=*")
    ctx = str(body.get("@odata.context", ""))
    if ctx and "#Submissions" in ctx and not ctx.endswith(f"/{form.form_id}") \
            and f"/{form.form_id}" not in ctx and ctx.rsplit("/", 1)[-1] != "Submissions":
        raise InstrumentError(f"OData context {ctx!r} is not form {form.form_id!r}: "
                              "an export of a different form", file=source)
    rows = {t: [] for t in form.tables}

    def get(rec, rel):
        node = rec
        for part in rel.split("/"):
            if not isinstance(node, dict):
                return None
            node = node.get(part)
        return node

    def walk(rec, table, key, parent):
        base = form.tables[table].path
        out = {"key": key, "parent_key": parent}
        for f in form.table_fields(table):
            out[f.column] = _text(f, get(rec, f.path[len(base) + 1:] if base else f.path))
        rows[table].append(out)
        for c in form.children(table):
            p = form.tables[c].path
            for j, item in enumerate(get(rec, p[len(base) + 1:] if base else p) or [], 1):
                walk(item, c, f"{key}/{c}[{j}]", key)
        return out

    fields = {f.path.split("/")[0] for f in form.table_fields(form.form_id)}
    if records and not any(set(r) & fields for r in records[:50]):
        raise InstrumentError(f"the records have none of the fields of form {form.form_id!r}: "
                              "an export of a different form", file=source)
    for rec in records:
        system, meta = rec.get("__system") or {}, rec.get("meta") or {}
        out = walk(rec, form.form_id, rec.get("__id") or meta.get("instanceID"), None)
        out.update(instance_id=meta.get("instanceID"), deprecated_id=meta.get("deprecatedID"),
                   submission_date=system.get("submissionDate"),
                   submitter=system.get("submitterName"), review_state=system.get("reviewState"),
                   form_version=system.get("formVersion"), status=system.get("status"))
    tables = {t: pd.DataFrame(r, columns=raw_columns(form, t), dtype="string")
              for t, r in rows.items()}
    return RawData(form_id=form.form_id, tables=tables, format="odata_json",
                   sources=dict.fromkeys(tables, source))


def pull_odk_central(client, project_id: int, form: Form) -> RawData:
    """Pull every submission of ``form`` from ODK Central through pyodk.

    Parameters
    ----------
    client
        A ``pyodk.client.Client`` (configured and, if needed, opened by the caller).
    project_id
        The Central project.
    form
        The form (its ``form_id`` is the Central form id).

    Notes
    -----
    Uses ``client.submissions.get_table(..., expand="*")``, the OData endpoint, so the
    result goes through the same parser as a saved OData file.
    """
    try:
        body = client.submissions.get_table(form_id=form.form_id, project_id=project_id,
                                            expand="*")
    except Exception as exc:  # pyodk wraps HTTP and auth failures in its own errors
        raise InstrumentError(f"pull from ODK Central failed: {exc}",
                              hint="check the server URL, credentials and project id") from exc
    return odata_to_raw(body, form, source=f"central:project{project_id}/{form.form_id}")
