"""What an expression sees: columns of a table, of its ancestors and of its repeats.

A :class:`Scope` links the raw tables of one dataset by key once (each repeat row's
parent position) so that ``${hh_size}`` inside the roster reads the household's
answer, and ``sum(${is_returnee})`` on the household sums over its roster rows, as
whole-column gathers and ``bincount``\\ s.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .form import Field, Form
from .raw import arrow_strings, as_object, split_key
from .xpath import Context, Unevaluable, Value, evaluate
from .xpath import _str_to_num as _to_num

__all__ = ["Scope"]


class Scope:
    """Column access across the tables of one dataset.

    Parameters
    ----------
    form
        The form the tables follow.
    tables
        Table name -> DataFrame in the raw layout (strings). Not modified.
    today
        The date ``today()`` evaluates to.
    """

    def __init__(self, form: Form, tables: Mapping[str, pd.DataFrame], today: date | None = None):
        self.form = form
        self.tables = dict(tables)
        self.today = today or date.today()
        self._cache: dict[tuple[str, str], np.ndarray] = {}
        self._parent: dict[str, np.ndarray] = {}
        self._position: dict[str, np.ndarray] = {}
        self._names: dict[str, Field] = {}
        for f in form.fields.values():
            self._names.setdefault(f.name, f)
        self._evals: dict[tuple, Value] = {}
        self._num: dict[tuple[str, str], np.ndarray] = {}
        self._arrow: dict[tuple[str, str], pa.Array] = {}

    def n(self, table: str) -> int:
        return len(self.tables[table])

    def set(self, table: str, column: str, values: np.ndarray) -> None:
        """Add or replace a column (used while simulating); clears dependent caches."""
        self.tables[table] = self.tables[table].assign(
            **{column: pd.array(np.where(values == "", None, values), dtype="string")}
        )
        self._cache[(table, column)] = values
        self._num.pop((table, column), None)
        self._arrow.pop((table, column), None)
        self._evals.clear()

    def raw(self, table: str, column: str) -> np.ndarray:
        key = (table, column)
        if key not in self._cache:
            frame = self.tables[table]
            if column in frame.columns:
                self._cache[key] = as_object(frame[column])
            else:
                self._cache[key] = np.full(len(frame), "", dtype=object)
        return self._cache[key]

    def raw_arrow(self, table: str, column: str) -> pa.Array:
        """``raw`` as a null-free arrow string array (``""`` for empty), without objects."""
        key = (table, column)
        if key not in self._arrow:
            frame = self.tables[table]
            if column in frame.columns:
                arr = arrow_strings(frame[column]).fill_null("")
            else:
                arr = pa.array([""] * len(frame), type=pa.large_string())
            self._arrow[key] = arr
        return self._arrow[key]

    def parent_pos(self, table: str) -> np.ndarray:
        """Row position of each row's parent in the parent table (-1 if none)."""
        if table not in self._parent:
            parent = self.form.tables[table].parent
            frame = self.tables[table]
            if parent is None:
                self._parent[table] = np.full(len(frame), -1, dtype=np.int64)
            else:
                keys = arrow_strings(self.tables[parent]["key"])
                if keys.null_count == 0 and pc.count_distinct(keys).as_py() == len(keys):
                    at = pc.index_in(arrow_strings(frame["parent_key"]), value_set=keys)
                    pos = at.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
                    self._parent[table] = pos
                    return pos
                idx = pd.Index(self.tables[parent]["key"].astype("string"))
                if not idx.is_unique:
                    idx = idx.drop_duplicates(keep="first")
                    base = pd.Index(self.tables[parent]["key"].astype("string"))
                    pos = base.get_indexer_for(frame["parent_key"].astype("string"))
                    self._parent[table] = np.asarray(pos[: len(frame)], dtype=np.int64)
                else:
                    pos = idx.get_indexer(frame["parent_key"].astype("string"))
                    self._parent[table] = np.asarray(pos, dtype=np.int64)
        return self._parent[table]

    def ancestor_pos(self, table: str, ancestor: str) -> np.ndarray:
        pos = np.arange(self.n(table))
        t = table
        while t != ancestor:
            p = self.parent_pos(t)
            pos = np.where(pos >= 0, p[np.maximum(pos, 0)], -1)
            t = self.form.tables[t].parent
            if t is None:
                raise KeyError(ancestor)
        return pos

    def position(self, table: str) -> np.ndarray:
        """1-based position of each row within its parent."""
        if self.form.tables[table].parent is None:
            raise KeyError(f"{table} is not a repeat")
        if table not in self._position:
            frame = self.tables[table]
            pos = split_key(frame["key"]) if len(frame) else pd.Series([], dtype="Int64")
            if pos.isna().any():
                fallback = frame.groupby("parent_key", sort=False, dropna=False).cumcount() + 1
                pos = pos.fillna(pd.Series(fallback.to_numpy(), index=pos.index))
            self._position[table] = pos.to_numpy(dtype=float, na_value=np.nan)
        return self._position[table]

    def field(self, name: str) -> Field:
        if name not in self._names:
            raise Unevaluable(f"${{{name}}} is not a field of the form")
        return self._names[name]

    def column(self, table: str, name: str) -> np.ndarray:
        f = self.field(name)
        if f.table == table:
            return self.raw(table, f.column)
        if f.table in self.form.ancestors(table):
            pos = self.ancestor_pos(table, f.table)
            vals = self.raw(f.table, f.column)
            if len(vals) == 0:
                return np.full(len(pos), "", dtype=object)
            return np.where(pos >= 0, vals[np.maximum(pos, 0)], "")
        raise KeyError(name)

    def locate(self, table: str, name: str) -> Field:
        """The field ``name`` refers to, if ``column(table, name)`` can read it."""
        f = self.field(name)
        if f.table != table and f.table not in self.form.ancestors(table):
            raise KeyError(name)
        return f

    def arrow(self, table: str, name: str) -> pa.Array:
        """``column`` as a null-free arrow string array."""
        f = self.locate(table, name)
        vals = self.raw_arrow(f.table, f.column)
        if f.table == table:
            return vals
        pos = self.ancestor_pos(table, f.table)
        if len(vals) == 0:
            return pa.array([""] * len(pos), type=pa.large_string())
        idx = pa.array(np.maximum(pos, 0), mask=pos < 0)
        return vals.take(idx).fill_null("")

    def numeric(self, table: str, name: str) -> np.ndarray:
        """``column`` as numbers, converted once per column."""
        f = self.field(name)
        key = (f.table, f.column)
        if key not in self._num:
            self._num[key] = _to_num(self.raw_arrow(f.table, f.column))
        if f.table == table:
            return self._num[key]
        pos = self.ancestor_pos(table, f.table)
        vals = self._num[key]
        if len(vals) == 0:
            return np.full(len(pos), np.nan)
        return np.where(pos >= 0, vals[np.maximum(pos, 0)], np.nan)

    def children(self, table: str, name: str) -> tuple[np.ndarray, np.ndarray]:
        f = self.field(name)
        if table not in self.form.ancestors(f.table):
            raise Unevaluable(f"${{{name}}} is not in a repeat inside {table!r}")
        pos = self.ancestor_pos(f.table, table)
        ok = pos >= 0
        return self.raw(f.table, f.column)[ok], pos[ok]

    def context(self, table: str, self_name: str | None = None) -> Context:
        return Context(
            n=self.n(table),
            column=lambda name: self.column(table, name),
            children=lambda name: self.children(table, name),
            self_name=self_name,
            position=self.position(table) if self.form.tables[table].parent else None,
            today=self.today,
            numeric=lambda name: self.numeric(table, name),
            arrow=lambda name: self.arrow(table, name),
            locate=lambda name: self.locate(table, name),
        )

    def evaluate(self, table: str, expr: str, self_name: str | None = None) -> Value:
        """Evaluate (and cache) an expression over every row of ``table``."""
        key = (table, expr, self_name if "." in expr.replace("${", "") else None)
        if key not in self._evals:
            self._evals[key] = evaluate(expr, self.context(table, self_name))
        return self._evals[key]

    def relevant(self, table: str, conditions: tuple[str, ...]) -> np.ndarray:
        """Rows where every condition holds (all rows when there are none)."""
        mask = np.ones(self.n(table), dtype=bool)
        for expr in conditions:
            mask &= self.evaluate(table, expr).bool()
        return mask
