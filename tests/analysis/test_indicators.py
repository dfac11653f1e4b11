"""Tests of analysis.indicators: the catalogue, the safe expression evaluator, and the
person-level design that inherits the household's strata, PSUs and weights.

Data: synthetic submissions to the bundled household form
(``instruments.simulate.simulate_submissions``), imported into typed tables.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import analysis
from analysis.indicators import (
    COVARIATES,
    Indicator,
    catalogue,
    custom_indicator,
    evaluate,
    migration_group,
    person_design,
    prepare,
)
from survey import Design
from survey.errors import ConfigError, EstimationError

TODAY = date(2026, 3, 15)
_REGIONS = {"S1": "north", "S2": "south", "S3": "east", "S4": "west"}


def simulated_survey(n: int = 500, seed: int = 1, eas: int = 36):
    """Typed tables of simulated interviews and the household design over them.

    The household table gets the frame's ``region`` (from the stratum) and ``urban``
    (every third EA) and a base weight ``1 / (pi1 pi2)``; only completed interviews
    are kept (as after nonresponse adjustment). Returns (design, tables).
    """
    import instruments
    from instruments.importer import import_raw
    from instruments.simulate import fake_sample, simulate_submissions

    form = instruments.read_form(instruments.form_path("household"))
    sample = fake_sample(n, np.random.default_rng(seed), eas=eas)
    raw = simulate_submissions(form, sample, np.random.default_rng(seed + 1), today=TODAY)
    tables = dict(import_raw(raw, form, today=TODAY).tables)
    hh = tables["household"]
    hh = hh[(hh["visit_result"] == "completed").fillna(False).to_numpy()].reset_index(drop=True)
    ea_num = hh["ea_id"].str[2:].astype(int).to_numpy()
    hh = hh.assign(w=1.0 / (hh["pi1"] * hh["pi2"]).to_numpy(dtype=float),
                   region=hh["stratum"].map(_REGIONS).astype("string"),
                   urban=pd.array(np.where(ea_num % 3 == 0, "urban", "rural"), dtype="string"))
    tables["household"] = hh
    return Design(hh, weights="w", strata="stratum", psu="ea_id"), tables


@pytest.fixture(scope="module")
def survey_data():
    return simulated_survey()


@pytest.fixture(scope="module")
def prepared(survey_data):
    design, tables = survey_data
    return prepare(design, tables)


# -- the catalogue -------------------------------------------------------------------------

def test_catalogue_covers_the_four_areas_and_bands():
    cat = catalogue()
    areas = {i.area for i in cat}
    assert {"remittances", "education", "health", "gender"} <= areas
    names = [i.name for i in cat]
    for n in ("remittances_received", "rem_amount_year", "rem_channel_bank", "rem_use_education",
              "rem_share_spending", "enrol_6_17", "enrol_6_11", "enrol_12_14", "enrol_15_17",
              "spend_edu", "adult_schooling", "spend_health", "insured_person", "health_good",
              "consulted_when_ill", "forgone_care_ill", "female_head", "female_head_defacto",
              "women_lfp", "women_say_remittance_use", "woman_owns_land"):
        assert n in names
    assert len(set(names)) == len(names)


def test_catalogue_parameters():
    cat = {i.name: i for i in catalogue(recall_months=6, school_age=(5, 16),
                                        school_age_bands=((5, 10), (11, 16)), usd_rate=2.5)}
    assert "last 6 months" in cat["remittances_received"].label
    assert "2.0" in cat["rem_amount_year"].expression  # 12 / 6: annualised
    assert {"enrol_5_16", "enrol_5_10", "enrol_11_16"} <= set(cat)
    assert "enrol_6_11" not in cat
    assert cat["rem_amount_usd"].unit == "US$"


def test_every_indicator_names_fields_of_the_bundled_form(prepared):
    """Each indicator evaluates on the imported tables (no unknown field)."""
    hh = prepared.household.data
    for ind in prepared.indicators:
        d = prepared.design_for(ind).data
        assert ind.name in d.columns
        v = d[ind.name].to_numpy(dtype=float)
        assert np.isfinite(v).any(), ind.name
        if ind.kind == "share":
            assert set(np.unique(v[~np.isnan(v)])) <= {0.0, 1.0}
    for c in COVARIATES:
        assert c in hh.columns


def test_universe_makes_missing_values_not_zeros(prepared, survey_data):
    _, tables = survey_data
    p = prepared.person.data
    enrol = p["enrol_6_17"].to_numpy(dtype=float)
    age = p["age"].to_numpy(dtype=float)
    inside = (age >= 6) & (age <= 17)
    assert np.isnan(enrol[~inside]).all()
    assert not np.isnan(enrol[inside & p["attends_school"].notna().to_numpy()]).any()
    hh = prepared.household.data
    amount = hh["rem_amount_year"].to_numpy(dtype=float)
    received = (hh["rem_received"] == "yes").fillna(False).to_numpy(dtype=bool)
    assert np.isnan(amount[~received]).all()
    assert np.allclose(amount[received], hh["rem_amount"].to_numpy(dtype=float)[received])


def test_household_aggregates_against_pandas(prepared, survey_data):
    _, tables = survey_data
    m = tables["members"]
    hh = prepared.household.data
    head = m[(m["relation"] == "head").fillna(False).to_numpy(dtype=bool)]
    ages = head.set_index("parent_key")["age"].astype(float)
    got = hh.set_index("key")["head_age"]
    both = got.index.intersection(ages.index)
    assert np.allclose(got[both].to_numpy(dtype=float), ages[both].to_numpy(dtype=float))
    n_kids = m[(m["age"] < 15).fillna(False).to_numpy(dtype=bool)].groupby("parent_key").size()
    got = hh.set_index("key")["n_children"]
    exp = n_kids.reindex(got.index).fillna(0).to_numpy(dtype=float)
    assert np.array_equal(got.to_numpy(dtype=float), exp)
    any_ins = (m.assign(i=(m["insured"] == "yes").fillna(False)).groupby("parent_key")["i"]
               .any().reindex(hh["key"]).fillna(False).to_numpy(dtype=float))
    assert np.array_equal(hh["any_insured"].to_numpy(dtype=float), any_ins)


# -- the expression language ----------------------------------------------------------------

@pytest.fixture
def small():
    return pd.DataFrame({
        "key": ["a", "b", "c", "d"],
        "x": pd.array([1.0, 2.0, None, 4.0], dtype="Float64"),
        "s": pd.Categorical(["yes", "no", None, "yes"]),
        "m": pd.array(["food education", "health", None, "education"], dtype="string"),
    })


def test_evaluator_semantics(small):
    assert np.allclose(evaluate("x * 2 + 1", small), [3, 5, np.nan, 9], equal_nan=True)
    assert np.allclose(evaluate("s == 'yes'", small), [1, 0, np.nan, 1], equal_nan=True)
    # Kleene logic: False and NA is False; True or NA is True
    assert np.allclose(evaluate("s == 'yes' and x > 1", small), [0, 0, np.nan, 1],
                       equal_nan=True)
    assert np.allclose(evaluate("(s == 'no') | (x < 0)", small), [0, 1, np.nan, 0],
                       equal_nan=True)
    assert np.allclose(evaluate("not (s == 'yes')", small), [0, 1, np.nan, 0], equal_nan=True)
    assert np.allclose(evaluate("s in ['no', 'maybe']", small), [0, 1, np.nan, 0],
                       equal_nan=True)
    assert np.allclose(evaluate("selected(m, 'education')", small), [1, 0, np.nan, 1],
                       equal_nan=True)
    assert np.allclose(evaluate("where(x > 1, x, 0)", small), [0, 2, np.nan, 4], equal_nan=True)
    assert np.allclose(evaluate("between(x, 2, 4)", small), [0, 1, np.nan, 1], equal_nan=True)
    assert np.allclose(evaluate("fillna(x, 0)", small), [1, 2, 0, 4])
    assert np.allclose(evaluate("x / lim", small, params={"lim": 2}), [0.5, 1, np.nan, 2],
                       equal_nan=True)
    assert np.allclose(evaluate("1 < x <= 2", small), [0, 1, np.nan, 0], equal_nan=True)


def test_aggregates_over_a_repeat_table(small):
    kids = pd.DataFrame({"parent_key": ["a", "a", "b", "d"], "age": [3, 40, 70, 12],
                         "relation": ["child", "head", "head", "head"]})
    ch = {"kids": kids, "members": kids}
    assert np.array_equal(evaluate("count(kids)", small, children=ch), [2, 1, 0, 1])
    assert np.array_equal(evaluate("count(kids, age < 15)", small, children=ch), [1, 0, 0, 1])
    assert np.array_equal(evaluate("any(kids, age >= 65)", small, children=ch), [0, 1, 0, 0])
    assert np.allclose(evaluate("mean(kids, age)", small, children=ch), [21.5, 70, np.nan, 12],
                       equal_nan=True)
    assert np.allclose(evaluate("head(age)", small, children=ch), [40, 70, np.nan, 12],
                       equal_nan=True)


def test_unknown_field_lists_close_matches(prepared):
    hh = prepared.household.data
    with pytest.raises(ConfigError) as err:
        evaluate("spend_edu_yaer > 100", hh, name="high_spend")
    msg = str(err.value)
    assert "high_spend" in msg and "spend_edu_yaer" in msg
    assert "spend_edu_year" in msg  # the close match
    assert err.value.field == "spend_edu_yaer"


@pytest.mark.parametrize("expr", ["__import__('os').system('x')", "x.real", "(lambda: 1)()",
                                  "open('f')", "[c for c in x]", "x[0]"])
def test_no_python_evaluation(small, expr):
    with pytest.raises(ConfigError):
        evaluate(expr, small)


def test_bad_expressions_say_what(small):
    with pytest.raises(ConfigError, match="not a valid expression"):
        evaluate("x >", small)
    with pytest.raises(ConfigError, match="unknown function"):
        evaluate("sqrtt(x)", small)
    with pytest.raises(ConfigError, match="text can only be compared"):
        evaluate("s > 'a'", small)


# -- user indicators from survey.toml --------------------------------------------------------

def test_custom_indicator_from_config():
    from survey.config import CustomIndicator

    spec = CustomIndicator(name="high_edu_spend", expression="spend_edu_year > 500",
                           label="Spends > 500 on education", kind="proportion")
    ind = custom_indicator(spec)
    assert ind.kind == "share" and ind.area == "custom" and ind.table == "household"
    cat = catalogue(custom=[spec, {"name": "edu_pc", "expression": "spend_edu_year / hh_size"}])
    assert [i.name for i in cat][-2:] == ["high_edu_spend", "edu_pc"]
    with pytest.raises(ConfigError, match="twice"):
        catalogue(custom=[{"name": "insured_person", "expression": "1"}])


def test_catalogue_from_survey_toml():
    import tomllib

    from analysis.indicators import catalogue_from_config
    from survey.config import default_config_text, parse_config

    text = default_config_text("Georgia").replace(
        "remittance_recall_months = 12", "remittance_recall_months = 6").replace(
        "[domains]", '[[indicators.custom]]\nname = "high_edu_spend"\n'
        'expression = "spend_edu_year > 500"\nkind = "proportion"\n\n[domains]')
    cfg = parse_config(tomllib.loads(text))
    cat = {i.name: i for i in catalogue_from_config(cfg)}
    assert "last 6 months" in cat["remittances_received"].label
    assert cat["high_edu_spend"].kind == "share" and cat["high_edu_spend"].area == "custom"
    assert {"enrol_6_11", "enrol_12_14", "enrol_15_17"} <= set(cat)


def test_custom_indicator_estimated(survey_data):
    design, tables = survey_data
    cat = catalogue(custom=[{"name": "high_edu_spend", "expression": "spend_edu_year > 300",
                             "kind": "proportion"}])
    data = prepare(design, tables, [i for i in cat if i.area == "custom"])
    est = analysis.mean(data.household, "high_edu_spend").estimate[0]
    hh = design.data
    x = hh["spend_edu_year"].to_numpy(dtype=float, na_value=np.nan)
    ok = ~np.isnan(x)  # a missing spending is outside the domain, not a "no"
    assert est == pytest.approx(np.average(x[ok] > 300, weights=design.w[ok]), rel=1e-12)


def test_unknown_field_in_a_custom_indicator(survey_data):
    design, tables = survey_data
    ind = custom_indicator({"name": "x", "expression": "rem_amout > 0"})
    with pytest.raises(ConfigError, match="rem_amount"):
        prepare(design, tables, [ind])


def test_indicator_may_not_overwrite_a_field(survey_data):
    design, tables = survey_data
    with pytest.raises(ConfigError, match="overwrite"):
        prepare(design, tables, [custom_indicator({"name": "hh_size", "expression": "1"})])


def test_share_indicator_must_be_yes_no(survey_data):
    design, tables = survey_data
    bad = Indicator("bad", "bad", "custom", "hh_size", kind="share")
    with pytest.raises(ConfigError, match="0/1"):
        prepare(design, tables, [bad])


# -- person design -------------------------------------------------------------------------

def test_person_mean_equals_household_ratio(prepared, survey_data):
    """Enrolment over persons with the household weight equals the ratio of household
    totals (enrolled / children) on the household design: estimate and SE."""
    design, tables = survey_data
    p = prepared.person
    est = analysis.mean(p, "enrol_6_17")
    pdat = p.data
    y = pdat["enrol_6_17"]
    agg = pd.DataFrame({"k": pdat["_hh_key"], "num": y.fillna(0.0), "den": y.notna().astype(float)})
    s = agg.groupby("k")[["num", "den"]].sum()
    hh = prepared.household.data
    hh2 = hh.assign(num=hh["key"].astype(object).map(s["num"]).fillna(0.0).astype(float),
                    den=hh["key"].astype(object).map(s["den"]).fillna(0.0).astype(float))
    d2 = prepared.household.map(lambda _: hh2)
    r = analysis.ratio(d2, "num", "den")
    assert est.estimate[0] == pytest.approx(r.estimate[0], rel=1e-12)
    assert est.se[0] == pytest.approx(r.se[0], rel=1e-9)


def test_person_design_inherits_the_design(prepared):
    p, h = prepared.person, prepared.household
    assert p.weights == h.weights and p.strata == h.strata and p.psu == h.psu
    assert p.stages[0].n_unit_total <= h.stages[0].n_unit_total
    # persons carry their household's covariates and group
    for c in ("migration_group", "head_age", "region", "urban"):
        assert c in p.data.columns


def test_person_design_from_replicates(prepared, survey_data):
    from survey.repweights import make_replicates

    rep = make_replicates(prepared.household, "jkn")
    _, tables = survey_data
    p = person_design(rep, tables["members"], columns=["migration_group"])
    assert p.replicates is not None
    assert p.replicates.weights.shape[1] == rep.replicates.n_replicates
    est = analysis.mean(p, "age")
    assert np.isfinite(est.se[0]) and est.se[0] > 0


def test_migration_group_from_interview():
    df = pd.DataFrame({"any_emigrant": pd.Categorical(["yes", "no", "no", None, "yes"]),
                       "n_returnees": pd.array([0, 1, 0, 2, 1], dtype="Int64")})
    g = migration_group(df)
    assert g.tolist()[:3] == ["emigrant", "returnee", "none"]
    assert pd.isna(g.iloc[3]) and g.iloc[4] == "emigrant"


def test_person_indicator_needs_members(survey_data):
    design, _ = survey_data
    with pytest.raises(EstimationError, match="members"):
        prepare(design, {}, [i for i in catalogue() if i.name == "insured_person"])


def test_inputs_not_mutated(survey_data):
    design, tables = survey_data
    before = design.data.copy()
    cols = list(tables["members"].columns)
    prepare(design, tables)
    pd.testing.assert_frame_equal(design.data, before)
    assert list(tables["members"].columns) == cols


# -- properties ------------------------------------------------------------------------------

_vals = st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)), min_size=1,
                 max_size=30)


@settings(max_examples=60, deadline=None)
@given(_vals, _vals)
def test_property_arithmetic_and_kleene_logic(a, b):
    n = min(len(a), len(b))
    df = pd.DataFrame({"a": pd.array(a[:n], dtype="Float64"), "b": pd.array(b[:n], dtype="Float64")})
    x = df["a"].to_numpy(dtype=float, na_value=np.nan)
    y = df["b"].to_numpy(dtype=float, na_value=np.nan)
    np.testing.assert_allclose(evaluate("a * 2 - b", df), x * 2 - y, equal_nan=True)
    p, q = evaluate("a > 0", df), evaluate("b > 0", df)
    both = evaluate("a > 0 and b > 0", df)
    either = evaluate("a > 0 or b > 0", df)
    # pandas' nullable booleans implement Kleene logic: the reference
    pa = pd.array(np.where(np.isnan(p), None, p == 1), dtype="boolean")
    pb = pd.array(np.where(np.isnan(q), None, q == 1), dtype="boolean")
    np.testing.assert_array_equal(both, (pa & pb).to_numpy(dtype=float, na_value=np.nan))
    np.testing.assert_array_equal(either, (pa | pb).to_numpy(dtype=float, na_value=np.nan))
    np.testing.assert_array_equal(evaluate("b > 0 and a > 0", df), both)  # commutative
