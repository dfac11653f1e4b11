"""Which columns of the typed tables identify people, and which can single them out.

Every column of every table gets one *role*:

``direct``
    A direct identifier: names, phone numbers, addresses, GPS, free text, device and
    enumerator ids. Never released (GPS may be released displaced, see
    :mod:`instruments.disclosure.gps`).
``key``
    A key variable (quasi-identifier): region, stratum, age, sex, household size,
    destination country. Released, but re-identification risk is measured on them and
    local suppression may blank some values.
``id``
    A record or sampling-unit identifier (submission keys, household and EA ids):
    replaced by random codes whose crosswalk stays in the secure store.
``date``
    A date or time stamp: coarsened to the month (day and time can single out a visit).
``safe``
    Anything else: released as it is (subject to top-coding and category grouping).

The questionnaire's ``privacy`` column (``direct`` / ``key``) decides first; the rest is
inferred so that an unmarked identifier fails safe: every unmarked ``text`` question is
free text, geopoint/geotrace/geoshape fields and their split columns are GPS, and fields
whose names look like names, phones, addresses or coordinates are direct identifiers.
Columns the form does not know are direct identifiers if they hold text, unless an
override says otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import pandas as pd

from survey.errors import InstrumentError

from ..form import Field, Form

__all__ = ["Classification", "ColumnRole", "classify"]

Role = Literal["direct", "key", "id", "date", "safe"]
_ROLES = ("direct", "key", "id", "date", "safe")

#: submission metadata and import columns, and the role each plays.
_META_ROLES: Mapping[str, Role] = MappingProxyType({
    "key": "id", "parent_key": "id", "submission_key": "id", "instance_id": "id",
    "deprecated_id": "id", "row_index": "safe", "review_state": "safe",
    "form_version": "safe", "status": "safe", "submission_date": "date",
    "submitter": "direct",
})  # fmt: skip
#: field names of sampling-unit identifiers (replaced by random codes).
_ID_NAMES = re.compile(r"^(hh_?id|household_?id|ea_?id|ea|cluster(_?id)?|psu(_?id)?|dwelling_?id)$",
                       re.IGNORECASE)
#: names that betray a direct identifier whatever the field type.
_DIRECT_NAMES = re.compile(
    r"(^|_)(name|names|nom|prenom|surname|firstname|lastname|fullname|"
    r"phone|phone_?number|tel|telephone|msisdn|mobile_?number|cell_?number|whatsapp|"
    r"address|adresse|street|email|e_?mail|gps|geo|latitude|longitude|lat|lon|lng|"
    r"coordinates?|passport|national_?id|id_?card|imei|deviceid|device_?id|subscriberid|"
    r"simserial|username|photo|signature)($|_)",
    re.IGNORECASE,
)
_GEO_SUFFIX = re.compile(r"(__(latitude|longitude|altitude|precision)|"
                         r"-(Latitude|Longitude|Altitude|Accuracy))$")
#: field types that never hold an identifier by their name alone (answers from a list).
_CHOICE_TYPES = ("select_one", "select_multiple", "acknowledge")


@dataclass(frozen=True)
class ColumnRole:
    """The role of one column and why it was given."""

    table: str
    column: str
    role: Role
    reason: str
    field: str | None = None


@dataclass(frozen=True)
class Classification:
    """Roles of every column of every table.

    Attributes
    ----------
    roles
        One :class:`ColumnRole` per (table, column), in table and column order.
    """

    roles: tuple[ColumnRole, ...]

    def columns(self, table: str, role: Role) -> list[str]:
        """Columns of ``table`` with the given role, in table order."""
        return [r.column for r in self.roles if r.table == table and r.role == role]

    def role(self, table: str, column: str) -> Role:
        for r in self.roles:
            if r.table == table and r.column == column:
                return r.role
        raise KeyError((table, column))

    def to_frame(self) -> pd.DataFrame:
        """One row per column: ``table, column, role, reason, field``."""
        return pd.DataFrame([r.__dict__ for r in self.roles],
                            columns=["table", "column", "role", "reason", "field"])


def _field_role(f: Field) -> tuple[Role, str]:
    if f.privacy == "direct":
        return "direct", "privacy column: direct"
    if f.type in ("geopoint", "geotrace", "geoshape"):
        return "direct", f"{f.type} field (GPS)"
    if _ID_NAMES.match(f.name):
        return "id", "sampling-unit identifier"
    if f.privacy == "key":
        return "key", "privacy column: key"
    if f.type in ("file", "meta", "barcode"):
        return "direct", f"{f.xlsform_type} field (device, media or scanned id)"
    if f.type not in _CHOICE_TYPES and _DIRECT_NAMES.search(f.name):
        return "direct", "name looks like a name, phone, address or coordinate"
    if f.type == "text":
        return "direct", "unmarked text question (free text)"
    if f.type in ("date", "datetime"):
        return "date", f"{f.type} field"
    return "safe", "not an identifier"


def _column_field(form: Form | None, table: str, column: str) -> Field | None:
    if form is None or table not in form.tables:
        return None
    for p in form.tables[table].fields:
        f = form.fields[p]
        if column == f.column or column.startswith(f.column + "__") or (
                f.type == "geopoint" and _GEO_SUFFIX.search(column)
                and column.startswith(f.column + "-")):
            return f
    return None


def _unknown_role(column: str, s: pd.Series) -> tuple[Role, str]:
    if column in _META_ROLES:
        return _META_ROLES[column], "submission metadata"
    if _GEO_SUFFIX.search(column):
        return "direct", "split GPS column"
    if _ID_NAMES.match(column):
        return "id", "sampling-unit identifier"
    if _DIRECT_NAMES.search(column):
        return "direct", "name looks like a name, phone, address or coordinate"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "date", "date column"
    if isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(s) or (
            pd.api.types.is_numeric_dtype(s)):
        return "safe", "column not in the form (numeric or categorical)"
    return "direct", "text column not in the form (treated as free text)"


def classify(
    tables: Mapping[str, pd.DataFrame],
    form: Form | None = None,
    *,
    overrides: Mapping[str, str] | None = None,
) -> Classification:
    """Give every column of ``tables`` a disclosure role.

    Parameters
    ----------
    tables
        Typed tables (``instruments.read_export(...).tables``), by table name.
    form
        The questionnaire; its ``privacy`` column marks direct identifiers and key
        variables. Without it every column is judged by name and type alone.
    overrides
        Column name (or ``"table.column"``) -> role (``direct``, ``key``, ``id``,
        ``date``, ``safe``), applied last: e.g. ``{"comments": "safe"}`` for a text
        question known to hold no identifying free text.

    Returns
    -------
    Classification

    Raises
    ------
    InstrumentError
        If an override names an unknown role.

    Notes
    -----
    Inference fails safe: an unmarked text question is taken as free text and an
    unmarked field named like ``phone`` or ``name`` as a direct identifier, because a
    wrongly released identifier cannot be recalled, while a wrongly withheld variable
    is one override away (Hundepool et al. 2012, sec. 3.2; Templ, Kowarik and Meindl
    2015, sec. 2).

    References
    ----------
    Hundepool, A. et al. (2012). *Statistical Disclosure Control*. Wiley.
    Templ, M., Kowarik, A. and Meindl, B. (2015). Statistical disclosure control for
    micro-data using the R package sdcMicro. *Journal of Statistical Software* 67(4).
    """
    overrides = dict(overrides or {})
    for name, role in overrides.items():
        if role not in _ROLES:
            raise InstrumentError(f"override {name!r}: unknown role {role!r}",
                                  hint=f"use one of {', '.join(_ROLES)}")
    out: list[ColumnRole] = []
    for table, frame in tables.items():
        for column in frame.columns:
            f = _column_field(form, table, str(column))
            if f is not None:
                role, reason = _field_role(f)
                if role == "id" and column != f.column:
                    role = "safe"  # a split part of an id field: nothing identifying
            else:
                role, reason = _unknown_role(str(column), frame[column])
            for name in (str(column), f"{table}.{column}", f.name if f else None):
                if name in overrides:
                    role, reason = overrides[name], "override"
            out.append(ColumnRole(table, str(column), role, reason, f.path if f else None))
    return Classification(tuple(out))
