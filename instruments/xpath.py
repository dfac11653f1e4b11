"""XLSForm expressions (``relevant``, ``constraint``, ``calculation``) over whole columns.

An expression is parsed once into a small tree and evaluated over every row of a
table at once with numpy: ``${age} >= 5 and selected(${uses}, 'food')`` becomes a few
array operations rather than one XPath evaluation per row. Values follow ODK's rules:
an empty answer is the empty string, comparisons with a number compare numbers,
dates compare as days since 1970-01-01, and an unanswered number is NaN (so every
comparison with it is false).

Functions outside the vectorised set are handed to elementpath once per distinct
combination of argument values (row by row only where needed); expressions the
parser does not understand at all fall back to elementpath row by row. What neither
can evaluate (``pulldata``, ``random``) raises :class:`Unevaluable`, which the
validator reports instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date

import elementpath
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from elementpath import XPath2Parser
from elementpath.exceptions import ElementPathError

__all__ = ["Unevaluable", "Value", "check_syntax", "evaluate", "parse", "references"]

_EPOCH = np.datetime64("1970-01-01", "D")


class Unevaluable(Exception):
    """The expression needs something the data does not hold (external file, randomness)."""


class XPathSyntaxError(ValueError):
    """The expression is not valid XPath."""


# ---------------------------------------------------------------- tokens and parse

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<ref>\$\{[^}]+\})
  | (?P<str>'[^']*'|"[^"]*")
  | (?P<num>\d+(?:\.\d*)?|\.\d+)
  | (?P<op>!=|<=|>=|\.\.|[=<>+\-*|(),.\[\]/@])
  | (?P<name>[A-Za-z_][\w.:-]*)
    )""",
    re.VERBOSE,
)
_BINARY = {
    "or": 1, "and": 2, "=": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4,
    "+": 5, "-": 5, "*": 6, "div": 6, "mod": 6,
}  # fmt: skip


class _Unsupported(Exception):
    """Valid XPath outside the subset this module vectorises (predicates, paths)."""


def _tokenise(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = expr.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise XPathSyntaxError(f"unexpected character {text[pos:].strip()[:1]!r} at {pos}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def parse(expr: str) -> tuple:
    """Parse an XLSForm expression into a tree of tuples.

    Raises ``_Unsupported`` for valid XPath this module does not vectorise and
    :class:`XPathSyntaxError` for text that is not an expression.
    """
    tokens = _tokenise(expr)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else ("end", "")

    def take(value=None):
        nonlocal pos
        tok = peek()
        if value is not None and tok[1] != value:
            raise XPathSyntaxError(f"expected {value!r}, got {tok[1] or 'end of expression'!r}")
        pos += 1
        return tok

    def binary_op(tok):
        kind, val = tok
        if kind == "op" and val in _BINARY:
            return val
        if kind == "name" and val in ("and", "or", "div", "mod"):
            return val
        return None

    def expression(min_prec=1):
        left = unary()
        while True:
            op = binary_op(peek())
            if op is None or _BINARY[op] < min_prec:
                return left
            take()
            right = expression(_BINARY[op] + 1)
            left = ("op", op, left, right)

    def unary():
        if peek() == ("op", "-"):
            take()
            return ("neg", unary())
        node = primary()
        if peek()[1] in ("[", "/", "|"):
            raise _Unsupported("paths and predicates")
        return node

    def primary():
        kind, val = take()
        if kind == "ref":
            return ("ref", val[2:-1].strip())
        if kind == "str":
            return ("str", val[1:-1])
        if kind == "num":
            return ("num", float(val))
        if kind == "op" and val == "(":
            node = expression()
            take(")")
            return node
        if kind == "op" and val == ".":
            return ("self",)
        if kind == "op" and val == "..":
            return ("parent",)
        if kind == "name" and peek() == ("op", "("):
            take("(")
            args = []
            if peek() != ("op", ")"):
                args.append(expression())
                while peek() == ("op", ","):
                    take()
                    args.append(expression())
            take(")")
            return ("call", val, tuple(args))
        if kind in ("name", "op") and val in ("/", "@") or kind == "name":
            raise _Unsupported(f"path step {val!r}")
        raise XPathSyntaxError(f"unexpected {val or 'end of expression'!r}")

    tree = expression()
    if pos != len(tokens):
        raise XPathSyntaxError(f"unexpected {peek()[1]!r} after a complete expression")
    return tree


def references(expr: str) -> list[str]:
    """Names referred to as ``${name}`` in an expression, in order, without repeats."""
    return list(dict.fromkeys(m.strip() for m in re.findall(r"\$\{([^}]+)\}", expr or "")))


def _for_elementpath(expr: str) -> str:
    # ODK's if(c, a, b) is a function; in XPath 2 ``if`` is a keyword
    expr = re.sub(r"(?<![\w-])if\s*\(", "odk-if(", expr)
    return re.sub(r"\$\{\s*([^}\s]+)\s*\}", lambda m: "$" + m.group(1).replace("-", "_"), expr)


def check_syntax(expr: str) -> str | None:
    """Return a message if ``expr`` is not syntactically valid XPath, else ``None``.

    Unknown function names are not syntax errors (ODK adds its own functions).
    """
    try:
        XPath2Parser(strict=False).parse(_for_elementpath(expr))
    except ElementPathError as exc:
        if getattr(exc, "code", "").endswith("XPST0003"):
            return str(exc).split("] ", 1)[-1]
    except (ValueError, TypeError, KeyError):  # elementpath may raise these for odd input
        return None
    return None


# ---------------------------------------------------------------- values


_UNSET = object()


class Value:
    """A column of XPath values: ``kind`` is str, num, bool or date (days since 1970).

    ``data`` may be computed on first use (``load``), so that a field read only as a
    number never becomes an object array; ``numeric`` and ``arrow`` give cached number
    and arrow-string (``""`` for empty) views of a field column; ``scalar`` marks a
    constant (every row holds it), which comparisons use without a full column.
    """

    __slots__ = ("kind", "_data", "_load", "numeric", "arrow", "scalar", "_n")

    def __init__(
        self,
        kind: str,
        data: np.ndarray | None = None,
        numeric: Callable[[], np.ndarray] | None = None,
        *,
        load: Callable[[], np.ndarray] | None = None,
        arrow: Callable[[], pa.Array] | None = None,
        scalar=_UNSET,
        n: int | None = None,
    ) -> None:
        self.kind = kind
        self._data = data
        self._load = load
        self.numeric = numeric  # cached conversion for field columns
        self.arrow = arrow
        self.scalar = scalar
        self._n = n

    @classmethod
    def constant(cls, kind: str, value, n: int) -> Value:
        dtype = {"str": object, "num": float, "bool": bool, "date": float}[kind]
        return cls(kind, load=lambda: np.full(n, value, dtype=dtype), scalar=value, n=n)

    @property
    def is_const(self) -> bool:
        return self.scalar is not _UNSET

    @property
    def data(self) -> np.ndarray:
        if self._data is None:
            self._data = self._load()
            self._load = None
        return self._data

    def __len__(self) -> int:
        return self._n if self._data is None and self._n is not None else len(self.data)

    def _one(self) -> Value:
        dtype = {"str": object, "num": float, "bool": bool, "date": float}[self.kind]
        return Value(self.kind, np.array([self.scalar], dtype=dtype))

    def num(self) -> np.ndarray:
        if self.kind in ("num", "date"):
            return self.data
        if self.is_const:
            return np.full(self._n, self._one().num()[0], dtype=float)
        if self.kind == "bool":
            return self.data.astype(float)
        if self.numeric is not None:
            return self.numeric()
        return _str_to_num(self.data)

    def num_or_scalar(self):
        """``num()``, or the plain number when every row holds the same one."""
        if self.is_const:
            return self._one().num()[0]
        return self.num()

    def str(self) -> np.ndarray:
        if self.kind == "str":
            return self.data
        if self.is_const:
            return np.full(self._n, self._one().str()[0], dtype=object)
        if self.kind == "bool":
            return np.where(self.data, "true", "false").astype(object)
        if self.kind == "date":
            out = np.full(len(self.data), "", dtype=object)
            ok = ~np.isnan(self.data)
            days = (_EPOCH + self.data[ok].astype("int64")).astype(str)
            out[ok] = days
            return out
        return _num_to_str(self.data)

    def str_scalar(self):
        """The string every row holds, for a constant (else None)."""
        return self._one().str()[0] if self.is_const else None

    def bool(self) -> np.ndarray:
        if self.kind == "bool":
            return self.data
        if self.is_const:
            return np.full(self._n, self._one().bool()[0], dtype=bool)
        if self.kind in ("num", "date"):
            return ~np.isnan(self.data) & (self.data != 0)
        if self.arrow is not None:
            return pc.not_equal(self.arrow(), "").to_numpy(zero_copy_only=False)
        return self.data != ""

    def arrow_str(self) -> pa.Array | None:
        """The column as a null-free arrow string array, when one is at hand."""
        if self.kind == "str" and self.arrow is not None:
            return self.arrow()
        return None


def _str_len(a: np.ndarray) -> np.ndarray:
    return np.fromiter((len(x) for x in a), dtype=np.int64, count=len(a))


_PLAIN_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_PLAIN_DATE = r"^(1[7-9]|2[01])\d\d-\d\d-\d\d$"  # years 1700-2199, no time


def _str_to_num(a) -> np.ndarray:
    """Strings (an object array, or an arrow array with ``""`` for empty) to numbers.

    Plain decimal numbers and plain ``YYYY-MM-DD`` dates are converted by arrow over
    the whole column; anything else (spaces, ``inf``, date-times) goes through
    :func:`_str_to_num_rowwise`, which gives the same numbers for the plain cases.
    """
    if not isinstance(a, (pa.Array, pa.ChunkedArray)):
        if len(a) == 0:
            return np.zeros(0, dtype=float)
        try:
            arr = pa.array(a, type=pa.large_string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return _str_to_num_rowwise(a)
    else:
        arr = a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a
    n = len(arr)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    filled = pc.not_equal(arr, "")
    try:  # every answer a number arrow reads (which float() reads alike): done
        out[filled.to_numpy(zero_copy_only=False)] = pc.cast(
            arr.filter(filled), pa.float64()).to_numpy(zero_copy_only=False)
        return out
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    plain = pc.match_substring_regex(arr, pattern=_PLAIN_NUMBER)
    plain_np = plain.to_numpy(zero_copy_only=False)
    try:
        if plain_np.all():
            return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        if plain_np.any():
            out[plain_np] = pc.cast(arr.filter(plain), pa.float64()).to_numpy(
                zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _str_to_num_rowwise(_objects(arr))
    rest = ~plain_np & pc.not_equal(arr, "").to_numpy(zero_copy_only=False)
    if rest.any():
        where = np.flatnonzero(rest)
        others = arr.take(pa.array(where))
        is_date = pc.match_substring_regex(others, pattern=_PLAIN_DATE).to_numpy(
            zero_copy_only=False)
        if is_date.any():
            out[where[is_date]] = _plain_dates(others.filter(pa.array(is_date)))
        if (~is_date).any():
            slow = _objects(others.filter(pa.array(~is_date)))
            # the row-wise rule: float() when every value is a number, else to_numeric
            out[where[~is_date]] = _str_to_num_rowwise(slow, mixed=bool(is_date.any()))
    return out


def _plain_dates(text: pa.Array) -> np.ndarray:
    """``YYYY-MM-DD`` strings to days since 1970 (NaN for impossible dates like 02-30)."""
    try:  # arrow's ISO cast rejects impossible dates, as pandas does
        days = pc.cast(pc.cast(text, pa.date32()), pa.int32())
        return np.asarray(days.to_numpy(zero_copy_only=False), dtype=float)
    except pa.ArrowInvalid:
        pass
    ts = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime rolls 2024-02-30 over; pandas (the row-wise path) rejects it
    real = pc.equal(pc.strftime(ts, format="%Y-%m-%d"), text).fill_null(False)
    secs = pc.cast(ts, pa.int64()).to_numpy(zero_copy_only=False)
    days = np.asarray(secs, dtype=float) / 86400.0
    return np.where(real.to_numpy(zero_copy_only=False), days, np.nan)


def _objects(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.fill_null("").to_numpy(zero_copy_only=False), dtype=object)


def _str_to_num_rowwise(a: np.ndarray, mixed: bool = False) -> np.ndarray:
    empty = a == ""
    if not mixed:
        try:  # fast path: every non-empty value is a plain number
            return np.where(empty, "nan", a).astype(float)
        except (ValueError, TypeError):
            pass
    s = pd.Series(a, dtype=object)
    out = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan, copy=True)
    # ODK converts dates to days since the epoch when a number is needed
    maybe_date = np.isnan(out) & ~empty
    if maybe_date.any():
        maybe_date[maybe_date] = _str_len(a[maybe_date]) >= 10
    if maybe_date.any():
        d = pd.to_datetime(s[maybe_date], errors="coerce", format="ISO8601", utc=True)
        days = (d - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(days=1)
        out[maybe_date] = days.to_numpy(dtype=float, na_value=np.nan)
    return out


def _num_to_str(a: np.ndarray) -> np.ndarray:
    out = np.full(len(a), "NaN", dtype=object)
    ok = ~np.isnan(a)
    whole = ok & (np.mod(a, 1) == 0) & (np.abs(a) < 1e15)
    out[whole] = a[whole].astype(np.int64).astype(str)
    frac = ok & ~whole
    out[frac] = [repr(float(x)) for x in a[frac]]
    return out


def _const(kind: str, value, n: int) -> Value:
    return Value.constant(kind, value, n)


# ---------------------------------------------------------------- evaluation


class Context:
    """What an expression can see for the rows of one table.

    Parameters
    ----------
    n
        Number of rows.
    column
        ``column(name) -> ndarray`` of strings ("" when empty) for a field in this
        table or an ancestor table, aligned with the rows.
    children
        ``children(name) -> (values, row)`` for a field in a descendant repeat: its
        string values and, for each, the position of the row of this table it belongs to.
    self_name
        The field ``.`` refers to.
    position
        1-based position of each row within its parent (for ``position(..)``).
    today
        Date used for ``today()`` and ``now()``.
    """

    def __init__(
        self,
        n: int,
        column: Callable[[str], np.ndarray],
        children: Callable[[str], tuple[np.ndarray, np.ndarray]] | None = None,
        self_name: str | None = None,
        position: np.ndarray | None = None,
        today: date | None = None,
        numeric: Callable[[str], np.ndarray] | None = None,
        arrow: Callable[[str], pa.Array] | None = None,
        locate: Callable[[str], object] | None = None,
    ) -> None:
        self.n = n
        self._numeric = numeric
        self._arrow = arrow
        self._locate = locate
        self.column = column
        self.children = children
        self.self_name = self_name
        self.position = position
        self.today = today or date.today()

    def numeric(self, name: str) -> Callable[[], np.ndarray] | None:
        """A cached number conversion of a field's column, if the caller keeps one."""
        if self._numeric is None:
            return None
        return lambda: self._numeric(name)

    def ref(self, name: str) -> Value:
        """A field's column as a string Value (loaded when first needed, if it can be)."""
        if self._locate is None:
            return Value("str", self.column(name), self.numeric(name))
        self._locate(name)  # the errors a direct read would raise, raised now
        arrow = None if self._arrow is None else (lambda: self._arrow(name))
        return Value("str", None, self.numeric(name), load=lambda: self.column(name),
                     arrow=arrow, n=self.n)


def evaluate(expr: str, ctx: Context) -> Value:
    """Evaluate an expression for every row of a table.

    Raises
    ------
    Unevaluable
        When the expression needs data that is not in the submissions.
    """
    try:
        tree = parse(expr)
    except _Unsupported:
        return _rowwise(expr, ctx)
    return _eval(tree, ctx)


def _rowwise(expr: str, ctx: Context) -> Value:
    """Last resort: elementpath once per row, the referenced fields as variables."""
    names = references(expr)
    text = _for_elementpath(expr).replace("..", "$__row__").replace(".", "$__self__")
    cols = {n.replace("-", "_"): ctx.column(n) for n in names}
    selfcol = ctx.column(ctx.self_name) if ctx.self_name else np.full(ctx.n, "", dtype=object)
    out = np.zeros(ctx.n, dtype=bool)
    try:
        token = XPath2Parser(strict=False).parse(text)
    except ElementPathError as exc:
        raise Unevaluable(f"cannot evaluate {expr!r}: {exc}") from exc
    for i in range(ctx.n):
        variables = {k: _atom(v[i]) for k, v in cols.items()}
        variables["__self__"] = _atom(selfcol[i])
        try:
            res = token.evaluate(elementpath.XPathContext(root=None, item=0, variables=variables))
        except (ElementPathError, TypeError, ValueError) as exc:
            raise Unevaluable(f"cannot evaluate {expr!r}: {exc}") from exc
        out[i] = bool(res[0] if isinstance(res, list) and res else res)
    return Value("bool", out)


def _atom(x: str):
    try:
        return float(x) if x != "" else ""
    except ValueError:
        return x


def _eval(node: tuple, ctx: Context) -> Value:
    tag = node[0]
    if tag == "str":
        return _const("str", node[1], ctx.n)
    if tag == "num":
        return _const("num", node[1], ctx.n)
    if tag == "ref":
        return ctx.ref(node[1])
    if tag == "self":
        if ctx.self_name is None:
            raise Unevaluable("'.' used outside a question")
        return ctx.ref(ctx.self_name)
    if ctx.n > 1 and tag in ("op", "call", "neg") and _constant(node):
        return _fold(node, ctx)
    if tag == "parent":
        raise _Unsupported("'..' outside position(..)")
    if tag == "neg":
        return Value("num", -_eval(node[1], ctx).num())
    if tag == "op":
        return _binary(node[1], _eval(node[2], ctx), _eval(node[3], ctx))
    if tag == "call":
        return _call(node[1], node[2], ctx)
    raise AssertionError(tag)  # internal: the parser makes no other node


_NOT_CONSTANT = {"position", "count", "sum", "random", "uuid", "randomize", "instance",
                 "pulldata", "indexed-repeat", "digest"}


def _constant(node: tuple) -> bool:
    """True when a subtree holds no field, row or repeat reference (same on every row)."""
    tag = node[0]
    if tag in ("str", "num"):
        return True
    if tag == "neg":
        return _constant(node[1])
    if tag == "op":
        return _constant(node[2]) and _constant(node[3])
    if tag == "call":
        return node[1] not in _NOT_CONSTANT and all(_constant(a) for a in node[2])
    return False


def _no_column(name: str) -> np.ndarray:
    raise KeyError(name)


def _fold(node: tuple, ctx: Context) -> Value:
    """A constant subtree evaluated once (on one row) and spread over every row."""
    one = _eval(node, Context(1, _no_column, today=ctx.today))
    return Value.constant(one.kind, one.data[0], ctx.n)


def _one_const(a: Value, b: Value) -> bool:
    return a.is_const != b.is_const


def _str_equal(a: Value, b: Value) -> np.ndarray:
    """``a.str() == b.str()``, by arrow or against one string where possible."""
    aa, bb = a.arrow_str(), b.arrow_str()
    if aa is not None and b.is_const:
        return pc.equal(aa, b.str_scalar()).to_numpy(zero_copy_only=False)
    if bb is not None and a.is_const:
        return pc.equal(bb, a.str_scalar()).to_numpy(zero_copy_only=False)
    if aa is not None and bb is not None:
        return pc.equal(aa, bb).to_numpy(zero_copy_only=False)
    if _one_const(a, b):
        col, s = (a.str(), b.str_scalar()) if b.is_const else (b.str(), a.str_scalar())
        return np.asarray(col == s, dtype=bool)
    return a.str() == b.str()


def _nums(a: Value, b: Value):
    """Both sides as numbers; a constant side as one plain number."""
    if _one_const(a, b):
        return a.num_or_scalar(), b.num_or_scalar()
    return a.num(), b.num()


_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


def _binary(op: str, a: Value, b: Value) -> Value:
    if op == "or":
        return Value("bool", a.bool() | b.bool())
    if op == "and":
        return Value("bool", a.bool() & b.bool())
    if op in ("=", "!="):
        if "bool" in (a.kind, b.kind):
            eq = a.bool() == b.bool()
        elif {"num", "date"} & {a.kind, b.kind}:
            x, y = _nums(a, b)
            eq = np.asarray(x == y, dtype=bool)
            if op == "!=":  # NaN != anything is true in XPath only when both are numbers
                return Value("bool", ~eq)
        else:
            eq = _str_equal(a, b)
        return Value("bool", eq if op == "=" else ~eq)
    if op in _COMPARE:
        x, y = _nums(a, b)
        with np.errstate(invalid="ignore"):
            res = _COMPARE[op](x, y)
        return Value("bool", np.asarray(res, dtype=bool))
    x, y = _nums(a, b)
    with np.errstate(all="ignore"):
        if op == "+":
            return Value("num", np.asarray(x + y, dtype=float))
        if op == "-":
            return Value("num", np.asarray(x - y, dtype=float))
        if op == "*":
            return Value("num", np.asarray(x * y, dtype=float))
        if op == "div":
            return Value("num", np.asarray(x / y, dtype=float))
        return Value("num", np.asarray(np.fmod(x, y), dtype=float))


def _split_counts(s: np.ndarray) -> np.ndarray:
    return np.fromiter((len(x.split()) for x in s), dtype=float, count=len(s))


def _days(v: Value) -> np.ndarray:
    return v.num()  # a field's cached numbers are _str_to_num of its strings


def _format_date(days: np.ndarray, fmt: str) -> np.ndarray:
    out = np.full(len(days), "", dtype=object)
    ok = ~np.isnan(days)
    if ok.any():
        uniq, inv = np.unique(days[ok], return_inverse=True)  # format each date once
        ts = pd.to_datetime(uniq * 86400.0, unit="s")
        pyfmt = fmt.replace("%e", "%-d").replace("%n", "%-m")
        out[ok] = np.array([t.strftime(pyfmt) for t in ts], dtype=object)[inv]
    return out


def _aggregate(fname: str, arg: tuple, ctx: Context) -> Value:
    if arg[0] != "ref":
        raise _Unsupported(f"{fname}() of an expression")
    try:
        vals = ctx.column(arg[1])  # a field of this row: a node-set of one
        if fname == "count":
            return _const("num", 1.0, ctx.n)
        return Value("num", _str_to_num(vals))
    except KeyError:
        if ctx.children is None:
            raise
    vals, row = ctx.children(arg[1])
    if fname == "count":
        return Value("num", np.bincount(row, minlength=ctx.n).astype(float))
    nums = _str_to_num(vals)
    return Value("num", np.bincount(row, weights=np.nan_to_num(nums), minlength=ctx.n))


def _call(fname: str, args: tuple, ctx: Context) -> Value:
    n = ctx.n
    if fname in ("count", "sum") and len(args) == 1:
        return _aggregate(fname, args[0], ctx)
    if fname == "position":
        if ctx.position is None:
            raise Unevaluable("position(..) outside a repeat")
        return Value("num", ctx.position.astype(float))
    if fname in ("pulldata", "random", "uuid", "instance", "digest", "randomize", "indexed-repeat"):
        raise Unevaluable(f"{fname}() needs data outside the submissions")
    if fname == "if":
        c, a, b = (_eval(x, ctx) for x in args)
        kind = a.kind if a.kind == b.kind else "str"
        if kind == "str":
            return Value("str", np.where(c.bool(), a.str(), b.str()))
        return Value(kind, np.where(c.bool(), a.data, b.data))
    vals = [_eval(x, ctx) for x in args]
    fn = _FUNCTIONS.get(fname)
    if fn is not None:
        return fn(vals, ctx)
    return _by_elementpath(fname, vals, n)


def _by_elementpath(fname: str, vals: list[Value], n: int) -> Value:
    """A function outside the vectorised set: elementpath once per distinct argument tuple."""
    expr = f"{fname}({', '.join(f'$a{i}' for i in range(len(vals)))})"
    try:
        token = XPath2Parser(strict=False).parse(expr)
    except ElementPathError as exc:
        raise Unevaluable(f"unknown function {fname}()") from exc
    cols = [v.str() for v in vals]
    keys = list(zip(*cols)) if cols else [()] * n
    cache: dict = {}
    out = np.empty(n, dtype=object)
    for i, key in enumerate(keys):
        if key not in cache:
            variables = {f"a{j}": _atom(x) for j, x in enumerate(key)}
            try:
                res = token.evaluate(elementpath.XPathContext(root=None, item=0, variables=variables))
            except (ElementPathError, TypeError, ValueError) as exc:
                raise Unevaluable(f"cannot evaluate {fname}(): {exc}") from exc
            res = res[0] if isinstance(res, list) and res else res
            cache[key] = "" if res is None or res == [] else res
        out[i] = cache[key]
    if all(isinstance(x, bool) for x in cache.values()):
        return Value("bool", out.astype(bool))
    if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in cache.values()):
        return Value("num", out.astype(float))
    return Value("str", np.array([str(x) for x in out], dtype=object))


def _tokens(a) -> pa.Array:
    """Space-separated answers as an arrow list array (one list per row)."""
    if isinstance(a, Value):
        arr = a.arrow_str()
        a = a.str() if arr is None else arr
    if not isinstance(a, pa.Array):
        a = pa.array(a, type=pa.large_string())
    return pc.utf8_split_whitespace(a)


def _selected(v, ctx):
    n = len(v[0])
    if v[1].is_const and n:
        choice = v[1].str_scalar()
    else:
        choices = v[1].str()
        choice = choices[0] if len(choices) and (choices == choices[0]).all() else None
    if choice is not None:  # the usual case: one literal choice
        tokens = _tokens(v[0])
        flat = pc.list_flatten(tokens)
        rows = pc.list_parent_indices(tokens).to_numpy()
        hit = pc.equal(flat, choice).to_numpy(zero_copy_only=False)
        return Value("bool", np.bincount(rows[hit], minlength=n) > 0)
    s, choice = v[0].str(), v[1].str()
    return Value("bool", np.fromiter((c in x.split() for x, c in zip(s, choice)), bool, len(s)))


def _count_selected(v, ctx):
    n = pc.list_value_length(_tokens(v[0]))
    return Value("num", n.to_numpy(zero_copy_only=False).astype(float))


def _regex(v, ctx):
    if v[1].is_const and len(v[0]):  # one pattern: the whole column at once
        pat = v[1].str_scalar()
        arr = v[0].arrow_str()
        try:
            if arr is None:
                arr = pa.array(v[0].str(), type=pa.large_string())
            hit = pc.match_substring_regex(arr, pattern=pat)
            return Value("bool", hit.to_numpy(zero_copy_only=False))
        except pa.ArrowInvalid:
            pass
    s, pats = v[0].str(), v[1].str()
    out = np.zeros(len(s), dtype=bool)
    for pat in set(pats):  # one pattern per distinct regex, whole column each
        m = pats == pat
        try:  # RE2 in arrow; Python's re for what RE2 does not support
            hit = pc.match_substring_regex(pa.array(s[m], type=pa.string()), pattern=pat)
            out[m] = hit.to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            out[m] = pd.Series(s[m], dtype=object).str.contains(pat, regex=True).to_numpy(bool)
    return Value("bool", out)


def _substr(v, ctx):
    s = v[0].str()
    start = v[1].num().astype(int)
    end = v[2].num().astype(int) if len(v) > 2 else np.full(len(s), 10**9)
    return Value("str", np.array([x[a:b] for x, a, b in zip(s, start, end)], dtype=object))


def _date(v, ctx):
    return Value("date", np.floor(_days(v[0])))


def _today(v, ctx):
    days = float((np.datetime64(ctx.today, "D") - _EPOCH).astype(int))
    return _const("date", days, ctx.n)


def _coalesce(v, ctx):
    a, b = v[0].str(), v[1].str()
    return Value("str", np.where(_str_len(a) > 0, a, b))


def _concat(v, ctx):
    out = np.full(ctx.n, "", dtype=object)
    for x in v:
        out = out + x.str()
    return Value("str", out)


def _round(v, ctx):
    digits = int(v[1].num()[0]) if len(v) > 1 and len(v[1].data) else 0
    x = v[0].num()
    return Value("num", np.sign(x) * np.floor(np.abs(x) * 10**digits + 0.5) / 10**digits)


def _str_pred(fn):
    def run(v, ctx):
        a, b = v[0].str(), v[1].str()
        return Value("bool", np.fromiter((fn(x, y) for x, y in zip(a, b)), bool, len(a)))

    return run


_FUNCTIONS: Mapping[str, Callable[[list[Value], Context], Value]] = {
    "selected": _selected,
    "count-selected": _count_selected,
    "selected-at": lambda v, c: Value(
        "str",
        np.array(
            [(x.split() + [""] * (int(i) + 1))[int(i)] if i == i else "" for x, i in zip(v[0].str(), v[1].num())],
            dtype=object,
        ),
    ),
    "regex": _regex,
    "coalesce": _coalesce,
    "concat": _concat,
    "not": lambda v, c: Value("bool", ~v[0].bool()),
    "true": lambda v, c: _const("bool", True, c.n),
    "false": lambda v, c: _const("bool", False, c.n),
    "boolean": lambda v, c: Value("bool", v[0].bool()),
    "number": lambda v, c: Value("num", v[0].num()),
    "int": lambda v, c: Value("num", np.trunc(v[0].num())),
    "round": _round,
    "abs": lambda v, c: Value("num", np.abs(v[0].num())),
    "floor": lambda v, c: Value("num", np.floor(v[0].num())),
    "ceiling": lambda v, c: Value("num", np.ceil(v[0].num())),
    "pow": lambda v, c: Value("num", np.power(v[0].num(), v[1].num())),
    "min": lambda v, c: Value("num", np.min(np.vstack([x.num() for x in v]), axis=0)),
    "max": lambda v, c: Value("num", np.max(np.vstack([x.num() for x in v]), axis=0)),
    "string": lambda v, c: Value("str", v[0].str()),
    "string-length": lambda v, c: Value("num", _str_len(v[0].str()).astype(float)),
    "normalize-space": lambda v, c: Value("str", np.array([" ".join(x.split()) for x in v[0].str()], dtype=object)),
    "contains": _str_pred(lambda x, y: y in x),
    "starts-with": _str_pred(lambda x, y: x.startswith(y)),
    "ends-with": _str_pred(lambda x, y: x.endswith(y)),
    "substr": _substr,
    "date": _date,
    "date-time": lambda v, c: Value("date", _days(v[0])),
    "decimal-date-time": lambda v, c: Value("num", _days(v[0])),
    "today": _today,
    "now": _today,
    "format-date": lambda v, c: Value("str", _format_date(_days(v[0]), v[1].str()[0] if c.n else "")),
    "format-date-time": lambda v, c: Value("str", _format_date(_days(v[0]), v[1].str()[0] if c.n else "")),
    "once": lambda v, c: v[0],
}
