"""The form model: an XLSForm read by pyxform into a frozen, typed schema.

pyxform (the reference XLSForm implementation) does all the reading; this module only
walks the tree it returns. A *table* is the root or a repeat (one row per submission
or per repeat instance); a *field* is a question or calculation that stores a value.
Groups are not tables: their fields belong to the nearest repeat (or the root) and
their ``relevant`` is inherited by every field inside.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from pyxform.errors import PyXFormError
from pyxform.xls2json_backends import get_xlsform
from pyxform.xls2xform import convert

from survey.errors import InstrumentError, SurveyWarning

from .xpath import check_syntax

__all__ = ["Choice", "ChoiceList", "Field", "Form", "Table", "read_form"]

FieldType = Literal[
    "integer", "decimal", "text", "select_one", "select_multiple", "date", "datetime",
    "time", "geopoint", "geotrace", "geoshape", "calculate", "acknowledge", "barcode",
    "file", "meta",
]  # fmt: skip
Privacy = Literal["direct", "key"]

#: pyxform's internal type names (and XLSForm spellings) -> our field types.
_TYPE_ALIASES: Mapping[str, FieldType] = MappingProxyType({
    "integer": "integer", "int": "integer", "range": "decimal",
    "decimal": "decimal", "text": "text", "string": "text",
    "select one": "select_one", "select_one": "select_one", "select one external": "select_one",
    "select all that apply": "select_multiple", "select_multiple": "select_multiple",
    "rank": "select_multiple",
    "date": "date", "dateTime": "datetime", "datetime": "datetime", "time": "time",
    "geopoint": "geopoint", "geotrace": "geotrace", "geoshape": "geoshape",
    "calculate": "calculate", "hidden": "calculate", "acknowledge": "acknowledge",
    "trigger": "acknowledge", "barcode": "barcode",
    "image": "file", "audio": "file", "video": "file", "file": "file", "background-audio": "file",
    "start": "datetime", "end": "datetime", "today": "date", "deviceid": "meta",
    "phonenumber": "meta", "username": "meta", "email": "meta", "subscriberid": "meta",
    "simserial": "meta", "audit": "file", "start-geopoint": "geopoint",
})  # fmt: skip
#: XForm bind types (``bind::type`` on calculations) -> our field types.
_BIND_TYPES: Mapping[str, FieldType] = MappingProxyType({
    "int": "integer", "integer": "integer", "decimal": "decimal", "date": "date",
    "dateTime": "datetime", "string": "text", "boolean": "text", "geopoint": "geopoint",
})  # fmt: skip
#: spellings of the privacy column -> our two flags.
_PRIVACY_ALIASES: Mapping[str, Privacy] = MappingProxyType({
    "direct": "direct", "identifier": "direct", "direct_identifier": "direct", "pii": "direct",
    "key": "key", "quasi": "key", "quasi_identifier": "key", "quasi-identifier": "key",
    "key_variable": "key",
})  # fmt: skip
_NOT_STORED = {"note", "group", "repeat", "survey"}
_EXPR_COLUMNS = ("relevant", "constraint", "calculation", "required", "repeat_count")


@dataclass(frozen=True)
class Choice:
    """One answer option: its stored ``name`` and its label per language."""

    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class ChoiceList:
    """A choice list; ``external`` names the CSV of ``select_one_from_file``."""

    name: str
    choices: tuple[Choice, ...]
    external: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.choices)

    def labels(self, language: str) -> dict[str, str]:
        return {c.name: c.labels.get(language, c.name) for c in self.choices}


@dataclass(frozen=True)
class Field:
    """A stored value of the form.

    ``path`` is the XML path below the root (``interview/remittances/rem_amount``),
    ``column`` the column name in typed tables (the name, or the path joined by ``_``
    when two fields of one table share a name). ``relevant`` is the field's own
    expression; ``conditions`` adds those of every enclosing group, outermost first.
    """

    name: str
    path: str
    table: str
    column: str
    type: FieldType
    xlsform_type: str
    labels: Mapping[str, str]
    choices: ChoiceList | None = None
    required: bool = False
    relevant: str | None = None
    conditions: tuple[str, ...] = ()
    constraint: str | None = None
    calculation: str | None = None
    privacy: Privacy | None = None
    row: int | None = None

    def label(self, language: str | None = None) -> str:
        if not self.labels:
            return self.name
        return self.labels.get(language or "", next(iter(self.labels.values())))


@dataclass(frozen=True)
class Table:
    """The root (``parent is None``) or a repeat of the form."""

    name: str
    path: str
    parent: str | None
    fields: tuple[str, ...]
    conditions: tuple[str, ...] = ()
    repeat_count: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Form:
    """A questionnaire: tables, fields and choice lists, read by :func:`read_form`."""

    form_id: str
    version: str
    title: str
    root: str
    languages: tuple[str, ...]
    default_language: str | None
    tables: Mapping[str, Table]
    fields: Mapping[str, Field]
    choice_lists: Mapping[str, ChoiceList]
    source: str | None = None
    warnings: tuple[str, ...] = ()

    def table_fields(self, table: str) -> list[Field]:
        return [self.fields[p] for p in self.tables[table].fields]

    def by_name(self, name: str) -> Field:
        """The field ``${name}`` refers to."""
        for f in self.fields.values():
            if f.name == name:
                return f
        raise KeyError(name)

    def ancestors(self, table: str) -> list[str]:
        """Parent, grandparent, ... of a table, nearest first."""
        out, t = [], self.tables[table].parent
        while t is not None:
            out.append(t)
            t = self.tables[t].parent
        return out

    def children(self, table: str) -> list[str]:
        return [t.name for t in self.tables.values() if t.parent == table]


# ---------------------------------------------------------------- reading


def read_form(path: str | Path, lenient: bool = False) -> Form:
    """Read an XLSForm (``.xlsx``, ``.xls``, ``.csv`` or ``.md``) with pyxform.

    Parameters
    ----------
    path
        The XLSForm file.
    lenient
        If True, repair what servers accept but pyxform rejects (a name repeated
        within one group, an unknown question type, a reference to a missing name,
        an unparseable expression) and emit a :class:`SurveyWarning` for each repair.

    Returns
    -------
    Form

    Raises
    ------
    InstrumentError
        With sheet, row and column when pyxform or the expression check rejects the
        form (in strict mode).
    """
    path = Path(path)
    if not path.exists():
        raise InstrumentError("XLSForm not found", file=str(path), hint="check the path")
    try:
        book = get_xlsform(xlsform=str(path))
    except PyXFormError as exc:
        raise InstrumentError(f"cannot read the workbook: {exc}", file=str(path)) from exc
    rows = [dict(r) for r in book.survey]
    repairs: list[str] = []
    for i, r in enumerate(rows):
        for col in ("relevant", "constraint", "calculation", "repeat_count"):
            expr = r.get(col)
            if expr and (msg := check_syntax(str(expr))):
                if lenient:
                    repairs.append(f"survey row {i + 2}: ignored {col} {expr!r} ({msg})")
                    r.pop(col)
                    continue
                raise InstrumentError(
                    f"invalid expression {expr!r}: {msg}",
                    file=str(path), sheet="survey", row=i + 2, column=col,
                    hint="check brackets, quotes and operators",
                )
    for _attempt in range(50):
        try:
            result = convert(xlsform=_as_dict(book, rows), form_name=None)
            break
        except PyXFormError as exc:
            where = _locate(str(exc), exc, rows)
            if not lenient or not _repair(str(exc), where, rows, repairs):
                raise InstrumentError(
                    _clean(str(exc)),
                    file=str(path),
                    sheet=where.get("sheet", "survey"),
                    row=where.get("row"),
                    column=where.get("column"),
                    hint="fix the cell in the XLSForm, or read_form(..., lenient=True) "
                    "for forms your server accepts",
                ) from exc
    else:  # pragma: no cover - a form that needs 50 repairs is hopeless
        raise InstrumentError("too many problems to repair", file=str(path))
    for msg in repairs:
        warnings.warn(f"{path.name}: {msg}", SurveyWarning, stacklevel=2)
    return _build(result._pyxform, rows, str(path), tuple(result.warnings) + tuple(repairs))


def _as_dict(book, rows) -> dict:
    d = {k: getattr(book, k) for k in ("survey_header", "choices", "choices_header", "settings",
                                       "settings_header", "external_choices",
                                       "external_choices_header", "entities", "entities_header",
                                       "osm", "osm_header", "sheet_names", "fallback_form_name")}
    d["survey"] = [dict(r) for r in rows]
    return {k: v for k, v in d.items() if v is not None}


_ROW = re.compile(r"\[row : (\d+)\]")
_COL = re.compile(r"the '([\w:]+)' (?:value|column)")


def _clean(msg: str) -> str:
    return _ROW.sub("", msg).strip()


def _locate(msg: str, exc: PyXFormError, rows: list[dict]) -> dict:
    ctx = dict(getattr(exc, "context", {}) or {})
    where = {k: ctx[k] for k in ("sheet", "row", "column") if ctx.get(k) is not None}
    if "row" not in where and (m := _ROW.search(msg)):
        where["row"] = int(m.group(1))
    if "column" not in where and (m := _COL.search(msg)):
        where["column"] = m.group(1)
    if "row" not in where and (m := re.search(r"Unknown question type '([^']+)'", msg)):
        for i, r in enumerate(rows):
            if str(r.get("type", "")).strip() == m.group(1):
                where.update(row=i + 2, column="type")
                break
    if "sheet" not in where and (m := re.search(r"'(\w+)' sheet", msg)):
        where["sheet"] = m.group(1)
    return where


def _repair(msg: str, where: dict, rows: list[dict], repairs: list[str]) -> bool:
    row = where.get("row")
    if row is None or not 2 <= row < len(rows) + 2 or where.get("sheet", "survey") != "survey":
        return False
    r = rows[row - 2]
    if "must be unique" in msg or "unique" in msg and where.get("column") == "name":
        new = f"{r['name']}_{row}"
        repairs.append(f"survey row {row}: duplicate name {r['name']!r} renamed {new!r}")
        r["name"] = new
        return True
    if "Unknown question type" in msg:
        repairs.append(f"survey row {row}: unknown type {r.get('type')!r} read as text")
        r["type"] = "text"
        return True
    col = where.get("column")
    if col in _EXPR_COLUMNS and r.get(col):
        repairs.append(f"survey row {row}: ignored {col} {r[col]!r} ({_clean(msg)[:80]})")
        r.pop(col)
        return True
    return False


def _labels(x) -> dict[str, str]:
    if x is None:
        return {}
    if isinstance(x, dict):
        return {str(k): str(v) for k, v in x.items()}
    return {"default": str(x)}


def _build(tree: dict, rows: list[dict], source: str, warns: tuple[str, ...]) -> Form:
    row_of: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if r.get("name"):
            row_of.setdefault(str(r["name"]), []).append(i + 2)
    seen: dict[str, int] = {}

    def rownum(name: str) -> int | None:
        k = seen.get(name, 0)
        seen[name] = k + 1
        nums = row_of.get(name, [])
        return nums[k] if k < len(nums) else None

    choices = {
        name: ChoiceList(name, tuple(Choice(str(c["name"]), _labels(c.get("label"))) for c in lst))
        for name, lst in (tree.get("choices") or {}).items()
    }
    form_id = str(tree.get("id_string") or tree.get("name"))
    tables: dict[str, dict] = {form_id: dict(path="", parent=None, fields=[], conditions=(),
                                              repeat_count=None, labels={})}
    fields: dict[str, Field] = {}

    def walk(node: dict, table: str, prefix: str, conditions: tuple[str, ...]) -> None:
        for child in node.get("children", []):
            ctype, name = child.get("type"), child["name"]
            path = f"{prefix}{name}"
            bind = child.get("bind", {}) or {}
            rel = bind.get("relevant")
            conds = conditions + ((rel,) if rel else ())
            if ctype == "group" and name == "meta" and not prefix:
                continue  # instanceID etc. are metadata columns of every table
            if ctype == "group":
                rownum(name)
                walk(child, table, path + "/", conds)
            elif ctype == "repeat":
                rownum(name)
                tables[name] = dict(path=path, parent=table, fields=[], conditions=conds,
                                    repeat_count=child.get("control", {}).get("jr:count")
                                    or child.get("repeat_count") or bind.get("jr:count"),
                                    labels=_labels(child.get("label")))
                walk(child, name, path + "/", ())
            elif ctype in _NOT_STORED:
                rownum(name)
            else:
                fields[path] = _make_field(child, path, table, conds, choices, rownum(name))
                tables[table]["fields"].append(path)

    walk(tree, form_id, "", ())
    for t in tables.values():  # disambiguate repeated names within one table
        cols = [fields[p].name for p in t["fields"]]
        for p in t["fields"]:
            f = fields[p]
            if cols.count(f.name) > 1:
                fields[p] = _replace(f, column=p.replace("/", "_"))
    langs = sorted({lang for f in fields.values() for lang in f.labels} - {"default"})
    settings = tree
    return Form(
        form_id=form_id,
        version=str(settings.get("version") or ""),
        title=str(settings.get("title") or form_id),
        root=str(tree.get("name") or "data"),
        languages=tuple(langs) or ("default",),
        default_language=None if settings.get("default_language") == "default"
        else settings.get("default_language"),
        tables=MappingProxyType({k: Table(name=k, path=v["path"], parent=v["parent"],
                                          fields=tuple(v["fields"]), conditions=v["conditions"],
                                          repeat_count=v["repeat_count"], labels=v["labels"])
                                 for k, v in tables.items()}),
        fields=MappingProxyType(fields),
        choice_lists=MappingProxyType(choices),
        source=source,
        warnings=warns,
    )


def _replace(f: Field, **kw) -> Field:
    from dataclasses import replace

    return replace(f, **kw)


def _make_field(child: dict, path: str, table: str, conds, choices, row) -> Field:
    raw_type = str(child.get("type"))
    bind = child.get("bind", {}) or {}
    ftype = _TYPE_ALIASES.get(raw_type, "text")
    if ftype == "calculate" and bind.get("type") in _BIND_TYPES:
        ftype = _BIND_TYPES[bind["type"]]
    clist = None
    if child.get("list_name") and child["list_name"] in choices:
        clist = choices[child["list_name"]]
    elif child.get("itemset", "").endswith((".csv", ".xml", ".geojson")):
        clist = ChoiceList(child["itemset"], (), external=child["itemset"])
    elif child.get("choices"):
        clist = ChoiceList(path, tuple(Choice(str(c["name"]), _labels(c.get("label")))
                                       for c in child["choices"]))
    priv = child.get("privacy")
    privacy = _PRIVACY_ALIASES.get(str(priv).strip().lower()) if priv else None
    if priv and privacy is None:
        warnings.warn(
            f"field {child['name']!r}: privacy {priv!r} not understood (direct or key)",
            SurveyWarning, stacklevel=3,
        )
    required = str(bind.get("required", "")).strip().lower() in ("true()", "yes", "true")
    return Field(
        name=str(child["name"]),
        path=path,
        table=table,
        column=str(child["name"]),
        type=ftype,
        xlsform_type=raw_type,
        labels=_labels(child.get("label")),
        choices=clist,
        required=required,
        relevant=bind.get("relevant"),
        conditions=tuple(conds),
        constraint=bind.get("constraint"),
        calculation=bind.get("calculate"),
        privacy=privacy,
        row=row,
    )
