"""read_form: pyxform's tree as a frozen schema; strict and lenient reading."""

import dataclasses
import textwrap

import pytest

from instruments.build import form_path
from instruments.form import read_form
from survey.errors import InstrumentError, SurveyWarning


def _md(tmp_path, survey, name="f.md"):
    body = textwrap.dedent(survey).strip()
    text = f"| survey |\n{body}\n| settings |\n| | form_id | version |\n| | t | 1 |\n"
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def household():
    return read_form(form_path("household"))


def test_tables_and_parents(household):
    assert {t: household.tables[t].parent for t in household.tables} == {
        "household": None, "members": "household", "emigrants": "household"}
    assert household.tables["emigrants"].repeat_count == "${n_emigrants}"
    assert household.tables["emigrants"].conditions[-1] == "${any_emigrant} = 'yes'"


def test_fields_are_typed_with_choices_privacy_and_conditions(household):
    f = household.by_name("rem_uses")
    assert f.type == "select_multiple" and f.table == "household"
    assert f.path == "interview/remittances/rem_uses"
    assert "none" in f.choices.names
    assert f.choices.labels("French (fr)")["food"].startswith("Alimentation")
    assert f.required and f.relevant == "${rem_received} = 'yes'"
    assert f.conditions[0].startswith("${visit_result}")
    assert household.by_name("respondent_phone").privacy == "direct"
    assert household.by_name("age").privacy == "key" and household.by_name("age").table == "members"
    assert household.by_name("L_hig").type == "integer"
    assert household.by_name("hh_id").choices.external == "households.csv"
    assert household.languages == ("English (en)", "French (fr)")


def test_form_is_frozen(household):
    with pytest.raises(dataclasses.FrozenInstanceError):
        household.form_id = "x"
    with pytest.raises(TypeError):
        household.fields["x"] = None


def test_syntax_error_in_constraint_names_sheet_row_column(tmp_path):
    path = _md(tmp_path, """
        | | type | name | label | constraint |
        | | integer | a | A | |
        | | integer | b | B | . > (1 |
    """)
    with pytest.raises(InstrumentError) as err:
        read_form(path)
    assert (err.value.sheet, err.value.row, err.value.column) == ("survey", 3, "constraint")


def test_pyxform_error_names_row_and_column(tmp_path):
    path = _md(tmp_path, """
        | | type | name | label | relevant |
        | | integer | a | A | ${zz} > 1 |
    """)
    with pytest.raises(InstrumentError) as err:
        read_form(path)
    assert (err.value.sheet, err.value.row, err.value.column) == ("survey", 2, "relevant")
    assert "zz" in str(err.value)


def test_unknown_type_located(tmp_path):
    path = _md(tmp_path, """
        | | type | name | label |
        | | integer | a | A |
        | | integr | b | B |
    """)
    with pytest.raises(InstrumentError) as err:
        read_form(path)
    assert (err.value.row, err.value.column) == (3, "type")


def test_lenient_repairs_with_warnings(tmp_path):
    path = _md(tmp_path, """
        | | type | name | label | constraint |
        | | integer | a | A | |
        | | integer | a | A again | . > (1 |
        | | integr | c | C | |
    """)
    with pytest.raises(InstrumentError):
        read_form(path)
    with pytest.warns(SurveyWarning) as rec:
        form = read_form(path, lenient=True)
    assert [f.name for f in form.fields.values()] == ["a", "a_3", "c"]
    assert form.by_name("c").type == "text" and form.by_name("a_3").constraint is None
    assert len(rec) == 3


def test_same_name_in_two_groups_gets_distinct_columns(tmp_path):
    path = _md(tmp_path, """
        | | type | name | label |
        | | begin_group | g1 | G1 |
        | | integer | a | A |
        | | end_group | | |
        | | begin_group | g2 | G2 |
        | | integer | a | A |
        | | end_group | | |
    """)
    form = read_form(path)
    assert [f.column for f in form.fields.values()] == ["g1_a", "g2_a"]


def test_missing_file():
    with pytest.raises(InstrumentError, match="not found"):
        read_form("no/such/form.xlsx")
