"""read_export across form versions, and what an import records."""

import textwrap

import numpy as np
import pandas as pd
import pytest

from instruments import read_form, simulate_submissions, write_odk_central_zip
from instruments.importer import merge_versions, read_export
from instruments.raw import RawData, raw_columns
from instruments.simulate import fake_sample
from survey.errors import InstrumentError

from .conftest import TODAY, assert_ledger_balances

V1 = """
| survey |
| | type | name | label | required | constraint | repeat_count |
| | integer | n_people | People | yes | . >= 1 and . <= 5 | |
| | select_one yn | has_tv | TV? | yes | | |
| | begin_repeat | people | Person | | | ${n_people} |
| | integer | age | Age | yes | . >= 0 and . <= 99 | |
| | end_repeat | | | | | |
| choices |
| | list_name | name | label |
| | yn | yes | Yes |
| | yn | no | No |
| settings |
| | form_id | version |
| | mini | {version} |
"""
V2_EXTRA = "| | integer | rooms | Rooms | yes | . >= 1 | |\n"


def _form(tmp_path, version, extra=""):
    text = textwrap.dedent(V1).strip().replace("{version}", version)
    text = text.replace("| | begin_repeat", extra + "| | begin_repeat")
    p = tmp_path / f"mini_{version}.md"
    p.write_text(text, encoding="utf-8")
    return read_form(p)


def test_mixed_versions_merge_to_the_union_with_a_version_column(tmp_path):
    v1, v2 = _form(tmp_path, "1"), _form(tmp_path, "2", V2_EXTRA)
    rng = np.random.default_rng(11)
    a = simulate_submissions(v1, fake_sample(40, rng), rng, today=TODAY)
    b = simulate_submissions(v2, fake_sample(30, rng), rng, today=TODAY)
    union, per_version = merge_versions([v1, v2])
    assert [f.name for f in union.table_fields("mini")] == ["n_people", "has_tv", "rooms"]
    tables = {t: pd.concat([a.tables[t], b.tables[t]], ignore_index=True)
              .reindex(columns=raw_columns(union, t)) for t in union.tables}
    path = write_odk_central_zip(RawData("mini", tables), tmp_path / "mini.zip", union)
    res = read_export(path, [v1, v2], today=TODAY)
    mini = res.tables["mini"]
    assert mini["form_version"].value_counts().to_dict() == {"1": 40, "2": 30}
    assert mini.loc[mini["form_version"] == "1", "rooms"].isna().all()
    assert mini.loc[mini["form_version"] == "2", "rooms"].notna().all()
    assert res.problems.empty, res.problems  # rooms is required only in version 2
    assert_ledger_balances(res)
    # read with version 2 alone, the version-1 rows lack a required answer
    only2 = read_export(path, v2, today=TODAY)
    assert (only2.problems["code"] == "E201").sum() == 40


def test_versions_of_different_forms_are_refused(tmp_path, household):
    with pytest.raises(InstrumentError, match="different forms"):
        merge_versions([_form(tmp_path, "1"), household])


def test_ledger_records_source_and_hash(household, messy_raw, tmp_path):
    path = write_odk_central_zip(messy_raw, tmp_path / "household.zip", household)
    res = read_export(path, household, today=TODAY)
    led = res.ledger
    assert list(led.columns) == ["table", "read", "kept", "quarantined", "duplicates",
                                 "format", "source", "sha256"]
    assert led["source"].tolist() == ["household.zip:household.csv",
                                      "household.zip:household-members.csv",
                                      "household.zip:household-emigrants.csv"]
    import hashlib

    assert led["sha256"].iloc[0] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert_ledger_balances(res)
    # every row read is somewhere: kept, quarantined (with a reason) or a counted duplicate
    for t in res.tables:
        assert len(res.quarantine[t]) == int(led.loc[led["table"] == t, "quarantined"].iloc[0])


def test_importing_twice_gives_the_same_result(household, messy_raw, tmp_path):
    path = write_odk_central_zip(messy_raw, tmp_path / "household.zip", household)
    a, b = read_export(path, household, today=TODAY), read_export(path, household, today=TODAY)
    for t in a.tables:
        pd.testing.assert_frame_equal(a.tables[t], b.tables[t])
    pd.testing.assert_frame_equal(a.ledger, b.ledger)
