"""End to end: the `survey` command through every stage on a small demo country.

One demo project is made per module (the whole chain takes a few seconds on a
country of 600 EAs); tests that change a project work on a copy of it.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyreadstat
import pytest
import requests
from typer.testing import CliRunner

from survey.cli import app
from survey.project import Project
from survey.store import STORE_FILE, Store

runner = CliRunner()

SMALL = ["--eas", "600", "--households", "90000", "--sample-eas", "40"]
STAGE_COMMANDS = [["frame", "check"], ["design"], ["select", "eas"], ["listing", "import"],
                  ["select", "households"], ["import"], ["weight"], ["export"]]
STAGE_TABLES = {"frame": ["frame"], "design": ["allocation"], "select eas": ["selected_eas"],
                "listing import": ["listing", "listing_problems"],
                "select households": ["sample", "household_cells"],
                "import": ["import_batches", "import_ledger", "problems", "data.household",
                           "data.members", "data.emigrants"],
                "weight": ["weights", "replicate_weights", "weight_chain", "weight_controls"],
                "export": []}


def cli(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def snapshot(root) -> dict[str, pd.DataFrame]:
    with Store(root, read_only=True) as st:
        names = st.tables("main") + [f"data.{t}" for t in st.tables("data")]
        return {n: st.read(n) for n in names if n != "stages"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e") / "demo"
    r = cli("--json", "demo", str(d), *SMALL)
    assert r.exit_code == 0, r.output
    return d, json.loads(r.stdout)


@pytest.fixture
def copy(demo, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(demo[0], d)
    return d


def test_demo_runs_every_stage_and_fills_the_store(demo):
    d, out = demo
    status = json.loads(cli("-C", str(d), "--json", "status").stdout)
    done = [s for s, v in status["stages"].items() if v["done"]]
    assert done == ["frame", "design", "select_eas", "listing", "select_households", "import",
                    "weight", "export"]
    assert not any(v["stale"] for v in status["stages"].values())
    t = status["tables"]
    assert t["frame"] == 600 and t["selected_eas"] == 40
    with Store(d, read_only=True) as st:
        sel = st.read("selected_eas")
        listing = st.read("listing")
        sample = st.read("sample")
        ledger = st.read("import_ledger")
        w = st.read("weights")
        rep = st.read("replicate_weights")
        info = st.read("replicate_info")
        problems = st.read("problems")
    assert len(listing) == sel["households"].sum()  # the demo lists the census count
    main = sample[~sample["reserve"]]
    assert len(main) == out["stages"]["select_households"]["counts"]["households"]
    assert ((main["pi2"] - main["m_hig"] / main["L_hig"]).abs() < 1e-12).all()
    # every row read is kept, quarantined or a duplicate
    assert (ledger["read"] == ledger["kept"] + ledger["quarantined"] + ledger["duplicates"]).all()
    assert ledger["duplicates"].sum() > 0 and ledger["quarantined"].sum() > 0
    assert {"E303", "E304"} & set(problems["code"])  # the injected bad values
    # weights: one row per sampled household, raked to the census totals
    assert len(w) == len(main) and set(w["hh_id"]) == set(main["hh_id"])
    assert (w.loc[~w["responded"], "weight"] == 0).all() and (w.loc[w["responded"], "weight"] > 0).all()
    assert abs(w["weight"].sum() - 90_000) < 1e-6 * 90_000
    for c in ("w_base", "w_nonresponse", "w_calibrated"):
        assert c in w.columns
    assert np.allclose(w["w_base"], 1 / (w["pi1"] * w["pi2"]))
    assert rep.shape[1] - 2 == 40 == len(info)  # JKn: one replicate per EA
    totals = pd.read_csv(d / "data" / "census_totals.csv")
    region = w.groupby("region")["weight"].sum()
    want = totals[totals["margin"] == "region"].set_index("level")["total"]
    assert np.allclose(region.reindex(want.index), want)


def test_outputs_are_written_and_readable(demo):
    d, out = demo
    fw = d / "out" / "fieldwork"
    preload = pd.read_csv(fw / "households.csv")
    assert list(preload.columns) == ["name", "label", "hh_id", "ea_id", "stratum", "group",
                                     "L_hig", "m_hig", "pi1", "pi2"]
    assert pd.ExcelFile(fw / "assignments.xlsx").sheet_names == ["EAs", "households"]
    head = pd.read_csv(d / "out" / "headline.csv")
    assert len(head) == 10 and set(head["group"]) == {"emigrant", "returnee"}
    assert head["covered"].mean() >= 0.7  # a small sample; the full demo checks all
    df, meta = pyreadstat.read_dta(str(d / "out" / "data" / "household.dta"))
    assert len(df) == out["stages"]["weight"]["counts"]["respondent"]
    assert meta.column_names_to_labels["weight"] == "Final household weight"
    assert meta.variable_value_labels["rem_received"] == {1: "Yes", 2: "No"}
    assert "respondent_name" not in df.columns and "gps__latitude" not in df.columns
    sav, _ = pyreadstat.read_sav(str(d / "out" / "data" / "members.sav"))
    assert "member_name" not in sav.columns and (sav["weight"] > 0).all()
    pq = pd.read_parquet(d / "out" / "data" / "household.parquet")
    assert "repw_40" in pq.columns and len(pq) == len(df)


def test_second_run_of_each_stage_changes_nothing(copy):
    d = str(copy)
    before = snapshot(copy)
    for args in STAGE_COMMANDS:
        r = cli("-C", d, "--json", *args)
        assert r.exit_code == 0, (args, r.output)
    after = snapshot(copy)
    assert after.keys() == before.keys()
    for name, df in before.items():
        pd.testing.assert_frame_equal(after[name], df, obj=name)
    r = json.loads(cli("-C", d, "--json", "import").stdout)
    assert r["counts"]["new_batches"] == 0 and r["counts"]["skipped_batches"] == 1


def test_excel_export(copy):
    r = cli("-C", str(copy), "--json", "export", "--format", "xlsx")
    assert r.exit_code == 0, r.output
    book = pd.ExcelFile(copy / "out" / "data" / "survey_data.xlsx")
    assert book.sheet_names == ["household", "members", "emigrants", "notes"]
    assert (pd.read_excel(book, sheet_name="household")["weight"] > 0).all()


def assert_user_error(r, *needles):
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    for n in needles:
        assert n in r.stderr, r.stderr


def test_stage_before_the_one_it_needs(tmp_path):
    d = tmp_path / "p"
    assert cli("-q", "init", str(d)).exit_code == 0
    for args, needs in ((["weight"], "survey import"), (["import"], "survey select households"),
                        (["export"], "survey weight"), (["listing", "import"], "survey select eas"),
                        (["select", "households"], "survey listing import")):
        assert_user_error(cli("-C", str(d), *args), needs)
    with Store(d, read_only=True) as st:
        assert st.stages() == []


def test_missing_input_files(copy):
    before = snapshot(copy)
    d = str(copy)
    assert_user_error(cli("-C", d, "listing", "import", str(copy / "nope.csv")), "listing file not found")
    assert_user_error(cli("-C", d, "import", str(copy / "nope.zip")), "export not found")
    (copy / "data" / "census_totals.csv").unlink()
    assert_user_error(cli("-C", d, "weight"), "calibration totals file not found")
    after = snapshot(copy)
    for name, df in before.items():
        pd.testing.assert_frame_equal(after[name], df, obj=name)


def test_bad_listing_is_refused_and_problems_written(copy):
    f = copy / "data" / "listing.csv"
    bad = pd.read_csv(f, dtype=str)
    bad.loc[0, "ea_id"] = "EA99999"
    bad.loc[1, "group"] = "martian"
    bad.to_csv(f, index=False)
    before = snapshot(copy)["listing"]
    assert_user_error(cli("-C", str(copy), "listing", "import"), "fatal listing problems")
    problems = pd.read_csv(copy / "out" / "listing_problems.csv")
    assert {"ea_not_selected", "unknown_group"} <= set(problems["code"])
    pd.testing.assert_frame_equal(snapshot(copy)["listing"], before)


def test_misspelled_and_missing_keys(copy):
    cfg = copy / "survey.toml"
    text = cfg.read_text()
    before = snapshot(copy)
    cfg.write_text(text.replace("min_respondents = 20", "min_respondent = 20"))
    assert_user_error(cli("-C", str(copy), "weight"), "nonresponse.min_respondent",
                      "did you mean 'min_respondents'?")
    cfg.write_text(text.replace('country = "Demoland"', ""))
    assert_user_error(cli("-C", str(copy), "export"), "survey.country", "missing")
    after = snapshot(copy)
    for name, df in before.items():
        pd.testing.assert_frame_equal(after[name], df, obj=name)


def test_corrupt_store(copy):
    store = copy / STORE_FILE
    store.write_bytes(store.read_bytes()[:4096] + b"\x00garbage" * 100)
    damaged = store.read_bytes()
    for args in (["status"], ["weight"], ["import"]):
        assert_user_error(cli("-C", str(copy), *args), "project store")
    assert store.read_bytes() == damaged


# -- ODK Central, offline ----------------------------------------------------------------
class ReplayAdapter(requests.adapters.HTTPAdapter):
    """Answers every request from recorded bodies; nothing leaves the machine."""

    def __init__(self, routes):
        super().__init__()
        self.routes, self.seen = routes, []

    def send(self, request, **kwargs):
        self.seen.append((request.method, request.url))
        body = next((b for frag, b in self.routes.items() if frag in request.url), None)
        resp = requests.Response()
        resp.status_code = 200 if body is not None else 404
        resp._content = json.dumps(body or {"message": "not recorded"}).encode()
        resp.headers["Content-Type"] = "application/json"
        resp.url, resp.request = request.url, request
        return resp


def test_import_from_odk_central_offline(copy, monkeypatch, tmp_path):
    from pyodk._utils.config import CentralConfig, Config
    from pyodk.client import Client

    from instruments.formats.odata import write_odata_json
    from instruments.formats.odk_central import read_odk_central_zip
    from survey.stages import fieldwork

    secret = "s3cret-not-real-pw"
    project = Project.open(copy)
    form = fieldwork.read_project_form(project)
    raw = read_odk_central_zip(copy / "data" / "exports" / "household_central.zip", form)
    recorded = json.loads(write_odata_json(raw, tmp_path / "r.json", form).read_text())
    adapters = []

    def factory(project_id):
        config = Config(central=CentralConfig(base_url="https://central.example.invalid",
                                              username="fake@example.invalid", password=secret,
                                              default_project_id=project_id))
        client = Client(config=config, cache_path=tmp_path / "cache.toml")
        adapters.append(ReplayAdapter({"/v1/sessions": {"token": "fake-token"},
                                       "/v1/users/current": {"id": 1},
                                       "household.svc/Submissions": recorded}))
        client.session.mount("https://", adapters[-1])
        return client

    monkeypatch.setattr(fieldwork, "_central_client", factory)
    before = snapshot(copy)["data.household"]
    r = cli("-C", str(copy), "--json", "import", "--from-odk-central", "--project-id", "7")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["counts"]["new_batches"] == 1
    assert any("projects/7/forms/household.svc/Submissions" in u for _, u in adapters[-1].seen)
    # the same submissions as the zip: nothing new is kept, all are duplicates by key
    pd.testing.assert_frame_equal(snapshot(copy)["data.household"], before)
    r2 = json.loads(cli("-C", str(copy), "--json", "import", "--from-odk-central",
                        "--project-id", "7").stdout)
    assert r2["counts"]["new_batches"] == 0 and r2["counts"]["skipped_batches"] == 1
    assert secret not in r.output and secret.encode() not in (copy / STORE_FILE).read_bytes()


def test_central_client_errors_do_not_show_credentials(copy, monkeypatch):
    import pyodk.client

    class Broken:
        def __init__(self, **kwargs):
            raise RuntimeError("login failed for user x with password hunter2")

    monkeypatch.setattr(pyodk.client, "Client", Broken)
    r = cli("-C", str(copy), "import", "--from-odk-central", "--project-id", "1")
    assert_user_error(r, "cannot set up the ODK Central client", "config.toml")
    assert "hunter2" not in r.output
    r = cli("-C", str(copy), "import", "--from-odk-central")
    assert_user_error(r, "no ODK Central project id")
