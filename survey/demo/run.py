"""``survey demo DIR``: every real stage of a survey, run on the demo country.

The demo makes a project, writes the demo country's frame and census totals, and
runs the stages a survey manager runs: frame check, design, EA selection, a
simulated listing, household selection, simulated fieldwork written as a real ODK
Central export, import, weighting and export; then the headline table of the
known effects of migration.
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

__all__ = ["DEMO_MARKER", "DemoResult", "headline_effects", "run_demo"]

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
             sample_eas: int | None = None, step: Step | None = None) -> DemoResult:
    """Run the whole survey on the demo country in ``directory``.

    Parameters
    ----------
    directory
        A new folder, or one made by an earlier demo (its outputs are replaced).
    n_eas, households
        Size of the demo country (EAs in the frame, census households).
    sample_eas
        EAs to select (default ``[allocation] n_eas`` of the new project, 100).
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
    if sample_eas is not None:
        cfg_file = project.config_file
        text = cfg_file.read_text(encoding="utf-8")
        old = f"n_eas = {project.config.allocation.n_eas}"
        cfg_file.write_text(text.replace(old, f"n_eas = {int(sample_eas)}", 1), encoding="utf-8")
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
    with step("Estimating the effects of migration"):
        headline = headline_effects(project)
        path = project.out_dir / "headline.csv"
        headline.to_csv(path, index=False)
        files["headline"] = path
    with step("Exporting the data (Stata, SPSS, Parquet)"):
        # Excel is left to `survey export`: openpyxl needs ~20 s for the roster alone
        stages["export"] = pipeline.export(project, formats=("dta", "sav", "parquet"))
    return DemoResult(project, stages, headline, time.perf_counter() - start, files)


# -- headline table ----------------------------------------------------------------------
#: Household-level outcomes whose known effects (survey.demo.EFFECTS) the headline checks.
_OUTCOMES = {
    "receives_remittances": "Received remittances (12 months)",
    "education_spending": "Education spending (LCU a year)",
    "enrolled": "Children 6-17 attending school (share)",
    "health_insurance": "Household has health insurance",
    "female_head": "Female-headed household",
}
_CONTROLS = ("head_age", "head_female", "head_education", "hh_size", "urban", "region")


def _household_data(project: Project) -> pd.DataFrame:
    """Respondents with their weights, outcomes and controls (from the store)."""
    from survey.stages.fieldwork import read_project_form

    form = read_project_form(project)
    with project.store(read_only=True) as st:
        w = st.read("weights")
        hh = st.read(f"data.{form.form_id}")
        members = st.read("data.members")
    w = w[w["weight"] > 0]
    hh = hh[["key", "hh_size", "rem_received", "spend_edu_year"]]
    head = members[members["row_index"] == 1].drop_duplicates("parent_key")
    age = pd.to_numeric(members["age"], errors="coerce")
    child = members.assign(_a=(members["attends_school"].astype("string") == "yes").astype(float))
    child = child[(age >= 6) & (age <= 17)].groupby("parent_key")["_a"].mean()
    edu = np.where(head["edu_level"].astype("string").eq("none").fillna(False),
                   0.0, pd.to_numeric(head["edu_years"], errors="coerce"))
    covs = pd.DataFrame({
        "key": head["parent_key"].to_numpy(),
        "head_age": pd.to_numeric(head["age"], errors="coerce").to_numpy(dtype=float),
        "head_female": (head["sex"].astype("string") == "female").to_numpy(dtype=float),
        "head_education": np.asarray(edu, dtype=float),
        "health_insurance": (head["insured"].astype("string") == "yes").to_numpy(dtype=float),
    })
    data = w.merge(hh, on="key", how="left").merge(covs, on="key", how="left")
    return data.assign(
        receives_remittances=(data["rem_received"].astype("string") == "yes").astype(float),
        education_spending=pd.to_numeric(data["spend_edu_year"], errors="coerce"),
        enrolled=data["key"].map(child).astype(float),
        female_head=data["head_female"],
        hh_size=pd.to_numeric(data["hh_size"], errors="coerce"),
        is_emigrant=(data["group"] == "emigrant").astype(float),
        is_returnee=(data["group"] == "returnee").astype(float),
    )


def headline_effects(project: Project) -> pd.DataFrame:
    """Adjusted effects of migration on the demo's outcomes, beside the known effects.

    A design-weighted regression per outcome of the emigrant and returnee group
    indicators with the controls (head's age, sex and education, household size,
    urban/rural, region), on the final weights with strata and EAs as PSUs.

    Returns
    -------
    pandas.DataFrame
        ``outcome``, ``label``, ``group``, ``estimate``, ``se``, ``ci_low``,
        ``ci_high``, ``known`` (the true effect) and ``covered`` (the 95% interval
        contains it), and ``n``.
    """
    from analysis.glm import glm
    from survey.demo.population import EFFECTS
    from survey.design import Design

    data = _household_data(project)
    design = Design(data, weights="weight", strata="stratum", psu="ea_id", lonely_psu="adjust")
    rows = []
    for outcome, label in _OUTCOMES.items():
        controls = [c for c in _CONTROLS if c != outcome and not (outcome == "female_head"
                                                                 and c == "head_female")]
        formula = f"{outcome} ~ is_emigrant + is_returnee + " + " + ".join(controls)
        est = glm(design, formula).to_frame().set_index("term")
        for g in ("emigrant", "returnee"):
            r = est.loc[f"is_{g}"]
            known = EFFECTS.get(outcome, {}).get(g, 0.0)
            rows.append({"outcome": outcome, "label": label, "group": g,
                         "estimate": float(r["estimate"]), "se": float(r["se"]),
                         "ci_low": float(r["ci_low"]), "ci_high": float(r["ci_high"]),
                         "known": float(known),
                         "covered": bool(r["ci_low"] <= known <= r["ci_high"]),
                         "n": int(r["n"]) if "n" in r and pd.notna(r["n"]) else len(data)})
    return pd.DataFrame(rows)
