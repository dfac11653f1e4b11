"""Fixtures made by the package's own simulator from the bundled household form."""

from datetime import date

import numpy as np
import pytest

from instruments import form_path, read_form
from instruments.simulate import fake_sample, simulate_submissions

TODAY = date(2026, 3, 15)


def assert_ledger_balances(result):
    led = result.ledger
    assert (led["read"] == led["kept"] + led["quarantined"] + led["duplicates"]).all(), led
    for t, frame in result.tables.items():
        assert int(led.loc[led["table"] == t, "kept"].iloc[0]) == len(frame)


@pytest.fixture(scope="session")
def household():
    return read_form(form_path("household"))


@pytest.fixture(scope="session")
def listing():
    return read_form(form_path("listing"))


@pytest.fixture(scope="session")
def sample():
    return fake_sample(120, np.random.default_rng(20260315))


@pytest.fixture(scope="session")
def clean_raw(household, sample):
    return simulate_submissions(household, sample, np.random.default_rng(7), today=TODAY)


@pytest.fixture(scope="session")
def messy_raw(household, sample):
    return simulate_submissions(household, sample, np.random.default_rng(8), today=TODAY,
                                edits=3, duplicates=2, conflicts=2, rejected=2, bad_values=2,
                                orphans=2)


@pytest.fixture(scope="session")
def nested_messy(household, sample):
    """Messy data every format can hold (no orphan or key-less rows: CSV-only faults)."""
    return simulate_submissions(household, sample, np.random.default_rng(9), today=TODAY,
                                edits=2, duplicates=2, conflicts=1, bad_values=1)
