"""A small, safe expression language for indicators over imported survey fields.

Expressions use Python/pandas syntax (``survey.toml``'s ``[[indicators.custom]]`` uses the
same) but are never passed to ``eval``: the syntax tree is walked and only column
names, parameters, numbers and strings, arithmetic, comparisons, ``and``/``or``/``not``
(also ``&``, ``|``, ``~``), ``in`` against a list, the row-wise functions of
:data:`FUNCTIONS` and aggregates over a repeat table (``count``, ``any``, ``sum``,
``mean``, ``max``, ``min``, ``head``) are allowed. Missing values propagate, with
Kleene logic for ``and``/``or`` (``False and NA`` is ``False``), so a missing answer
stays missing and becomes a domain for the estimators rather than a silent zero.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from survey.errors import ConfigError

__all__ = ["FUNCTIONS", "as_values", "evaluate", "truth"]


def _column(s: pd.Series) -> np.ndarray:
    """A column as float (NaN missing; booleans 0/1) or object (None missing) array."""
    if pd.api.types.is_bool_dtype(s) or (pd.api.types.is_numeric_dtype(s)
                                         and not isinstance(s.dtype, pd.CategoricalDtype)):
        return s.to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(s):
        raise _Fail(f"field {s.name!r} is a date; dates are not supported in indicator expressions")
    vals = s.astype(object).to_numpy()
    return np.where(s.isna().to_numpy(), None, vals)


class _Fail(Exception):
    """An evaluation problem, turned into a ConfigError naming the indicator."""

    def __init__(self, message: str, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field, self.hint = message, field, hint


def _isna(v: np.ndarray) -> np.ndarray:
    if v.dtype == object:
        return pd.isna(v)
    return np.isnan(v)


def _num(v: Any, what: str) -> np.ndarray:
    if isinstance(v, np.ndarray) and v.dtype == object:
        try:
            return np.array([np.nan if x is None else float(x) for x in v])
        except (TypeError, ValueError):
            raise _Fail(f"{what} needs numbers but got text") from None
    return np.asarray(v, dtype=float)


def _bool(v: Any) -> np.ndarray:
    x = _num(v, "a condition")
    return np.where(np.isnan(x), np.nan, (x != 0).astype(float))


def _compare(a: Any, b: Any, op: ast.cmpop) -> np.ndarray:
    ops: dict[type, Callable] = {ast.Eq: np.equal, ast.NotEq: np.not_equal, ast.Lt: np.less,
                                 ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal}
    if isinstance(op, ast.In | ast.NotIn):
        if not isinstance(b, list):
            raise _Fail("'in' needs a list of values on its right, e.g. x in ['a', 'b']")
        na = _isna(np.asarray(a, dtype=object if np.asarray(a).dtype == object else float))
        r = pd.Series(np.asarray(a, dtype=object)).isin(b).to_numpy().astype(float)
        r = 1 - r if isinstance(op, ast.NotIn) else r
        return np.where(na, np.nan, r)
    text = (isinstance(a, np.ndarray) and a.dtype == object) or isinstance(a, str) or \
        (isinstance(b, np.ndarray) and b.dtype == object) or isinstance(b, str)
    if text:
        A, B = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
        na = pd.isna(A) | pd.isna(B)
        if type(op) not in (ast.Eq, ast.NotEq):
            raise _Fail("text can only be compared with == or !=")
        r = np.equal(np.where(na, "", A).astype(str), np.where(na, "", B).astype(str))
        r = r if isinstance(op, ast.Eq) else ~r
        return np.where(na, np.nan, r.astype(float))
    A, B = _num(a, "a comparison"), _num(b, "a comparison")
    with np.errstate(invalid="ignore"):
        r = ops[type(op)](A, B).astype(float)
    return np.where(np.isnan(A) | np.isnan(B), np.nan, r)


def _and(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = _bool(a), _bool(b)
    return np.where((a == 0) | (b == 0), 0.0, np.where(np.isnan(a) | np.isnan(b), np.nan, 1.0))


def _or(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = _bool(a), _bool(b)
    return np.where((a == 1) | (b == 1), 1.0, np.where(np.isnan(a) | np.isnan(b), np.nan, 0.0))


def _selected(v: Any, choice: Any) -> np.ndarray:
    if not isinstance(v, np.ndarray) or v.dtype != object:
        raise _Fail("selected() needs a select_multiple field (space-separated choices)")
    na = pd.isna(v)
    ch = np.broadcast_to(np.asarray(choice, dtype=object), v.shape)
    r = np.array([False if m else str(c) in str(x).split() for x, c, m in zip(v, ch, na)])
    return np.where(na, np.nan, r.astype(float))


def _where(cond: Any, a: Any, b: Any = np.nan) -> np.ndarray:
    c = _bool(cond)
    if any(isinstance(x, np.ndarray) and x.dtype == object for x in (a, b)) or \
            isinstance(a, str) or isinstance(b, str):
        A = np.broadcast_to(np.asarray(a, dtype=object), c.shape)
        B = np.broadcast_to(np.asarray(b, dtype=object), c.shape)
        return np.where(np.isnan(c), None, np.where(c == 1, A, B))
    A, B = _num(a, "where()"), _num(b, "where()")
    return np.where(np.isnan(c), np.nan, np.where(c == 1, A, B))


def _unary(fn: Callable) -> Callable:
    def f(x: Any) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return fn(_num(x, fn.__name__))
    return f


#: Functions allowed in expressions (row-wise), besides the aggregates over a repeat
#: table: ``count(t[, cond])``, ``any(t, cond)``, ``sum(t, x)``, ``mean(t, x)``,
#: ``max(t, x)``, ``min(t, x)`` and ``head(x)`` (the member whose relation is 'head').
FUNCTIONS: Mapping[str, Callable] = {
    "where": _where,
    "isna": lambda x: _isna(np.asarray(x)).astype(float),
    "notna": lambda x: (~_isna(np.asarray(x))).astype(float),
    "fillna": lambda x, v: np.where(_isna(np.asarray(x)), v, x),
    "between": lambda x, lo, hi: _and(_compare(x, lo, ast.GtE()), _compare(x, hi, ast.LtE())),
    "selected": _selected,
    "log": _unary(np.log), "log1p": _unary(np.log1p), "exp": _unary(np.exp),
    "sqrt": _unary(np.sqrt), "abs": _unary(np.abs),
    "clip": lambda x, lo, hi: np.clip(_num(x, "clip()"), lo, hi),
    "minimum": lambda a, b: np.fmin(_num(a, "minimum()"), _num(b, "minimum()")),
    "maximum": lambda a, b: np.fmax(_num(a, "maximum()"), _num(b, "maximum()")),
}
_AGGREGATES = ("count", "any", "sum", "mean", "max", "min", "head")
_BINOPS: dict[type, Callable] = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
                                 ast.Div: np.divide, ast.FloorDiv: np.floor_divide,
                                 ast.Mod: np.mod, ast.Pow: np.power}


@dataclass
class _Scope:
    data: pd.DataFrame
    params: Mapping[str, Any]
    children: Mapping[str, pd.DataFrame]  # repeat tables of this table
    key: str
    parent_key: str
    cache: dict = field(default_factory=dict)


class _Eval:
    def __init__(self, scope: _Scope) -> None:
        self.s = scope

    def __call__(self, node: ast.AST) -> Any:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise _Fail(f"{type(node).__name__} is not allowed in an indicator expression",
                        hint="use column names, numbers, 'text', arithmetic, comparisons, "
                             f"and/or/not, 'in [...]' and the functions {', '.join(FUNCTIONS)}")
        return method(node)

    def _Expression(self, node: ast.Expression) -> Any:
        return self(node.body)

    def _Constant(self, node: ast.Constant) -> Any:
        if not isinstance(node.value, int | float | str | bool) and node.value is not None:
            raise _Fail(f"constant {node.value!r} is not allowed")
        return np.nan if node.value is None else node.value

    def _List(self, node: ast.List) -> list:
        vals = [self(e) for e in node.elts]
        if any(isinstance(v, np.ndarray) for v in vals):
            raise _Fail("a list holds constants only, e.g. ['good', 'very_good']")
        return vals

    _Tuple = _List

    def _Name(self, node: ast.Name) -> Any:
        n = node.id
        if n in self.s.params:
            return self.s.params[n]
        if n in ("nan", "NA"):
            return np.nan
        if n in self.s.data.columns:
            if n not in self.s.cache:
                self.s.cache[n] = _column(self.s.data[n])
            return self.s.cache[n]
        names = [str(c) for c in self.s.data.columns] + list(self.s.params)
        close = difflib.get_close_matches(n, names, n=3, cutoff=0.6)
        raise _Fail("unknown field", field=n,
                    hint=(f"did you mean {', '.join(repr(c) for c in close)}?" if close
                          else "check the field name against the form (instruments.read_form)"))

    def _BinOp(self, node: ast.BinOp) -> np.ndarray:
        a, b = self(node.left), self(node.right)
        if isinstance(node.op, ast.BitAnd):
            return _and(a, b)
        if isinstance(node.op, ast.BitOr):
            return _or(a, b)
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise _Fail(f"operator {type(node.op).__name__} is not allowed")
        with np.errstate(invalid="ignore", divide="ignore"):
            r = op(_num(a, "arithmetic"), _num(b, "arithmetic"))
        return np.where(np.isinf(r), np.nan, r) if isinstance(node.op, ast.Div) else r

    def _UnaryOp(self, node: ast.UnaryOp) -> np.ndarray:
        v = self(node.operand)
        if isinstance(node.op, ast.Not | ast.Invert):
            b = _bool(v)
            return np.where(np.isnan(b), np.nan, 1 - b)
        if isinstance(node.op, ast.USub):
            return -_num(v, "minus")
        return _num(v, "plus")

    def _BoolOp(self, node: ast.BoolOp) -> np.ndarray:
        f = _and if isinstance(node.op, ast.And) else _or
        out = self(node.values[0])
        for v in node.values[1:]:
            out = f(out, self(v))
        return out

    def _Compare(self, node: ast.Compare) -> np.ndarray:
        left, out = self(node.left), None
        for op, comp in zip(node.ops, node.comparators):
            right = self(comp)
            r = _compare(left, right, op)
            out = r if out is None else _and(out, r)
            left = right
        return out

    def _Call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise _Fail("only plain function calls such as where(cond, a, b) are allowed")
        fn = node.func.id
        if fn in _AGGREGATES:
            return self._aggregate(fn, node.args)
        if fn not in FUNCTIONS:
            close = difflib.get_close_matches(fn, [*FUNCTIONS, *_AGGREGATES], n=3)
            raise _Fail(f"unknown function {fn}()", hint=f"did you mean {', '.join(close)}?" if close
                        else f"functions: {', '.join([*FUNCTIONS, *_AGGREGATES])}")
        args = [self(a) for a in node.args]
        n = len(self.s.data)
        args = [np.full(n, a, dtype=object if isinstance(a, str) else float)
                if np.ndim(a) == 0 and not isinstance(a, list) else a for a in args]
        try:
            return FUNCTIONS[fn](*args)
        except TypeError as err:
            raise _Fail(f"{fn}() called with {len(args)} argument(s): {err}") from None

    def _aggregate(self, fn: str, args: list[ast.AST]) -> np.ndarray:
        if fn == "head":
            if len(args) != 1:
                raise _Fail("head(x) takes one expression over the roster, e.g. head(age)")
            table, cond, expr = "members", ast.parse("relation == 'head'", mode="eval").body, args[0]
        else:
            if not args or not isinstance(args[0], ast.Name):
                raise _Fail(f"{fn}() needs a repeat table first, e.g. {fn}(members, ...)")
            table = args[0].id
            cond = args[1] if fn in ("count", "any") and len(args) > 1 else None
            expr = args[1] if fn not in ("count", "any") and len(args) > 1 else None
            if fn not in ("count", "any") and expr is None:
                raise _Fail(f"{fn}() needs an expression, e.g. {fn}({table}, age)")
        if table not in self.s.children:
            raise _Fail(f"{fn}() over {table!r}: no such repeat table", field=table,
                        hint=f"repeat tables: {', '.join(self.s.children) or 'none given'}")
        child = self.s.children[table]
        sub = _Eval(_Scope(child, self.s.params, {}, self.s.key, self.s.parent_key))
        keep = np.ones(len(child)) if cond is None else _bool(sub(cond))
        keep = np.nan_to_num(keep, nan=0.0) == 1
        x = np.ones(len(child)) if expr is None else _num(sub(expr), f"{fn}()")
        parent = child[self.s.parent_key].astype(object).to_numpy()
        frame = pd.DataFrame({"p": parent[keep], "x": x[keep]})
        g = frame.groupby("p", sort=False)["x"]
        agg = {"count": g.size, "any": lambda: (g.size() > 0).astype(float), "sum": g.sum,
               "mean": g.mean, "max": g.max, "min": g.min, "head": g.first}[fn]()
        keys = self.s.data[self.s.key].astype(object)
        out = keys.map(agg).to_numpy(dtype=float, na_value=np.nan)
        if fn in ("count", "any", "sum"):
            out = np.where(np.isnan(out), 0.0, out)
        return out


def evaluate(expression: str, data: pd.DataFrame, *, params: Mapping[str, Any] | None = None,
             children: Mapping[str, pd.DataFrame] | None = None, key: str = "key",
             parent_key: str = "parent_key", name: str | None = None) -> np.ndarray:
    """Evaluate an indicator expression over the rows of ``data``, safely.

    Parameters
    ----------
    expression
        E.g. ``"rem_received == 'yes'"``, ``"spend_edu_year / hh_size"``,
        ``"between(age, 6, 17)"``, ``"any(members, insured == 'yes')"``.
    data
        One table (household or a repeat table); columns are the field names.
    params
        Named constants usable in the expression (parameters take precedence).
    children
        Repeat tables of ``data`` for aggregates, linked by ``parent_key`` to ``key``.
    name
        The indicator's name, for error messages.

    Returns
    -------
    numpy.ndarray
        Floats (NaN where missing; conditions as 0/1), or objects for text results.

    Raises
    ------
    ConfigError
        Unknown field (with close matches), disallowed syntax, text where numbers
        are needed.
    """
    who = f"indicator {name!r}: " if name else ""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as err:
        raise ConfigError(f"{who}{expression!r} is not a valid expression", hint=err.msg) from None
    scope = _Scope(data, dict(params or {}), dict(children or {}), key, parent_key)
    try:
        v = _Eval(scope)(tree)
    except _Fail as err:
        raise ConfigError(f"{who}{err.message} in {expression!r}", field=err.field,
                          hint=err.hint) from None
    if np.ndim(v) == 0 and not isinstance(v, list):
        v = np.full(len(data), v, dtype=object if isinstance(v, str) else float)
    return np.asarray(v)


#: Public names for the helpers used by :mod:`analysis.indicators`.
as_values = _column
truth = _bool
