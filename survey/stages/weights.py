"""The weighting stage: base weights, nonresponse, calibration, trimming, replicates.

The sample (with ``pi1``, ``pi2``) is linked to the imported submissions to give each
sampled household a disposition; the chain of :mod:`weighting` steps then runs on
the full sample and, through :func:`weighting.rerun_on_replicates`, on every replicate,
so that replicate SEs reflect every adjustment. Every weight of the chain is stored.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from survey.errors import ConfigError, SurveyWarning, WeightingError
from survey.project import Project
from survey.stages._common import StageResult, require

__all__ = ["DISPOSITIONS", "INELIGIBLE_RESULTS", "dispositions", "weight"]

#: Visit results meaning the dwelling holds no eligible household (not nonresponse).
INELIGIBLE_RESULTS = ("vacant", "not_found", "destroyed")

#: Dispositions of sampled households, from best to worst outcome of their visits.
DISPOSITIONS = ("respondent", "ineligible", "nonrespondent", "not_visited")


def dispositions(sample: pd.DataFrame, submissions: pd.DataFrame, *,
                 hh: str = "hh_id") -> pd.DataFrame:
    """One disposition per sampled household, from its submissions.

    Parameters
    ----------
    sample
        Sampled households (one row each, column ``hh``).
    submissions
        The root table of the household form: ``hh_id``, ``visit_result``,
        ``consent``, ``key`` and ``submission_date``.

    Returns
    -------
    pandas.DataFrame
        ``hh_id``, ``disposition`` (:data:`DISPOSITIONS`), ``visit_result``, ``key``
        (the submission used), ``eligible`` and ``responded``; in the order of
        ``sample``.

    Notes
    -----
    A household visited several times takes its best outcome (an interview, then a
    finding of ineligibility, then nonresponse), the latest submission breaking ties.
    A household with no submission is an eligible nonrespondent: its eligibility is
    unknown, and treating it as eligible is the conservative choice (AAPOR RR1).
    """
    subs = submissions
    result = subs["visit_result"].astype("string")
    consent = (subs["consent"].astype("string") if "consent" in subs.columns
               else pd.Series("yes", index=subs.index, dtype="string"))
    respondent = (result.eq("completed") & consent.eq("yes")).fillna(False).to_numpy(dtype=bool)
    inelig = result.isin(list(INELIGIBLE_RESULTS)).fillna(False).to_numpy(dtype=bool)
    rank = np.where(respondent, 0, np.where(inelig, 1, 2))
    when = (subs["submission_date"].astype("string").fillna("") if "submission_date" in subs
            else pd.Series("", index=subs.index, dtype="string"))
    best = (pd.DataFrame({"hh_id": subs[hh].astype("string"), "rank": rank,
                          "when": when.to_numpy(dtype=object), "visit_result": result,
                          "key": subs["key"].astype("string")})
            .dropna(subset=["hh_id"])
            .sort_values(["hh_id", "rank", "when"], ascending=[True, True, False], kind="stable")
            .drop_duplicates("hh_id"))
    out = pd.DataFrame({"hh_id": sample[hh].astype("string")}).merge(
        best, on="hh_id", how="left")
    code = out["rank"].fillna(3).to_numpy(dtype=np.int64)
    out = out.drop(columns=["rank", "when"])
    out.insert(1, "disposition", pd.array(np.asarray(DISPOSITIONS, dtype=object)[code],
                                          dtype="string"))
    return out.assign(eligible=code != 1, responded=code == 0)


def _margins(project: Project) -> dict[str, dict[str, float]]:
    """Census totals of ``[calibration] totals`` as ``{margin: {level: total}}``."""
    cal = project.config.calibration
    path = project.path(cal.totals)
    if not path.is_file():
        raise ConfigError("calibration totals file not found", file=str(path),
                          key="calibration.totals",
                          hint="write the census totals (columns margin, level, total) there, "
                               "or set calibration.method = \"none\"")
    totals = pd.read_csv(path, dtype={"margin": "string", "level": "string"})
    missing = {"margin", "level", "total"} - set(totals.columns)
    if missing:
        raise ConfigError(f"calibration totals lack the column(s) {sorted(missing)}",
                          file=str(path), hint="columns: margin, level, total")
    out = {}
    for m in cal.by:
        block = totals[totals["margin"] == m]
        if block.empty:
            raise ConfigError(f"no totals for margin {m!r}", file=str(path), key="calibration.by",
                              hint=f"margins in the file: {', '.join(totals['margin'].unique())}")
        out[m] = dict(zip(block["level"].astype(str), block["total"].astype(float)))
    return out


def _steps(project: Project, data: pd.DataFrame) -> list[Callable[[Any], Any]]:
    import weighting

    cfg = project.config
    nr = cfg.nonresponse
    cells = [c for c in nr.cells if c in data.columns]
    unknown = [c for c in nr.cells if c not in data.columns]
    if unknown:
        raise ConfigError(f"nonresponse cell column {unknown[0]!r} is not in the sample",
                          key="nonresponse.cells",
                          hint=f"use columns of the sample: {', '.join(data.columns[:12])}")
    steps: list[Callable[[Any], Any]] = [
        lambda d: weighting.nonresponse(d, "responded", cells, eligible="eligible",
                                        min_respondents=nr.min_respondents, collapse="next",
                                        name="w_nonresponse")]
    cal = cfg.calibration
    if cal.method != "none":
        margins = _margins(project)
        for m in margins:
            if m not in data.columns:
                raise ConfigError(f"calibration margin {m!r} is not a column of the sample",
                                  key="calibration.by", hint="use region and urban (frame columns)")
        if cal.method == "raking":
            steps.append(lambda d: weighting.rake(d, margins, name="w_calibrated"))
        elif cal.method == "poststratify":
            if len(margins) != 1:
                raise ConfigError("calibration.method = \"poststratify\" takes one margin",
                                  key="calibration.by", hint="use \"raking\" for several margins")
            (m, t), = margins.items()
            steps.append(lambda d: weighting.poststratify(d, m, t, name="w_calibrated"))
        else:
            steps.append(lambda d: weighting.calibrate(d, margins, cal.method, bounds=cal.bounds,
                                                       name="w_calibrated"))
    t = cfg.trimming
    if t.lower is not None or t.upper is not None:
        def trim(d):
            w = d.w
            ref = float(np.median(w[w > 0])) if t.relative_to == "median" else 1.0
            return weighting.trim(d, None if t.lower is None else t.lower * ref,
                                  None if t.upper is None else t.upper * ref, name="w_trimmed")
        steps.append(trim)
    return steps


def weight(project: Project) -> StageResult:
    """Weight the respondents and make replicate weights.

    Base weights ``1 / (pi1 pi2)`` (:func:`weighting.base_weights`), then
    nonresponse within ``[nonresponse] cells`` (ineligible households set aside, small
    cells collapsed), calibration to the census totals of ``[calibration]``, trimming
    by ``[trimming]``, all re-run on the replicates of ``[replicates]``. Stores
    ``weights`` (one row per sampled household with its disposition and every weight
    of the chain; ``weight`` is the final one), ``replicate_weights``,
    ``replicate_info``, ``weight_chain`` and ``weight_controls``.
    """
    import weighting
    from survey.design import Design
    from survey.stages.fieldwork import read_project_form

    require(project, "import", by="survey weight")
    start = time.perf_counter()
    cfg = project.config
    form = read_project_form(project)
    with project.store(read_only=True) as st:
        sample = st.read("sample")
        eas = st.read("selected_eas")
        root = f"data.{form.form_id}"
        if not st.has(root):
            raise WeightingError(f"no submissions of form {form.form_id!r} were imported",
                                 hint="run `survey import` with the exports of this form")
        subs = st.read(root)
    main = sample[~sample["reserve"].astype(bool)].reset_index(drop=True)
    keep = [c for c in ("hh_id", "ea_id", "stratum", "group", "L_hig", "m_hig", "pi1", "pi2",
                        "certainty") if c in main.columns]
    geo = [c for c in ("region", "urban") if c in eas.columns and c not in keep]
    data = main[keep].merge(eas[["ea_id", *geo]], on="ea_id", how="left")
    disp = dispositions(data, subs)
    data = pd.concat([data, disp.drop(columns=["hh_id"])], axis=1)
    if not data["responded"].any():
        raise WeightingError("no sampled household has a completed interview",
                             hint="check that the exports are of this survey's sample (hh_id)")
    base = Design(data.assign(_w0=1.0 / (data["pi1"] * data["pi2"])), weights="_w0",
                  strata="stratum", psu="ea_id", lonely_psu="adjust")
    base = weighting.base_weights(base, "pi1", "pi2", name="w_base")
    steps = _steps(project, data)
    rep = cfg.replicates
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SurveyWarning)
        if rep.method == "none":
            final = base
            for step in steps:
                final = step(final)
        else:
            opts = ({"replicates": rep.replicates, "rng": np.random.default_rng(cfg.seeds.replicates)}
                    if rep.method == "bootstrap" else {})
            final = weighting.rerun_on_replicates(base, steps, rep.method, **opts)
    notes = [str(w.message) for w in caught if issubclass(w.category, SurveyWarning)]
    chain = [c for c in final.history if c in final.data.columns and c != "_w0"]
    out = final.data.drop(columns=["_w0"]).assign(weight=final.w)
    out = out[[*data.columns, *chain, "weight"]]
    tables = {"weights": out, "weight_chain": weighting.weight_chain(final)}
    if cfg.calibration.method != "none":
        tables["weight_controls"] = weighting.control_totals(final, _margins(project))
    n_rep = 0
    if final.replicates is not None:
        repw = weighting.export_replicates(final, keep=["hh_id"])
        info = repw.attrs
        repw = pd.DataFrame(repw)
        repw.attrs = {}
        n_rep = final.replicates.n_replicates
        tables["replicate_weights"] = repw
        tables["replicate_info"] = pd.DataFrame({
            "replicate": np.arange(1, n_rep + 1), "method": info["method"],
            "scale": float(info["scale"]), "rscale": np.asarray(info["rscales"], dtype=float),
            "svyset": info["svyset"]})
    disp_counts = out["disposition"].value_counts()
    resp = out["weight"] > 0
    w = out.loc[resp, "weight"].to_numpy(dtype=float)
    counts = {"sampled": len(out), **{d: int(disp_counts.get(d, 0)) for d in DISPOSITIONS},
              "weighted": int(resp.sum()), "replicates": n_rep,
              "households_estimated": int(round(w.sum())),
              "deff_kish_x100": int(round(100 * len(w) * (w ** 2).sum() / w.sum() ** 2))}
    detail = " -> ".join(chain) + (f"; {rep.method} x {n_rep}" if n_rep else "")
    if notes:
        detail += "; " + " | ".join(notes)
    seconds = time.perf_counter() - start
    with project.store() as st:
        st.replace_stage("weight", tables, counts=counts, seconds=seconds, detail=detail)
    summary = weighting.diagnostics(final, by="group").drop(columns=["ratio"], errors="ignore")
    path = project.out_dir / "weight_chain.csv"
    tables["weight_chain"].to_csv(path, index=False)
    return StageResult("weight", counts, seconds, summary, (path,), detail)
