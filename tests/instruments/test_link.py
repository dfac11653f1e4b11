"""link_sample: final dispositions for the weighting stage, linking problems."""

import numpy as np
import pandas as pd
import pytest

from instruments.importer import import_raw
from instruments.link import DISPOSITIONS, link_sample
from instruments.raw import RawData
from survey.errors import InstrumentError

from .conftest import TODAY


def test_every_sampled_household_gets_its_disposition(household, sample, clean_raw):
    res = import_raw(clean_raw, household, today=TODAY)
    linked = link_sample(res, sample)
    out = linked.sample
    assert len(out) == len(sample) and linked.problems.empty
    h = clean_raw.tables["household"].set_index("hh_id")
    expect = h["visit_result"].map(DISPOSITIONS)
    expect = expect.mask(h["consent"].eq("no").fillna(False), "refusal")
    got = out.set_index("name")["disposition"].astype(str)
    assert (got == expect.reindex(got.index)).all()
    assert set(got) <= {"respondent", "refusal", "non_contact", "ineligible"}
    assert (out["visits"] == 1).all()


def test_revisit_unmatched_double_and_unvisited(household, sample, clean_raw):
    h = clean_raw.tables["household"]
    done = h[h["visit_result"].eq("completed").fillna(False)]
    first = done.iloc[[0]]
    # an earlier visit found no one at home: the completed visit decides
    earlier = first.assign(key="uuid:visit-1", instance_id="uuid:visit-1", visit_number="1",
                           visit_result="no_one_home")
    later = first.assign(visit_number="2")
    # a second complete interview of another household
    twice = done.iloc[[1]].assign(key="uuid:twice", instance_id="uuid:twice", visit_number="2")
    # a household that is not in the sample
    stranger = done.iloc[[2]].assign(key="uuid:stranger", instance_id="uuid:stranger",
                                     hh_id="HH999999")
    rest = h[~h["key"].isin([first["key"].iloc[0], done["key"].iloc[3]])]
    t = dict(clean_raw.tables)
    t["household"] = pd.concat([rest, earlier, later, twice, stranger], ignore_index=True)
    res = import_raw(RawData("household", t), household, today=TODAY)
    linked = link_sample(res, sample)
    p = linked.problems
    assert p.loc[p["code"] == "L701", "value"].tolist() == ["HH999999"]
    assert sorted(p.loc[p["code"] == "L702", "key"]) == sorted(["uuid:twice",
                                                                 done["key"].iloc[1]])
    assert p.loc[p["code"] == "L703", "value"].tolist() == [done["hh_id"].iloc[3]]
    row = linked.sample.set_index("name").loc[first["hh_id"].iloc[0]]
    assert row["disposition"] == "respondent" and row["visits"] == 2
    assert row["submission_key"] == first["key"].iloc[0]
    lost = linked.sample.set_index("name").loc[done["hh_id"].iloc[3]]
    assert lost["disposition"] == "non_contact" and lost["visits"] == 0


def test_bad_inputs(household, sample, clean_raw):
    res = import_raw(clean_raw, household, today=TODAY)
    with pytest.raises(InstrumentError, match="twice"):
        link_sample(res, pd.concat([sample, sample.iloc[[0]]]))
    with pytest.raises(InstrumentError, match="no column"):
        link_sample(res, sample.rename(columns={"name": "id"}))
    with pytest.raises(InstrumentError, match="without a disposition"):
        link_sample(res, sample, dispositions={"completed": "respondent"})
    assert np.isin(list(DISPOSITIONS.values()),
                   ["respondent", "refusal", "non_contact", "ineligible"]).all()
