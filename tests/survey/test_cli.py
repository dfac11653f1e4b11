"""Tests of the `survey` command line: commands, JSON output, exit codes, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from survey import pipeline
from survey.cli import app, main
from survey.demo import write_demo_inputs
from survey.project import Project, bundled_forms
from survey.store import STORE_FILE, Store

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def project_dir(tmp_path):
    d = tmp_path / "proj"
    r = invoke("--quiet", "init", str(d), "--country", "Testland")
    assert r.exit_code == 0, r.output
    return d


@pytest.fixture
def demo_dir(project_dir):
    write_demo_inputs(Project.open(project_dir), n_eas=300, households=45_000)
    return project_dir


def test_init_makes_a_project(tmp_path):
    d = tmp_path / "georgia"
    r = invoke("init", str(d), "--country", "Georgia")
    assert r.exit_code == 0
    assert "Made project" in r.stdout
    for sub in ("forms", "data", "out"):
        assert (d / sub).is_dir()
    assert 'country = "Georgia"' in (d / "survey.toml").read_text()
    assert (d / STORE_FILE).is_file()
    assert sorted(p.name for p in (d / "forms").glob("*.xlsx")) == sorted(
        p.name for p in bundled_forms())


def test_init_json_and_refuses_existing_project(project_dir):
    before = (project_dir / "survey.toml").read_text()
    r = invoke("--json", "init", str(project_dir))
    assert r.exit_code == 2
    err = json.loads(r.stderr)
    assert err["type"] == "ConfigError" and "already holds" in err["error"]
    assert (project_dir / "survey.toml").read_text() == before


def test_status_json_on_a_new_project(project_dir):
    r = invoke("-C", str(project_dir), "--json", "status")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["country"] == "Testland"
    assert list(info["stages"]) == list(pipeline.STAGES)
    assert not any(s["done"] for s in info["stages"].values())
    assert info["next"] == {"stage": "frame", "command": "survey frame check"}
    assert info["problems"] == 0


def test_frame_check_then_status_then_rerun(demo_dir):
    r = invoke("-C", str(demo_dir), "--json", "frame", "check")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["counts"] == {"eas": 300, "households": 45_000, "strata": 12}
    assert sum(row["eas"] for row in res["summary"]) == 300

    info = json.loads(invoke("-C", str(demo_dir), "--json", "status").stdout)
    assert info["stages"]["frame"]["done"]
    assert info["stages"]["frame"]["counts"]["eas"] == 300
    assert info["tables"]["frame"] == 300
    assert info["next"]["stage"] == "design"

    with Store(demo_dir, read_only=True) as st:
        first = st.read("frame")
    r = invoke("-C", str(demo_dir), "frame", "check")  # second run: same store content
    assert r.exit_code == 0 and "Frame OK: 300 EAs" in r.stdout
    with Store(demo_dir, read_only=True) as st:
        pd.testing.assert_frame_equal(st.read("frame"), first)
        assert [s.stage for s in st.stages()] == ["frame"]


def test_status_text(demo_dir):
    invoke("-C", str(demo_dir), "--quiet", "frame", "check")
    r = invoke("-C", str(demo_dir), "status")
    assert r.exit_code == 0
    assert "frame" in r.stdout and "done" in r.stdout and "Next: survey design" in r.stdout


def test_missing_input_file_is_a_user_error(project_dir):
    r = invoke("-C", str(project_dir), "frame", "check")
    assert r.exit_code == 2
    assert "frame file not found" in r.stderr and "hint:" in r.stderr
    assert "Traceback" not in r.output
    r = invoke("-C", str(project_dir), "--debug", "frame", "check")
    assert r.exit_code == 2
    assert "Traceback" in r.stderr and "frame file not found" in r.stderr


def test_bad_frame_names_row_and_column(demo_dir):
    frame_file = demo_dir / "data" / "frame.csv"
    df = pd.read_csv(frame_file, dtype={"ea_id": str})
    df.loc[9, "ea_id"] = df.loc[3, "ea_id"]
    df.to_csv(frame_file, index=False)
    r = invoke("-C", str(demo_dir), "frame", "check")
    assert r.exit_code == 2
    assert "row 11" in r.stderr and "ea_id" in r.stderr and "appears twice" in r.stderr
    with Store(demo_dir, read_only=True) as st:
        assert st.stage_done("frame") is None  # nothing written


def test_misspelled_key_in_config(demo_dir):
    cfg = demo_dir / "survey.toml"
    cfg.write_text(cfg.read_text().replace("n_eas = 100", "n_ea = 100"))
    r = invoke("-C", str(demo_dir), "status")
    assert r.exit_code == 2
    assert "allocation.n_ea" in r.stderr and "did you mean 'n_eas'?" in r.stderr
    assert "Traceback" not in r.output


def test_missing_key_in_config(demo_dir):
    cfg = demo_dir / "survey.toml"
    cfg.write_text(cfg.read_text().replace('file = "data/frame.csv"', ""))
    r = invoke("-C", str(demo_dir), "--json", "frame", "check")
    assert r.exit_code == 2
    err = json.loads(r.stderr)
    assert err["where"]["key"] == "frame.file" and "missing" in err["error"]


def test_not_a_project(tmp_path):
    r = invoke("-C", str(tmp_path), "status")
    assert r.exit_code == 2 and "survey init" in r.stderr


def test_corrupt_store_is_a_user_error_and_is_left_alone(demo_dir):
    store = demo_dir / STORE_FILE
    store.write_bytes(b"\x00garbage" * 1000)
    r = invoke("-C", str(demo_dir), "frame", "check")
    assert r.exit_code == 2
    assert "cannot open the project store" in r.stderr and "backup" in r.stderr
    assert store.read_bytes() == b"\x00garbage" * 1000


def test_failure_is_exit_1_with_short_message(demo_dir, monkeypatch):
    def broken(project):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(pipeline, "frame_check", broken)
    r = invoke("-C", str(demo_dir), "frame", "check")
    assert r.exit_code == 1
    assert "ZeroDivisionError: simulated bug" in r.stderr and "--debug" in r.stderr
    assert "Traceback" not in r.output
    r = invoke("-C", str(demo_dir), "--debug", "frame", "check")
    assert r.exit_code == 1 and "Traceback" in r.stderr


def test_main_returns_exit_codes(tmp_path, capsys):
    assert main(["init", str(tmp_path / "p"), "--country", "X"]) == 0
    assert main(["-C", str(tmp_path / "nowhere"), "status"]) == 2
    assert main(["no-such-command"]) == 2  # usage errors are user errors too
    assert "Traceback" not in capsys.readouterr().err


def test_subprocess_user_error_has_no_traceback(tmp_path):
    d = tmp_path / "p"
    ok = subprocess.run([sys.executable, "-m", "survey.cli", "init", str(d)],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "survey.cli", "-C", str(d), "frame", "check"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "frame file not found" in bad.stderr and "Traceback" not in bad.stderr
