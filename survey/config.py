"""The project configuration, ``survey.toml``, as frozen dataclasses.

The schema is declared once, as the dataclasses below; :func:`parse_config` walks
their type hints to validate a TOML document, so every key is checked the same way:
unknown keys (with a suggestion for a likely misspelling), missing required keys,
wrong types, values outside a closed vocabulary or a numeric range. Each error is a
:class:`~survey.errors.ConfigError` naming the file, the dotted key, the bad value
and what is allowed.

Closed vocabularies are ``Literal`` types, normalised here at the edge; the stages
downstream receive only valid values.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from survey.errors import ConfigError

__all__ = [
    "CONFIG_FILE",
    "Config",
    "default_config_text",
    "load_config",
    "parse_config",
]

#: Name of the configuration file in a project folder.
CONFIG_FILE = "survey.toml"

AllocationMethod = Literal["proportional", "equal", "neyman", "optimal", "power"]
CalibrationMethod = Literal["none", "poststratify", "raking", "linear", "logit"]
ReplicateMethod = Literal["none", "jkn", "bootstrap"]
ImpactMethod = Literal["raw", "regression", "ipw", "aipw", "psm"]
AnalysisVariance = Literal["linearization", "replicate"]
IndicatorKind = Literal["mean", "proportion", "total"]
OutputFormat = Literal["xlsx", "html", "dta", "sav", "parquet", "csv"]
TrimReference = Literal["median", "absolute"]


def _f(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, **meta: Any):
    """A dataclass field with validation metadata (``min``, ``max``, ``identifier``)."""
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class SurveySection:
    """Country and the definitions that the questionnaire and indicators use."""

    country: str
    title: str = ""
    currency: str = "LCU"
    usd_rate: float | None = _f(None, min=0.0)  # local currency units per US$
    reference_years: int = _f(10, min=1, max=50)  # emigrants who left within this window
    min_months_abroad: int = _f(3, min=1, max=24)


@dataclass(frozen=True)
class FrameSection:
    """The EA frame file and the names of its columns."""

    file: str
    sheet: str | None = None
    ea: str = "ea_id"
    size: str = "households"
    region: str = "region"
    urban: str = "urban"
    migrant_share: str | None = "migrant_share"


@dataclass(frozen=True)
class StrataSection:
    """How strata are formed from frame columns."""

    by: tuple[str, ...] = ("region", "urban")
    migration_intensity: bool = False  # split each stratum into high/low migrant share
    intensity_cutoff: float = _f(0.10, min=0.0, max=1.0)


@dataclass(frozen=True)
class AllocationSection:
    """Number of EAs and how they are allocated to strata."""

    method: AllocationMethod = "proportional"
    n_eas: int = _f(100, min=1)
    power: float = _f(0.5, min=0.0, max=1.0)  # exponent for method = "power"
    min_per_stratum: int = _f(2, min=1)
    sort_by: tuple[str, ...] = ()  # implicit stratification within strata


ListingMethod = Literal["systematic", "srs"]


@dataclass(frozen=True)
class ListingSection:
    """The household listing of the selected EAs (phase 1) and phase-2 selection."""

    file: str = "data/listing.csv"  # one row per listed household
    sheet: str | None = None
    ea: str = "ea_id"
    hh: str = "hh_id"
    group: str = "group"
    method: ListingMethod = "systematic"  # household selection within EA x group
    reserve: int = _f(2, min=0)  # reserve households per EA x group


@dataclass(frozen=True)
class FieldworkSection:
    """The questionnaire and where its exports are found."""

    form: str = "forms/household.xlsx"
    exports: str = "data/exports"  # folder that `survey import` reads by default
    central_project: int | None = _f(None, min=1)  # ODK Central project id (--from-odk-central)


@dataclass(frozen=True)
class SeedsSection:
    """Seeds of every random step, so that a project re-runs identically."""

    select_eas: int = _f(20100101, min=0)
    select_households: int = _f(20100102, min=0)
    replicates: int = _f(20100103, min=0)
    demo: int = _f(20100104, min=0)
    public_use: int = _f(20100105, min=0)  # random codes and GPS displacement


@dataclass(frozen=True)
class NonresponseSection:
    """Weighting classes for the nonresponse adjustment."""

    cells: tuple[str, ...] = ("stratum", "group")
    min_respondents: int = _f(20, min=1)  # smaller cells are collapsed
    max_factor: float = _f(3.0, min=1.0)


@dataclass(frozen=True)
class CalibrationSection:
    """Calibration of household weights to census totals."""

    method: CalibrationMethod = "raking"
    totals: str | None = "data/census_totals.csv"  # columns: margin, level, total
    by: tuple[str, ...] = ("region", "urban")
    bounds: tuple[float, float] | None = _f(None, min=0.0)


@dataclass(frozen=True)
class TrimmingSection:
    """Bounds for trimming extreme weights (with redistribution)."""

    relative_to: TrimReference = "median"
    lower: float | None = _f(None, min=0.0)
    upper: float | None = _f(None, min=0.0)


@dataclass(frozen=True)
class ReplicatesSection:
    """Replicate weights published with the data."""

    method: ReplicateMethod = "jkn"
    replicates: int = _f(200, min=2)  # bootstrap only


@dataclass(frozen=True)
class CustomIndicator:
    """A user indicator: a pandas expression over one table's columns."""

    name: str = _f(identifier=True)
    expression: str = _f(expression=True)
    table: str = _f("household", identifier=True)
    label: str = ""
    kind: IndicatorKind = "mean"


@dataclass(frozen=True)
class IndicatorsSection:
    """Settings of the impact indicators (see DOMAIN.md)."""

    remittance_recall_months: int = _f(12, min=1, max=24)
    school_age: tuple[int, int] = _f((6, 17), min=0, max=30)
    school_age_bands: tuple[tuple[int, int], ...] = _f(((6, 11), (12, 14), (15, 17)), min=0)
    comparison: str = "none"  # the reference group in the impact table
    controls: tuple[str, ...] = (
        "head_age", "head_female", "head_education", "hh_size", "urban", "region",
    )
    methods: tuple[ImpactMethod, ...] = ("raw", "regression", "ipw")
    # indicators also compared group by group (each migrant group against the comparison)
    headline: tuple[str, ...] = (
        "remittances_received", "spend_edu", "enrol_6_17", "any_insured", "female_head",
    )
    variance: AnalysisVariance = "linearization"  # or "replicate": refit on replicate weights
    custom: tuple[CustomIndicator, ...] = ()


@dataclass(frozen=True)
class DomainsSection:
    """Domains for which the impact table is repeated."""

    by: tuple[str, ...] = ("urban", "head_female", "region")


@dataclass(frozen=True)
class OutputSection:
    """What is written to ``out/``."""

    directory: str = "out"
    formats: tuple[OutputFormat, ...] = ("xlsx", "html", "dta", "sav", "parquet")
    public_use: bool = True
    k_anonymity: int = _f(3, min=2)
    public_keys: tuple[str, ...] = ("region", "urban")


def _default_takes() -> Mapping[str, int]:
    return types.MappingProxyType({"emigrant": 7, "returnee": 7, "none": 7})


@dataclass(frozen=True)
class Config:
    """A validated ``survey.toml``.

    ``takes`` maps each listing group to the number of households interviewed per
    EA; its keys are the groups. ``root`` is the folder the file was read from
    (relative paths in the file are relative to it).
    """

    survey: SurveySection
    frame: FrameSection
    strata: StrataSection = _f(factory=StrataSection)
    allocation: AllocationSection = _f(factory=AllocationSection)
    takes: Mapping[str, int] = _f(factory=_default_takes, min=0, identifier=True)
    listing: ListingSection = _f(factory=ListingSection)
    fieldwork: FieldworkSection = _f(factory=FieldworkSection)
    seeds: SeedsSection = _f(factory=SeedsSection)
    nonresponse: NonresponseSection = _f(factory=NonresponseSection)
    calibration: CalibrationSection = _f(factory=CalibrationSection)
    trimming: TrimmingSection = _f(factory=TrimmingSection)
    replicates: ReplicatesSection = _f(factory=ReplicatesSection)
    indicators: IndicatorsSection = _f(factory=IndicatorsSection)
    domains: DomainsSection = _f(factory=DomainsSection)
    output: OutputSection = _f(factory=OutputSection)
    root: Path | None = _f(None, internal=True)

    @property
    def groups(self) -> tuple[str, ...]:
        """The listing groups, in the order of ``[takes]``."""
        return tuple(self.takes)

    def path(self, relative: str) -> Path:
        """Resolve a path from the file against the project folder."""
        p = Path(relative)
        return p if p.is_absolute() or self.root is None else self.root / p


# ----------------------------------------------------------------------------------
# Validation


class _Ctx:
    """Where we are while validating: the file and the dotted key."""

    def __init__(self, file: str | None) -> None:
        self.file = file

    def error(self, key: str, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, hint=hint, file=self.file, key=key or None)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0])}"
        return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
    if origin in (dict, Mapping, typing.Mapping) or tp is dict:
        return "a table"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _suggest(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def _check_range(value: Any, meta: Mapping[str, Any], key: str, ctx: _Ctx) -> None:
    lo, hi = meta.get("min"), meta.get("max")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if lo is not None and value < lo:
        raise ctx.error(key, f"{key} = {value!r} is too small", f"allowed: {lo} or more")
    if hi is not None and value > hi:
        raise ctx.error(key, f"{key} = {value!r} is too large", f"allowed: {hi} or less")


def _convert(tp: Any, value: Any, key: str, meta: Mapping[str, Any], ctx: _Ctx) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ctx.error(key, f"{key} must be a table, got {value!r}",
                            f"write it as [{key}] or {key} = {{ ... }}")
        return _build(tp, value, key, ctx)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, key, meta, ctx)
    if origin is Literal:
        if value not in args:
            guess = _suggest(str(value), [str(a) for a in args])
            hint = f"allowed: {', '.join(map(str, args))}"
            if guess:
                hint = f"did you mean {guess!r}? " + hint
            raise ctx.error(key, f"{key} = {value!r} is not allowed", hint)
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ctx.error(key, f"{key} = {value!r} must be {_describe(tp)}",
                            f"for example {key.rsplit('.', 1)[-1]} = [...]")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{key}[{i}]", meta, ctx)
                         for i, v in enumerate(value))
        if len(value) != len(args):
            raise ctx.error(key, f"{key} = {value!r} must have {len(args)} values",
                            f"expected {_describe(tp)}")
        return tuple(_convert(a, v, f"{key}[{i}]", meta, ctx)
                     for i, (a, v) in enumerate(zip(args, value)))
    if origin in (dict, Mapping) or origin is typing.Mapping:
        if not isinstance(value, dict):
            raise ctx.error(key, f"{key} must be a table, got {value!r}")
        out = {}
        for k, v in value.items():
            if meta.get("identifier") and not k.isidentifier():
                raise ctx.error(f"{key}.{k}", f"{key}: {k!r} is not a valid name",
                                "use letters, digits and underscores")
            out[k] = _convert(args[1], v, f"{key}.{k}", meta, ctx)
        return types.MappingProxyType(out)
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(tp)
    if ok is None:  # pragma: no cover - a schema bug, not a user error
        raise TypeError(f"unsupported schema type {tp!r} at {key}")
    if not ok:
        raise ctx.error(key, f"{key} = {value!r} must be {_describe(tp)}",
                        f"got {type(value).__name__}")
    if tp is float:
        value = float(value)
    _check_range(value, meta, key, ctx)
    if tp is str and meta.get("identifier") and not value.isidentifier():
        raise ctx.error(key, f"{key} = {value!r} is not a valid name",
                        "use letters, digits and underscores, not starting with a digit")
    if tp is str and meta.get("expression"):
        try:
            ast.parse(value, mode="eval")
        except SyntaxError as err:
            raise ctx.error(key, f"{key} = {value!r} is not a valid expression",
                            f"{err.msg}; write a pandas expression such as 'spend > 100'") from None
    return value


def _build(cls: type, table: Mapping[str, Any], prefix: str, ctx: _Ctx) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    unknown = [k for k in table if k not in fields]
    for k in unknown:
        dotted = f"{prefix}.{k}" if prefix else k
        where = f"[{prefix}]" if prefix else "the file (sections)"
        guess = _suggest(k, list(fields))
        allowed = ", ".join(fields)
        hint = f"did you mean {guess!r}? " if guess else ""
        raise ctx.error(dotted, f"unknown key {dotted!r} in {where}",
                        f"{hint}allowed keys: {allowed}")
    values = {}
    for name, f in fields.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if name not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                if dataclasses.is_dataclass(hints[name]):
                    raise ctx.error(dotted, f"missing required section [{dotted}]",
                                    f"add a [{dotted}] table; `survey init` writes a complete file")
                raise ctx.error(dotted, f"missing required key {dotted!r}",
                                f"add {name} = ... ({_describe(hints[name])})"
                                + (f" under [{prefix}]" if prefix else ""))
            continue
        values[name] = _convert(hints[name], table[name], dotted, f.metadata, ctx)
    return cls(**values)


def _cross_checks(cfg: Config, ctx: _Ctx) -> None:
    lo, hi = cfg.indicators.school_age
    if lo >= hi:
        raise ctx.error("indicators.school_age", f"indicators.school_age = [{lo}, {hi}] is empty",
                        "give [youngest, oldest] with youngest < oldest, e.g. [6, 17]")
    for i, (a, b) in enumerate(cfg.indicators.school_age_bands):
        if a > b or a < lo or b > hi:
            raise ctx.error(f"indicators.school_age_bands[{i}]",
                            f"band [{a}, {b}] is not inside school_age [{lo}, {hi}]",
                            "each band is [from, to] within indicators.school_age")
    if not cfg.takes or not any(v > 0 for v in cfg.takes.values()):
        raise ctx.error("takes", "no group has a positive take",
                        "set the households per EA for each group, e.g. emigrant = 7")
    if cfg.indicators.comparison not in cfg.takes:
        raise ctx.error("indicators.comparison",
                        f"indicators.comparison = {cfg.indicators.comparison!r} is not a group",
                        f"allowed: {', '.join(cfg.takes)} (the keys of [takes])")
    t = cfg.trimming
    if t.lower is not None and t.upper is not None and t.lower >= t.upper:
        raise ctx.error("trimming.lower", f"trimming.lower = {t.lower} is not below upper = {t.upper}")
    b = cfg.calibration.bounds
    if b is not None and not b[0] < 1.0 < b[1]:
        raise ctx.error("calibration.bounds", f"calibration.bounds = {list(b)} must bracket 1",
                        "give [lower, upper] with lower < 1 < upper, e.g. [0.5, 2.0]")
    if cfg.calibration.method != "none" and cfg.calibration.totals is None:
        raise ctx.error("calibration.totals", "calibration needs a totals file",
                        "set calibration.totals = \"data/census_totals.csv\" or method = \"none\"")
    names = [c.name for c in cfg.indicators.custom]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ctx.error("indicators.custom", f"custom indicator {dup[0]!r} is defined twice")


def parse_config(data: Mapping[str, Any], *, file: str | Path | None = None,
                 root: Path | None = None) -> Config:
    """Validate a parsed TOML document and return a :class:`Config`.

    Parameters
    ----------
    data
        The document, as returned by :func:`tomllib.loads`.
    file
        File name used in error messages.
    root
        Project folder that relative paths resolve against.

    Raises
    ------
    ConfigError
        On the first unknown, missing or invalid key; the error names the dotted key,
        the bad value and what is allowed.
    """
    ctx = _Ctx(str(file) if file is not None else None)
    cfg = _build(Config, dict(data), "", ctx)
    cfg = dataclasses.replace(cfg, root=root)
    _cross_checks(cfg, ctx)
    return cfg


def load_config(path: str | Path) -> Config:
    """Read and validate ``survey.toml`` (or the file given).

    Parameters
    ----------
    path
        The file, or a project folder containing ``survey.toml``.

    Raises
    ------
    ConfigError
        If the file is missing, is not valid TOML, or fails validation.
    """
    p = Path(path)
    if p.is_dir():
        p = p / CONFIG_FILE
    if not p.is_file():
        raise ConfigError("configuration file not found", file=str(p),
                          hint="run `survey init DIR` to create a project, or cd into one")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"not valid TOML: {err}", file=str(p),
                          hint="check quotes, brackets and '=' on the line given") from None
    except UnicodeDecodeError:
        raise ConfigError("not a UTF-8 text file", file=str(p)) from None
    return parse_config(data, file=p, root=p.parent)


_TEMPLATE = '''\
# survey.toml: configuration of a migration and development household survey
# (Development on the Move design: two stages, two phases). Paths are relative to
# this folder. Every key below shows its default; delete a key to keep the default.

[survey]
country = "{country}"
title = "{country} migration and development household survey"
currency = "LCU"              # local currency unit used in the questionnaire
# usd_rate = 1.0              # local currency units per US$, for US$ columns
reference_years = 10          # emigrants who left within the last N years
min_months_abroad = 3         # a spell abroad counts from this many months

[frame]                       # census enumeration areas (EAs)
file = "data/frame.csv"       # .csv, .parquet, .xlsx, .dta or .sav
ea = "ea_id"                  # column names in the frame file
size = "households"           # measure of size M_hi (households at the census)
region = "region"
urban = "urban"
migrant_share = "migrant_share"   # census share of migrant households, if known

[strata]
by = ["region", "urban"]      # strata = region x urban/rural
migration_intensity = false   # also split by high/low migrant share
intensity_cutoff = 0.1

[allocation]                  # stage 1: EAs per stratum, then PPS systematic
method = "proportional"       # proportional | equal | neyman | optimal | power
n_eas = 100
power = 0.5                   # used by method = "power"
min_per_stratum = 2
sort_by = []                  # implicit stratification within strata

[takes]                       # phase 2: households interviewed per EA and group
emigrant = 7                  # a former member now abroad
returnee = 7                  # a member back after 3+ months abroad
none = 7                      # no migrant

[listing]                     # phase 1: households listed in the selected EAs
file = "data/listing.csv"     # one row per household: EA id, household id, group
ea = "ea_id"
hh = "hh_id"
group = "group"               # emigrant | returnee | none (common spellings accepted)
method = "systematic"         # household selection in each EA x group: systematic | srs
reserve = 2                   # reserve households per EA x group

[fieldwork]
form = "forms/household.xlsx" # the questionnaire fielded
exports = "data/exports"      # `survey import` reads every export found here
# central_project = 1         # ODK Central project id, for `survey import --from-odk-central`

[seeds]                       # every random step is reproducible
select_eas = 20100101
select_households = 20100102
replicates = 20100103
demo = 20100104
public_use = 20100105         # random codes and GPS displacement of public-use files

[nonresponse]
cells = ["stratum", "group"]  # weighting classes
min_respondents = 20          # smaller cells are collapsed
max_factor = 3.0

[calibration]
method = "raking"             # none | poststratify | raking | linear | logit
totals = "data/census_totals.csv"   # columns: margin, level, total
by = ["region", "urban"]
# bounds = [0.5, 2.0]         # bounded calibration (g-weight range)

[trimming]
relative_to = "median"        # bounds as multiples of the median weight, or "absolute"
# lower = 0.3
# upper = 3.5

[replicates]
method = "jkn"                # none | jkn (EAs within strata) | bootstrap (Rao-Wu)
replicates = 200              # bootstrap only

[indicators]
remittance_recall_months = 12 # received money or goods from abroad in the last N months
school_age = [6, 17]
school_age_bands = [[6, 11], [12, 14], [15, 17]]
comparison = "none"           # the reference group of the impact table
controls = ["head_age", "head_female", "head_education", "hh_size", "urban", "region"]
methods = ["raw", "regression", "ipw"]   # raw | regression | ipw | aipw | psm
# compared group by group too (emigrant vs none, returnee vs none), nationally
headline = ["remittances_received", "spend_edu", "enrol_6_17", "any_insured", "female_head"]
variance = "linearization"    # SEs: linearization (strata, EAs) | replicate (refits; slow)

# User indicators: a pandas expression over one table's columns.
# [[indicators.custom]]
# name = "high_education_spending"
# expression = "education_spending > 500"
# table = "household"
# label = "Spends more than 500 on education"
# kind = "proportion"

[domains]
by = ["urban", "head_female", "region"]

[output]
directory = "out"
formats = ["xlsx", "html", "dta", "sav", "parquet"]   # also: csv
public_use = true             # write a public-use file without direct identifiers
k_anonymity = 3               # every key combination shared by at least k records
public_keys = ["region", "urban"]   # key variables besides the form's privacy = key fields
'''


def default_config_text(country: str = "Demoland") -> str:
    """Return a commented ``survey.toml`` with the DotM defaults.

    Parameters
    ----------
    country
        Country name written into ``[survey]``.
    """
    if '"' in country or "\\" in country or "\n" in country:
        raise ConfigError(f"country name {country!r} cannot contain quotes, backslashes or newlines")
    return _TEMPLATE.format(country=country)
