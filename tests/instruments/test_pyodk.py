"""A pull from ODK Central through pyodk, offline: the HTTP session replays responses."""

import json

import pandas as pd
from pyodk._utils.config import CentralConfig, Config
from pyodk.client import Client

from instruments.formats.odata import pull_odk_central, write_odata_json
from instruments.importer import import_raw
from tests._replay import ReplayAdapter

from .conftest import TODAY


def test_pull_matches_the_direct_import(household, nested_messy, tmp_path):
    recorded = json.loads(write_odata_json(nested_messy, tmp_path / "r.json", household).read_text())
    config = Config(central=CentralConfig(base_url="https://central.example.invalid",
                                          username="fake.user@example.invalid",
                                          password="not-a-real-password", default_project_id=1))
    client = Client(config=config, cache_path=tmp_path / "cache.toml")
    adapter = ReplayAdapter({"/v1/sessions": {"token": "fake-token"},
                             "/v1/users/current": {"id": 1},
                             "household.svc/Submissions": recorded})
    client.session.mount("https://", adapter)
    raw = pull_odk_central(client, 1, household)
    assert any("projects/1/forms/household.svc/Submissions" in u and "expand" in u
               for _, u in adapter.seen)
    pulled = import_raw(raw, household, today=TODAY)
    direct = import_raw(nested_messy, household, today=TODAY)
    pd.testing.assert_frame_equal(pulled.problems, direct.problems)
    for t in direct.tables:
        pd.testing.assert_frame_equal(pulled.tables[t], direct.tables[t])


def test_failed_pull_is_an_instrument_error(household, tmp_path):
    import pytest

    from survey.errors import InstrumentError

    config = Config(central=CentralConfig(base_url="https://central.example.invalid",
                                          username="fake.user@example.invalid",
                                          password="not-a-real-password"))
    client = Client(config=config, cache_path=tmp_path / "cache.toml")
    client.session.mount("https://", ReplayAdapter({"/v1/sessions": {"token": "t"}}))
    with pytest.raises(InstrumentError, match="pull from ODK Central failed"):
        pull_odk_central(client, 1, household)
