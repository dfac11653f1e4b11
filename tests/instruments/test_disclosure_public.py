"""public_use end to end on a synthetic survey with distinctive fake identifiers.

The survey is the bundled household form answered by the package's simulator, then
given names like "Zyxqwv Testperson-0001", phone numbers "+000 555 0001" and GPS
points in the open South Pacific around made-up EA centres. Every file a release
writes (CSV, Stata, SPSS, Excel, Parquet, the report, a log) is searched for all of
them; the same scan on the original data finds them (the scan works).
"""

import logging
from datetime import date

import numpy as np
import pandas as pd
import pytest

from instruments import form_path, read_form
from instruments.disclosure import (
    coordinate_strings,
    find_leaks,
    frequencies,
    haversine_km,
    public_use,
    write_public_use,
)
from instruments.importer import import_raw
from instruments.simulate import fake_sample, simulate_submissions

K = 3


@pytest.fixture(scope="module")
def survey():
    form = read_form(form_path("household"))
    sample = fake_sample(360, np.random.default_rng(20260401), eas=18)
    raw = simulate_submissions(form, sample, np.random.default_rng(11), today=date(2026, 3, 15))
    tables = dict(import_raw(raw, form).tables)
    rng = np.random.default_rng(12)
    h = tables["household"]
    n = len(h)
    ea = h["ea_id"].astype(str).str.slice(2).astype(int).to_numpy()
    centre_lat, centre_lon = -47.0 - 0.137 * ea, -131.0 - 0.113 * ea  # ocean, 18 centres
    lat = np.round(centre_lat + rng.normal(0, 0.006, n), 6)
    lon = np.round(centre_lon + rng.normal(0, 0.006, n), 6)
    done = h["respondent_name"].notna().to_numpy()
    h = h.assign(
        respondent_name=pd.array(np.where(done, [f"Zyxqwv Testperson-{i:04d}" for i in range(n)],
                                          None), dtype="string"),
        respondent_phone=pd.array([f"+000 555 {i:04d}" for i in range(n)], dtype="string"),
        comments=pd.array([f"Qxvbn lives by the Wkzqy river, house {i}" for i in range(n)],
                          dtype="string"),
        gps__latitude=pd.array(np.where(done, lat, np.nan), dtype="Float64"),
        gps__longitude=pd.array(np.where(done, lon, np.nan), dtype="Float64"),
        weight=1.0 / (h["pi1"].astype(float) * h["pi2"].astype(float)),
        urban=np.where(h["stratum"].eq("S1").to_numpy(dtype=bool), "urban", "rural"),
    )
    tables["household"] = h
    m = tables["members"]
    tables["members"] = m.assign(member_name=pd.array(
        [f"Zyxqwv Memberfake-{i:05d}" for i in range(len(m))], dtype="string"))
    e = tables["emigrants"]
    tables["emigrants"] = e.assign(em_name=pd.array(
        [f"Zyxqwv Emigrantfake-{i:04d}" for i in range(len(e))], dtype="string"))
    return form, tables


@pytest.fixture(scope="module")
def released(survey):
    form, tables = survey
    copies = {t: df.copy() for t, df in tables.items()}
    res = public_use(tables, form, weights="weight", k=K, rng=np.random.default_rng(99),
                     urban="urban")
    for t in tables:  # inputs never mutated
        pd.testing.assert_frame_equal(tables[t], copies[t])
    return res


def _secrets(tables):
    h = tables["household"]
    out = ["Zyxqwv", "Testperson", "Memberfake", "Emigrantfake", "Qxvbn", "Wkzqy"]
    out += h["respondent_name"].dropna().tolist() + h["respondent_phone"].dropna().tolist()
    out += tables["members"]["member_name"].tolist() + tables["emigrants"]["em_name"].tolist()
    for la, lo in zip(h["gps__latitude"].dropna(), h["gps__longitude"].dropna()):
        out += coordinate_strings(float(la), float(lo), decimals=(6,))
        out += [f"{la:.5f} {lo:.5f}", f"{la:.5f},{lo:.5f}"]
    return out


def test_no_identifier_in_any_public_output(survey, released, tmp_path):
    _, tables = survey
    out = tmp_path / "public"
    files = write_public_use(released, out, formats=("csv", "dta", "sav", "xlsx", "parquet"))
    assert {p.suffix for p in files} == {".csv", ".dta", ".sav", ".xlsx", ".parquet", ".md",
                                         ".json"}
    log = out / "release.log"
    handler = logging.FileHandler(log)
    logger = logging.getLogger("test_disclosure_release")
    logger.addHandler(handler)
    logger.warning("released %r", released)
    logger.warning("risk\n%s", released.report.risk.to_string())
    logger.warning("tables\n%s", {t: df.head(20).to_string() for t, df in released.tables.items()})
    handler.close()
    logger.removeHandler(handler)
    secrets = _secrets(tables)
    assert len(secrets) > 3000
    leaks = find_leaks(out, secrets)
    assert leaks.empty, leaks.head(10).to_string()
    # the same scan on the secure data finds every kind of secret (the scan works)
    secure = tmp_path / "secure"
    secure.mkdir()
    for t, df in tables.items():
        df.to_csv(secure / f"{t}.csv", index=False)
    released.crosswalk.to_csv(secure / "crosswalk.csv", index=False)
    found = set(find_leaks(secure, secrets)["secret"])
    h = tables["household"]
    la, lo = h["gps__latitude"].dropna().iloc[0], h["gps__longitude"].dropna().iloc[0]
    assert {h["respondent_name"].dropna().iloc[0], h["respondent_phone"].iloc[0],
            tables["members"]["member_name"].iloc[5], f"{la:.6f}", f"{lo:.6f}"} <= found
    # and the crosswalk is the only link back: original keys appear nowhere public
    orig_keys = h["key"].tolist()[:50] + h["hh_id"].tolist()[:50]
    assert find_leaks(out, orig_keys).empty


def test_direct_identifiers_are_gone_and_ids_replaced(survey, released):
    _, tables = survey
    h = released.tables["household"]
    for col in ("respondent_name", "respondent_phone", "comments", "rem_uses_other",
                "gps__latitude", "gps__altitude", "deviceid", "submitter"):
        assert col not in h.columns
    assert "member_name" not in released.tables["members"]
    assert "em_name" not in released.tables["emigrants"]
    assert h["key"].str.fullmatch(r"S\d{5}").all() and h["ea_id"].str.fullmatch(r"EA\d{5}").all()
    assert h["key"].is_monotonic_increasing  # released in random-code order
    # links survive: every member's parent is a released household
    assert released.tables["members"]["parent_key"].isin(h["key"]).all()
    # the crosswalk maps codes back to the original submissions
    cw = released.crosswalk
    back = cw[cw["column"] == "household.key"].set_index("code")["original"]
    assert set(back.reindex(h["key"]).to_numpy()) == set(tables["household"]["key"])
    # dates are months only
    assert h["interview_date"].dropna().str.fullmatch(r"\d{4}-\d{2}").all()


def _public_keys(pub):
    h = pub["household"].set_index("key")
    frames = {"household": pub["household"][["stratum", "hh_size"]]}
    for t, own in (("members", ["sex", "age", "ret_country"]),
                   ("emigrants", ["em_sex", "em_age_left", "em_country"])):
        d = pub[t]
        frames[t] = d[own].assign(
            stratum=h["stratum"].reindex(d["parent_key"]).to_numpy(),
            hh_size=h["hh_size"].reindex(d["parent_key"]).to_numpy())
    return frames


def test_k_anonymity_holds_in_the_written_files(released, tmp_path):
    write_public_use(released, tmp_path, formats=("csv",))
    pub = {t: pd.read_csv(tmp_path / f"{t}.csv") for t in released.tables}
    for t, frame in _public_keys(pub).items():
        fk = frequencies(frame, list(frame.columns))["fk"]
        assert (fk >= K).all(), (t, int((fk < K).sum()))
    # and it did not hold before treatment
    risk = released.report.risk.set_index(["table", "stage"])
    assert risk.loc[("members", "before"), f"below_k{K}"] > 100
    assert (risk.xs("after", level="stage")[f"below_k{K}"] == 0).all()
    er = risk["expected_reidentifications"]
    for t in released.tables:
        assert er[(t, "after")] < er[(t, "before")]
    assert er[("members", "after")] < 0.05 * er[("members", "before")]


def test_report_says_what_was_done(released):
    r = released.report
    assert {"respondent_name", "gps__latitude", "comments"} <= set(r.removed["column"])
    assert set(r.top_coded["column"]) >= {"age", "rem_amount", "spend_food_month"}
    assert r.suppressed["cells"].sum() > 0 and r.gps["mode"] == "cluster"
    assert r.gps["units"] == 18
    md, js = r.to_markdown(), r.to_json()
    assert "Re-identification risk" in md and '"stage": "after"' in js
    assert "Zyxqwv" not in md + js
    assert "crosswalk" not in repr(released) and "uuid:" not in repr(released)


def test_gps_displaced_within_dhs_bounds(survey, released):
    _, tables = survey
    h0 = tables["household"].dropna(subset=["gps__latitude"])
    centre = h0.groupby("ea_id").agg(lat=("gps__latitude", "mean"), lon=("gps__longitude", "mean"),
                                     urban=("urban", lambda s: (s == "urban").any()))
    h1 = released.tables["household"]
    cw = released.crosswalk
    ea_back = cw[cw["column"] == "id:ea_id"].set_index("code")["original"]
    pts = h1.assign(ea=ea_back.reindex(h1["ea_id"]).to_numpy()).groupby("ea")[
        ["gps_lat", "gps_lon"]].agg(["min", "max", "count"])
    # one released point per EA
    assert (pts[("gps_lat", "min")] == pts[("gps_lat", "max")]).all()
    p = pts.xs("min", axis=1, level=1).join(centre, how="inner")
    d = haversine_km(p["lat"], p["lon"], p["gps_lat"], p["gps_lon"])
    assert (d[p["urban"].to_numpy(dtype=bool)] <= 2.0 + 0.01).all()
    assert (d <= 10.0 + 0.01).all() and d.max() > 0.05
    assert len(p) == 18


def _weighted(df, col, w, value=None):
    x = df[col] if value is None else (df[col] == value).astype(float).where(df[col].notna())
    x = pd.to_numeric(x, errors="coerce")
    ok = x.notna().to_numpy()
    return float(np.average(x[ok], weights=np.asarray(w)[ok]))


def test_estimates_from_the_public_file_stay_close(survey, released, tmp_path):
    """Indicator means from the written CSVs against the full data.

    Stated distances: indicators that are not key variables move only by top-coding,
    which keeps weighted means (replaced by the mean above the threshold): within
    1e-6 relative. Key variables lose suppressed cells: household size within 5%,
    the share of women within 0.02, stratum shares within 0.02.
    """
    _, tables = survey
    write_public_use(released, tmp_path, formats=("csv",))
    pub = {t: pd.read_csv(tmp_path / f"{t}.csv") for t in released.tables}
    h0, h1 = tables["household"], pub["household"]
    m0, m1 = tables["members"], pub["members"]
    wm0 = h0.set_index("key")["weight"].reindex(m0["parent_key"]).to_numpy()
    wm1 = h1.set_index("key")["weight"].reindex(m1["parent_key"]).to_numpy()
    for col in ("rem_amount", "spend_food_month", "spend_total_month", "rooms"):
        assert _weighted(h1, col, h1["weight"]) == pytest.approx(
            _weighted(h0, col, h0["weight"]), rel=1e-6), col
    for col, val in (("rem_received", "yes"), ("electricity", "yes")):
        assert _weighted(h1, col, h1["weight"], val) == pytest.approx(
            _weighted(h0, col, h0["weight"], val), abs=1e-9)
    for col, val in (("insured", "yes"), ("worked", "yes")):
        assert _weighted(m1, col, wm1, val) == pytest.approx(_weighted(m0, col, wm0, val),
                                                             abs=1e-9)
    assert _weighted(h1, "hh_size", h1["weight"]) == pytest.approx(
        _weighted(h0, "hh_size", h0["weight"]), rel=0.05)
    assert _weighted(m1, "sex", wm1, "female") == pytest.approx(
        _weighted(m0, "sex", wm0, "female"), abs=0.02)
    for s in ("S1", "S2", "S3", "S4"):
        assert _weighted(h1, "stratum", h1["weight"], s) == pytest.approx(
            _weighted(h0, "stratum", h0["weight"], s), abs=0.02)
    # the report states the same shifts
    est = released.report.estimates
    row = est[(est["table"] == "household") & (est["column"] == "hh_size")].iloc[0]
    assert row["public"] == pytest.approx(_weighted(h1, "hh_size", h1["weight"]), rel=1e-9)


def test_gps_options(survey):
    form, tables = survey
    small = {"household": tables["household"].iloc[:60]}
    small["members"] = tables["members"][tables["members"]["parent_key"].isin(
        small["household"]["key"])]
    dropped = public_use(small, form, weights="weight", rng=np.random.default_rng(1), gps="drop")
    assert not any("lat" in c or "lon" in c for c in dropped.tables["household"].columns)
    each = public_use(small, form, weights="weight", rng=np.random.default_rng(1),
                      gps="household", urban="urban")
    h = each.tables["household"]
    assert h["gps_lat"].notna().sum() == small["household"]["gps__latitude"].notna().sum()
    assert each.report.gps["mode"] == "household"


def test_child_records_at_risk_blank_their_household_values():
    """Emigrants carry their household's stratum and size as key variables. Two
    emigrants come from S1 households, one from an S2 household: with every emigrant
    variable blank that one still has f_k = 1, so the stratum of its household is
    blanked (in the household table, where it stays k-anonymous)."""
    form = read_form(form_path("household"))
    h = pd.DataFrame({"key": [f"uuid:h{i}" for i in range(6)], "parent_key": pd.NA,
                      "stratum": ["S1", "S1", "S1", "S2", "S2", "S2"],
                      "hh_size": pd.array([4] * 6, dtype="Int64"), "weight": 10.0})
    e = pd.DataFrame({"key": ["uuid:h0/e[1]", "uuid:h1/e[1]", "uuid:h3/e[1]"],
                      "parent_key": ["uuid:h0", "uuid:h1", "uuid:h3"],
                      "em_sex": pd.Categorical(["male", "female", "male"]),
                      "em_age_left": pd.array([22, 30, 41], dtype="Int64"),
                      "em_country": pd.Categorical(["fr", "fr", "it"])})
    res = public_use({"household": h, "emigrants": e}, form, weights="weight", k=3,
                     rng=np.random.default_rng(5), age_bands=None, top_codes={})
    pub = res.tables
    frames = _public_keys({**pub, "members": pub["emigrants"].iloc[:0].assign(
        sex=[], age=[], ret_country=[])})
    for t in ("household", "emigrants"):
        assert (frequencies(frames[t], list(frames[t].columns))["fk"] >= 3).all(), t
    sup = res.report.suppressed.set_index(["table", "column"])["cells"]
    assert sup[("household", "stratum")] == 1
    risk = res.report.risk.set_index(["table", "stage"])
    assert risk.loc[("emigrants", "after"), "below_k3"] == 0
