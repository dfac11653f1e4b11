"""Phase 2: selecting households per EA and migration group, with reserves and weights.

``select_households`` draws a fixed take (or target shares) of listed households in
each EA x group cell, systematic or simple random, plus an ordered reserve list, and
records ``L_hig``, ``m_hig`` and ``pi2 = m_hig / L_hig`` on every household.
``household_cells`` gives the per-cell counts; ``base_weights`` adds ``pi`` and the
base weight ``1 / (pi1 pi2)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from survey.errors import SamplingError

from ._util import require_columns, resolve_seed
from .allocation import round_total
from .listing import GROUPS

__all__ = ["base_weights", "household_cells", "select_households"]

HHMethod = Literal["systematic", "srs"]


def _takes(take, shares, per_ea, groups: Sequence[str]) -> dict[str, int]:
    if (take is None) == (shares is None):
        raise SamplingError(
            "give either take= or shares= (with per_ea=)",
            hint='e.g. take={"emigrant": 7, "returnee": 7, "none": 7}',
        )
    if shares is not None:
        if per_ea is None or per_ea < 0:
            raise SamplingError(
                "shares= needs per_ea=, the households to take per EA", hint="e.g. per_ea=21"
            )
        unknown = set(shares) - set(groups)
        if unknown:
            raise SamplingError(
                f"shares name unknown groups {sorted(unknown)}", hint=f"groups are {list(groups)}"
            )
        s = np.array([float(shares.get(g, 0.0)) for g in groups])
        if (s < 0).any() or s.sum() <= 0:
            raise SamplingError("shares must be non-negative and not all zero")
        take = dict(zip(groups, round_total(per_ea * s / s.sum(), int(per_ea)).tolist()))
    unknown = set(take) - set(groups)
    if unknown:
        raise SamplingError(
            f"take names unknown groups {sorted(unknown)}", hint=f"groups are {list(groups)}"
        )
    out = {}
    for g in groups:
        v = take.get(g, 0)
        if isinstance(v, bool) or not float(v).is_integer() or v < 0:
            raise SamplingError(f"take for {g!r} must be a non-negative integer, got {v!r}")
        out[g] = int(v)
    return out


def _prepare(listing, ea, hh, group, groups, eas):
    """Checked households (empty-EA markers dropped), EA labels, and integer codes.

    Returns ``(df, all_eas, e_code, g_code)``: ``all_eas`` are the selected EAs when
    ``eas`` is given (else the listed ones), ``e_code``/``g_code`` index into
    ``all_eas`` and ``groups`` for each household of ``df``.
    """
    require_columns(listing, (ea, hh, group), "listing", "name it with ea=, hh=, group=")
    marker = (listing[hh].isna() & listing[group].isna()).to_numpy(dtype=bool)
    df = listing.loc[~marker] if marker.any() else listing
    codes, uniq = pd.factorize(listing[ea])
    if (codes[~marker] < 0).any():
        raise SamplingError("a household has no EA id", column=ea, hint="run check_listing")
    g_codes, g_uniq = pd.factorize(df[group])
    g_map = pd.Index(list(groups)).get_indexer(pd.Index(g_uniq).astype("string"))
    g_code = np.where(g_codes >= 0, g_map[g_codes], -1)
    bad = g_code < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SamplingError(
            f"unknown migration group {df[group].iloc[i]!r}",
            column=group,
            psu=str(df[ea].iloc[i]),
            key=str(df[hh].iloc[i]),
            hint=f"groups are {', '.join(groups)}; read_listing normalises common spellings",
        )
    listed = pd.Index(uniq).astype("string")
    if eas is not None:
        if ea not in eas.columns:
            raise SamplingError(f"selected EAs have no column {ea!r}", column=ea)
        all_eas = pd.Index(eas[ea]).astype("string")
        pos = all_eas.get_indexer(listed)
        if (pos < 0).any():
            extra = listed[pos < 0]
            raise SamplingError(
                f"the listing has EA {extra[0]!r}, which was not selected ({len(extra)} such EAs)",
                psu=str(extra[0]),
                column=ea,
                hint="list only the selected EAs (a replacement EA must be selected, not substituted)",
            )
    else:
        all_eas, pos = listed, np.arange(len(listed))
    e_code = pos[codes[~marker]].astype(np.int64)
    return df, all_eas, e_code, g_code.astype(np.int64)


def _stable_order(code: np.ndarray, n_codes: int) -> np.ndarray:
    """Stable argsort of small non-negative integer codes (radix sort when they fit 16 bits)."""
    if n_codes <= np.iinfo(np.uint16).max:
        return np.argsort(code.astype(np.uint16), kind="stable")
    return np.argsort(code, kind="stable")


def _cells(all_eas, e_code, g_code, takes, ea, group, groups) -> pd.DataFrame:
    G = len(groups)
    L = np.bincount(e_code * G + g_code, minlength=len(all_eas) * G)
    t = np.tile([takes[g] for g in groups], len(all_eas))
    m = np.minimum(t, L)
    return pd.DataFrame(
        {
            ea: np.repeat(np.asarray(all_eas, dtype=object), G),
            group: np.tile(list(groups), len(all_eas)),
            "L_hig": L,
            "m_hig": m,
            "take": t,
            "empty": L == 0,
            "take_all": (L <= t) & (L > 0),
        }
    )


def household_cells(
    listing: pd.DataFrame,
    take: Mapping[str, int] | None = None,
    *,
    shares: Mapping[str, float] | None = None,
    per_ea: int | None = None,
    eas: pd.DataFrame | None = None,
    ea: str = "ea_id",
    hh: str = "hh_id",
    group: str = "group",
    groups: Sequence[str] = GROUPS,
) -> pd.DataFrame:
    """Counts per EA x group cell: ``L_hig`` listed, ``m_hig`` to take, and flags.

    Every EA (the selected ones when ``eas`` is given) appears with every group;
    ``empty`` marks a group with no listed household in the EA, ``take_all`` a cell
    where the take is at least the listing (all its households are taken).
    """
    takes = _takes(take, shares, per_ea, groups)
    _, all_eas, e_code, g_code = _prepare(listing, ea, hh, group, groups, eas)
    return _cells(all_eas, e_code, g_code, takes, ea, group, groups)


def select_households(
    listing: pd.DataFrame,
    take: Mapping[str, int] | None = None,
    *,
    shares: Mapping[str, float] | None = None,
    per_ea: int | None = None,
    eas: pd.DataFrame | None = None,
    ea: str = "ea_id",
    hh: str = "hh_id",
    group: str = "group",
    groups: Sequence[str] = GROUPS,
    method: HHMethod = "systematic",
    reserve: int = 2,
    order: str | None = None,
    rng: np.random.Generator | int | None = None,
) -> pd.DataFrame:
    """Select households per EA and migration group, with an ordered reserve list.

    Parameters
    ----------
    listing
        One row per listed household (see :func:`sampling.read_listing`). Rows with
        no household id and no group (an EA listed empty) are skipped.
    take
        Households to select per EA in each group, e.g. ``{"emigrant": 7,
        "returnee": 7, "none": 7}``. A group missing from ``take`` gets 0.
    shares, per_ea
        Instead of ``take``: target shares of a per-EA total, turned into integer
        takes that sum to ``per_ea`` (largest remainder).
    eas
        The selected EAs (:func:`sampling.select_eas`). When given, a listing EA that
        was not selected is an error, and ``stratum``, ``pi1`` and ``certainty`` are
        carried onto each household.
    method
        ``"systematic"`` (default): a random start and a fractional interval
        L_hig / m_hig through the listing order; ``"srs"``: simple random sampling.
    reserve
        Reserve households per cell, drawn at random among those not selected and
        numbered 1, 2, ... in ``reserve_order`` (use them in that order).
    order
        Column giving the listing order for systematic selection (default: row order).
    rng
        Generator, integer seed or None; the seed used is recorded.

    Returns
    -------
    pandas.DataFrame
        Selected and reserve households (rows of ``listing`` plus ``L_hig``,
        ``m_hig``, ``pi2``, ``reserve``, ``reserve_order``, ``seed``), sorted by EA,
        group, main sample first then reserves in order. ``attrs`` holds ``seed``,
        ``method``, ``take``, ``reserve`` and the numbers of ``empty_cells`` and
        ``take_all_cells`` (neither is an error; :func:`household_cells` lists them).
        The column ``take_all`` marks households of a cell taken whole.

    Notes
    -----
    In a cell with L_hig listed and m_hig = min(take_g, L_hig) selected, every
    household has ``pi2 = m_hig / L_hig`` under both methods (the systematic interval
    is fractional, so the probability is exact). A cell with L_hig <= take is taken
    whole (pi2 = 1); an empty cell gives no household. Reserves carry the same
    ``pi2``: substituting one for a nonrespondent is an adjustment for nonresponse,
    not a change of design.

    References
    ----------
    Cochran, W. G. (1977). *Sampling Techniques*, chapter 8 (systematic sampling).
    Kish, L. (1965). *Survey Sampling*, section 4.1 (fractional intervals).
    """
    if method not in ("systematic", "srs"):
        raise SamplingError(
            f"unknown household selection method {method!r}", hint="use 'systematic' or 'srs'"
        )
    if isinstance(reserve, bool) or not isinstance(reserve, (int, np.integer)) or reserve < 0:
        raise SamplingError(f"reserve must be a non-negative integer, got {reserve!r}")
    takes = _takes(take, shares, per_ea, groups)
    df, all_eas, e_code, g_code = _prepare(listing, ea, hh, group, groups, eas)
    cells = _cells(all_eas, e_code, g_code, takes, ea, group, groups)
    seed, gen = resolve_seed(rng)
    G = len(groups)
    cell = e_code * G + g_code
    takes_arr = np.array([takes[g] for g in groups])
    N = cell.size
    L = cells["L_hig"].to_numpy()
    m = cells["m_hig"].to_numpy()
    cstart = np.cumsum(L) - L

    def rank_in_cell(sorted_idx: np.ndarray) -> np.ndarray:
        """Rank of each household within its cell, given an order sorted by cell."""
        r = np.empty(N, dtype=np.int64)
        r[sorted_idx] = np.arange(N) - cstart[cell[sorted_idx]]
        return r

    key = gen.random(N)
    if method == "systematic":
        # position in the cell in listing order (stable sort on the cell keeps row order)
        if order is None:
            seq = _stable_order(cell, L.size)
        else:
            seq = np.lexsort((pd.to_numeric(df[order]).to_numpy(), cell))
        pos = rank_in_cell(seq)
        k = np.divide(L, m, out=np.ones(L.size), where=m > 0)
        start = gen.random(L.size) * k
        kc, sc, mc = k[cell], start[cell], m[cell]

        def hits(t):  # number of points start + j k (j < m) below t
            return np.clip(np.ceil((t - sc) / kc), 0, mc)

        chosen = (hits(pos + 1.0) - hits(pos.astype(float))) > 0
        if reserve:
            # reserves: random order among the households not chosen, in one float sort
            rrank = rank_in_cell(np.argsort(2.0 * cell + chosen + key))
            is_reserve = ~chosen & (rrank < reserve)
        else:
            rrank, is_reserve = pos, np.zeros(N, dtype=bool)
    else:
        # SRS: rank by a random key within the cell; the first m are the sample and the
        # next `reserve` the reserves, in order
        pos = rank_in_cell(np.argsort(cell + key))
        mc = m[cell]
        chosen = pos < mc
        rrank = pos - mc
        is_reserve = ~chosen & (rrank < reserve)
    keep = np.flatnonzero(chosen | is_reserve)
    # output order: EA, group, main sample in listing order, then reserves in order
    keep = keep[np.lexsort((pos[keep], np.where(is_reserve[keep], rrank[keep], -1), cell[keep]))]
    out = df.iloc[keep].copy()
    # ids must be unique among the households drawn (they key the preload); the full
    # listing's duplicates are reported by check_listing
    if not out[hh].is_unique:
        dup = out[hh][out[hh].duplicated()].iloc[0]
        raise SamplingError(
            f"household id {dup!r} appears more than once",
            column=hh,
            hint="household ids must be unique across EAs; run check_listing",
        )
    kc = cell[keep]
    res = is_reserve[keep]
    out["L_hig"] = L[kc]
    out["m_hig"] = m[kc]
    out["pi2"] = m[kc] / L[kc]
    out["take_all"] = L[kc] <= takes_arr[kc % G]
    out["reserve"] = res
    out["reserve_order"] = pd.arrays.IntegerArray(rrank[keep] + 1, ~res)
    out["seed"] = np.int64(seed)
    if eas is not None:
        carry = [
            c for c in ("stratum", "pi1", "certainty") if c in eas.columns and c not in out.columns
        ]
        if carry:
            lookup = eas[[ea, *carry]].assign(**{ea: eas[ea].astype("string")})
            out = out.assign(**{ea: out[ea].astype("string")}).merge(lookup, on=ea, how="left")
    out = out.reset_index(drop=True)
    empty = cells.loc[cells["empty"]]
    full = cells.loc[cells["take_all"]]
    out.attrs = {
        "seed": seed,
        "method": method,
        "take": takes,
        "reserve": int(reserve),
        "empty_cells": int(len(empty)),
        "take_all_cells": int(len(full)),
    }
    return out


def base_weights(
    sample: pd.DataFrame,
    eas: pd.DataFrame | None = None,
    *,
    ea: str = "ea_id",
    pi1: str = "pi1",
    pi2: str = "pi2",
    name: str = "base_weight",
) -> pd.DataFrame:
    """Add ``pi = pi1 * pi2`` and the base weight ``1 / pi`` (a new DataFrame).

    ``pi1`` is taken from ``eas`` by EA id when the sample does not carry it.

    Notes
    -----
    Base weight = (M_h / (n_h M_hi)) (L_hig / m_hig) for PPS EAs; it sums, over the
    main sample, to an unbiased estimate of the number of households (Horvitz and
    Thompson 1952).
    """
    out = sample.copy()
    if pi1 not in out.columns:
        if eas is None or pi1 not in eas.columns:
            raise SamplingError(
                f"no {pi1!r} column in the sample",
                column=pi1,
                hint="pass the selected EAs: base_weights(sample, eas)",
            )
        lookup = pd.Series(eas[pi1].to_numpy(), index=eas[ea].astype("string"))
        out[pi1] = out[ea].astype("string").map(lookup).to_numpy(dtype=float)
        if out[pi1].isna().any():
            bad = out.loc[out[pi1].isna(), ea].iloc[0]
            raise SamplingError(
                "EA of the sample is not among the selected EAs", psu=str(bad), column=ea
            )
    p = out[pi1].to_numpy(dtype=float) * out[pi2].to_numpy(dtype=float)
    if not ((p > 0) & (p <= 1)).all():
        raise SamplingError("selection probabilities must be in (0, 1]", column=pi2)
    out["pi"] = p
    out[name] = 1.0 / p
    return out
