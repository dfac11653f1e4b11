"""Stage 1 through the public interface: select_eas and inclusion_probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sampling.eas import inclusion_probabilities, select_eas
from survey.errors import SamplingError


def _frame(seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 36
    df = pd.DataFrame(
        {
            "ea_id": [f"EA{i:03d}" for i in range(n)],
            "stratum": np.repeat(["north", "south", "west"], 12),
            "district": rng.integers(1, 4, n),
            "urban": rng.choice(["urban", "rural"], n),
            "households": rng.integers(40, 250, n),
        }
    )
    df.loc[5, "households"] = 2500  # certainty EA in the north
    return df


ALLOC = {"north": 4, "south": 3, "west": 2}


@pytest.mark.parametrize(
    "method", ["pps_systematic", "pps_brewer", "pps_sampford", "systematic", "srs"]
)
def test_selection_is_exact_recorded_and_leaves_frame_alone(method):
    frame = _frame()
    before = frame.copy(deep=True)
    s = select_eas(
        frame, ALLOC, method=method, sort_by=["district", "urban"], serpentine=True, rng=99
    )
    pd.testing.assert_frame_equal(frame, before)
    assert frame.columns.tolist() == before.columns.tolist()
    assert s.groupby("stratum").size().to_dict() == ALLOC
    assert s["ea_id"].is_unique
    assert {"pi1", "certainty", "selection_order", "seed", "n_h"} <= set(s.columns)
    assert s.attrs["seed"] == 99 and (s["seed"] == 99).all() and s.attrs["method"] == method
    probs = inclusion_probabilities(frame, ALLOC, method=method).set_index("ea_id")
    np.testing.assert_allclose(s["pi1"], probs.loc[s["ea_id"], "pi1"])
    for _, g in s.groupby("stratum"):
        assert sorted(g["selection_order"]) == list(range(1, len(g) + 1))
    if method.startswith("pps"):
        cert = s.loc[s["certainty"]]
        assert cert["ea_id"].tolist() == ["EA005"] and cert["pi1"].tolist() == [1.0]
        assert cert["selection_order"].tolist() == [1]


def test_seed_reproduces_and_generator_seed_is_recorded():
    frame = _frame()
    a = select_eas(frame, ALLOC, rng=np.random.default_rng(5))
    b = select_eas(frame, ALLOC, rng=a.attrs["seed"])
    pd.testing.assert_frame_equal(a, b)
    c = select_eas(frame, ALLOC)  # no rng: a fresh seed, still recorded
    pd.testing.assert_frame_equal(c, select_eas(frame, ALLOC, rng=c.attrs["seed"]))


@pytest.mark.parametrize("method", ["pps_systematic", "pps_brewer", "srs"])
def test_public_selection_frequencies_match_pi1(method):
    """R independent selections in ONE select_eas call: the frame tiled R times with
    strata renamed per replicate. Binomial z bound |z| < 4.5 per EA (for K EAs the
    false-alarm chance is at most K * 6.8e-6); fixed seed."""
    frame = _frame()
    R = 3000
    p = inclusion_probabilities(frame, ALLOC, method=method)["pi1"].to_numpy()
    rep = np.repeat(np.arange(R), len(frame))
    big = pd.concat([frame] * R, ignore_index=True)
    big = big.assign(
        stratum=big["stratum"] + "#" + rep.astype(str),
        orig=np.tile(np.arange(len(frame)), R),
        ea_id=big["ea_id"] + "#" + rep.astype(str),
    )
    alloc = {f"{h}#{r}": n for r in range(R) for h, n in ALLOC.items()}
    s = select_eas(big, alloc, method=method, sort_by="district", rng=12)
    assert len(s) == R * sum(ALLOC.values())
    count = np.bincount(s["orig"].to_numpy(), minlength=len(frame))
    free = p < 1
    z = (count[free] - R * p[free]) / np.sqrt(R * p[free] * (1 - p[free]))
    assert np.abs(z).max() < 4.5
    assert (count[~free] == R).all()
    np.testing.assert_allclose(s["pi1"], p[s["orig"].to_numpy()])


def test_serpentine_sort_runs_back_and_forth():
    frame = pd.DataFrame(
        {
            "ea_id": list("abcdefgh"),
            "stratum": "s",
            "households": 10,
            "district": [1, 1, 1, 1, 2, 2, 2, 2],
            "village": [1, 2, 3, 4, 1, 2, 3, 4],
        }
    )
    s = select_eas(
        frame,
        {"s": 8},
        method="systematic",
        sort_by=["district", "village"],
        serpentine=True,
        rng=1,
    )
    # take-all: every EA, in serpentine order 1-4 up, then 4-1 down
    assert s["certainty"].all()
    s = select_eas(
        frame,
        {"s": 4},
        method="systematic",
        sort_by=["district", "village"],
        serpentine=True,
        rng=3,
    )
    # every other EA along the path a b c d h g f e
    path = list("abcdhgfe")
    picked = [path.index(e) for e in s["ea_id"]]
    assert np.diff(picked).tolist() == [2, 2, 2]


def test_allocation_above_number_of_eas_explains_certainty():
    with pytest.raises(SamplingError) as err:
        select_eas(_frame(), {"north": 13, "south": 3, "west": 2}, rng=1)
    e = err.value
    assert e.stratum == "north" and "only 12" in str(e)
    assert "certainty" in e.hint and "take-all" in e.hint


def test_bad_allocations_and_sizes():
    frame = _frame()
    with pytest.raises(SamplingError, match="no allocation") as err:
        select_eas(frame, {"north": 2, "south": 2}, rng=1)
    assert err.value.stratum == "west"
    with pytest.raises(SamplingError, match="not in the frame"):
        select_eas(frame, ALLOC | {"east": 1}, rng=1)
    bad = frame.assign(households=frame["households"].where(frame.index != 7, 0))
    with pytest.raises(SamplingError, match="positive") as err:
        select_eas(bad, ALLOC, rng=1)
    assert err.value.key == "index 7"
    dup = frame.assign(ea_id=frame["ea_id"].where(frame.index != 3, "EA000"))
    # duplicates are check_frame's job; select_eas refuses a sample holding one id twice
    with pytest.raises(SamplingError, match="twice among the selected") as err:
        select_eas(dup, {"north": 12, "south": 3, "west": 2}, rng=1)
    assert "check_frame" in err.value.hint
    with pytest.raises(SamplingError, match="unknown EA selection method"):
        select_eas(frame, ALLOC, method="pps_murphy", rng=1)


def test_accepts_allocation_table():
    from sampling.allocation import allocate, strata_summary

    frame = _frame()
    alloc = allocate(strata_summary(frame), 9, minimum=2)
    s = select_eas(frame, alloc, rng=3)
    assert s.groupby("stratum").size().to_dict() == dict(zip(alloc["stratum"], alloc["n"]))
