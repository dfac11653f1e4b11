"""Linearisation and replicate variance, vectorised over variables and domains.

The estimators in :mod:`analysis` reduce to weighted sums over *cells*: a cell is a
sampling unit crossed with a domain. For a ratio ``R = Y_d / X_d`` in domain ``d``
the linearised total of unit ``u`` is ``t_u = (A_ud - R B_ud) / X_d`` with ``A`` and
``B`` the unit-by-domain sums of ``w y`` and ``w x``; means (``x = 1``) and totals
(``R = 0``, ``X = 1``) are special cases. So the data are read once into cell sums,
and every variance follows from arrays over cells, not over rows x estimates.

Designs that carry calibrations need the row-level influence values (the
calibration residualises them, as R's ``svyrecvar`` does), so for those the values
are materialised a chunk of estimates at a time.

The stage formula is R ``survey``'s ``onestrat``/``multistage``: per stratum,
``(1 - n/N) n/(n - 1)`` times the sum of squared deviations of PSU totals from their
stratum mean, later stages added with the product of the sampling fractions above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from survey.design import Design, Stage

__all__ = ["CellSums", "cell_sums", "linearized_variance", "ratio_variance", "replicate_variance"]


@dataclass(frozen=True)
class CellSums:
    """Sums of weighted columns over (finest unit, domain) cells.

    ``cell_unit[s]`` is the stage-``s`` unit of each cell; ``cell_domain`` its domain.
    """

    sums: np.ndarray  # (C, m)
    cell_domain: np.ndarray  # (C,)
    cell_unit: tuple[np.ndarray, ...]  # per stage, (C,)
    n_domains: int


def cell_sums(design: Design, values: np.ndarray, domain: np.ndarray, n_domains: int,
              stages: int | None = None) -> CellSums:
    """Sum the rows of ``values`` (n x m) within (finest unit, domain) cells.

    ``domain`` holds a code in ``0..n_domains-1`` per row, or -1 for rows outside
    every domain (they are left out).
    """
    st = design.stages[: stages or len(design.stages)]
    finest = st[-1].unit
    keep = domain >= 0
    key = finest.astype(np.int64) * n_domains + domain
    key = np.where(keep, key, -1)
    uniq, inv = np.unique(key, return_inverse=True)
    if len(uniq) and uniq[0] == -1:
        inv = inv - 1
        uniq = uniq[1:]
    rows = np.flatnonzero(keep)
    C = len(uniq)
    ind = sp.csr_matrix((np.ones(len(rows)), (inv[rows], rows)), shape=(C, len(domain)))
    sums = np.asarray(ind @ values) if values.size else np.zeros((C, values.shape[1]))
    first = np.full(C, -1, dtype=np.int64)
    first[inv[rows][::-1]] = rows[::-1]
    cell_unit = tuple(s.unit[first] for s in st)
    return CellSums(sums=sums, cell_domain=(uniq % n_domains).astype(np.int64),
                    cell_unit=cell_unit, n_domains=n_domains)


def _stage_term(st: Stage, t: np.ndarray, cell_unit: np.ndarray, cell_domain: np.ndarray,
                n_domains: int, lonely: str, present: np.ndarray | None) -> np.ndarray:
    """Variance contribution of one stage, per (domain, column): returns (D, k).

    ``t`` holds linearised totals per cell (C x k). Units without a cell in a domain
    have total zero there, which is how R pads PSUs absent from a subset.
    """
    D = n_domains
    k = t.shape[1]
    G = st.n_groups
    # aggregate finer cells up to this stage's units
    ukey = cell_unit * D + cell_domain
    uu, uinv = np.unique(ukey, return_inverse=True)
    tu = np.zeros((len(uu), k))
    np.add.at(tu, uinv, t) if len(uu) < len(ukey) else tu.__setitem__(uinv, t)
    u_unit = uu // D
    u_dom = uu % D
    u_group = st.unit_group[u_unit]
    gd = u_group * D + u_dom  # (group, domain) code of each unit-cell
    n_g = st.n_units
    f = st.fpc_factor
    lonely_g = n_g == 1
    adjust_g = lonely_g & (lonely == "adjust")
    # group sums and means over all n_g units (absent units count as zeros)
    gsum = _bincount2(gd, tu, G * D)  # (G*D, k)
    gmean = gsum / np.repeat(n_g, D)[:, None]
    gmean[np.repeat(adjust_g, D)] = 0.0  # R does not centre a lonely PSU under "adjust"
    dev = tu - gmean[gd]
    ss = _bincount2(gd, dev * dev, G * D)
    n_cells = np.bincount(gd, minlength=G * D).astype(float)
    absent = np.repeat(n_g, D) - n_cells
    ss += absent[:, None] * gmean * gmean
    scale = np.where(n_g > 1, f * n_g / np.maximum(n_g - 1, 1), f)
    scale = np.where(f < 1e-7, 0.0, scale) * st.multiplier
    contrib = (ss * np.repeat(scale, D)[:, None]).reshape(G, D, k)
    if lonely == "average" and lonely_g.any():
        # R: lonely strata give NA; the sum over the rest is scaled by nstrat/nokstrat,
        # counting strata present in the (sub)design, separately under each parent unit
        if present is None:
            pres = np.ones((G, D, k), dtype=bool)
        else:
            pres = present.reshape(G, D, k)
        contrib[lonely_g & (f >= 1e-7)] = 0.0
        ok = pres & ~(lonely_g & (f >= 1e-7))[:, None, None]
        P = int(st.parent.max()) + 1
        nstrat = _bincount3(st.parent, pres.astype(float), P)
        nok = _bincount3(st.parent, ok.astype(float), P)
        total = _bincount3(st.parent, contrib, P)
        with np.errstate(invalid="ignore", divide="ignore"):
            total = total * np.where(nstrat > 0, nstrat / nok, 1.0)
        return total.sum(axis=0)
    if lonely in ("certainty", "remove"):
        contrib[lonely_g] = 0.0
    return contrib.sum(axis=0)


def _bincount2(codes: np.ndarray, x: np.ndarray, size: int) -> np.ndarray:
    out = np.empty((size, x.shape[1]))
    for j in range(x.shape[1]):  # per column, not per row: bincount is the fast path
        out[:, j] = np.bincount(codes, weights=x[:, j], minlength=size)
    return out


def _bincount3(codes: np.ndarray, x: np.ndarray, size: int) -> np.ndarray:
    G, D, k = x.shape
    return _bincount2(codes, x.reshape(G, D * k), size).reshape(size, D, k)


def _active_stages(design: Design) -> list[Stage]:
    """Stages that contribute: stage 1, and later ones under stages that have an fpc."""
    out = [design.stages[0]]
    if all(f is None for f in design.fpc):
        return out
    for st in design.stages[1:]:
        if not (st.multiplier > 0).any():
            break
        out.append(st)
    return out


def ratio_variance(design: Design, cells: CellSums, ratio: np.ndarray, denom: np.ndarray,
                   n_vars: int, present: np.ndarray | None = None) -> np.ndarray:
    """Variances of ratios ``R[d, j] = Y[d, j] / X[d, j]`` from cell sums, (D, k).

    ``cells.sums`` holds ``[w y_1..w y_k, w x_1..w x_k]`` (k = ``n_vars``) with missing
    rows already zeroed. ``present`` (G1*D x k, per stage) marks strata with rows in
    the domain, needed only for ``lonely_psu="average"``.
    """
    k = n_vars
    A = cells.sums[:, :k]
    B = cells.sums[:, k:2 * k]
    d = cells.cell_domain
    t = (A - ratio[d] * B) / denom[d]
    out = np.zeros((cells.n_domains, k))
    for s, st in enumerate(_active_stages(design)):
        pres = present[s] if present is not None else None
        out += _stage_term(st, t, cells.cell_unit[s], d, cells.n_domains, design.lonely_psu, pres)
    return out


def linearized_variance(design: Design, z: np.ndarray, present: np.ndarray | None = None,
                        calibrate: bool = True) -> np.ndarray:
    """Variance of the totals of the columns of ``z`` (n x k weighted influence values).

    The design's calibrations residualise ``z`` first (``calibrate=True``). Returns the
    k variances.
    """
    z = np.asarray(z, dtype=float)
    if z.ndim == 1:
        z = z[:, None]
    if calibrate:
        for cal in design.calibrations:
            z = np.asarray(cal.residualize(z), dtype=float)
    dom = np.zeros(design.n, dtype=np.int64)
    cells = cell_sums(design, z, dom, 1)
    out = np.zeros(z.shape[1])
    for s, st in enumerate(_active_stages(design)):
        pres = present[s] if present is not None else None
        out += _stage_term(st, cells.sums, cells.cell_unit[s], cells.cell_domain, 1,
                           design.lonely_psu, pres)[0]
    return out


def linearized_vcov(design: Design, z: np.ndarray) -> np.ndarray:
    """Full covariance matrix of the totals of the columns of ``z`` (n x k).

    Used for contrasts and regression, where k is small. ``lonely_psu="average"``
    scales with the whole design's strata (all present).
    """
    z = np.asarray(z, dtype=float)
    if z.ndim == 1:
        z = z[:, None]
    for cal in design.calibrations:
        z = np.asarray(cal.residualize(z), dtype=float)
    k = z.shape[1]
    V = np.zeros((k, k))
    for st in _active_stages(design):
        U = st.n_unit_total
        ind = sp.csr_matrix((np.ones(design.n), (st.unit, np.arange(design.n))), shape=(U, design.n))
        T = np.asarray(ind @ z)
        n_g = st.n_units
        f = st.fpc_factor
        lonely_g = n_g == 1
        gsum = _bincount2(st.unit_group, T, st.n_groups)
        gmean = gsum / n_g[:, None]
        if design.lonely_psu == "adjust":
            gmean[lonely_g] = 0.0
        dev = T - gmean[st.unit_group]
        scale = np.where(n_g > 1, f * n_g / np.maximum(n_g - 1, 1), f)
        scale = np.where(f < 1e-7, 0.0, scale) * st.multiplier
        if design.lonely_psu in ("certainty", "remove", "average"):
            scale = np.where(lonely_g, 0.0, scale)
        if design.lonely_psu == "average" and (lonely_g & (f >= 1e-7)).any():
            P = int(st.parent.max()) + 1
            nstrat = np.bincount(st.parent, minlength=P).astype(float)
            nok = np.bincount(st.parent, weights=(~(lonely_g & (f >= 1e-7))).astype(float), minlength=P)
            scale = scale * (nstrat / nok)[st.parent]
        dev = dev * np.sqrt(scale[st.unit_group])[:, None]
        V += dev.T @ dev
    return V


def replicate_variance(design: Design, theta: np.ndarray, theta_reps: np.ndarray) -> np.ndarray:
    """Replicate variance of estimates ``theta`` (...,) from replicates (..., R)."""
    info = design.replicates
    assert info is not None  # internal: only called for replicate designs
    centre = theta[..., None] if info.mse else theta_reps.mean(axis=-1, keepdims=True)
    dev = theta_reps - centre
    return info.scale * (dev * dev * info.rscales).sum(axis=-1)


def replicate_vcov(design: Design, theta: np.ndarray, theta_reps: np.ndarray) -> np.ndarray:
    """Replicate covariance matrix of the estimates ``theta`` (k,) from (k, R)."""
    info = design.replicates
    assert info is not None
    centre = theta[:, None] if info.mse else theta_reps.mean(axis=1, keepdims=True)
    dev = theta_reps - centre
    return info.scale * (dev * info.rscales) @ dev.T
