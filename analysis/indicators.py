"""The impact indicators: a declarative catalogue over the household form's fields.

Every indicator of DOMAIN.md (remittances, education, health, gender roles) is an
:class:`Indicator`: an expression over the imported fields of one table (the
household, or the ``members`` roster for person-level indicators such as school
enrolment), optionally a *universe* (who the indicator is defined for: children
aged 6-17, members ill in the last 30 days, households that receive remittances).
Outside the universe, and where a field is missing, the value is missing, and a
missing value is a domain for the estimators, never a filter.

Expressions are written in Python/pandas syntax (``survey.toml``'s
``[[indicators.custom]]`` uses the same) and evaluated safely, never by ``eval``
(:mod:`analysis.expressions`). Aggregates over a repeat group of the household
(``any(members, insured == 'yes')``, ``head(age)``) let household indicators use the
roster.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from analysis.expressions import FUNCTIONS, evaluate
from analysis.expressions import as_values as _column
from analysis.expressions import truth as _bool
from survey.design import Design
from survey.errors import ConfigError, EstimationError, SurveyWarning, did_you_mean

__all__ = [
    "AREAS",
    "COVARIATES",
    "FUNCTIONS",
    "Indicator",
    "IndicatorData",
    "catalogue",
    "catalogue_from_config",
    "custom_indicator",
    "evaluate",
    "migration_group",
    "prepare",
    "person_design",
]

Area = Literal["remittances", "education", "health", "gender", "custom"]
AREAS: tuple[str, ...] = ("remittances", "education", "health", "gender", "custom")
Kind = Literal["share", "mean", "total"]


@dataclass(frozen=True)
class Indicator:
    """One indicator: what it measures, over which table, and for whom.

    Parameters
    ----------
    name
        Identifier (column name in the prepared data).
    label
        Readable label for tables and the report.
    area
        ``"remittances"``, ``"education"``, ``"health"``, ``"gender"`` or ``"custom"``.
    expression
        Value per row of ``table`` (see :func:`evaluate`).
    table
        ``"household"`` or a repeat table (``"members"``): person-level indicators are
        estimated on a person design that inherits the household's design.
    universe
        Condition defining who the indicator applies to; elsewhere it is missing.
    kind
        ``"share"`` (0/1, reported as a proportion), ``"mean"`` or ``"total"``.
    median
        Also report the median (skewed amounts).
    """

    name: str
    label: str
    area: str
    expression: str
    table: str = "household"
    universe: str | None = None
    kind: Kind = "share"
    median: bool = False
    unit: str = ""

    @property
    def person_level(self) -> bool:
        return self.table != "household"


#: Household covariates (controls of the impact table), derived from the roster.
COVARIATES: Mapping[str, str] = {
    "head_age": "head(age)",
    "head_female": "head(sex == 'female')",
    "head_education": "head(where(edu_level == 'none', 0, edu_years))",
    "hh_members": "count(members)",
    "n_children": "count(members, age < 15)",
    "n_elderly": "count(members, age >= 65)",
    "n_men_18plus": "count(members, sex == 'male' and age >= 18)",
}


def catalogue(*, recall_months: int = 12, school_age: tuple[int, int] = (6, 17),
              school_age_bands: Sequence[tuple[int, int]] = ((6, 11), (12, 14), (15, 17)),
              adult_age: int = 25, women_age: tuple[int, int] = (15, 64),
              women_deciders: Sequence[str] = ("woman", "joint"),
              usd_rate: float | None = None,
              custom: Sequence[Any] = ()) -> tuple[Indicator, ...]:
    """The DotM impact indicators for the bundled household form, with parameters.

    Parameters
    ----------
    recall_months
        Recall period of the remittance questions (the bundled form asks 12
        months): labels say it, and annual amounts are ``amount * 12 / recall``.
    school_age, school_age_bands
        Ages of the enrolment indicator and its bands (inclusive).
    adult_age
        Youngest age counted in "years of schooling of adults".
    women_age
        Ages of the women's labour-force participation indicator.
    women_deciders
        Answers to the decision questions that count as a woman having a say (the
        form's ``decider`` list: respondent, spouse, joint, head, woman, other).
    usd_rate
        Local currency units per US$; adds the amount in US$.
    custom
        User indicators (``survey.toml``'s ``[[indicators.custom]]`` entries, or dicts
        with ``name``, ``expression``, ``table``, ``label``, ``kind``, ``universe``).

    Returns
    -------
    tuple of Indicator
        In the order of the impact table: remittances, education, health, gender,
        then custom indicators.

    Notes
    -----
    The bundled form has no income question, so "remittances as a share of
    household income" is approximated by the share of annual household spending
    (``rem_share_spending``). De facto female headship counts households headed by a
    woman or with no man aged 18+ present (the men are away).
    """
    r = int(recall_months)
    annual = f"rem_amount * {12.0 / r!r}"
    rec = "rem_received == 'yes'"
    deciders = "[" + ", ".join(repr(d) for d in women_deciders) + "]"
    lo, hi = school_age
    out: list[Indicator] = [
        Indicator("remittances_received", f"Received remittances (last {r} months)", "remittances", rec),
        Indicator("rem_amount_year", "Annual remittances received (LCU, receivers)", "remittances",
                  annual, universe=rec, kind="mean", median=True, unit="LCU"),
    ]
    if usd_rate:
        out.append(Indicator("rem_amount_usd", "Annual remittances received (US$, receivers)",
                             "remittances", f"{annual} / {float(usd_rate)!r}", universe=rec,
                             kind="mean", median=True, unit="US$"))
    out += [
        Indicator("rem_monthly", "Receives remittances monthly or more often (receivers)",
                  "remittances", "rem_frequency == 'monthly'", universe=rec),
    ]
    for ch, lab in (("bank", "bank"), ("mto", "money transfer operator"), ("mobile", "mobile money"),
                    ("informal", "informal agent"), ("hand_carried", "hand-carried")):
        out.append(Indicator(f"rem_channel_{ch}", f"Main channel: {lab} (receivers)", "remittances",
                             f"rem_channel == '{ch}'", universe=rec))
    for use in ("food", "education", "health", "housing", "debt", "business", "savings"):
        out.append(Indicator(f"rem_use_{use}", f"Remittances used for {use} (receivers)",
                             "remittances", f"selected(rem_uses, '{use}')", universe=rec))
    out += [
        Indicator("rem_share_spending", "Remittances as a share of annual spending (receivers)",
                  "remittances", f"{annual} / spend_total_year",
                  universe=f"{rec} and spend_total_year > 0", kind="mean"),
        Indicator(f"enrol_{lo}_{hi}", f"Attends school, aged {lo}-{hi}", "education",
                  "attends_school == 'yes'", table="members", universe=f"between(age, {lo}, {hi})"),
    ]
    for a, b in school_age_bands:
        out.append(Indicator(f"enrol_{a}_{b}", f"Attends school, aged {a}-{b}", "education",
                             "attends_school == 'yes'", table="members",
                             universe=f"between(age, {a}, {b})"))
    out += [
        Indicator("spend_edu", "Household education spending (last 12 months, LCU)", "education",
                  "spend_edu_year", kind="mean", median=True, unit="LCU"),
        Indicator("adult_schooling", f"Years of schooling, adults {adult_age}+", "education",
                  "where(edu_level == 'none', 0, edu_years)", table="members",
                  universe=f"age >= {adult_age}", kind="mean", unit="years"),
        Indicator("spend_health", "Household health spending (last 12 months, LCU)", "health",
                  "spend_health_year", kind="mean", median=True, unit="LCU"),
        Indicator("insured_person", "Covered by health insurance (persons)", "health",
                  "insured == 'yes'", table="members"),
        Indicator("any_insured", "Household with a member covered by health insurance", "health",
                  "any(members, insured == 'yes')"),
        Indicator("health_good", "Self-rated health good or very good (persons)", "health",
                  "self_rated_health in ['very_good', 'good']", table="members"),
        Indicator("consulted_when_ill", "Consulted a provider when ill (ill in last 30 days)", "health",
                  "sought_care == 'yes'", table="members", universe="ill_30d == 'yes'"),
        Indicator("forgone_care_ill", "Forgone care because of cost (ill in last 30 days)",
                  "health", "sought_care == 'no' and forgone_care_cost == 'yes'", table="members",
                  universe="ill_30d == 'yes'"),
        Indicator("female_head", "Female-headed household (de jure)", "gender",
                  "head(sex == 'female')"),
        Indicator("female_head_defacto", "Female-headed household (de facto)", "gender",
                  "head(sex == 'female') or count(members, sex == 'male' and age >= 18) == 0"),
        Indicator("women_lfp", f"Women {women_age[0]}-{women_age[1]} who worked (last 7 days)",
                  "gender", "worked == 'yes'", table="members",
                  universe=f"sex == 'female' and between(age, {women_age[0]}, {women_age[1]})"),
        Indicator("women_work_hh", "An adult woman of the household works for pay", "gender",
                  "women_work == 'yes'"),
    ]
    for q, lab in (("large_purchases", "large purchases"), ("daily_spending", "daily spending"),
                   ("remittance_use", "remittance use"), ("schooling", "schooling"),
                   ("health", "health care")):
        out.append(Indicator(f"women_say_{q}", f"A woman decides (alone or jointly) on {lab}",
                             "gender", f"dec_{q} in {deciders}",
                             universe=rec if q == "remittance_use" else None))
    out += [
        Indicator("woman_owns_land", "A woman of the household owns land", "gender",
                  "women_own_land == 'yes'"),
        Indicator("woman_owns_dwelling", "A woman of the household owns the dwelling", "gender",
                  "women_own_house == 'yes'"),
    ]
    out += [custom_indicator(c) for c in custom]
    names = [i.name for i in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"indicator {dup[0]!r} is defined twice",
                          hint="give the custom indicator another name")
    return tuple(out)


def catalogue_from_config(config: Any) -> tuple[Indicator, ...]:
    """The catalogue with the parameters and user indicators of a ``survey.toml``.

    Reads ``[indicators]`` (``remittance_recall_months``, ``school_age``,
    ``school_age_bands``, ``[[indicators.custom]]``) and ``[survey].usd_rate`` of a
    :class:`survey.config.Config`.
    """
    ind = config.indicators
    return catalogue(recall_months=ind.remittance_recall_months, school_age=tuple(ind.school_age),
                     school_age_bands=tuple(tuple(b) for b in ind.school_age_bands),
                     usd_rate=getattr(config.survey, "usd_rate", None), custom=ind.custom)

def custom_indicator(spec: Any) -> Indicator:
    """An :class:`Indicator` from a ``survey.toml`` entry (``CustomIndicator``) or a dict.

    ``kind`` ``"proportion"`` (the config's word) is a share of a yes/no expression.
    """
    get = spec.get if isinstance(spec, Mapping) else lambda k, d=None: getattr(spec, k, d)
    name, expr = get("name"), get("expression")
    if not name or not expr:
        raise ConfigError("a custom indicator needs a name and an expression",
                          hint='e.g. name = "high_spend", expression = "spend_edu_year > 500"')
    try:
        ast.parse(expr, mode="eval")
    except SyntaxError as err:
        raise ConfigError(f"indicator {name!r}: {expr!r} is not a valid expression",
                          hint=err.msg) from None
    kind = {"proportion": "share"}.get(get("kind", "mean") or "mean", get("kind", "mean"))
    if kind not in ("share", "mean", "total"):
        raise ConfigError(f"indicator {name!r}: kind {kind!r} is not mean, proportion or total")
    return Indicator(name=str(name), label=str(get("label", "") or name), area="custom",
                     expression=str(expr), table=str(get("table", "household") or "household"),
                     universe=get("universe", None) or None, kind=kind)


# -- preparing designs with the indicators ------------------------------------------------

def migration_group(data: pd.DataFrame, *, emigrant: str = "any_emigrant",
                    returnees: str = "n_returnees") -> pd.Series:
    """``"emigrant"``, ``"returnee"`` or ``"none"`` from the interview (missing if unknown).

    A household with a current emigrant is an emigrant household even if a returnee
    lives there too (the absent migrant defines the group, as the listing screen does).
    """
    em = _column(data[emigrant]) if emigrant in data else np.full(len(data), None)
    ret = (pd.to_numeric(data[returnees], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
           if returnees in data else np.full(len(data), np.nan))
    is_em = np.array([x == "yes" for x in em])
    known = ~pd.isna(em)
    out = np.where(is_em, "emigrant", np.where(~known, None,
                   np.where(np.nan_to_num(ret) > 0, "returnee", np.where(np.isnan(ret), None, "none"))))
    return pd.Series(pd.array(out, dtype="string"), index=data.index, name="migration_group")


@dataclass(frozen=True, eq=False)
class IndicatorData:
    """Designs that carry the indicator columns: households, and persons if needed."""

    household: Design
    person: Design | None
    indicators: tuple[Indicator, ...]

    def design_for(self, indicator: Indicator | str) -> Design:
        ind = indicator if isinstance(indicator, Indicator) else self.get(indicator)
        if ind.person_level:
            if self.person is None:
                raise EstimationError(f"indicator {ind.name!r} is person-level but no person design",
                                      hint="pass the members table to analysis.indicators.prepare")
            return self.person
        return self.household

    def get(self, name: str) -> Indicator:
        for i in self.indicators:
            if i.name == name:
                return i
        raise EstimationError("no such indicator", field=name,
                              hint=did_you_mean(name, [i.name for i in self.indicators]))


def person_design(household: Design, members: pd.DataFrame, *, key: str = "key",
                  parent_key: str = "parent_key", columns: Sequence[str] = ()) -> Design:
    """A person-level design that inherits each household's strata, PSUs, fpc and weight.

    Persons of a household share its PSU (the EA), so the with-replacement variance
    at stage 1 treats the whole household, and its EA, as one cluster. ``columns``
    of the household data (covariates, the migration group) are copied to persons.
    Persons whose household is not in the design are left out (they have no weight).

    Notes
    -----
    Replicate designs carry the household's replicate weights to its members, so
    calibration repeated on replicates is respected. A linearisation design's
    calibrations are defined on household rows and cannot be carried over: the
    person design then treats the calibrated weights as fixed (a SurveyWarning).
    """
    hd = household.data
    for c in (key,):
        if c not in hd.columns:
            raise EstimationError("household key not found in the design's data", column=c)
    if parent_key not in members.columns:
        raise EstimationError("parent key not found in the members table", column=parent_key)
    design_cols = [c for c in (household.weights, *household.strata, *household.psu, *household.fpc)
                   if c is not None]
    rep_cols: list[str] = []
    if household.replicates is not None:
        rep_cols = [f"_rep{r}" for r in range(household.replicates.n_replicates)]
    cols = list(dict.fromkeys([*design_cols, *[c for c in columns if c in hd.columns]]))
    left = hd[[key, *cols]].copy()
    if rep_cols:
        left = pd.concat([left, pd.DataFrame(household.replicates.weights, columns=rep_cols,
                                             index=left.index)], axis=1)
    left = left.rename(columns={key: "_hh_key"})
    m = members.drop(columns=[c for c in cols if c in members.columns and c != parent_key])
    m = m.assign(_hh_key=m[parent_key].astype(object)).drop(columns=rep_cols, errors="ignore")
    left = left.assign(_hh_key=left["_hh_key"].astype(object))
    persons = m.merge(left, on="_hh_key", how="inner", validate="many_to_one")
    persons = persons[persons[household.weights] > 0].reset_index(drop=True)
    if len(persons) == 0:
        raise EstimationError("no member belongs to a household of the design",
                              hint=f"members.{parent_key} must match the household {key!r} column")
    if household.replicates is not None:
        info = household.replicates
        d = Design.from_replicates(persons, weights=household.weights, replicate_weights=rep_cols,
                                   method=info.method, scale=info.scale, rscales=info.rscales,
                                   rho=info.rho, mse=info.mse)
        return d
    if household.calibrations:
        warnings.warn("the household weights are calibrated; person-level SEs treat them as fixed "
                      "(use a replicate design to carry calibration to persons)", SurveyWarning,
                      stacklevel=2)
    strata = [s for s in household.strata] or None
    psu = [p for p in household.psu] or None
    fpc = [f for f in household.fpc] or None
    if psu is not None and all(p is None for p in psu):
        psu = ["_hh_key"]  # households were the units: they are the persons' clusters
    return Design(persons, weights=household.weights, strata=strata, psu=psu, fpc=fpc,
                  lonely_psu=household.lonely_psu)


def prepare(design: Design, tables: Mapping[str, pd.DataFrame] | None = None,
            indicators: Sequence[Indicator] | None = None, *, key: str = "key",
            parent_key: str = "parent_key", params: Mapping[str, Any] | None = None,
            group: str | None = None) -> IndicatorData:
    """Add the indicators, covariates and migration group to the design(s).

    Parameters
    ----------
    design
        The household design; its data is the typed household table (plus the
        frame's columns such as ``region`` and ``urban``) with the final weights.
    tables
        The typed repeat tables by name (``{"members": ..., "emigrants": ...}``, as
        ``instruments.read_export(...).tables``).
    indicators
        Default: :func:`catalogue` with its default parameters.
    group
        Column holding the migration group; default: derived from the interview
        (:func:`migration_group`) into ``migration_group``.

    Returns
    -------
    IndicatorData
        Household design (with :data:`COVARIATES`, ``migration_group``, ``migrant``,
        ``remittance_receiving`` and household indicators added) and, when a
        person-level indicator is asked for, the person design.
    """
    inds = tuple(indicators) if indicators is not None else catalogue()
    children = dict(tables or {})
    children.pop("household", None)
    hd = design.data
    new: dict[str, np.ndarray | pd.Series] = {}
    has_roster = "members" in children
    if has_roster:
        for c, e in COVARIATES.items():
            if c not in hd.columns:
                new[c] = evaluate(e, hd, params=params, children=children, key=key,
                                  parent_key=parent_key, name=c)
    if group is None:
        new["migration_group"] = migration_group(hd)
        gcol = new["migration_group"]
    else:
        if group not in hd.columns:
            raise EstimationError("group column not found", column=group,
                                  hint=did_you_mean(group, hd.columns))
        gcol = hd[group].astype("string")
    mig = np.where(gcol.isna().to_numpy(), np.nan, gcol.isin(["emigrant", "returnee"]).to_numpy())
    new["migrant"] = mig.astype(float)
    if "rem_received" in hd.columns:
        rr = _column(hd["rem_received"])
        new["remittance_receiving"] = pd.array(
            np.where(pd.isna(rr), None, np.where(rr == "yes", "receiving", "not receiving")),
            dtype="string")
    for ind in inds:
        table = hd if not ind.person_level else children.get(ind.table)
        if table is not None and ind.name in table.columns:
            raise ConfigError(f"indicator {ind.name!r} has the name of a field of the "
                              f"{ind.table!r} table and would overwrite it",
                              field=ind.name, hint="give the indicator another name")
    hh_inds = [i for i in inds if not i.person_level]
    person_inds = [i for i in inds if i.person_level]
    base = hd.assign(**new)
    for ind in hh_inds:
        new[ind.name] = _indicator_values(ind, base, children, key, parent_key, params)
    hh = design.map(lambda d: d.assign(**new))
    person = None
    if person_inds:
        tbls = {i.table for i in person_inds}
        for t in tbls:
            if t not in children:
                raise EstimationError(f"person-level indicators need the {t!r} table",
                                      hint=f"pass tables={{'{t}': ...}} from the import")
        if len(tbls) > 1:
            raise EstimationError("person-level indicators from several repeat tables",
                                  hint="estimate them one table at a time")
        (t,) = tbls
        carry = [c for c in hh.data.columns if c in set(COVARIATES) | set(new) |
                 {"region", "urban", "hh_size", "stratum", "ea_id", "group"}]
        person = person_design(hh, children[t], key=key, parent_key=parent_key, columns=carry)
        pdata = person.data
        add = {ind.name: _indicator_values(ind, pdata, {}, key, parent_key, params)
               for ind in person_inds}
        person = person.map(lambda d: d.assign(**add))
    return IndicatorData(household=hh, person=person, indicators=inds)


def _indicator_values(ind: Indicator, data: pd.DataFrame, children, key, parent_key,
                      params) -> np.ndarray:
    v = evaluate(ind.expression, data, params=params, children=children, key=key,
                 parent_key=parent_key, name=ind.name)
    if v.dtype == object:
        raise ConfigError(f"indicator {ind.name!r} gives text, expected numbers or yes/no",
                          hint="compare the field with a choice, e.g. x == 'yes'")
    v = v.astype(float)
    if ind.universe:
        u = evaluate(ind.universe, data, params=params, children=children, key=key,
                     parent_key=parent_key, name=ind.name)
        v = np.where(_bool(u) == 1, v, np.nan)
    if ind.kind == "share":
        ok = ~np.isnan(v)
        if ((v[ok] != 0) & (v[ok] != 1)).any():
            raise ConfigError(f"indicator {ind.name!r} is a share but takes values other than 0/1",
                              hint='write a condition (x == "yes"), or set kind = "mean"')
    return v
