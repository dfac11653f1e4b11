"""Duplicates, edits, review states and structure: read = kept + quarantined + duplicates."""

import pandas as pd

from instruments.importer import import_raw
from instruments.raw import RawData

from .conftest import TODAY, assert_ledger_balances


def _codes(res, table):
    p = res.problems
    return p.loc[p["table"] == table, "code"].value_counts().to_dict()


def test_messy_export_ledger_and_codes(household, messy_raw):
    res = import_raw(messy_raw, household, today=TODAY)
    assert_ledger_balances(res)
    codes = _codes(res, "household")
    assert codes["D401"] == 2          # exact resubmissions
    assert codes["D402"] == 3          # superseded by an edit
    assert codes["E303"] == 4          # two conflicting copies each, both quarantined
    assert codes["R501"] == 2          # rejected in review
    led = res.ledger.set_index("table")
    assert led.loc["household", "duplicates"] == 5 and led.loc["household", "quarantined"] == 6
    assert set(res.quarantine["household"]["reason"]) == {"E303", "R501"}
    members = _codes(res, "members")
    assert members["E301"] == 2 and members["E302"] == 2    # orphans, missing KEY
    assert members["E304"] > 0                              # under quarantined submissions


def test_edit_chain_resolves_to_the_latest(household, clean_raw):
    h = clean_raw.tables["household"]
    row = h[h["visit_result"].eq("completed").fillna(False)].iloc[[0]]
    a = row["instance_id"].iloc[0]
    b, c = "uuid:00000000-0000-4000-a000-00000000000b", "uuid:00000000-0000-4000-a000-00000000000c"
    v2 = row.assign(key=b, instance_id=b, deprecated_id=a, rooms="2")
    v3 = row.assign(key=c, instance_id=c, deprecated_id=b, rooms="3")
    t = dict(clean_raw.tables)
    t["household"] = pd.concat([h, v3, v2], ignore_index=True)  # order must not matter
    res = import_raw(RawData("household", t), household, today=TODAY)
    out = res.tables["household"]
    kept = out[out["hh_id"] == row["hh_id"].iloc[0]]
    assert kept["instance_id"].tolist() == [c] and kept["rooms"].tolist() == [3]
    p = res.problems
    assert sorted(p.loc[(p["code"] == "D402") & (p["table"] == "household"), "key"]) == sorted([a, b])
    assert_ledger_balances(res)


def test_two_different_submissions_with_one_instance_id(household, clean_raw):
    h = clean_raw.tables["household"]
    done = h[h["visit_result"].eq("completed").fillna(False)]
    twin = done.iloc[[1]].assign(key=done["key"].iloc[0], instance_id=done["key"].iloc[0])
    t = dict(clean_raw.tables)
    t["household"] = pd.concat([h, twin], ignore_index=True)
    res = import_raw(RawData("household", t), household, today=TODAY)
    q = res.quarantine["household"]
    assert len(q) == 2 and set(q["reason"]) == {"E303"}
    # the roster of the quarantined key goes with it
    key = done["key"].iloc[0]
    assert (res.quarantine["members"]["parent_key"] == key).all()
    assert not (res.tables["members"]["parent_key"] == key).any()
    assert_ledger_balances(res)


def test_rejected_can_be_kept_on_request(household, messy_raw):
    res = import_raw(messy_raw, household, today=TODAY, exclude_rejected=False)
    assert "R501" not in set(res.problems["code"])
    assert (res.tables["household"]["review_state"] == "rejected").sum() == 2
    assert_ledger_balances(res)
