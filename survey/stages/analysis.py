"""The analysis stage: indicators, group estimates and the DotM impact table.

``analyze`` builds the household design from the stored respondents, their final
weights and (when ``[replicates]`` made them) the replicate weights, adds the impact
indicators of :mod:`analysis.indicators` (configured by ``[indicators]``), and
computes with the public API of :mod:`analysis`:

- the group estimates (:func:`analysis.impact_table.group_estimates`): every
  indicator for each listing group, nationally and by ``[domains] by``;
- the impact table (:func:`analysis.impact_table.impact_table`): one row per
  indicator and comparison: all migrant groups together against
  ``[indicators] comparison`` (repeated within each domain), then each migrant group
  on its own for the ``[indicators] headline`` indicators (national rows);
- the balance of the propensity model (:func:`analysis.impact.impact_fit`).

The published estimates go to the store (``estimates``, ``impact_table``,
``balance``) and the impact table to ``out/impact_table.xlsx``, ``.csv`` and ``.dta``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from survey.errors import ConfigError, EstimationError, SurveyWarning, did_you_mean
from survey.project import Project
from survey.stages._common import StageResult, require

__all__ = ["analysis_data", "analyze", "headline", "household_design", "indicators_for"]

#: Design columns of the weights table that are not questionnaire answers.
_DESIGN = ("hh_id", "ea_id", "stratum", "group", "region", "urban", "L_hig", "m_hig", "pi1",
           "pi2", "certainty", "disposition", "visit_result", "key", "weight")


def indicators_for(project: Project):
    """The indicator catalogue with the project's ``[indicators]`` and ``[survey]`` settings."""
    from analysis.indicators import catalogue

    cfg = project.config
    ind = cfg.indicators
    return catalogue(recall_months=ind.remittance_recall_months, school_age=ind.school_age,
                     school_age_bands=ind.school_age_bands, usd_rate=cfg.survey.usd_rate,
                     custom=ind.custom)


def household_design(project: Project, *, replicates: bool = False):
    """Respondents with their answers and final weights, as a :class:`~survey.design.Design`.

    Parameters
    ----------
    project
        The project (needs ``survey weight``).
    replicates
        Use the stored replicate weights when there are any; otherwise Taylor
        linearisation with strata and EAs as PSUs (``[indicators] variance``).

    Returns
    -------
    (Design, dict)
        The household design (one row per respondent: the design columns of the
        ``weights`` table joined to the household form's answers) and the repeat
        tables of the form (``members``, ``emigrants``...) restricted to respondents.
    """
    from survey.design import Design
    from survey.stages.fieldwork import read_project_form

    form = read_project_form(project)
    root = form.form_id
    with project.store(read_only=True) as st:
        w = st.read("weights")
        subs = st.read(f"data.{root}")
        repeats = {t: st.read(f"data.{t}") for t in form.tables
                   if t != root and st.has(f"data.{t}")}
        rep = st.read("replicate_weights") if replicates and st.has("replicate_weights") else None
        info = st.read("replicate_info") if rep is not None else None
    design_cols = [c for c in _DESIGN if c in w.columns]
    resp = w.loc[w["weight"] > 0, design_cols].reset_index(drop=True)
    answers = subs.drop(columns=[c for c in (*design_cols, "batch_id") if c in subs.columns
                                 and c != "key"])
    data = resp.merge(answers, on="key", how="left", validate="one_to_one")
    keys = set(data["key"].astype(str))
    children = {t: df[df["parent_key"].astype(str).isin(keys)].drop(columns=["batch_id"],
                                                                    errors="ignore")
                .reset_index(drop=True)
                for t, df in repeats.items() if "parent_key" in df.columns}
    if rep is not None and info is not None and len(info):
        cols = [c for c in rep.columns if c.startswith("repw_")]
        data = data.merge(rep[["hh_id", *cols]], on="hh_id", how="left", validate="one_to_one")
        design = Design.from_replicates(data, weights="weight", replicate_weights=cols,
                                        method=str(info["method"].iloc[0]),
                                        scale=float(info["scale"].iloc[0]),
                                        rscales=info["rscale"].to_numpy(dtype=float))
        design = design.map(lambda d: d.drop(columns=cols))
    else:
        design = Design(data, weights="weight", strata="stratum", psu="ea_id", lonely_psu="adjust")
    return design, children


def analysis_data(project: Project, *, replicates: bool = False):
    """The household (and person) designs with every configured indicator added.

    Returns
    -------
    analysis.indicators.IndicatorData
        From :func:`analysis.indicators.prepare`; the comparison groups are the
        listing groups (column ``group``, the keys of ``[takes]``).
    """
    from analysis.indicators import prepare

    design, children = household_design(project, replicates=replicates)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SurveyWarning)
        return prepare(design, children, indicators_for(project), group="group")


def _same(a: pd.Series, b: pd.Series) -> bool:
    """Whether two columns agree wherever both have a value (a control that *is* the outcome)."""
    x = pd.to_numeric(a, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    y = pd.to_numeric(b, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ok = ~np.isnan(x) & ~np.isnan(y)
    return bool(ok.any() and np.array_equal(x[ok], y[ok]))


def _control_sets(data, inds, controls: Sequence[str]) -> dict[tuple[str, ...], list]:
    """Indicators grouped by their controls: a control equal to the indicator is left out."""
    out: dict[tuple[str, ...], list] = {}
    for ind in inds:
        d = data.design_for(ind).data
        use = tuple(c for c in controls if not (c in d.columns and _same(d[c], d[ind.name])))
        out.setdefault(use, []).append(ind)
    return out


def _impact(data, inds, cfg) -> pd.DataFrame:
    """The impact table over every comparison, in catalogue order."""
    from analysis.impact_table import impact_table

    control = cfg.indicators.comparison
    treated = [g for g in cfg.groups if g != control]
    everyone = tuple(i.name for i in inds)
    comparisons = [("migrant" if len(treated) > 1 else treated[0], tuple(treated),
                    tuple(cfg.domains.by), everyone)]
    if len(treated) > 1:
        comparisons += [(g, (g,), (), cfg.indicators.headline) for g in treated]
    variance = "replicate" if data.household.replicates is not None else None
    parts = []
    for controls, group_inds in _control_sets(data, inds, cfg.indicators.controls).items():
        for name, tl, domains, names in comparisons:
            sub = [i for i in group_inds if i.name in names]
            if not sub:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SurveyWarning)
                t = impact_table(data, sub, controls=controls, group="group", treated=tl,
                                 control=control, methods=cfg.indicators.methods,
                                 variance=variance,
                                 domains=[d for d in domains
                                          if d in data.household.data.columns] or None)
            parts.append(t.assign(comparison=name, controls=", ".join(controls)))
    table = pd.concat(parts, ignore_index=True)
    order = {i.name: k for k, i in enumerate(inds)}
    corder = {c[0]: k for k, c in enumerate(comparisons)}
    table = table.assign(_i=table["indicator"].map(order), _c=table["comparison"].map(corder),
                         _d=(table["domain"] != "national").astype(int))
    table = table.sort_values(["_c", "_d", "_i"], kind="stable").drop(columns=["_i", "_c", "_d"])
    front = ["area", "indicator", "label", "kind", "comparison", "domain", "domain_value"]
    return table[front + [c for c in table.columns if c not in front]].reset_index(drop=True)


def _balance(data, cfg) -> pd.DataFrame:
    """Balance of the controls before and after IPW, migrant against comparison households."""
    from analysis.impact import impact_fit

    control = cfg.indicators.comparison
    treated = [g for g in cfg.groups if g != control]
    hh = data.household
    # an outcome every household has (the balance does not depend on it)
    d = hh.map(lambda df: df.assign(_one=1.0))
    controls = [c for c in cfg.indicators.controls if c in d.data.columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SurveyWarning)
        fit = impact_fit(d, "_one", "group", controls, "ipw", treated=treated, control=control,
                         variance="fixed")
    return fit.balance if fit.balance is not None else pd.DataFrame()


def headline(table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """National rows of the headline indicators, one per comparison."""
    t = table[(table["domain"] == "national") & table["indicator"].isin(list(names))]
    cols = [c for c in ("area", "indicator", "label", "comparison", "mean_none", "raw_diff",
                        "adj_diff", "adj_se", "ipw_diff", "ipw_se", "ipw_ci_low", "ipw_ci_high",
                        "stars", "n") if c in t.columns]
    return t[cols].reset_index(drop=True)


def analyze(project: Project) -> StageResult:
    """Compute the indicators, group estimates and impact table; store and write them.

    Uses the final weights of ``survey weight`` (with its replicate weights when
    ``[replicates] method`` is not ``none``), the indicators of ``[indicators]``
    (recall period, school ages, custom indicators), the controls and methods of
    ``[indicators]`` and the domains of ``[domains]``. Stores ``estimates`` (group
    estimates), ``impact_table`` and ``balance``; writes ``out/impact_table.xlsx``,
    ``.csv`` and ``.dta``.

    Notes
    -----
    The comparison groups are the listing groups (the phase-2 strata), so each
    household is compared in the group it was sampled in. A control that equals the
    indicator (the head's sex for female headship) is left out of that indicator's
    models. SEs are by Taylor linearisation over strata and EAs (the IPW SE from
    stacked estimating equations, so it counts the estimated propensity); with
    ``[indicators] variance = "replicate"`` every SE comes from refitting on the
    stored replicate weights, which reflect the nonresponse and calibration steps
    but take about a hundred times longer.
    """
    from analysis.export import write_csv, write_excel, write_stata
    from analysis.impact_table import group_estimates

    require(project, "weight", by="survey analyze")
    start = time.perf_counter()
    cfg = project.config
    data = analysis_data(project, replicates=cfg.indicators.variance == "replicate")
    inds = data.indicators
    unknown = [h for h in cfg.indicators.headline if h not in {i.name for i in inds}]
    if unknown:
        close = did_you_mean(unknown[0], [i.name for i in inds])
        raise ConfigError(f"indicators.headline: no indicator {unknown[0]!r}",
                          key="indicators.headline",
                          hint=(f"{close} " if close else "") + "headline names come from the indicator catalogue")
    domains = [d for d in cfg.domains.by if d in data.household.data.columns]
    missing = [d for d in cfg.domains.by if d not in data.household.data.columns]
    if missing:
        raise EstimationError(f"domain column {missing[0]!r} is not in the data",
                              hint="[domains] by takes frame columns (region, urban), design "
                                   "columns (stratum) or covariates (head_female)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SurveyWarning)
        groups = group_estimates(data, group="group", domains=domains or None)
    table = _impact(data, inds, cfg)
    bal = _balance(data, cfg)
    out = project.out_dir
    files = (write_excel(table, out / "impact_table.xlsx", groups=groups, indicators=inds,
                         balance=bal),
             write_csv(table, out / "impact_table.csv"),
             write_stata(table, out / "impact_table.dta"))
    hd = data.household
    counts = {"indicators": len(inds), "households": int(hd.n),
              "persons": int(data.person.n) if data.person is not None else 0,
              "estimates": len(groups), "impact_rows": len(table),
              "significant": int(((table["domain"] == "national") & (table["stars"] != "")).sum())}
    seconds = time.perf_counter() - start
    kind = (f"replicate ({hd.replicates.method}, {hd.replicates.n_replicates})"
            if hd.replicates is not None else "linearisation")
    detail = f"{len(inds)} indicators, {', '.join(cfg.indicators.methods)}; {kind} SEs"
    with project.store() as st:
        st.replace_stage("analyze", {"estimates": groups, "impact_table": table, "balance": bal},
                         counts=counts, seconds=seconds, detail=detail)
    return StageResult("analyze", counts, seconds, headline(table, cfg.indicators.headline),
                       files, detail)
