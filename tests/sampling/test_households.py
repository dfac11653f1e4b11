"""Phase 2: household selection, reserves, pi2, base weights; simulation checks.

Repeated selections are vectorised by tiling: R copies of a listing (or frame) with
renamed EAs (strata) are selected in ONE call, each copy independently. Frequencies are
compared with the recorded probabilities by the binomial z bound |z| < 4.5 (for K units
the false-alarm chance is at most K * 6.8e-6); the Horvitz-Thompson total is compared
with the truth by |mean - T| < 4.5 simulation standard errors. Seeds are fixed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sampling.eas import select_eas
from sampling.households import base_weights, household_cells, select_households
from survey.errors import SamplingError

TAKE = {"emigrant": 3, "returnee": 2, "none": 4}


def _listing(seed: int = 0, eas: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(8, 40, eas)
    ea = np.repeat([f"E{e}" for e in range(eas)], sizes)
    return pd.DataFrame(
        {
            "ea_id": ea,
            "hh_id": [f"{e}-{i}" for e, i in zip(ea, np.arange(ea.size))],
            "group": rng.choice(["emigrant", "returnee", "none"], ea.size, p=[0.2, 0.08, 0.72]),
            "head_name": "Synthetic Person",
        }
    )


def _tile(listing: pd.DataFrame, R: int) -> pd.DataFrame:
    rep = np.repeat(np.arange(R), len(listing))
    big = pd.concat([listing] * R, ignore_index=True)
    return big.assign(
        ea_id=big["ea_id"] + "#" + rep.astype(str),
        hh_id=big["hh_id"] + "#" + rep.astype(str),
        rep=rep,
    )


@pytest.mark.parametrize("method", ["systematic", "srs"])
def test_household_frequencies_match_pi2_and_sizes_are_exact(method):
    listing = _listing().assign(orig=lambda d: np.arange(len(d)))
    R = 2000
    s = select_households(_tile(listing, R), TAKE, method=method, reserve=2, rng=11)
    main = s.loc[~s["reserve"]]
    cells = household_cells(listing, TAKE)
    assert (cells["m_hig"] == np.minimum(cells["take"], cells["L_hig"])).all()
    # exact sizes: every EA x group cell of every replicate gives m_hig households
    cell_of = listing.merge(cells, on=["ea_id", "group"], how="left")
    base_ea = listing["ea_id"].to_numpy()[main["orig"].to_numpy()]
    cell_index = pd.MultiIndex.from_frame(cells[["ea_id", "group"]])
    key = main["rep"].to_numpy() * len(cells) + cell_index.get_indexer(
        pd.MultiIndex.from_arrays([base_ea, main["group"].to_numpy()])
    )
    got = np.bincount(key, minlength=R * len(cells)).reshape(R, len(cells))
    assert (got == cells["m_hig"].to_numpy()[None, :]).all()
    # frequencies against the recorded pi2
    p = (cell_of["m_hig"] / cell_of["L_hig"]).to_numpy()
    recorded = main.groupby("orig")["pi2"].first()
    np.testing.assert_allclose(recorded.to_numpy(), p[recorded.index.to_numpy()])
    c = np.bincount(main["orig"].to_numpy(), minlength=len(listing))
    free = p < 1
    z = (c[free] - R * p[free]) / np.sqrt(R * p[free] * (1 - p[free]))
    assert np.abs(z).max() < 4.5
    assert (c[~free] == R).all()
    # reserves: ordered 1..k within each cell, never a selected household, same pi2
    res = s.loc[s["reserve"]]
    expected = (
        res.sort_values(["ea_id", "group", "reserve_order"]).groupby(["ea_id", "group"]).cumcount()
        + 1
    )
    assert (res.loc[expected.index, "reserve_order"] == expected).all()
    assert not set(res["hh_id"]) & set(main["hh_id"])
    assert main["reserve_order"].isna().all()
    np.testing.assert_allclose(res["pi2"], p[res["orig"].to_numpy()])


def test_horvitz_thompson_total_is_unbiased_over_two_stages():
    rng = np.random.default_rng(8)
    H, per, R = 2, 10, 1500
    frame = pd.DataFrame(
        {
            "ea_id": [f"E{i}" for i in range(H * per)],
            "stratum": np.repeat(["a", "b"], per),
            "households": rng.integers(20, 120, H * per),
        }
    )
    # the listing finds more or fewer households than the census measure of size
    actual = np.maximum(
        1, (frame["households"] * rng.uniform(0.6, 1.5, len(frame))).round()
    ).astype(int)
    ea = np.repeat(frame["ea_id"].to_numpy(), actual)
    pop = pd.DataFrame(
        {
            "ea_id": ea,
            "hh_id": [f"h{i}" for i in range(ea.size)],
            "group": rng.choice(["emigrant", "returnee", "none"], ea.size, p=[0.15, 0.1, 0.75]),
        }
    )
    # R independent stage-1 draws in one call: strata renamed per replicate
    rep = np.repeat(np.arange(R), len(frame))
    big = pd.concat([frame] * R, ignore_index=True)
    big = big.assign(
        stratum=big["stratum"] + "#" + rep.astype(str), ea_id=big["ea_id"] + "#" + rep.astype(str)
    )
    alloc = {f"{h}#{r}": 3 for r in range(R) for h in ("a", "b")}
    eas = select_eas(big, alloc, rng=5)
    sel = eas["ea_id"].str.split("#", expand=True)
    eas_rep = eas.assign(base=sel[0], rep=sel[1].astype(int))
    lst = eas_rep[["ea_id", "base", "rep"]].merge(pop.rename(columns={"ea_id": "base"}), on="base")
    lst = lst.assign(hh_id=lst["hh_id"] + "#" + lst["rep"].astype(str)).drop(columns="base")
    hh = select_households(lst, {"emigrant": 2, "returnee": 2, "none": 3}, eas=eas, rng=6)
    w = base_weights(hh.loc[~hh["reserve"]])
    est = w.groupby("rep")["base_weight"].sum().reindex(range(R), fill_value=0).to_numpy()
    emi = (
        w.loc[w["group"] == "emigrant"]
        .groupby("rep")["base_weight"]
        .sum()
        .reindex(range(R), fill_value=0)
    )
    for e, truth in ((est, len(pop)), (emi.to_numpy(), int((pop["group"] == "emigrant").sum()))):
        se = e.std(ddof=1) / np.sqrt(R)
        assert abs(e.mean() - truth) < 4.5 * se
        assert e.std() > 0  # the check is not vacuous: estimates vary


def test_take_larger_than_listing_is_take_all_and_empty_group_is_recorded():
    listing = pd.DataFrame(
        {
            "ea_id": ["E1"] * 5 + ["E2"] * 3,
            "hh_id": [f"h{i}" for i in range(8)],
            "group": ["emigrant", "none", "none", "none", "none", "none", "none", "returnee"],
        }
    )
    s = select_households(listing, {"emigrant": 3, "returnee": 3, "none": 3}, rng=1)
    e1 = s.loc[(s["ea_id"] == "E1") & (s["group"] == "emigrant")]
    assert len(e1) == 1 and e1["pi2"].iloc[0] == 1 and e1["m_hig"].iloc[0] == 1
    assert s.attrs["empty_cells"] == 2 and e1["take_all"].all()
    # E1 emigrant (1 <= 3), E2 none (2 <= 3), E2 returnee (1 <= 3)
    assert s.attrs["take_all_cells"] == 3
    none_e1 = s.loc[(s["ea_id"] == "E1") & (s["group"] == "none")]
    assert (~none_e1["reserve"]).sum() == 3 and none_e1[
        "reserve"
    ].sum() == 1  # only 1 left for reserve
    cells = household_cells(listing, {"emigrant": 3, "returnee": 3, "none": 3})
    empty = cells.loc[cells["empty"], ["ea_id", "group"]]
    assert sorted(map(tuple, empty.to_numpy().tolist())) == [("E1", "returnee"), ("E2", "emigrant")]


def test_listing_ea_not_selected_is_an_error():
    listing = _listing()
    eas = pd.DataFrame({"ea_id": ["E0", "E1", "E2", "E3", "E4"], "stratum": "s", "pi1": 0.5})
    with pytest.raises(SamplingError, match="not selected") as err:
        select_households(listing, TAKE, eas=eas, rng=1)
    assert err.value.psu == "E5"


def test_shares_seed_and_carry_over_from_eas():
    listing = _listing()
    eas = pd.DataFrame(
        {"ea_id": [f"E{e}" for e in range(6)], "stratum": "s", "pi1": 0.25, "certainty": False}
    )
    s = select_households(
        listing, shares={"emigrant": 1, "returnee": 1, "none": 1}, per_ea=10, eas=eas, rng=3
    )
    assert s.attrs["take"] == {"emigrant": 4, "returnee": 3, "none": 3}
    assert {"stratum", "pi1", "certainty"} <= set(s.columns)
    again = select_households(
        listing,
        shares={"emigrant": 1, "returnee": 1, "none": 1},
        per_ea=10,
        eas=eas,
        rng=s.attrs["seed"],
    )
    pd.testing.assert_frame_equal(s, again)
    w = base_weights(s)
    np.testing.assert_allclose(w["base_weight"], 1 / (0.25 * s["pi2"]))
    before = listing.copy()
    select_households(listing, TAKE, rng=1)
    pd.testing.assert_frame_equal(listing, before)


def test_bad_takes_and_groups():
    listing = _listing()
    with pytest.raises(SamplingError, match="either take"):
        select_households(listing, rng=1)
    with pytest.raises(SamplingError, match="unknown groups"):
        select_households(listing, {"tourist": 2}, rng=1)
    bad = listing.assign(group=listing["group"].where(listing.index != 4, "visitor"))
    with pytest.raises(SamplingError, match="unknown migration group") as err:
        select_households(bad, TAKE, rng=1)
    assert err.value.column == "group"
    with pytest.raises(SamplingError, match="pi1"):
        base_weights(select_households(listing, TAKE, rng=1))
