"""Field outputs: assignment workbook (names, locations) and preload CSV (none)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from sampling.eas import select_eas
from sampling.field import PRELOAD_COLUMNS, assignment_workbook, preload_csv
from sampling.households import select_households
from survey.errors import SamplingError


@pytest.fixture
def sample() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "ea_id": [f"0{i:03d}" for i in range(12)],
            "stratum": np.repeat(["North/Urban", "South"], 6),
            "households": rng.integers(30, 90, 12),
        }
    )
    eas = select_eas(frame, {"North/Urban": 2, "South": 2}, rng=4)
    sizes = rng.integers(10, 30, len(eas))
    ea = np.repeat(eas["ea_id"].to_numpy(), sizes)
    listing = pd.DataFrame(
        {
            "ea_id": ea,
            "hh_id": [f"{e}-{i:03d}" for e, i in zip(ea, range(ea.size))],
            "group": rng.choice(["emigrant", "returnee", "none"], ea.size),
            "head_name": [f"Test Head {i}" for i in range(ea.size)],
            "location": [f"Plot {i}, synthetic street" for i in range(ea.size)],
            "phone": "000-000",
        }
    )
    s = select_households(listing, {"emigrant": 2, "returnee": 2, "none": 2}, eas=eas, rng=5)
    teams = dict(zip(eas["ea_id"], ["Team A", "Team A", "Team B", "Team B"]))
    return s.assign(team=s["ea_id"].map(teams))


def test_preload_has_exactly_the_columns_and_no_personal_data(sample, tmp_path):
    path = tmp_path / "households.csv"
    out = preload_csv(sample, path)
    text = path.read_text()
    assert text.splitlines()[0] == ",".join(PRELOAD_COLUMNS)
    assert PRELOAD_COLUMNS == (
        "name",
        "label",
        "hh_id",
        "ea_id",
        "stratum",
        "group",
        "L_hig",
        "m_hig",
        "pi1",
        "pi2",
    )
    for col in ("head_name", "location", "phone"):
        for v in sample[col].unique():
            assert str(v) not in text
    back = pd.read_csv(path, dtype={"name": str, "hh_id": str, "ea_id": str})
    assert back["name"].is_unique and (back["name"] == back["hh_id"]).all()
    assert back["ea_id"].str.startswith("0").all()  # leading zeros kept
    assert (back["label"] == back["hh_id"] + " (" + back["group"] + ")").all()
    np.testing.assert_array_equal(
        back["pi1"].to_numpy(), sample["pi1"].to_numpy()
    )  # full precision
    assert len(out) == len(sample)
    main_only = preload_csv(sample, tmp_path / "main.csv", include_reserve=False)
    assert len(main_only) == int((~sample["reserve"]).sum())


def test_preload_needs_pi1(sample, tmp_path):
    with pytest.raises(SamplingError, match="pi1") as err:
        preload_csv(sample.drop(columns="pi1"), tmp_path / "x.csv")
    assert err.value.column == "pi1"


@pytest.mark.parametrize("by", ["team", "ea"])
def test_assignment_workbook_sheets(sample, tmp_path, by):
    path = assignment_workbook(sample, tmp_path / "assign.xlsx", by=by)
    wb = load_workbook(path)
    if by == "team":
        assert wb.sheetnames == ["Team A", "Team B"]
    else:
        assert wb.sheetnames == [e.replace("/", "_") for e in sorted(sample["ea_id"].unique())]
    rows = [r for ws in wb for r in ws.iter_rows(min_row=2, values_only=True)]
    header = [c.value for c in wb.worksheets[0][1]]
    assert header == [
        "EA",
        "Household ID",
        "Head's name",
        "Location",
        "Group",
        "Reserve",
        "Reserve order",
    ]
    assert len(rows) == len(sample)
    names = {r[2] for r in rows}
    assert names == set(sample["head_name"])
    reserves = [r for r in rows if r[5] == "reserve"]
    assert len(reserves) == int(sample["reserve"].sum()) and all(r[6] >= 1 for r in reserves)


def test_assignment_workbook_needs_teams(sample, tmp_path):
    with pytest.raises(SamplingError, match="team"):
        assignment_workbook(sample.drop(columns="team"), tmp_path / "a.xlsx")
