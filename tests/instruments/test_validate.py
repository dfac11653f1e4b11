"""Typing by XLSForm type and every violation as a coded problem."""

import numpy as np
import pandas as pd

from instruments.importer import import_raw
from instruments.raw import RawData

from .conftest import TODAY, assert_ledger_balances


def _with(raw, table, rows, col, value):
    t = dict(raw.tables)
    df = t[table].copy()
    df.loc[rows, col] = value
    t[table] = df
    return RawData(raw.form_id, t, raw.format)


def _first_completed(raw, n=1):
    h = raw.tables["household"]
    return h.index[h["visit_result"].eq("completed").fillna(False) & h["consent"].eq("yes")
                   .fillna(False)][:n]


def test_typed_dtypes(household, clean_raw):
    res = import_raw(clean_raw, household, today=TODAY)
    h, m = res.tables["household"], res.tables["members"]
    assert str(h["hh_size"].dtype) == "Int64" and str(h["rem_amount"].dtype) == "Float64"
    assert isinstance(h["visit_result"].dtype, pd.CategoricalDtype)
    assert list(h["visit_result"].cat.categories)[:2] == ["completed", "partial"]
    assert str(h["L_hig"].dtype) == "Int64" and str(h["pi1"].dtype) == "Float64"
    assert "datetime64" in str(h["interview_date"].dtype)
    assert str(h["start"].dtype).startswith("datetime64") and "UTC" in str(h["start"].dtype)
    assert {"gps__latitude", "gps__longitude", "gps__altitude", "gps__precision"} <= set(h)
    assert h["gps__latitude"].abs().max() <= 0.5  # fake points near 0 N 0 E
    assert list(m["row_index"].iloc[:2]) == [1, 2]
    assert (m["submission_key"] == m["parent_key"]).all()


def test_select_multiple_answer_and_dummies(household, clean_raw):
    h = import_raw(clean_raw, household, today=TODAY).tables["household"]
    got = h["rem_uses"].dropna()
    assert len(got)
    for i, ans in got.items():
        for c in household.by_name("rem_uses").choices.names:
            assert h.loc[i, f"rem_uses__{c}"] == int(c in ans.split())
    assert h.loc[h["rem_uses"].isna(), "rem_uses__food"].isna().all()


def test_text_in_integer_field(household, clean_raw):
    rows = _first_completed(clean_raw)
    res = import_raw(_with(clean_raw, "household", rows, "rooms", "three"), household, today=TODAY)
    p = res.problems
    hit = p[p["code"] == "E101"]
    assert hit[["table", "field", "value"]].values.tolist() == [["household", "rooms", "three"]]
    assert hit["key"].iloc[0] == clean_raw.tables["household"].loc[rows[0], "key"]
    assert res.tables["household"].loc[rows[0], "rooms"] is pd.NA
    assert_ledger_balances(res)


def test_unknown_choice_values(household, clean_raw):
    rows = _first_completed(clean_raw, 2)
    raw = _with(clean_raw, "household", rows[:1], "floor", "marble")
    raw = _with(raw, "household", rows[1:], "assets", "tv spaceship")
    p = import_raw(raw, household, today=TODAY).problems
    assert p.loc[p["code"] == "E106", "value"].tolist() == ["marble"]
    assert p.loc[p["code"] == "E107", "value"].tolist() == ["tv spaceship"]


def test_required_constraint_and_relevance(household, clean_raw):
    h = clean_raw.tables["household"]
    rows = _first_completed(clean_raw, 3)
    raw = _with(clean_raw, "household", rows[:1], "interview_date", pd.NA)        # required
    raw = _with(raw, "household", rows[1:2], "spend_total_month", "0.5")          # < food
    not_done = h.index[h["visit_result"].ne("completed").fillna(False)][:1]
    raw = _with(raw, "household", not_done, "rooms", "3")                          # not relevant
    p = import_raw(raw, household, today=TODAY).problems
    assert p.loc[p["code"] == "E201", "field"].tolist() == ["interview_date"]
    assert p.loc[p["code"] == "E202", "field"].tolist() == ["spend_total_month"]
    assert p.loc[p["code"] == "E203", ["field", "value"]].values.tolist() == [["rooms", "3"]]


def test_constraint_across_tables_and_position(household, clean_raw):
    m = clean_raw.tables["members"]
    adult = m.index[pd.to_numeric(m["age"]).between(20, 60) & m["key"].str.endswith("[1]")][:1]
    raw = _with(clean_raw, "members", adult, "edu_years", "99")     # > age
    second = m.index[m["key"].str.endswith("[2]")][:1]
    raw = _with(raw, "members", second, "relation", "head")          # head not first
    p = import_raw(raw, household, today=TODAY).problems
    got = sorted(p.loc[p["code"] == "E202", "field"].tolist())
    assert got == ["edu_years", "relation"]


def test_repeat_count_mismatch(household, clean_raw):
    m = clean_raw.tables["members"]
    t = dict(clean_raw.tables)
    t["members"] = m.drop(index=m.index[m["key"].str.endswith("[2]")][:1])
    p = import_raw(RawData("household", t), household, today=TODAY).problems
    hit = p[p["code"] == "E204"]
    assert len(hit) == 1 and hit["table"].iloc[0] == "household"
    assert hit["value"].iloc[0].endswith("rows, expected " + hit["value"].iloc[0].split()[-1])


def test_nothing_lost_when_every_cell_is_bad(household, clean_raw):
    raw = _with(clean_raw, "household", clean_raw.tables["household"].index, "hh_size", "x")
    res = import_raw(raw, household, today=TODAY)
    n = len(clean_raw.tables["household"])
    assert len(res.tables["household"]) == n
    assert (res.problems["code"] == "E101").sum() == n
    assert np.array_equal(res.problems.loc[res.problems["code"] == "E101", "value"].unique(), ["x"])
