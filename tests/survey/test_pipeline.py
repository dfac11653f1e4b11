"""Tests of the stage wiring: frame -> design -> select EAs, order and idempotence."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from survey import pipeline
from survey.cli import app
from survey.demo import write_demo_inputs
from survey.errors import StoreError
from survey.project import init_project
from survey.store import Store

runner = CliRunner()


@pytest.fixture
def project(tmp_path):
    p = init_project(tmp_path / "proj", "Testland")
    write_demo_inputs(p, n_eas=600, households=90_000)
    return p


def test_stage_before_the_one_it_needs(project):
    with pytest.raises(StoreError) as info:
        pipeline.design(project)
    assert "frame" in str(info.value) and "survey frame check" in info.value.hint
    pipeline.frame_check(project)
    with pytest.raises(StoreError, match="'design'"):
        pipeline.select_eas(project)


def test_cli_stage_out_of_order_is_exit_2_and_store_untouched(project):
    r = runner.invoke(app, ["-C", str(project.root), "select", "eas"])
    assert r.exit_code == 2
    assert "survey design" in r.stderr and "Traceback" not in r.output
    with Store(project.root, read_only=True) as st:
        assert st.stages() == []


def test_frame_design_select_chain(project):
    f = pipeline.frame_check(project)
    assert f.counts == {"eas": 600, "households": 90_000, "strata": 12}
    d = pipeline.design(project)
    assert d.counts["eas"] == project.config.allocation.n_eas
    assert d.counts["households_to_interview"] == 100 * 21
    s = pipeline.select_eas(project)
    assert s.counts["eas"] == 100
    with Store(project.root, read_only=True) as st:
        sel = st.read("selected_eas")
        alloc = st.read("allocation")
    per = sel.groupby("stratum").size()
    assert per.to_dict() == dict(zip(alloc["stratum"], alloc["n"]))
    assert sel["ea_id"].is_unique
    assert ((sel["pi1"] > 0) & (sel["pi1"] <= 1)).all()
    assert (project.out_dir / "selected_eas.csv").is_file()
    assert (sel["seed"] == project.config.seeds.select_eas).all()


def test_rerun_is_idempotent_and_upstream_rerun_marks_stale(project):
    pipeline.frame_check(project)
    pipeline.design(project)
    pipeline.select_eas(project)
    with Store(project.root, read_only=True) as st:
        first = st.read("selected_eas")
    pipeline.select_eas(project)  # same seed, same selection, replaced not appended
    with Store(project.root, read_only=True) as st:
        pd.testing.assert_frame_equal(st.read("selected_eas"), first)
    assert not pipeline.status(project)["stages"]["select_eas"]["stale"]
    pipeline.design(project)
    info = pipeline.status(project)
    assert info["stages"]["select_eas"]["stale"]
    assert info["next"]["stage"] == "select_eas"


def test_cli_chain_json(project):
    root = str(project.root)
    for args in (["frame", "check"], ["design"], ["select", "eas"]):
        r = runner.invoke(app, ["-C", root, "--json", *args])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["counts"]
    info = json.loads(runner.invoke(app, ["-C", root, "--json", "status"]).stdout)
    assert [s for s, v in info["stages"].items() if v["done"]] == ["frame", "design", "select_eas"]
    assert info["tables"]["selected_eas"] == 100
    r = runner.invoke(app, ["-C", root, "select", "eas"])
    assert r.exit_code == 0 and "Selected 100 EAs" in r.stdout


def test_bad_allocation_is_a_user_error(project):
    cfg = project.root / "survey.toml"
    cfg.write_text(cfg.read_text().replace("n_eas = 100", "n_eas = 5"))
    root = str(project.root)
    assert runner.invoke(app, ["-C", root, "-q", "frame", "check"]).exit_code == 0
    r = runner.invoke(app, ["-C", root, "design"])
    assert r.exit_code == 2, r.output  # 12 strata x minimum 2 EAs cannot fit in 5
    assert "Traceback" not in r.output
    with Store(project.root, read_only=True) as st:
        assert st.stage_done("design") is None
