"""Confidentiality end to end: no identifier anywhere it does not belong.

The demo pipeline runs through the CLI on a small country whose simulated
respondents have distinctive names ("Xylqor Vandrex <code>"), phone numbers
("+999 77dddddd") and GPS points (in the open South Pacific, one cluster per EA), see
``survey.demo.fieldwork.distinctive_identities``. Every output the tool produces is
written (public-use files in every format, the labelled exports in every format, the
impact tables, the HTML report, the field files) and the CLI's stdout and stderr are
kept in a log; :func:`instruments.disclosure.find_leaks` then searches all of it.
The secrets come from the secure store, where they must be (the scan is shown to
find them there).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from instruments.disclosure import coordinate_strings, find_leaks, frequencies
from survey.cli import app
from survey.store import Store

runner = CliRunner()
SMALL = ["--eas", "400", "--households", "60000", "--sample-eas", "30"]
FORMATS = ["-f", "csv", "-f", "dta", "-f", "sav", "-f", "xlsx", "-f", "parquet"]
WORDS = ["Xylqor", "Vandrex", "Membrix", "Awayne", "Wkzqyth"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A demo project with every output written; the CLI's output kept in out/logs/cli.log."""
    d = tmp_path_factory.mktemp("conf") / "demo"
    log: list[str] = []
    for args in (["demo", str(d), *SMALL], ["-C", str(d), "export", *FORMATS],
                 ["-C", str(d), "export", "--public-use", *FORMATS],
                 ["-C", str(d), "report"], ["-C", str(d), "status"],
                 ["-C", str(d), "--json", "--debug", "status"]):
        r = runner.invoke(app, args, catch_exceptions=False)
        assert r.exit_code == 0, (args, r.output)
        log += [f"$ survey {' '.join(args)}", r.stdout, r.stderr]
    (d / "out" / "logs").mkdir()
    (d / "out" / "logs" / "cli.log").write_text("\n".join(log), encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def secure(project):
    with Store(project, read_only=True) as st:
        return {"household": st.read("data.household"), "members": st.read("data.members"),
                "emigrants": st.read("data.emigrants"),
                "crosswalk": st.read("public_use_crosswalk"), "risk": st.read("disclosure_risk")}


def identifiers(secure) -> list[str]:
    """Names, phones, free text and GPS points as they may be written (from the store)."""
    h = secure["household"]
    out = list(WORDS)
    for col in ("respondent_name", "respondent_phone", "comments"):
        out += h[col].dropna().astype(str).tolist()
    out += secure["members"]["member_name"].dropna().astype(str).tolist()
    out += secure["emigrants"]["em_name"].dropna().astype(str).tolist()
    gps = h[["gps__latitude", "gps__longitude"]].dropna()
    for la, lo in gps.itertuples(index=False):
        out += coordinate_strings(float(la), float(lo), decimals=(5, 6))
    return out


def test_the_demo_identifiers_are_distinctive_and_in_the_store(secure):
    h = secure["household"]
    names = h["respondent_name"].dropna()
    assert len(names) > 300 and names.str.fullmatch(r"Xylqor Vandrex [a-z]{6}").all()
    assert h["respondent_phone"].dropna().str.fullmatch(r"\+999 77\d{6}").all()
    lat = h["gps__latitude"].dropna()
    assert len(lat) > 300 and lat.between(-48, -46).all()
    assert secure["members"]["member_name"].dropna().str.startswith("Xylqor Membrix ").all()


def test_no_identifier_in_any_output_or_log(project, secure, tmp_path):
    secrets = identifiers(secure)
    assert len(secrets) > 5000
    out = project / "out"
    kinds = {p.suffix for p in out.rglob("*") if p.is_file()}
    assert {".csv", ".dta", ".sav", ".xlsx", ".parquet", ".html", ".md", ".json", ".log"} <= kinds
    leaks = find_leaks(out, secrets)
    assert leaks.empty, leaks.head(10).to_string()
    # the scan works: the same secrets are found in a dump of the secure store
    for t in ("household", "members", "emigrants"):
        secure[t].head(200).to_csv(tmp_path / f"{t}.csv", index=False)
    found = set(find_leaks(tmp_path, secrets)["secret"])
    h = secure["household"].dropna(subset=["respondent_name"]).iloc[0]
    assert {h["respondent_name"], h["respondent_phone"], f"{h['gps__latitude']:.6f}",
            "Xylqor", secure["members"]["member_name"].iloc[0]} <= found


def test_public_use_files_hold_no_original_id_and_the_crosswalk_stays_in_the_store(project,
                                                                                  secure):
    cw = secure["crosswalk"]
    assert len(cw) and {"code", "original"} <= set(cw.columns)
    h = secure["household"]
    originals = h["key"].astype(str).tolist() + h["hh_id"].dropna().astype(str).tolist()
    public = project / "out" / "public"
    assert find_leaks(public, originals).empty
    assert not [p for p in (project / "out").rglob("*") if "crosswalk" in p.name.lower()]
    # and the released codes map back to real submissions through the store only
    pub = pd.read_csv(public / "household.csv")
    back = cw[cw["column"] == "household.key"].set_index("code")["original"]
    assert set(back.reindex(pub["key"]).to_numpy()) <= set(h["key"].astype(str))


def _key_frames(public, keys):
    """Each table's key variables with those of its ancestors (as the risk counts them)."""
    h = pd.read_csv(public / "household.csv")
    hk = h.set_index("key")[keys["household"]]
    frames = {"household": h[keys["household"]]}
    for t in ("members", "emigrants"):
        d = pd.read_csv(public / f"{t}.csv")
        own = d[keys.get(t, [])].reset_index(drop=True)
        up = hk.reindex(d["parent_key"]).reset_index(drop=True)
        frames[t] = pd.concat([own, up], axis=1)
    return frames


def test_k_anonymity_holds_in_the_written_public_files(project, secure):
    public = project / "out" / "public"
    report = json.loads((public / "disclosure_report.json").read_text())
    k = report["parameters"]["k"] if "parameters" in report else 3
    assert k == 3  # the default of [output] k_anonymity
    keys = report["parameters"]["keys"]
    assert {"region", "urban"} <= set(keys["household"])
    for t, frame in _key_frames(public, keys).items():
        fk = frequencies(frame, list(frame.columns))["fk"].to_numpy()
        assert (fk >= k).all(), (t, int((fk < k).sum()))
    risk = secure["risk"].set_index(["table", "stage"])
    assert risk.loc[("members", "before"), f"below_k{k}"] > 0  # it did not hold before
    assert (risk.xs("after", level="stage")[f"below_k{k}"] == 0).all()
    # the report says what was removed: every direct identifier of the form
    md = (public / "disclosure_report.md").read_text()
    for col in ("respondent_name", "respondent_phone", "member_name", "em_name", "comments"):
        assert col in md


def test_released_gps_is_one_displaced_point_per_ea(project, secure):
    from instruments.disclosure import haversine_km

    pub = pd.read_csv(project / "out" / "public" / "household.csv")
    assert "gps__latitude" not in pub.columns
    pts = pub.dropna(subset=["gps_lat"]).groupby("ea_id")[["gps_lat", "gps_lon"]].nunique()
    assert (pts <= 1).all().all()
    h = secure["household"].dropna(subset=["gps__latitude"])
    cw = secure["crosswalk"]
    ea_back = cw[cw["column"] == "id:ea_id"].set_index("code")["original"]
    centre = h.groupby("ea_id")[["gps__latitude", "gps__longitude"]].mean()
    rel = pub.dropna(subset=["gps_lat"]).assign(
        ea=lambda d: ea_back.reindex(d["ea_id"]).to_numpy()).drop_duplicates("ea")
    c = centre.reindex(rel["ea"])
    dist = haversine_km(c["gps__latitude"].to_numpy(), c["gps__longitude"].to_numpy(),
                        rel["gps_lat"].to_numpy(), rel["gps_lon"].to_numpy())
    assert np.isfinite(dist).all() and (dist <= 10.0 + 0.01).all() and dist.max() > 0.05
