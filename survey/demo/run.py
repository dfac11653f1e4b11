"""``survey demo DIR``: every real stage of a survey, run on the demo country.

The demo makes a project, writes the demo country's frame and census totals, and
runs the stages a survey manager runs: frame check, design, EA selection, a
simulated listing, household selection, simulated fieldwork written as a real ODK
Central export, import, weighting, analysis, the report, the export for Stata, SPSS
and Parquet users and the public-use release; then the headline rows of the impact
table beside the known effects of migration (:data:`survey.demo.EFFECTS`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from survey.errors import ConfigError
from survey.project import Project, init_project

__all__ = ["DEMO_INDICATORS", "DEMO_MARKER", "DemoResult", "known_effects", "run_demo"]

#: File that marks a project folder as made by ``survey demo`` (so it may be re-run).
DEMO_MARKER = "data/.survey-demo"

Step = Callable[[str], AbstractContextManager]


@dataclass(frozen=True)
class DemoResult:
    """What the demo did: the project, each stage's result, the headline table."""

    project: Project
    stages: dict = field(default_factory=dict)
    headline: pd.DataFrame = field(default_factory=pd.DataFrame)
    seconds: float = 0.0
    files: dict = field(default_factory=dict)


def _open_or_make(directory: Path) -> Project:
    if (directory / "survey.toml").exists():
        if not (directory / DEMO_MARKER).exists():
            raise ConfigError("this folder holds a survey project that the demo did not make",
                              file=str(directory / "survey.toml"),
                              hint="give `survey demo` a new folder; nothing was changed")
        return Project.open(directory)
    project = init_project(directory, "Demoland")
    (directory / DEMO_MARKER).write_text("made by `survey demo`; the demo may overwrite this folder\n")
    return project


def run_demo(directory: str | Path, *, n_eas: int = 20_000, households: int = 3_000_000,
             sample_eas: int | None = None, seed: int | None = None,
             step: Step | None = None) -> DemoResult:
    """Run the whole survey on the demo country in ``directory``.

    Parameters
    ----------
    directory
        A new folder, or one made by an earlier demo (its outputs are replaced).
    n_eas, households
        Size of the demo country (EAs in the frame, census households).
    sample_eas
        EAs to select (default ``[allocation] n_eas`` of the new project, 100).
    seed
        Seed of the demo country and its fieldwork (default ``[seeds] demo``).
    step
        ``step(description)`` returns a context manager wrapped around each stage
        (the CLI's progress display).

    Returns
    -------
    DemoResult
    """
    from survey import pipeline
    from survey.demo.fieldwork import (
        listing_table,
        simulate_fieldwork,
        simulate_listing,
        write_central_export,
    )
    from survey.demo.inputs import write_demo_inputs
    from survey.stages.fieldwork import read_project_form

    step = step or (lambda _: nullcontext())
    start = time.perf_counter()
    directory = Path(directory)
    project = _open_or_make(directory)
    cfg_file = project.config_file
    text = cfg_file.read_text(encoding="utf-8")
    if sample_eas is not None:
        old = f"n_eas = {project.config.allocation.n_eas}"
        text = text.replace(old, f"n_eas = {int(sample_eas)}", 1)
    if seed is not None:
        text = text.replace(f"demo = {project.config.seeds.demo}", f"demo = {int(seed)}", 1)
    # the impact table by urban/rural only: every domain of the default doubles the time
    text = text.replace('[domains]\nby = ["urban", "head_female", "region"]',
                        '[domains]\nby = ["urban"]   # the demo; a survey: ["urban", "head_female", '
                        '"region"]', 1)
    cfg_file.write_text(text, encoding="utf-8")
    project = Project.open(directory)
    seed = project.config.seeds.demo
    rng = np.random.default_rng(seed)
    stages = {}
    with step(f"Making the demo country ({n_eas:,} EAs, {households:,} households)"):
        files = write_demo_inputs(project, n_eas=n_eas, households=households, rng=rng)
    with step("Checking the frame"):
        stages["frame"] = pipeline.frame_check(project)
    with step("Allocating EAs to strata"):
        stages["design"] = pipeline.design(project)
    with step("Selecting EAs"):
        stages["select_eas"] = pipeline.select_eas(project)
    with step("Listing the selected EAs (simulated)"):
        with project.store(read_only=True) as st:
            selected = st.read("selected_eas")
        truth = simulate_listing(selected, rng)
        listing = project.path(project.config.listing.file)
        listing.parent.mkdir(parents=True, exist_ok=True)
        listing_table(truth).to_csv(listing, index=False)
        files["listing"] = listing
    with step("Importing the listing"):
        stages["listing"] = pipeline.listing_import(project)
    with step("Selecting households"):
        stages["select_households"] = pipeline.select_households(project)
    with step("Fieldwork (simulated interviews, ODK Central export)"):
        form = read_project_form(project)
        with project.store(read_only=True) as st:
            sample = st.read("sample")
        preload = pd.read_csv(project.out_dir / "fieldwork" / "households.csv",
                              dtype={"name": str, "hh_id": str, "ea_id": str})
        main = preload[preload["hh_id"].isin(sample.loc[~sample["reserve"].astype(bool), "hh_id"])]
        raw = simulate_fieldwork(form, main, truth, rng)
        exports = project.path(project.config.fieldwork.exports)
        export = write_central_export(raw, exports / f"{form.form_id}_central.zip", form)
        files["export"] = export
    with step("Importing the export"):
        stages["import"] = pipeline.import_exports(project, [export])
    with step("Weighting (base, nonresponse, raking, replicates)"):
        stages["weight"] = pipeline.weight(project)
    with step("Estimating the indicators and the impact table"):
        stages["analyze"] = pipeline.analyze(project)
        with project.store(read_only=True) as st:
            table = st.read("impact_table")
        headline = known_effects(table)
        path = project.out_dir / "headline.csv"
        headline.to_csv(path, index=False)
        files["headline"] = path
        files["impact_table"] = project.out_dir / "impact_table.xlsx"
    with step("Writing the report"):
        stages["report"] = pipeline.report(project)
        files["report"] = stages["report"].files[0]
    with step("Exporting the data (Stata, SPSS, Parquet)"):
        # Excel is left to `survey export`: openpyxl needs ~20 s for the roster alone
        stages["export"] = pipeline.export(project, formats=("dta", "sav", "parquet"))
    with step("Public-use files (disclosure control)"):
        stages["public_use"] = pipeline.public_export(project, formats=("csv", "dta"))
        files["public"] = project.out_dir / "public"
    return DemoResult(project, stages, headline, time.perf_counter() - start, files)


# -- the known effects in the impact table ---------------------------------------------------
#: The impact-table indicator that measures each outcome with a known effect
#: (:data:`survey.demo.EFFECTS`).
DEMO_INDICATORS = {
    "receives_remittances": "remittances_received",
    "education_spending": "spend_edu",
    "enrolled": "enrol_6_17",
    "health_insurance": "any_insured",
    "female_head": "female_head",
}


def known_effects(table: pd.DataFrame, method: str = "ipw") -> pd.DataFrame:
    """The impact table's group-by-group rows beside the demo's known effects.

    Parameters
    ----------
    table
        The stored impact table (``survey analyze``): national rows of the
        ``emigrant`` and ``returnee`` comparisons are used.
    method
        ``"ipw"`` (the table's interval) or ``"adj"`` (regression: ``adj_diff`` with a
        normal interval from ``adj_se``).

    Returns
    -------
    pandas.DataFrame
        ``outcome``, ``indicator``, ``label``, ``group``, ``estimate``, ``se``,
        ``ci_low``, ``ci_high``, ``known`` (the true effect), ``covered`` (the 95%
        interval contains it) and ``n``.

    Notes
    -----
    The demo's outcome model is additive with a constant effect per group, so the
    effect on migrant households that IPW estimates equals the known effect; the
    households of each comparison are those of the listing group.
    """
    from survey.demo.population import EFFECTS

    nat = table[table["domain"] == "national"].set_index(["indicator", "comparison"])
    rows = []
    for outcome, ind in DEMO_INDICATORS.items():
        for g in ("emigrant", "returnee"):
            if (ind, g) not in nat.index:
                continue
            r = nat.loc[(ind, g)]
            est, se = float(r[f"{method}_diff"]), float(r[f"{method}_se"])
            lo, hi = ((float(r["ipw_ci_low"]), float(r["ipw_ci_high"])) if method == "ipw"
                      else (est - 1.959964 * se, est + 1.959964 * se))
            known = float(EFFECTS[outcome].get(g, 0.0))
            rows.append({"outcome": outcome, "indicator": ind, "label": str(r["label"]),
                         "group": g, "estimate": est, "se": se, "ci_low": lo, "ci_high": hi,
                         "known": known, "covered": bool(lo <= known <= hi), "n": int(r["n"])})
    return pd.DataFrame(rows)
