"""classify: roles from the privacy column, and fail-safe inference for unmarked fields."""

import textwrap

import pandas as pd
import pytest

from instruments.build import form_path
from instruments.disclosure import classify
from instruments.form import read_form
from survey.errors import InstrumentError


def _md(tmp_path, survey):
    body = textwrap.dedent(survey).strip()
    text = (f"| survey |\n{body}\n| choices |\n| | list_name | name | label |\n"
            "| | sex | male | Male |\n| | sex | female | Female |\n"
            "| | yn | yes | Yes |\n| | yn | no | No |\n"
            "| settings |\n| | form_id | version |\n| | t | 1 |\n")
    path = tmp_path / "f.md"
    path.write_text(text, encoding="utf-8")
    return read_form(path)


@pytest.fixture
def unmarked(tmp_path):
    """A form with no privacy column at all: every role must be inferred."""
    return _md(tmp_path, """
        | | type | name | label | calculation |
        | | text | region | Region | |
        | | text | head_name | Name of the head | |
        | | integer | contact_phone | Phone | |
        | | text | remarks | Remarks | |
        | | geopoint | location | Where | |
        | | select_one sex | sex | Sex | |
        | | select_one yn | mobile_phone | Owns a mobile phone? | |
        | | integer | age | Age | |
        | | date | visit_day | Day | |
        | | calculate | ea_id | EA | 'EA01' |
        | | deviceid | deviceid | | |
    """)


def _empty_tables(form):
    cols = {}
    for p in form.tables[form.form_id].fields:
        f = form.fields[p]
        if f.type == "geopoint":
            cols.update({f"{f.column}__{x}": [] for x in ("latitude", "longitude",
                                                          "altitude", "precision")})
        else:
            cols[f.column] = []
    return {form.form_id: pd.DataFrame({"key": [], "parent_key": [], **cols})}


def test_bundled_form_roles():
    form = read_form(form_path("household"))
    tables = {t: pd.DataFrame(columns=["key", "parent_key", *[form.fields[p].column
                                                            for p in form.tables[t].fields]])
              for t in form.tables}
    tables["household"]["gps__latitude"] = []
    c = classify(tables, form)
    direct = set(c.columns("household", "direct"))
    assert {"respondent_name", "respondent_phone", "gps", "gps__latitude", "comments",
            "rem_uses_other", "deviceid"} <= direct
    assert c.columns("household", "key") == ["stratum", "hh_size"]
    assert {"hh_id", "ea_id", "key", "parent_key"} <= set(c.columns("household", "id"))
    assert c.columns("members", "key") == ["sex", "age", "ret_country"]
    assert c.columns("members", "direct") == ["member_name"]
    assert set(c.columns("emigrants", "key")) == {"em_sex", "em_age_left", "em_country"}
    assert "interview_date" in c.columns("household", "date")
    assert c.role("household", "rem_amount") == "safe"


def test_unmarked_fields_fail_safe(unmarked):
    c = classify(_empty_tables(unmarked), unmarked)
    roles = dict(zip(c.to_frame()["column"], c.to_frame()["role"]))
    assert roles["region"] == "direct"  # unmarked text: free text until marked key/safe
    assert roles["head_name"] == "direct" and roles["contact_phone"] == "direct"
    assert roles["remarks"] == "direct"
    assert roles["location__latitude"] == "direct" and roles["location__precision"] == "direct"
    assert roles["mobile_phone"] == "safe"  # a yes/no answer, not a phone number
    assert roles["sex"] == "safe" and roles["age"] == "safe"
    assert roles["visit_day"] == "date" and roles["ea_id"] == "id"
    assert roles["deviceid"] == "direct"


def test_overrides_and_unknown_columns(unmarked):
    tables = _empty_tables(unmarked)
    tables["t"] = tables["t"].assign(weight=pd.Series([], dtype=float),
                                     note_to_self=pd.Series([], dtype="string"),
                                     gps_alt=pd.Series([], dtype=float))
    c = classify(tables, unmarked, overrides={"region": "key", "t.age": "key",
                                              "remarks": "safe"})
    assert c.role("t", "region") == "key" and c.role("t", "age") == "key"
    assert c.role("t", "remarks") == "safe"
    assert c.role("t", "weight") == "safe"
    assert c.role("t", "note_to_self") == "direct"  # unknown text fails safe
    assert c.role("t", "gps_alt") == "direct"
    with pytest.raises(InstrumentError, match="unknown role"):
        classify(tables, unmarked, overrides={"region": "public"})


def test_without_a_form_names_and_types_decide():
    df = pd.DataFrame({"key": ["a"], "name": ["x"], "phone": ["1"], "age": [3],
                       "sex": pd.Categorical(["m"]), "when": pd.to_datetime(["2026-01-02"])})
    c = classify({"t": df})
    assert c.columns("t", "direct") == ["name", "phone"]
    assert c.columns("t", "safe") == ["age", "sex"] and c.columns("t", "date") == ["when"]
