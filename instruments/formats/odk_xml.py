"""ODK XML submission instances: one ``.xml`` per submission, in a folder or a zip.

The layout ODK Collect and Briefcase keep (``instances/<name>/<name>.xml``): the root
element (``<data id="household" version="...">``) holds groups as nested elements,
each repeat instance as a repeated element, and ``meta/instanceID`` (possibly in the
OpenRosa namespace, ``<orx:meta>``). Repeat keys are rebuilt as
``<parent key>/<repeat>[n]``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

from survey.errors import InstrumentError

from ..form import Form
from ..raw import RawData, raw_columns
from ._common import open_zip, parent_rows, read_member

__all__ = ["read_odk_xml", "write_odk_xml"]

ORX = "http://openrosa.org/xforms"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def write_odk_xml(submissions: RawData, path: str | Path, form: Form, *,
                  namespaced_meta: bool = False) -> Path:
    """Write one XML instance per submission into ``path/<n>/<n>.xml`` (or a ``.zip``)."""
    path = Path(path)
    root_name = form.form_id
    tables = {t: df.reset_index(drop=True) for t, df in submissions.tables.items()}
    kids = {c: pd.Series(parent_rows(tables[form.tables[c].parent], tables[c]))
            for c in form.tables if c != root_name}
    groups = {c: {int(k): v.index.to_numpy() for k, v in s.groupby(s)} for c, s in kids.items()}
    docs = {}
    for i, row in enumerate(_rows(tables[root_name])):
        el = ET.Element(form.root, {"id": form.form_id, "version": row["form_version"] or ""})
        _fill(form, root_name, el, row, i, tables, groups)
        if namespaced_meta:
            ET.register_namespace("orx", ORX)
            meta = ET.SubElement(el, f"{{{ORX}}}meta")
            ET.SubElement(meta, f"{{{ORX}}}instanceID").text = row["instance_id"]
            if row["deprecated_id"]:
                ET.SubElement(meta, f"{{{ORX}}}deprecatedID").text = row["deprecated_id"]
        else:
            meta = ET.SubElement(el, "meta")
            ET.SubElement(meta, "instanceID").text = row["instance_id"]
            if row["deprecated_id"]:
                ET.SubElement(meta, "deprecatedID").text = row["deprecated_id"]
        docs[f"{form.form_id}_{i + 1:06d}"] = ET.tostring(el, encoding="utf-8",
                                                          xml_declaration=True)
    if path.suffix.lower() == ".zip":
        import zipfile

        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for n, b in docs.items():
                zf.writestr(f"instances/{n}/{n}.xml", b)
    else:
        for n, b in docs.items():
            (path / n).mkdir(parents=True, exist_ok=True)
            (path / n / f"{n}.xml").write_bytes(b)
    return path


def _rows(df: pd.DataFrame) -> list[dict]:
    return df.astype(object).where(df.notna(), None).to_dict("records")


def _fill(form, table, el, row, pos, tables, groups) -> None:
    nodes = {"": el}

    def node(rel: str):
        if rel not in nodes:
            parent, _, name = rel.rpartition("/")
            nodes[rel] = ET.SubElement(node(parent), name)
        return nodes[rel]

    base = form.tables[table].path
    items = [(f.path, f, None) for f in form.table_fields(table)]
    items += [(form.tables[c].path, None, c) for c in form.children(table)]
    items.sort(key=lambda x: _order(form, x[0]))
    for full, f, child in items:
        rel = full[len(base) + 1:] if base else full
        if f is not None:
            node(rel).text = row[f.column]
            continue
        parent_rel, _, name = rel.rpartition("/")
        container = node(parent_rel)
        for j in groups[child].get(pos, []):
            sub = ET.SubElement(container, name)
            crow = tables[child].iloc[j]
            _fill(form, child, sub, {k: (None if pd.isna(v) else v) for k, v in crow.items()},
                  j, tables, groups)


def _order(form: Form, path: str) -> int:
    paths = [f.path for f in form.fields.values()]
    for i, p in enumerate(paths):
        if p == path or p.startswith(path + "/"):
            return i
    return len(paths)


def read_odk_xml(path: str | Path, form: Form) -> RawData:
    """Read XML instances from a folder (searched recursively) or a ``.zip``."""
    path = Path(path)
    if path.is_dir():
        blobs = [(str(p.relative_to(path)), p.read_bytes()) for p in sorted(path.rglob("*.xml"))]
    else:
        with open_zip(path) as zf:
            blobs = [(n, read_member(zf, n, path)) for n in sorted(zf.namelist()) if n.lower().endswith(".xml")]
    rows = {t: [] for t in form.tables}
    by_rel = _path_maps(form)
    for name, blob in blobs:
        try:
            el = ET.fromstring(blob)
        except ET.ParseError as exc:
            raise InstrumentError(f"not well-formed XML ({exc})", file=f"{path}:{name}",
                                  hint="the instance is damaged; export it again") from exc
        fid = el.get("id")
        if fid != form.form_id:
            raise InstrumentError(
                f"instance of form {fid!r}, not {form.form_id!r}: an export of a different form",
                file=f"{path}:{name}", hint="read it with the form it was collected with")
        meta = {_local(c.tag): (c.text or None) for m in el if _local(m.tag) == "meta" for c in m}
        key = meta.get("instanceID") or f"file:{name}"
        out = _walk(form, form.form_id, el, key, None, rows, by_rel)
        out.update(instance_id=meta.get("instanceID"), deprecated_id=meta.get("deprecatedID"),
                   form_version=el.get("version") or None)
    tables = {t: pd.DataFrame(r, columns=raw_columns(form, t), dtype="string")
              for t, r in rows.items()}
    return RawData(form_id=form.form_id, tables=tables, format="odk_xml",
                   sources=dict.fromkeys(tables, path.name))


def _path_maps(form: Form) -> dict[str, dict[str, tuple[str, str]]]:
    """Per table: path below the table element -> ("field", column) or ("repeat", name)."""
    out = {}
    for t, tdef in form.tables.items():
        base = tdef.path
        m = {}
        for f in form.table_fields(t):
            m[f.path[len(base) + 1:] if base else f.path] = ("field", f.column)
        for c in form.children(t):
            p = form.tables[c].path
            m[p[len(base) + 1:] if base else p] = ("repeat", c)
        out[t] = m
    return out


def _walk(form, table, el, key, parent, rows, by_rel) -> dict:
    out = {"key": key, "parent_key": parent}
    counts: dict[str, int] = {}
    mapping = by_rel[table]

    def visit(node, prefix):
        for child in node:
            rel = f"{prefix}{_local(child.tag)}"
            kind = mapping.get(rel)
            if kind is None:
                if len(child):
                    visit(child, rel + "/")
                continue
            if kind[0] == "field":
                out[kind[1]] = child.text if child.text not in (None, "") else None
            else:
                n = counts[kind[1]] = counts.get(kind[1], 0) + 1
                _walk(form, kind[1], child, f"{key}/{kind[1]}[{n}]", key, rows, by_rel)

    rows[table].append(out)
    visit(el, "")
    return out
