"""simulate_submissions: answers consistent with the form's skip logic and constraints."""

import numpy as np
import pandas as pd
import pytest

from instruments.importer import import_raw
from instruments.simulate import PRELOAD_COLUMNS, fake_sample, simulate_submissions
from survey.errors import InstrumentError

from .conftest import TODAY, assert_ledger_balances


def test_fake_sample_has_exactly_the_preload_columns():
    s = fake_sample(30, np.random.default_rng(1))
    assert tuple(s.columns) == PRELOAD_COLUMNS
    assert s["hh_id"].is_unique and (s["pi2"] <= 1).all()


def test_clean_simulation_passes_every_check(household, clean_raw):
    result = import_raw(clean_raw, household, today=TODAY)
    assert result.problems.empty, result.problems.head()
    assert_ledger_balances(result)


def test_preloads_come_from_the_sample(household, sample, clean_raw):
    h = clean_raw.tables["household"].set_index("hh_id")
    s = sample.set_index("name")
    for col in ("ea_id", "stratum", "group", "L_hig", "m_hig", "pi1", "pi2"):
        assert (h[col] == s.loc[h.index, col].astype("string")).all(), col


def test_skip_logic_is_respected(clean_raw):
    h = clean_raw.tables["household"]
    done = h["visit_result"].eq("completed") & h["consent"].eq("yes")
    assert h.loc[~done.fillna(False), "hh_size"].isna().all()
    assert h.loc[done.fillna(False), "hh_size"].notna().all()
    m = clean_raw.tables["members"]
    age = pd.to_numeric(m["age"])
    assert m.loc[age < 15, "worked"].isna().all()
    assert m.loc[age >= 15, "worked"].notna().all()
    # the head is first and only first
    first = m["key"].str.endswith("[1]")
    assert (m.loc[first, "relation"] == "head").all() and (m.loc[~first, "relation"] != "head").all()
    # repeat count equals hh_size
    counts = m.groupby("parent_key").size()
    sizes = pd.to_numeric(h.set_index("key")["hh_size"]).dropna().astype(int)
    assert counts.reindex(sizes.index, fill_value=0).equals(sizes.rename(None))


def test_same_seed_same_answers(household, sample):
    a = simulate_submissions(household, sample, np.random.default_rng(3), today=TODAY)
    b = simulate_submissions(household, sample, np.random.default_rng(3), today=TODAY)
    for t in a.tables:
        pd.testing.assert_frame_equal(a.tables[t], b.tables[t])


def test_nonresponse_share(household):
    s = fake_sample(2000, np.random.default_rng(2))
    raw = simulate_submissions(household, s, np.random.default_rng(4), nonresponse=0.3,
                               today=TODAY)
    share = raw.tables["household"]["visit_result"].ne("completed").mean()
    assert 0.26 < share < 0.34


def test_sample_without_name_is_rejected(household):
    with pytest.raises(InstrumentError, match="name"):
        simulate_submissions(household, pd.DataFrame({"x": [1]}), np.random.default_rng(1))


def test_listing_form_simulates_with_its_calculated_group(listing):
    raw = simulate_submissions(listing, fake_sample(50, np.random.default_rng(5)),
                               np.random.default_rng(6), today=TODAY)
    t = raw.tables["listing"]
    abroad = t["any_abroad"].eq("yes").fillna(False).to_numpy(dtype=bool)
    back = t["any_returnee"].eq("yes").fillna(False).to_numpy(dtype=bool)
    expect = np.where(abroad, "emigrant", np.where(back, "returnee", "none"))
    assert (t["group"].to_numpy() == expect).all()
    assert import_raw(raw, listing, today=TODAY).problems.empty
