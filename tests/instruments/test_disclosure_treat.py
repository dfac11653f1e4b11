"""Top-coding, rare categories, bands, dates, random codes; and find_leaks on every
format it decodes (each planted secret must be found: the scanner's own sanity check)."""

import json

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from instruments.disclosure import TopCode, coordinate_strings, find_leaks
from instruments.disclosure.treat import band, coarsen_dates, group_rare, pseudonymise, top_code
from survey.errors import InstrumentError


def test_top_code_threshold_and_mean():
    df = pd.DataFrame({"age": pd.array([10, 85, 90, None], dtype="Int64"),
                       "amount": pd.array([1.0, 2.0, 3.0, 100.0, 200.0], dtype="Float64")[:4]})
    w = np.array([1.0, 2.0, 1.0, 1.0])
    out, done = top_code(df, {"age": TopCode(threshold=80),
                              "amount": TopCode(threshold=2.5, replace="mean")}, w)
    assert out["age"].tolist()[:3] == [10, 80, 80] and pd.isna(out["age"].iloc[3])
    assert out["age"].dtype == "Int64"
    # values above 2.5 (3 and 100, weights 1 and 1) become their weighted mean 51.5
    assert out["amount"].tolist() == [1.0, 2.0, 51.5, 51.5]
    a, b = df["amount"].to_numpy(float), out["amount"].to_numpy(float)
    assert np.average(a, weights=w) == pytest.approx(np.average(b, weights=w))
    assert done.set_index("column")["records"].to_dict() == {"age": 2, "amount": 2}
    assert df["age"].tolist()[1] == 85  # input untouched
    with pytest.raises(InstrumentError):
        TopCode()
    q, _ = top_code(pd.DataFrame({"x": np.arange(1.0, 101.0)}), {"x": TopCode(quantile=0.95)})
    assert q["x"].max() == 95.0


def test_group_rare_categories():
    s = pd.Categorical(["fr"] * 12 + ["it"] * 10 + ["tr"] * 3 + ["ae"] + [None],
                       categories=["fr", "it", "tr", "ae", "us", "other"])
    out, done = group_rare(pd.DataFrame({"c": s}), ["c"], min_count=10)
    assert out["c"].value_counts().to_dict() == {"fr": 12, "it": 10, "other": 4}
    assert list(out["c"].cat.categories) == ["fr", "it", "other"]
    assert set(done["category"]) == {"tr", "ae"} and done["records"].sum() == 4
    assert out["c"].isna().sum() == 1


def test_bands_and_dates():
    out, done = band(pd.DataFrame({"age": pd.array([0, 4, 5, 37, None], dtype="Int64")}),
                     ["age"], 5)
    assert out["age"].tolist()[:4] == [0, 0, 5, 35] and done["records"].iloc[0] == 2
    d = pd.DataFrame({"t": pd.to_datetime(["2026-03-14T10:11:12Z", None], utc=True),
                      "d": ["2026-01-02", "bad"]})
    out = coarsen_dates(d, ["t", "d"], "month")
    assert out["t"].tolist()[0] == "2026-03" and pd.isna(out["t"].iloc[1])
    assert out["d"].tolist()[0] == "2026-01"


def test_random_codes_are_consistent_and_unordered():
    ids = pd.Series([f"HH{i:04d}" for i in range(200)] + ["HH0001", None])
    codes, mapping = pseudonymise(ids, "H", np.random.default_rng(1))
    assert codes.iloc[1] == codes.iloc[200] and pd.isna(codes.iloc[201])
    assert codes.iloc[:200].nunique() == 200
    nums = codes.iloc[:200].str.slice(1).astype(int).to_numpy()
    assert sorted(nums) == list(range(1, 201))
    assert abs(np.corrcoef(nums, np.arange(200))[0, 1]) < 0.3  # order not kept
    more, m2 = pseudonymise(pd.Series(["HH0001", "NEW"]), "H", np.random.default_rng(2), mapping)
    assert more.iloc[0] == mapping["HH0001"] and m2["NEW"] == "H00201"


# ---------------------------------------------------------------- find_leaks

NAME = "Zyxqwv Testperson-0042"
PHONE = "+000 555 0142"
LAT, LON = -46.318274, -131.902615


def _plant(tmp_path):
    df = pd.DataFrame({"who": [NAME, "nobody"], "tel": [PHONE, "x"],
                       "lat": [LAT, 1.5], "lon": [LON, 2.5]})
    files = {}
    files["csv"] = tmp_path / "a.csv"
    df.to_csv(files["csv"], index=False)
    files["xlsx"] = tmp_path / "a.xlsx"
    df.to_excel(files["xlsx"], index=False)
    files["dta"] = tmp_path / "a.dta"
    pyreadstat.write_dta(df, str(files["dta"]))
    files["sav"] = tmp_path / "a.sav"
    pyreadstat.write_sav(df, str(files["sav"]))
    files["parquet"] = tmp_path / "a.parquet"
    df.to_parquet(files["parquet"])
    files["html"] = tmp_path / "a.html"
    files["html"].write_text(df.to_html(), encoding="utf-8")
    files["json"] = tmp_path / "a.json"
    files["json"].write_text(json.dumps(df.to_dict(orient="records")), encoding="utf-8")
    files["log"] = tmp_path / "run.log"
    files["log"].write_text(f"INFO called {PHONE.replace(' ', '-')} at {LAT:.5f} {LON:.5f}\n")
    return files


def test_find_leaks_finds_planted_secrets_in_every_format(tmp_path):
    files = _plant(tmp_path)
    secrets = [NAME, PHONE, *coordinate_strings(LAT, LON, decimals=(5, 6))]
    found = find_leaks(tmp_path, secrets)
    for kind, path in files.items():
        hits = set(found.loc[found["path"] == str(path), "secret"])
        if kind == "log":
            assert {PHONE, f"{LAT:.5f} {LON:.5f}"} <= hits, kind
        else:
            assert {NAME, PHONE, f"{LAT:.6f}", f"{LON:.6f}"} <= hits, (kind, hits)


def test_find_leaks_case_and_separators_and_clean_files(tmp_path):
    (tmp_path / "x.txt").write_text("ZYXQWV TESTPERSON-0042 tel 000-555-0142, ok\n")
    (tmp_path / "clean.csv").write_text("a,b\n1,2\n0005550143,x\n")
    found = find_leaks([tmp_path / "x.txt", tmp_path / "clean.csv"], [NAME, PHONE])
    assert set(found["secret"]) == {NAME, PHONE}
    assert set(found["path"]) == {str(tmp_path / "x.txt")}
    assert find_leaks(tmp_path / "clean.csv", [NAME, PHONE, "  "]).empty


def test_coordinate_strings():
    s = coordinate_strings(LAT, LON, decimals=(6,))
    assert "-46.318274 -131.902615" in s and "-46.318274,-131.902615" in s
    assert any(x.startswith("46°19'") and x.endswith('W') for x in s)
