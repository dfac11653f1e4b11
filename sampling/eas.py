"""Stage 1: selecting EAs within strata, with every probability recorded.

``select_eas`` returns a new DataFrame of the selected EAs with ``pi1`` (inclusion
probability), ``certainty``, ``selection_order`` and the ``seed`` that reproduces the
draw; the frame given is never modified. ``inclusion_probabilities`` gives ``pi1`` for
every EA of the frame without drawing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from survey.errors import SamplingError

from . import pps
from ._util import as_list, require_columns, resolve_seed

__all__ = ["inclusion_probabilities", "select_eas"]

EAMethod = Literal["pps_systematic", "pps_brewer", "pps_sampford", "systematic", "srs"]
_METHODS = ("pps_systematic", "pps_brewer", "pps_sampford", "systematic", "srs")


def _allocation_map(allocation, strata: str) -> dict:
    if isinstance(allocation, pd.DataFrame):
        if strata not in allocation.columns or "n" not in allocation.columns:
            raise SamplingError(
                f"allocation table needs columns {strata!r} and 'n'",
                hint="pass the result of sampling.allocate(), or a mapping stratum -> n",
            )
        return dict(zip(allocation[strata], allocation["n"]))
    if isinstance(allocation, pd.Series):
        return allocation.to_dict()
    if isinstance(allocation, Mapping):
        return dict(allocation)
    raise SamplingError(
        f"allocation must be a DataFrame, Series or mapping, got {type(allocation).__name__}"
    )


def _serpentine_keys(
    df: pd.DataFrame, codes: np.ndarray, cols: list[str], serpentine: bool
) -> list[np.ndarray]:
    """Sort keys, primary first. With ``serpentine`` each level after the first runs
    alternately up and down within the groups of the levels before it, so that
    neighbours in the sort order are neighbours on the ground (Chromy 1979)."""
    ranks = [pd.factorize(df[c], sort=True)[0].astype(np.int64) for c in cols]
    if not serpentine:
        return ranks
    eff = [ranks[0]]
    for j in range(1, len(ranks)):
        order = np.lexsort([*reversed(eff), codes])
        keys = np.column_stack([codes, *eff])[order]
        change = np.r_[True, (keys[1:] != keys[:-1]).any(axis=1)]
        grp = np.cumsum(change) - 1
        first_in_stratum = np.r_[True, codes[order][1:] != codes[order][:-1]]
        base = np.maximum.accumulate(np.where(first_in_stratum, grp, 0))
        parity = np.empty(len(order), dtype=np.int64)
        parity[order] = (grp - base) % 2
        eff.append(np.where(parity == 0, ranks[j], -ranks[j]))
    return eff


def _prepare(frame, allocation, strata, size, method, sort_by, serpentine, ea):
    if method not in _METHODS:
        raise SamplingError(
            f"unknown EA selection method {method!r}", hint=f"use one of {', '.join(_METHODS)}"
        )
    sort_by = as_list(sort_by)
    require_columns(frame, [strata, *sort_by, *([size] if method.startswith("pps") else [])], "frame",
                    "name the stratum and size columns with strata= and size=")
    alloc = _allocation_map(allocation, strata)
    codes, labels = pd.factorize(frame[strata], sort=True)
    if (codes < 0).any():
        i = int(np.flatnonzero(codes < 0)[0])
        raise SamplingError(
            "stratum is missing",
            column=strata,
            key=f"index {frame.index[i]!r}",
            hint="run check_frame: every EA needs a stratum",
        )
    codes = codes.astype(np.int64)
    labels = np.asarray(labels, dtype=object)
    missing = [s for s in labels if s not in alloc]
    if missing:
        raise SamplingError(
            "stratum has no allocation",
            stratum=str(missing[0]),
            hint="give n for every stratum of the frame (0 to leave one out)",
        )
    known = set(labels)
    extra = [s for s in alloc if s not in known]
    if extra:
        raise SamplingError(
            "allocation names a stratum that is not in the frame",
            stratum=str(extra[0]),
            hint="check the stratum labels",
        )
    n_h = np.array([alloc[s] for s in labels])
    if not np.issubdtype(n_h.dtype, np.number) or (n_h < 0).any() or (n_h != np.round(n_h)).any():
        raise SamplingError(
            "allocation must be non-negative integers", hint="use sampling.allocate()"
        )
    n_h = n_h.astype(np.int64)
    N_h = np.bincount(codes, minlength=len(labels))
    over = n_h > N_h
    if over.any():
        h = int(np.flatnonzero(over)[0])
        raise SamplingError(
            f"{n_h[h]} EAs allocated but the stratum has only {N_h[h]}",
            stratum=str(labels[h]),
            hint=(
                "a stratum can give at most all its EAs (take-all). EAs with n_h*M_hi/M_h >= 1 are "
                "already taken with certainty (pi1 = 1) and the rest of the allocation is spread over "
                "the other EAs; lower n_h to the number of EAs, or let sampling.allocate() cap it"
            ),
        )
    if method.startswith("pps"):
        x = pd.to_numeric(frame[size], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(x) | (x <= 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise SamplingError(
                f"measure of size must be positive, got {frame[size].iloc[i]!r}",
                column=size,
                key=f"index {frame.index[i]!r}",
                hint="run check_frame, or drop zero-size EAs with zero_size='drop'",
            )
    else:
        x = np.ones(len(frame))
    keys = _serpentine_keys(frame, codes, sort_by, serpentine)
    key = codes.copy()
    for k in keys:  # one int64 key: stratum, then the sort variables; stable sort keeps frame order
        k = k - k.min() if k.size else k
        key = key * (int(k.max(initial=0)) + 1) + k
    order = np.argsort(key, kind="stable")
    return labels, codes, n_h, x, order


def inclusion_probabilities(
    frame: pd.DataFrame,
    allocation,
    strata: str = "stratum",
    size: str = "households",
    method: EAMethod = "pps_systematic",
    ea: str = "ea_id",
) -> pd.DataFrame:
    """``pi1`` and ``certainty`` of every EA of the frame (a new DataFrame, same order).

    PPS methods: ``pi1 = n_h M_hi / M_h`` with certainty EAs found iteratively (see
    :func:`select_eas`); equal-probability methods: ``pi1 = n_h / N_h``.
    """
    labels, codes, n_h, x, _ = _prepare(frame, allocation, strata, size, method, None, False, ea)
    pi, cert = pps.pps_probabilities(x, codes, n_h)
    out = frame.copy()
    out["pi1"] = pi
    out["certainty"] = cert
    return out


def select_eas(
    frame: pd.DataFrame,
    allocation,
    strata: str = "stratum",
    size: str = "households",
    method: EAMethod = "pps_systematic",
    sort_by: str | Sequence[str] | None = None,
    serpentine: bool = False,
    rng: np.random.Generator | int | None = None,
    ea: str = "ea_id",
) -> pd.DataFrame:
    """Select EAs within strata and record their inclusion probabilities.

    Parameters
    ----------
    frame
        One row per EA (see :func:`sampling.read_frame`). Never modified.
    allocation
        EAs per stratum: the result of :func:`sampling.allocate` (columns ``stratum``
        and ``n``), a Series or a mapping stratum -> n.
    strata, size
        Stratum column and measure of size M_hi (households).
    method
        ``"pps_systematic"`` (default): probability proportional to size, systematic
        from a random start through the EAs in ``sort_by`` order (implicit
        stratification); ``"pps_brewer"`` and ``"pps_sampford"``: PPS without
        replacement with fixed size and joint probabilities all positive (unbiased
        variance estimation possible); ``"systematic"`` and ``"srs"``: equal
        probabilities.
    sort_by
        Implicit stratification variables for the systematic methods (e.g. district,
        then urban/rural); ties keep the frame's order.
    serpentine
        Sort each variable after the first alternately up and down.
    rng
        A Generator, an integer seed or None. The seed used is recorded: a
        Generator passed in gives one integer which becomes the seed.

    Returns
    -------
    pandas.DataFrame
        A new DataFrame with the selected EAs (rows of ``frame``, sorted by stratum
        and selection order) and the columns ``pi1``, ``certainty`` (taken with
        probability one), ``selection_order`` (1, 2, ... within stratum; certainty EAs
        first), ``n_h`` and ``seed``. ``attrs`` holds ``seed``, ``method``,
        ``sort_by``, ``serpentine`` and the allocation.

    Raises
    ------
    SamplingError
        Unknown method or column, a stratum without allocation, an allocation above
        the stratum's number of EAs, a non-positive size.

    Notes
    -----
    With n_h EAs to select in stratum h, ``pi1_hi = n_h M_hi / M_h``. An EA with
    ``pi1 >= 1`` is a certainty EA: it is taken, and the remaining ``n_h - c`` draws
    are spread over the other EAs in proportion to size, repeatedly until no
    probability reaches one. Certainty EAs are their own strata for variance
    estimation. PPS systematic gives some pairs of EAs joint probability zero; use
    Brewer or Sampford when that matters.

    References
    ----------
    Madow, W. G. (1949). On the theory of systematic sampling II. *Ann. Math. Stat.*
    20, 333-354. Brewer, K. R. W. (1975); Sampford, M. R. (1967); Tille, Y. (2006).
    *Sampling Algorithms*, chapters 7-8. Chromy, J. R. (1979). Sequential sample
    selection methods. *Proc. Survey Research Methods Section, ASA*, 401-406.
    """
    labels, codes, n_h, x, order = _prepare(
        frame, allocation, strata, size, method, sort_by, serpentine, ea
    )
    seed, gen = resolve_seed(rng)
    c = codes[order]
    pi, cert = pps.pps_probabilities(x[order], c, n_h)
    n_rest = n_h - np.bincount(c, weights=cert.astype(float), minlength=len(labels)).astype(
        np.int64
    )
    p_rest = np.where(cert, 0.0, pi)
    if method in ("pps_systematic", "systematic"):
        drawn = pps.systematic(p_rest, c, n_rest, gen)
    elif method == "pps_brewer":
        drawn = pps.brewer(p_rest, c, n_rest, gen)
    elif method == "pps_sampford":
        drawn = pps.sampford(p_rest, c, n_rest, gen)
    else:
        drawn = pps.srs(c, n_rest, ~cert, gen)
    certain = np.flatnonzero(cert)
    chosen = np.concatenate([certain, drawn]).astype(np.int64)
    # selection order within stratum: certainty EAs first, then in order of draw
    rank = np.arange(chosen.size)
    seq = np.lexsort((rank, c[chosen]))
    chosen = chosen[seq]
    cc = c[chosen]
    first = np.searchsorted(cc, np.arange(len(labels)), side="left")
    out = frame.iloc[order[chosen]].copy()
    # the full frame's ids are checked by check_frame; the selected ones must be unique
    if ea in out.columns and not out[ea].is_unique:
        dup = out[ea][out[ea].duplicated()].iloc[0]
        raise SamplingError(
            f"EA id {dup!r} appears twice among the selected EAs",
            column=ea,
            hint="make EA ids unique: run check_frame on the frame first",
        )
    out["pi1"] = pi[chosen]
    out["certainty"] = cert[chosen]
    out["selection_order"] = np.arange(chosen.size) - first[cc] + 1
    out["n_h"] = n_h[cc]
    out["seed"] = np.int64(seed)
    out = out.reset_index(drop=True)
    out.attrs = {
        "seed": seed,
        "method": method,
        "sort_by": as_list(sort_by),
        "serpentine": bool(serpentine),
        "allocation": {str(k): int(v) for k, v in zip(labels, n_h)},
    }
    return out
