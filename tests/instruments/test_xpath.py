"""The vectorised XPath evaluator agrees with ODK semantics and with elementpath."""

from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instruments.xpath import Context, Unevaluable, check_syntax, evaluate, references


def ctx(cols, self_name=None, position=None, children=None):
    cols = {k: np.array(v, dtype=object) for k, v in cols.items()}
    n = len(next(iter(cols.values())))

    def column(name):
        if name not in cols:
            raise KeyError(name)
        return cols[name]

    return Context(n, column, children=children, self_name=self_name, position=position,
                   today=date(2026, 3, 15))


def ev(expr, **kw):
    return evaluate(expr, ctx(**kw))


def test_numbers_compare_as_numbers_and_empty_is_nan():
    v = ev("${age} >= 5", cols={"age": ["4", "5", "", "12"]})
    assert v.bool().tolist() == [False, True, False, True]


def test_string_equality_and_not_equal_on_empty():
    v = ev("${a} != 'head'", cols={"a": ["head", "child", ""]})
    assert v.bool().tolist() == [False, True, True]


def test_selected_count_selected_and_none_exclusive():
    expr = "not(selected(., 'none') and count-selected(.) > 1)"
    v = ev(expr, cols={"u": ["food none", "none", "food health", ""]}, self_name="u")
    assert v.bool().tolist() == [False, True, True, True]


def test_if_position_for_the_head_rule():
    expr = "if(position(..) = 1, . = 'head', . != 'head')"
    v = ev(expr, cols={"r": ["head", "child", "head", "spouse"]}, self_name="r",
           position=np.array([1, 2, 3, 1]))
    assert v.bool().tolist() == [True, True, False, False]


def test_dates_compare_as_odk_does():
    expr = ". <= today() and . >= date('2020-01-01')"
    v = ev(expr, cols={"d": ["2026-03-15", "2026-03-16", "2019-12-31", "2024-02-29"]},
           self_name="d")
    assert v.bool().tolist() == [True, False, False, True]
    year = ev("int(format-date(today(), '%Y'))", cols={"d": ["x"]})
    assert year.num().tolist() == [2026.0]


def test_regex_coalesce_concat_and_strings():
    v = ev("regex(., '^[0-9+ ]{6,16}$')", cols={"p": ["555 0101", "call me", "+555 12345"]},
           self_name="p")
    assert v.bool().tolist() == [True, False, True]
    c = ev("coalesce(${a}, ${b})", cols={"a": ["", "x"], "b": ["y", "z"]})
    assert c.str().tolist() == ["y", "x"]
    s = ev("concat(${a}, '-', string-length(${b}))", cols={"a": ["p", "q"], "b": ["yy", ""]})
    assert s.str().tolist() == ["p-2", "q-0"]
    assert ev("contains(${a}, 'ab')", cols={"a": ["xaby", "b"]}).bool().tolist() == [True, False]


def test_aggregates_over_a_repeat():
    def children(name):
        return np.array(["1", "0", "1", "1"], dtype=object), np.array([0, 0, 1, 2])

    v = evaluate("sum(${flag})", ctx(cols={"k": ["a", "b", "c"]}, children=children))
    assert v.num().tolist() == [1.0, 1.0, 1.0]
    c = evaluate("count(${flag})", ctx(cols={"k": ["a", "b", "c"]}, children=children))
    assert c.num().tolist() == [2.0, 1.0, 1.0]


def test_unknown_function_goes_to_elementpath_per_distinct_value():
    v = ev("translate(${a}, 'abc', 'ABC')", cols={"a": ["abx", "cab", "abx"]})
    assert v.str().tolist() == ["ABx", "CAB", "ABx"]


def test_pulldata_is_unevaluable():
    with pytest.raises(Unevaluable):
        ev("pulldata('households', 'ea_id', 'name', ${a})", cols={"a": ["x"]})


def test_syntax_check_and_references():
    assert check_syntax(". > (1") is not None
    assert check_syntax("if(${a} = 1, 'x', 'y')") is None
    assert check_syntax("selected(${a}, 'b')") is None
    assert references("${a} + ${b} > ${a}") == ["a", "b"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.integers(-50, 150), st.just(None)), min_size=1, max_size=30),
       st.integers(-10, 120))
def test_vectorised_comparison_matches_rowwise(values, bound):
    col = ["" if v is None else str(v) for v in values]
    got = ev(f". >= {bound} and . <= 110", cols={"x": col}, self_name="x").bool()
    want = [v is not None and bound <= v <= 110 for v in values]
    assert got.tolist() == want
