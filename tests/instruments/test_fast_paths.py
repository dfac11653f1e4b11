"""The importer's fast paths give what the plain (pandas / row-wise) paths give."""

import io

import numpy as np
import pandas as pd
import pytest

from instruments.clean import take_rows
from instruments.formats._common import _read_csv_arrow, read_csv_text
from instruments.raw import missing_strings, split_parts
from instruments.xpath import _str_to_num, _str_to_num_rowwise


def _pandas_csv(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), dtype="string", keep_default_na=False,
                       na_values=[""], engine="pyarrow")


@pytest.mark.parametrize("data", [
    b'a,b,c\n007,1.50,\n"",x,1\n',
    "\ufeffa,b\n1,2\n".encode(),
    b"a,b\n1,2\n\n3,4\n",
    b'a,b\r\n1,2\r\n3,"x\r\ny"\r\n',
    b"a,b\n1,2",
    b"a,b\n",
    b'"a,1",b\n1,2\n',
    b"a, b\n 1 , 2 \n",
    b"a,b\nNA,null\nnan,N/A\n",
    "a,b\n\u00e9,\u65e5\u672c\n".encode(),
])  # fmt: skip
def test_arrow_csv_reader_matches_pandas(data):
    fast = _read_csv_arrow(data)
    assert fast is not None
    pd.testing.assert_frame_equal(fast, _pandas_csv(data))
    pd.testing.assert_frame_equal(read_csv_text(data, "x.csv"), _pandas_csv(data))


@pytest.mark.parametrize("data", [b"a,a\n1,2\n", b"", b"a,\n1,2\n"])
def test_arrow_csv_reader_leaves_special_headers_to_pandas(data):
    assert _read_csv_arrow(data) is None


@pytest.mark.parametrize("extra", [
    [], ["1_000"], ["1_000", "2024-01-05"], ["\u0663", "abc"], ["2024-02-30", "1"],
    ["inf", "2024-01-01T00:00:00Z"], [" 7", "2020-02-02"], ["2023-02-29"],
    ["2024-02-29", "1700-01-01", "2199-12-31", "1699-12-31", "2262-01-01"],
    ["nan", "-inf", "+3", "1.", ".5", "1e5", "007", "0x10", "1e", "--1"],
    ["2024-1-5", "20240105", "1e400", "123456789012345678901234567890"],
])  # fmt: skip
def test_numbers_by_arrow_match_row_by_row(extra):
    a = np.array(["1", "2.5", "", "-0.125"] + extra, dtype=object)
    np.testing.assert_array_equal(_str_to_num(a), _str_to_num_rowwise(a))


def test_numbers_by_arrow_match_on_random_decimals():
    rng = np.random.default_rng(3)
    vals = [repr(x) for x in rng.uniform(-1e6, 1e6, 2000)]
    vals += [f"{x:.{k}f}" for x, k in zip(rng.random(2000) * 1e4, rng.integers(0, 17, 2000))]
    a = np.array(vals + [""] * 10, dtype=object)
    np.testing.assert_array_equal(_str_to_num(a), _str_to_num_rowwise(a))


def test_take_rows_matches_boolean_indexing():
    rng = np.random.default_rng(1)
    for n in (0, 1, 5, 1000, 10_000):
        df = pd.DataFrame({
            "a": pd.array(rng.choice(["x", "y", None], n), dtype="string"),
            "b": np.arange(n),
            "c": pd.array(rng.choice(["p", None], n), dtype="string"),
        })  # fmt: skip
        for frac in (0, 0.001, 0.01, 0.5, 1):
            m = rng.random(n) >= frac
            pd.testing.assert_frame_equal(take_rows(df, m), df[m].reset_index(drop=True))


def test_missing_strings_and_split_parts():
    pd.testing.assert_extension_array_equal(missing_strings(4),
                                            pd.array([pd.NA] * 4, dtype="string"))
    s = pd.Series(["1 2 3 4", "5 6", None, "", "7", "  8  9"], dtype="string")
    parts = [p.tolist() for p in split_parts(s, 4)]
    assert parts[0] == ["1", "5", pd.NA, "", "7", ""]
    assert parts[1] == ["2", "6", pd.NA, pd.NA, pd.NA, "8"]
    assert parts[3] == ["4", pd.NA, pd.NA, pd.NA, pd.NA, pd.NA]


def test_scope_expressions_match_the_plain_evaluator(household, sample, monkeypatch):
    """Arrow columns, lazy loading and constant folding change no expression's value."""
    from instruments import xpath
    from instruments.clean import clean_tables
    from instruments.scope import Scope
    from instruments.simulate import simulate_submissions
    from instruments.xpath import Context, Unevaluable, evaluate

    from .conftest import TODAY

    raw = simulate_submissions(household, sample, np.random.default_rng(11), today=TODAY,
                               bad_values=30)
    tables = clean_tables(household, raw.tables).tables
    scope = Scope(household, tables, today=TODAY)
    exprs = [(f.table, e, f.name) for f in household.fields.values()
             for e in (*f.conditions, f.constraint, f.calculation) if e]
    exprs += [("members", "${age} + 1 > 2 * 3 - 1", None),
              ("household", "concat(${hh_id}, '-', 1 + 2) != 'x'", None),
              ("members", "if(${sex} = 'f', 1, 0) = 1 or 'a' = 'a'", None)]
    checked = 0
    for table, expr, name in exprs:
        plain = Context(scope.n(table), lambda n, t=table: scope.column(t, n),
                        children=lambda n, t=table: scope.children(t, n), self_name=name,
                        position=scope.position(table) if table != household.form_id else None,
                        today=TODAY)
        with monkeypatch.context() as m:  # no constant folding either
            m.setattr(xpath, "_constant", lambda node: False)
            try:
                want = evaluate(expr, plain)
            except Unevaluable:
                continue
        got = scope.evaluate(table, expr, name)
        assert got.kind == want.kind, expr
        if want.kind == "str":
            assert got.str().tolist() == want.str().tolist(), expr
        else:
            np.testing.assert_array_equal(got.num(), want.num(), err_msg=expr)
        checked += 1
    assert checked > 30


def test_take_rows_on_many_chunk_columns():
    import pyarrow as pa

    from instruments.raw import string_array

    rng = np.random.default_rng(2)
    n = 5000
    values = rng.choice(["x", "yy", None, ""], n).tolist()
    chunked = pa.chunked_array([pa.array(values[i:i + 700], type=pa.large_string())
                                for i in range(0, n, 700)])
    df = pd.DataFrame({"a": string_array(chunked), "b": np.arange(n)})
    assert df["a"].array._pa_array.num_chunks > 1
    for frac in (0.0005, 0.005, 0.3, 0.999):
        m = rng.random(n) < frac
        pd.testing.assert_frame_equal(take_rows(df, m), df[m].reset_index(drop=True))
        pd.testing.assert_frame_equal(take_rows(df, ~m), df[~m].reset_index(drop=True))


def test_join_geopoint_by_arrow_matches_pandas():
    from instruments.raw import _join_geopoint_pandas, join_geopoint

    rng = np.random.default_rng(0)
    parts = [pd.Series(pd.array(rng.choice(["1.5", "-2", " 3 ", "", None, "x y"], 500),
                                dtype="string")) for _ in range(4)]
    pd.testing.assert_series_equal(join_geopoint(parts), _join_geopoint_pandas(parts))
    empty = [pd.Series([pd.NA] * 3) for _ in range(4)]
    pd.testing.assert_series_equal(join_geopoint(empty), _join_geopoint_pandas(empty))
