"""``public_use``: typed survey tables -> public-use tables, a crosswalk and a report.

The steps, each a function of its own module: classify columns
(:mod:`.classify`), measure risk on the original key variables (:mod:`.risk`), drop
direct identifiers and displace or drop GPS (:mod:`.gps`), top-code, group rare
categories, coarsen dates and replace identifiers by random codes (:mod:`.treat`),
then blank key values until k-anonymity holds, measure risk again and compare
estimates (:mod:`.report`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from survey.errors import InstrumentError

from ..form import Form
from .classify import Classification, classify
from .gps import displace
from .report import DisclosureReport, estimate_shift
from .risk import local_suppression, measure_risk
from .treat import TopCode, band, coarsen_dates, group_rare, pseudonymise, top_code

__all__ = ["PublicUse", "public_use"]

_AGE = re.compile(r"(^|_)age($|_)", re.IGNORECASE)
_LAT = re.compile(r"^(?P<base>.+?)(__latitude|-Latitude)$")


@dataclass(frozen=True)
class PublicUse:
    """The result of :func:`public_use`.

    Attributes
    ----------
    report
        The :class:`~instruments.disclosure.report.DisclosureReport`.
    tables
        Table name -> public-use DataFrame.
    crosswalk
        ``column, original, code``: the random codes given to identifiers. Keep it in
        the secure store only; it re-identifies every record of the public file.
    classification
        The role given to every original column.
    """

    report: DisclosureReport
    tables: Mapping[str, pd.DataFrame] = field(repr=False)
    crosswalk: pd.DataFrame = field(repr=False)  # never in a log by accident
    classification: Classification = field(repr=False)


# ---------------------------------------------------------------- structure


def _parents(tables: Mapping[str, pd.DataFrame], form: Form | None) -> dict[str, str | None]:
    if form is None:
        return {t: None for t in tables}
    out = {}
    for t in tables:
        parent = form.tables[t].parent if t in form.tables else None
        out[t] = parent if parent in tables else None
    return out


def _order(parents: Mapping[str, str | None]) -> list[str]:
    done: list[str] = []
    while len(done) < len(parents):
        for t, p in parents.items():
            if t not in done and (p is None or p in done):
                done.append(t)
    return done


def _table_weights(tables, parents, weights) -> dict[str, np.ndarray] | None:
    if weights is None:
        return None
    out: dict[str, np.ndarray] = {}
    for t in _order(parents):
        df, p = tables[t], parents[t]
        w = weights.get(t) if isinstance(weights, Mapping) else (weights if p is None else None)
        if w is not None:
            w = df[w] if isinstance(w, str) else pd.Series(np.asarray(w, float), index=df.index)
            out[t] = pd.to_numeric(w, errors="coerce").to_numpy(float, na_value=np.nan)
        elif p is not None:
            pw = pd.Series(out[p], index=tables[p]["key"].to_numpy())
            out[t] = pw.reindex(df["parent_key"].to_numpy()).to_numpy(float)
        else:
            raise InstrumentError("no weights for a top-level table", sheet=t,
                                  hint="pass weights as a column name or a mapping by table")
        if len(out[t]) != len(df) or not np.isfinite(out[t]).all() or (out[t] <= 0).any():
            raise InstrumentError("sampling weights must be positive and finite for every row",
                                  sheet=t, hint="weight the data before making a public-use file")
    return out


def _key_frame(tables, parents, keys, t) -> pd.DataFrame:
    """Own key variables, then those of the ancestors (``table.column``) joined on."""
    df = tables[t]
    frame = df[list(keys[t])].copy()
    link, p = df["parent_key"] if parents[t] else None, parents[t]
    while p is not None:
        anc = tables[p]
        cols = [c for c in keys[p] if c in anc.columns]
        if cols:
            looked = anc.set_index("key")[cols].reindex(link.to_numpy())
            for c in cols:
                frame[f"{p}.{c}"] = looked[c].to_numpy()
        if parents[p] is not None:
            link = pd.Series(anc.set_index("key")["parent_key"].reindex(link.to_numpy())
                             .to_numpy(), index=df.index)
        p = parents[p]
    return frame


# ---------------------------------------------------------------- steps


def _gps(root: pd.DataFrame, cls: Classification, table: str, mode: str, rng, ea: str | None,
         urban, area, bounds) -> tuple[pd.DataFrame, dict]:
    bases = [m.group("base") for c in root.columns if (m := _LAT.match(c))]
    info: dict = {"mode": mode, "points": 0, "released": 0, "dropped": 0}
    if mode == "drop" or not bases:
        return root, info
    base = bases[0]
    lat_c = next(c for c in root.columns if _LAT.match(c) and c.startswith(base))
    lon_c = lat_c.replace("latitude", "longitude").replace("Latitude", "Longitude")
    lat = pd.to_numeric(root[lat_c], errors="coerce").to_numpy(float, na_value=np.nan)
    lon = pd.to_numeric(root[lon_c], errors="coerce").to_numpy(float, na_value=np.nan)
    is_urban = None
    if urban is not None:
        u = root[urban] if isinstance(urban, str) else pd.Series(urban, index=root.index)
        is_urban = u.astype("string").str.lower().isin(["urban", "true", "1", "yes", "u"])
        is_urban = is_urban.fillna(False).to_numpy(dtype=bool)
    if mode == "cluster" and ea is not None:
        g = pd.DataFrame({"ea": root[ea].astype("string").to_numpy(), "lat": lat, "lon": lon,
                          "urban": is_urban if is_urban is not None else False})
        centre = g.groupby("ea", sort=False, dropna=True).agg(
            lat=("lat", "mean"), lon=("lon", "mean"), urban=("urban", "max"))
        moved = displace(centre["lat"], centre["lon"], rng,
                         urban=centre["urban"].to_numpy() if is_urban is not None else None,
                         area=area, **bounds)
        moved.index = centre.index
        new = moved.reindex(g["ea"].to_numpy())
    else:
        new = displace(lat, lon, rng, urban=is_urban, area=area, **bounds)
    out = root.copy()
    out[f"{base}_lat"] = pd.array(np.round(new["latitude"].to_numpy(float), 5), dtype="Float64")
    out[f"{base}_lon"] = pd.array(np.round(new["longitude"].to_numpy(float), 5), dtype="Float64")
    info.update(points=int((~np.isnan(lat)).sum()),
                released=int(out[f"{base}_lat"].notna().sum()),
                dropped=int(new["dropped"].fillna(False).astype(bool).sum()),
                units=int(len(moved)) if mode == "cluster" and ea is not None else None,
                columns=f"{base}_lat, {base}_lon",
                bounds_km=", ".join(f"{k}={v}" for k, v in bounds.items()))
    return out, info


def _default_top_codes(df, cls, table, form, age_top, quantile) -> dict[str, TopCode]:
    rules: dict[str, TopCode] = {}
    for c in df.columns:
        try:
            role = cls.role(table, c)
        except KeyError:  # columns made here (displaced GPS)
            continue
        if role not in ("key", "safe") or not pd.api.types.is_numeric_dtype(df[c]) \
                or pd.api.types.is_bool_dtype(df[c]) or c in ("row_index",):
            continue
        f = _field(form, table, c)
        if f is None or f.column != c:
            continue
        if role == "key" and pd.api.types.is_integer_dtype(df[c]):
            rules[c] = TopCode(threshold=age_top) if _AGE.search(c) else TopCode(quantile=quantile)
        elif f.type == "decimal" and not (f.calculation and "pulldata" in f.calculation):
            rules[c] = TopCode(quantile=quantile, replace="mean")
    return rules


def _field(form, table, column):
    if form is None or table not in form.tables:
        return None
    for p in form.tables[table].fields:
        if form.fields[p].column == column:
            return form.fields[p]
    return None


def _ids(tables, parents, order, cls, rng):
    out = {t: df.copy() for t, df in tables.items()}
    maps: dict[str, dict] = {}
    rows = []
    root_tables = [t for t in order if parents[t] is None]
    prefix = {t: ("S" if parents[t] is None else t[:1].upper() + "R") for t in order}
    for t in order:  # record keys first: parent_key and submission_key refer to them
        if "key" in tables[t].columns:
            codes, maps[t] = pseudonymise(tables[t]["key"], prefix[t], rng)
            out[t]["key"] = codes
    root = root_tables[0] if root_tables else None
    for t in order:
        for c in cls.columns(t, "id"):
            if c == "key":
                continue
            if c == "parent_key" and parents[t] is not None:
                out[t][c] = tables[t][c].astype("string").map(maps[parents[t]]).astype("string")
                continue
            if c in ("parent_key", "submission_key", "instance_id", "deprecated_id") and root:
                out[t][c], maps[root] = pseudonymise(tables[t][c], "S", rng, maps[root])
                continue
            name = f"id:{c}"
            out[t][c], maps[name] = pseudonymise(tables[t][c], re.sub(r"_?id$", "", c).upper()
                                                 or "ID", rng, maps.get(name))
    for name, m in maps.items():
        rows += [{"column": name if name.startswith("id:") else f"{name}.key",
                  "original": k, "code": v} for k, v in m.items()]
    counts = [{"table": t, "column": c, "codes": int(out[t][c].nunique())}
              for t in order for c in cls.columns(t, "id")]
    return out, pd.DataFrame(rows, columns=["column", "original", "code"]), counts


def _suppress(tables, parents, order, keys, k, importance):
    """Local suppression table by table; a child's stubborn records blank parent values."""
    out = dict(tables)
    for t in order:
        if not keys[t] and parents[t] is None:
            continue
        for _attempt in range(5):
            frame = _key_frame(out, parents, keys, t)
            if frame.shape[1] == 0:
                break
            own = [c for c in keys[t] if c in frame.columns]
            try:
                treated, _ = local_suppression(frame, list(frame.columns), k,
                                               suppressible=own, importance=importance)
            except InstrumentError:
                # blank inherited values in the ancestors of the records still at risk
                _, flags = local_suppression(frame, list(frame.columns), k,
                                             importance=importance)
                inherited = [c for c in flags.columns if "." in c and flags[c].any()]
                if not inherited:
                    raise
                for c in inherited:
                    _blank_ancestor(out, parents, t, c, flags[c].to_numpy())
                continue
            df = out[t].copy()
            for c in own:
                df[c] = treated[c].to_numpy() if not isinstance(df[c].dtype, pd.CategoricalDtype) \
                    else pd.Categorical(treated[c], categories=df[c].cat.categories)
            out[t] = df
            break
        else:
            raise InstrumentError(f"local suppression did not reach k={k}", sheet=t)
    return out


def _blank_ancestor(out, parents, t, column, rows):
    anc, col = column.split(".", 1)
    link = out[t].loc[rows, "parent_key"].to_numpy()
    p = parents[t]
    while p != anc:
        link = out[p].set_index("key")["parent_key"].reindex(link).to_numpy()
        p = parents[p]
    df = out[anc].copy()
    df[col] = df[col].where(~df["key"].isin(link).to_numpy())
    out[anc] = df


def public_use(
    tables: Mapping[str, pd.DataFrame],
    form: Form | None = None,
    *,
    weights=None,
    k: int = 3,
    rng: np.random.Generator,
    keys: Mapping[str, Sequence[str]] | None = None,
    overrides: Mapping[str, str] | None = None,
    gps: str = "cluster",
    urban=None,
    area: Callable | None = None,
    gps_bounds: Mapping[str, float] | None = None,
    top_codes: Mapping[str, TopCode] | None = None,
    age_top: int = 80,
    age_bands: int | None = 5,
    top_quantile: float = 0.99,
    rare_min: int = 10,
    rare_columns: Sequence[str] | None = None,
    dates: str = "month",
    importance: Sequence[str] | None = None,
    indicators: Sequence[tuple[str, str]] | None = None,
) -> PublicUse:
    """Make public-use tables: no direct identifier, k-anonymous key variables.

    Parameters
    ----------
    tables
        Typed tables by name (``instruments.read_export(...).tables``; repeats carry
        ``key`` and ``parent_key``). Not modified.
    form
        The questionnaire (its ``privacy`` column marks ``direct`` and ``key`` fields).
    weights
        Sampling weights: a column of the top-level table, one weight per top-level
        row, or a mapping table -> column; repeats inherit their parent's weight.
        None measures risk as if the data were the population (``1 / f_k``).
    k
        k-anonymity level on the key variables (default 3).
    rng
        Random generator: GPS displacement and random codes.
    keys
        Key variables per table (default: the columns the classification marks
        ``key``); a repeat's risk also counts its ancestors' key variables.
    overrides
        Role overrides for :func:`~instruments.disclosure.classify.classify`.
    gps
        ``"cluster"`` (default): one point per EA, the mean of its households,
        displaced as DHS does; ``"household"``: each point displaced; ``"drop"``.
    urban
        Column of the top-level table saying urban (``urban``/``true``/``1``) or rural,
        or one value per row; None treats every point as rural.
    area
        ``area(lat, lon) -> area code`` keeping displaced points in their area
        (e.g. :func:`~instruments.disclosure.gps.polygon_lookup`).
    gps_bounds
        Overrides of ``urban_km``, ``rural_km``, ``far_km``, ``far_share``.
    top_codes
        Column -> :class:`~instruments.disclosure.treat.TopCode`, replacing the
        defaults: integer key variables named like ``age`` at ``age_top``, other
        integer key variables at their ``top_quantile``, and decimal fields (amounts;
        preloaded design values excepted) at their ``top_quantile`` replaced by the
        weighted mean above it.
    age_bands
        Width of the age groups key variables named like ``age`` are recoded to (each
        value becomes the lower bound of its band: 25 means 25-29); None keeps single
        years.
    rare_min
        Categories of ``rare_columns`` held by fewer records are merged into "other".
    rare_columns
        Default: categorical key variables with more than 5 categories (countries).
    dates
        ``"month"``, ``"year"``, ``"keep"`` or ``"drop"`` for date columns.
    importance
        Key variables from the one to keep most to the one to blank first, for local
        suppression (default: most categories blanked first).
    indicators
        ``(table, column)`` whose estimates are compared on full and public data
        (default: every released key variable and top-coded column).

    Returns
    -------
    PublicUse

    Raises
    ------
    InstrumentError
        Bad weights, unknown roles, or k-anonymity out of reach.

    Notes
    -----
    The risk scenario is an intruder who knows a respondent's region, age, sex,
    household size and destination country and looks for them in the file
    (Hundepool et al. 2012, ch. 3). Identifiers are replaced rather than dropped so
    that tables still link; the codes are a random permutation, and rows are
    released in code order, so neither codes nor order reveal the order of listing or
    interview. Risk is measured with sdcMicro's estimators (Templ et al. 2015); local
    suppression makes every key shared by at least ``k`` records (Sweeney 2002); GPS
    follows Burgert et al. (2013).

    References
    ----------
    Hundepool, A. et al. (2012). *Statistical Disclosure Control*. Wiley.
    Templ, M., Kowarik, A. and Meindl, B. (2015). *Journal of Statistical Software* 67(4).
    Sweeney, L. (2002). k-anonymity: a model for protecting privacy. *IJUFKS* 10(5).
    Burgert, C. R. et al. (2013). *DHS Spatial Analysis Reports* No. 7.

    Examples
    --------
    >>> res = public_use(result.tables, form, weights="weight", rng=np.random.default_rng(1))
    ... # doctest: +SKIP
    >>> res.report.risk  # doctest: +SKIP
    """
    if not tables:
        raise InstrumentError("no tables to release")
    if gps not in ("cluster", "household", "drop"):
        raise InstrumentError(f"gps={gps!r}: use 'cluster', 'household' or 'drop'")
    if dates not in ("month", "year", "keep", "drop"):
        raise InstrumentError(f"dates={dates!r}: use 'month', 'year', 'keep' or 'drop'")
    tables = {t: df.reset_index(drop=True) for t, df in tables.items()}
    parents = _parents(tables, form)
    order = _order(parents)
    cls = classify(tables, form, overrides=overrides)
    w = _table_weights(tables, parents, weights)
    keys = {t: list(keys.get(t, [])) if keys else cls.columns(t, "key") for t in order}
    for t in order:
        for c in keys[t]:
            if c not in tables[t].columns:
                raise InstrumentError(f"key variable {c!r} not in the table", sheet=t)

    def risk_rows(data, stage):
        rows = []
        for t in order:
            frame = _key_frame(data, parents, keys, t)
            if frame.shape[1] == 0:
                continue
            m = measure_risk(frame, list(frame.columns), None if w is None else w[t])
            rows.append({"table": t, "stage": stage, **m.summary((2, 3, 5, k))})
        return rows

    risk = risk_rows(tables, "before")
    # direct identifiers out; GPS displaced in the top-level table
    removed = [{"table": r.table, "column": r.column, "reason": r.reason}
               for r in cls.roles if r.role == "direct"]
    root = order[0]
    ea = next((c for c in cls.columns(root, "id") if c.lower().startswith(("ea", "cluster", "psu"))),
              None)
    bounds = dict(urban_km=2.0, rural_km=5.0, far_km=10.0, far_share=0.01) | dict(gps_bounds or {})
    treated = dict(tables)
    treated[root], gps_info = _gps(tables[root], cls, root, gps, rng, ea, urban, area, bounds)
    for t in order:
        drop = cls.columns(t, "direct") + (cls.columns(t, "date") if dates == "drop" else [])
        treated[t] = treated[t].drop(columns=[c for c in drop if c in treated[t].columns])
    # top-coding, rare categories, dates
    tops, recs, date_rows = [], [], []
    for t in order:
        rules = dict(top_codes) if top_codes is not None else _default_top_codes(
            treated[t], cls, t, form, age_top, top_quantile)
        treated[t], done = top_code(treated[t], rules, None if w is None else w[t])
        tops.append(done.assign(table=t))
        if age_bands:
            ages = [c for c in keys[t] if _AGE.search(c)
                    and pd.api.types.is_integer_dtype(treated[t][c])]
            treated[t], done = band(treated[t], ages, age_bands)
            recs.append(done.assign(table=t))
        cols = rare_columns if rare_columns is not None else [
            c for c in keys[t] if isinstance(treated[t][c].dtype, pd.CategoricalDtype)
            and len(treated[t][c].cat.categories) > 5]
        treated[t], done = group_rare(treated[t], [c for c in cols if c in treated[t]], rare_min)
        recs.append(done.assign(table=t))
        if dates in ("month", "year"):
            dcols = [c for c in cls.columns(t, "date") if c in treated[t].columns]
            treated[t] = coarsen_dates(treated[t], dcols, dates)
            date_rows += [{"table": t, "column": c, "to": dates} for c in dcols]
    # local suppression on the coarsened keys, then random codes and row order
    before_sup = dict(treated)
    treated = _suppress(treated, parents, order, keys, k, importance)
    suppressed = [{"table": t, "column": c,
                   "cells": int((treated[t][c].isna() & before_sup[t][c].notna()).sum())}
                  for t in order for c in keys[t]]
    risk += risk_rows(treated, "after")
    released, crosswalk, id_counts = _ids(treated, parents, order, cls, rng)
    for t in order:
        df = released[t]
        by = ["key"] if parents[t] is None or "row_index" not in df else ["parent_key", "row_index"]
        released[t] = df.sort_values([c for c in by if c in df]).reset_index(drop=True) \
            if "key" in df else df
    if indicators is None:
        top_df = pd.concat(tops, ignore_index=True)
        indicators = [(t, c) for t in order for c in keys[t]] + [
            (r.table, r.column) for r in top_df.itertuples() if (r.table, r.column)
            not in [(t, c) for t in order for c in keys[t]]]
    unit = {t: np.ones(len(tables[t])) for t in order}
    estimates = estimate_shift(tables, treated, indicators, w if w is not None else unit)
    report = DisclosureReport(
        k=k,
        removed=pd.DataFrame(removed, columns=["table", "column", "reason"]),
        gps=gps_info,
        top_coded=_cols(pd.concat(tops, ignore_index=True), "table"),
        recoded=_cols(pd.concat(recs, ignore_index=True), "table"),
        pseudonymised=pd.DataFrame(id_counts, columns=["table", "column", "codes"]),
        dates=pd.DataFrame(date_rows, columns=["table", "column", "to"]),
        risk=pd.DataFrame(risk),
        suppressed=pd.DataFrame(suppressed, columns=["table", "column", "cells"]),
        estimates=estimates,
        parameters={"k": k, "gps": gps, "age_top": age_top, "top_quantile": top_quantile,
                    "age_bands": age_bands, "rare_min": rare_min, "dates": dates, "weighted": w is not None,
                    "keys": {t: list(v) for t, v in keys.items()}},
    )
    return PublicUse(tables=released, report=report, crosswalk=crosswalk, classification=cls)


def _cols(df: pd.DataFrame, first: str) -> pd.DataFrame:
    return df[[first, *[c for c in df.columns if c != first]]]
