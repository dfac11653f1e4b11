"""Group estimates and the impact table, as Development on the Move publishes them.

:func:`group_estimates` gives every indicator for non-migrant, emigrant and returnee
households (or any grouping, such as remittance-receiving or not), nationally and by
domain, with SE, interval, design effect, unweighted n, CV and quality flags.
:func:`impact_table` gives one row per indicator (and domain): the group means, the
raw difference of migrant and non-migrant households with its SE and p-value, the
regression-adjusted difference and the propensity-weighted effect on migrant
households with its interval and common-support count.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.estimators import mean, total
from analysis.impact import impact_fit
from analysis.indicators import Indicator, IndicatorData
from analysis.quantile import quantile
from survey.errors import EstimationError, SurveyWarning

__all__ = ["DEFAULT_CONTROLS", "group_estimates", "impact_table", "stars"]

#: Controls of the adjusted and propensity estimates (DOMAIN.md): head's age, sex and
#: education; household size and composition; urban/rural; region.
DEFAULT_CONTROLS = ("head_age", "head_female", "head_education", "hh_size", "n_children",
                    "n_elderly", "urban", "region")
_GROUPS = ("none", "emigrant", "returnee")


def stars(p: float | np.ndarray) -> np.ndarray:
    """``***`` p < 0.01, ``**`` p < 0.05, ``*`` p < 0.1, else empty."""
    p = np.atleast_1d(np.asarray(p, dtype=float))
    return np.where(p < 0.01, "***", np.where(p < 0.05, "**", np.where(p < 0.1, "*", "")))


def _select(data: IndicatorData, indicators) -> list[Indicator]:
    if indicators is None:
        return list(data.indicators)
    return [i if isinstance(i, Indicator) else data.get(i) for i in indicators]


def _domain_specs(domains: Sequence[str] | None) -> list[str | None]:
    return [None, *(domains or ())]


def group_estimates(data: IndicatorData, indicators: Sequence[Indicator | str] | None = None, *,
                    group: str = "migration_group", domains: Sequence[str] | None = None,
                    overall: bool = True, medians: bool = True, min_n: int = 30,
                    max_cv: float = 0.3, level: float = 0.95) -> pd.DataFrame:
    """Every indicator by group, nationally and within each domain variable.

    Parameters
    ----------
    data
        Designs with the indicators (:func:`analysis.indicators.prepare`).
    indicators
        Indicators or their names (default: all).
    group
        Grouping column: ``"migration_group"`` (none / emigrant / returnee) or
        ``"remittance_receiving"``, or any column present in the designs.
    domains
        Domain columns (e.g. ``["urban", "head_female", "region"]``): each is a
        breakdown of its own, besides the national rows.
    overall
        Add the estimate over all groups (``group = "all"``).
    medians
        Add medians of the indicators marked ``median`` (skewed amounts).
    min_n, max_cv
        Rows with fewer unweighted observations, or a larger coefficient of
        variation, are flagged (``flag_small_n``, ``flag_high_cv``).

    Returns
    -------
    DataFrame
        ``area, indicator, label, statistic, domain, domain_value, group, estimate, se,
        ci_low, ci_high, deff, n, cv, flag_small_n, flag_high_cv``.

    Notes
    -----
    Groups and domains are estimation domains over the whole design (Lumley 2010,
    section 2.4), so their SEs count every PSU; rows missing the indicator are a
    domain too. ``deff`` is against simple random sampling without replacement.
    """
    inds = _select(data, indicators)
    frames = []
    for design_key in ("household", "person"):
        sub = [i for i in inds if (i.person_level == (design_key == "person"))]
        if not sub:
            continue
        design = data.design_for(sub[0])
        if group not in design.data.columns:
            raise EstimationError("group column not found in the design", column=group,
                                  hint="prepare the data with analysis.indicators.prepare")
        for dom in _domain_specs(domains):
            if dom is not None and dom not in design.data.columns:
                raise EstimationError("domain column not found", column=dom,
                                      hint="domains come from the design's data, e.g. urban, region")
            bys = [[group] if dom is None else [dom, group]]
            if overall:
                bys.append([] if dom is None else [dom])
            for by in bys:
                dd, mask = _complete_domains(design, by)
                for kind, fn in (("mean", mean), ("total", total)):
                    names = [i.name for i in sub if (i.kind == "total") == (kind == "total")]
                    if not names:
                        continue
                    est = fn(dd, names, by=by or None, mask=mask, deff=True, level=level)
                    frames.append(_tidy(est.to_frame(), group, dom, kind))
                if medians:
                    for i in (i for i in sub if i.median):
                        q = quantile(dd, i.name, 0.5, by=by or None, mask=mask, level=level)
                        frames.append(_tidy(q.to_frame(), group, dom, "median"))
    out = pd.concat(frames, ignore_index=True)
    out = out[(out["group"] != _MISSING) & (out["domain_value"] != _MISSING)]
    meta = {i.name: i for i in inds}
    out.insert(0, "area", out["indicator"].map(lambda n: meta[n].area))
    out.insert(2, "label", out["indicator"].map(lambda n: meta[n].label))
    out.loc[(out["statistic"] == "mean") & out["indicator"].map(
        lambda n: meta[n].kind == "share"), "statistic"] = "share"
    with np.errstate(divide="ignore", invalid="ignore"):
        out["cv"] = out["se"] / out["estimate"].abs()
    out["flag_small_n"] = out["n"] < min_n
    out["flag_high_cv"] = ~(out["cv"] <= max_cv)
    order = {n: k for k, n in enumerate(meta)}
    gorder = {g: k for k, g in enumerate((*_GROUPS, "all"))}
    out = out.assign(_i=out["indicator"].map(order), _g=out["group"].map(gorder).fillna(9),
                     _n=out["domain"] != "national")
    out = out.sort_values(["_i", "_n", "domain", "domain_value", "statistic", "_g"],
                          kind="stable")
    return out.drop(columns=["_i", "_g", "_n"]).reset_index(drop=True)


_MISSING = "(missing)"


def _label(v) -> str:
    """A domain value as text: 1.0 (a 0/1 column such as head_female) reads as "1"."""
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _complete_domains(design, by: list[str]):
    """Missing domain values become a level outside the mask (a domain, not a filter)."""
    na = [c for c in by if design.data[c].isna().any()]
    if not na:
        return design, None
    dd = design.map(lambda df: df.assign(**{
        c: df[c].map(_label, na_action="ignore").astype("string").fillna(_MISSING) for c in na}))
    mask = np.ones(design.n, dtype=bool)
    for c in na:
        mask &= design.data[c].notna().to_numpy()
    return dd, mask


def _tidy(est: pd.DataFrame, group: str, dom: str | None, statistic: str) -> pd.DataFrame:
    g = est[group].astype(object) if group in est else np.full(len(est), "all", dtype=object)
    dv = [_label(v) for v in est[dom]] if dom is not None else \
        np.full(len(est), "national", dtype=object)
    return pd.DataFrame({
        "indicator": est["variable"].astype(object).to_numpy(), "statistic": statistic,
        "domain": dom or "national", "domain_value": np.asarray(dv, dtype=object),
        "group": np.asarray(g, dtype=object),
        **{c: est[c].to_numpy(dtype=float) for c in ("estimate", "se", "ci_low", "ci_high")},
        "deff": est["deff"].to_numpy(dtype=float) if "deff" in est else np.nan,
        "n": est["n"].to_numpy(dtype=float)})


def _objects(s: pd.Series) -> np.ndarray:
    """Values as objects with None for missing (comparisons give False, never NA)."""
    return np.where(s.isna().to_numpy(), None, s.astype(object).to_numpy())


def _controls(design, requested: Sequence[str], mask: np.ndarray) -> list[str]:
    """Controls present in the data and not constant within the domain."""
    out = []
    for c in requested:
        if c not in design.data.columns:
            continue
        s = design.data[c][mask]
        if s.nunique(dropna=True) > 1:
            out.append(c)
    return out


def impact_table(data: IndicatorData, indicators: Sequence[Indicator | str] | None = None, *,
                 controls: Sequence[str] = DEFAULT_CONTROLS, group: str = "migration_group",
                 treated: Sequence[str] = ("emigrant", "returnee"), control: str = "none",
                 methods: Sequence[str] = ("raw", "regression", "ipw"),
                 domains: Sequence[str] | None = None, variance: str | None = None,
                 min_n: int = 30, level: float = 0.95) -> pd.DataFrame:
    """The DotM impact table: one row per indicator (and domain value).

    Parameters
    ----------
    data
        Designs with the indicators (:func:`analysis.indicators.prepare`).
    indicators
        Indicators or their names (default: all).
    controls
        Covariates of the adjusted and propensity estimates. Those absent from the
        data are left out with a SurveyWarning; those constant within a domain are
        left out there (the domain variable itself).
    group, treated, control
        The comparison: households in ``treated`` groups (migrant households)
        against those in ``control``.
    methods
        Any of ``"raw"``, ``"regression"``, ``"ipw"``, ``"aipw"``, ``"psm"``; raw is
        always computed.
    domains
        Domain columns: the table is repeated within each of their values.
    variance
        Passed to :func:`analysis.impact.impact` for the propensity methods.
    min_n
        Flag rows where the treated or comparison group has fewer units.

    Returns
    -------
    DataFrame
        ``area, indicator, label, kind, domain, domain_value, mean_<group>...,
        n, n_treated, n_control, raw_diff, raw_se, raw_p, raw_ci_low, raw_ci_high,
        raw_df, [adj_...], [ipw_diff, ipw_se, ipw_p, ipw_ci_low, ipw_ci_high, ipw_df,
        ipw_support_n, ipw_dropped], [aipw_...], [psm_...], stars, stars_of, flag``.
        ``stars`` follow the p-value of the last method requested that gave an
        estimate in the row (``stars_of`` names it: ``raw``, ``adj``, ``ipw``,
        ``aipw`` or ``psm``; empty when none did).

        Every method's p-value and ``level`` interval come from the same t
        distribution on the estimate's design degrees of freedom (``<key>_df``; see
        :func:`analysis.impact.impact`), so at ``level=0.95`` a p-value below 0.05
        (two or more stars) means exactly that the interval excludes 0. The report's
        forest plot draws these interval columns.

    Notes
    -----
    A domain with no migrant (or no comparison) households cannot give a
    difference: :func:`analysis.impact.impact` raises, and the table keeps the row
    with missing differences and ``flag = "no treated units in domain"`` so that the
    published table shows the gap rather than hiding it.
    """
    inds = _select(data, indicators)
    unknown = [m for m in methods if m not in ("raw", "regression", "ipw", "aipw", "psm")]
    if unknown:
        raise EstimationError(f"unknown method {unknown[0]!r}",
                              hint="methods: raw, regression, ipw, aipw, psm")
    tl = list(treated)
    rows = []
    cache: dict = {}  # propensity fits shared by indicators with the same rows
    missing_controls: set[str] = set()
    for ind in inds:
        design = data.design_for(ind)
        missing_controls |= {c for c in controls if c not in design.data.columns}
        if group not in design.data.columns:
            raise EstimationError("group column not found in the design", column=group)
        gvals = _objects(design.data[group])
        for dom in _domain_specs(domains):
            values = [None] if dom is None else sorted(design.data[dom].dropna().unique().tolist(),
                                                       key=str)
            for val in values:
                mask = np.ones(design.n, dtype=bool) if dom is None else \
                    (_objects(design.data[dom]) == val)
                rows.append(_row(design, ind, dom, val, mask, gvals, controls, group, tl, control,
                                 methods, variance, min_n, level, cache))
    if missing_controls:
        warnings.warn(f"controls not in the data, left out: {', '.join(sorted(missing_controls))}",
                      SurveyWarning, stacklevel=2)
    return pd.DataFrame(rows)


def _row(design, ind: Indicator, dom, val, mask, gvals, controls, group, tl, control, methods,
         variance, min_n, level, cache) -> dict:
    row: dict = {"area": ind.area, "indicator": ind.name, "label": ind.label, "kind": ind.kind,
                 "domain": dom or "national",
                 "domain_value": "national" if dom is None else _label(val)}
    y = design.data[ind.name].to_numpy(dtype=float, na_value=np.nan)
    has_y = ~np.isnan(y) & mask
    w = design.w
    for g in (control, *tl):
        sel = has_y & (gvals == g)
        row[f"mean_{g}"] = float((w[sel] * y[sel]).sum() / w[sel].sum()) if sel.any() else np.nan
    row["n"] = int(has_y.sum())
    row["n_treated"] = int((has_y & np.isin(gvals, tl)).sum())
    row["n_control"] = int((has_y & (gvals == control)).sum())
    notes = []
    last_p, last_m = np.nan, ""
    ctrl = _controls(design, controls, mask & has_y)
    for m in ("raw", *[m for m in methods if m != "raw"]):
        key = {"regression": "adj"}.get(m, m)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", SurveyWarning)
                f = impact_fit(design, ind.name, group, ctrl if m != "raw" else (), m,
                               treated=tl, control=control, mask=mask, level=level,
                               variance=variance if m in ("ipw", "aipw") else None,
                               cache=cache)
            for c in caught:
                if issubclass(c.category, SurveyWarning):
                    notes.append(f"{m}: {c.message}")
                else:
                    warnings.warn_explicit(c.message, c.category, c.filename, c.lineno)
        except EstimationError as err:
            row.update({f"{key}_{c}": np.nan for c in ("diff", "se", "p", "ci_low", "ci_high",
                                                         "df")})
            msg = err.message
            if "no " in msg and "units with a value" in msg:
                notes.append("no treated units in domain" if row["n_treated"] == 0 else
                             "no comparison units in domain")
            else:
                notes.append(f"{m}: {msg}")
            continue
        # one t distribution (the estimate's df) for the p-value, the interval and the
        # stars, so p < 0.05 exactly when the 95% interval excludes 0
        row[f"{key}_diff"], row[f"{key}_se"], row[f"{key}_p"] = f.estimate, f.se, f.p_value
        row[f"{key}_ci_low"], row[f"{key}_ci_high"] = f.confint(level)
        row[f"{key}_df"] = f.df
        if m in ("ipw", "aipw", "psm"):
            row[f"{key}_support_n"] = f.n_treated + f.n_control
            row[f"{key}_dropped"] = f.dropped_treated + f.dropped_control
        last_p, last_m = f.p_value, key
    if row["n_treated"] < min_n or row["n_control"] < min_n:
        notes.append(f"fewer than {min_n} treated or comparison units")
    row["stars"] = str(stars(last_p)[0])
    row["stars_of"] = last_m
    row["flag"] = "; ".join(dict.fromkeys(notes))
    return row
