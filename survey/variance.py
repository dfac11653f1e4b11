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

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from survey.design import Design, Stage, _dense_codes, _first_rows

__all__ = [
    "CellIndex",
    "cell_index",
    "linearized_variance",
    "linearized_vcov",
    "ratio_variance",
    "replicate_variance",
    "replicate_vcov",
]


@dataclass(frozen=True, eq=False)
class CellIndex:
    """Rows grouped into (finest unit, domain) cells, built once per estimate call.

    ``rows`` is a sparse (cells x rows) 0/1 matrix, so ``rows @ values`` sums any
    number of weighted columns within cells in one pass. Per stage, ``stage_cells``
    maps each cell to its (stage unit, domain) cell and gives that cell's group and
    domain, so variances at every stage follow from arrays over cells.
    """

    rows: sp.csr_matrix  # (C, n)
    rows_w: sp.csr_matrix  # (C, n) with the design weights as values
    cell_domain: np.ndarray  # (C,)
    cell_unit: tuple[np.ndarray, ...]  # per stage, (C,)
    stage_cells: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]  # (inv, group, domain)
    n_domains: int
    _agg: dict = field(default_factory=dict, repr=False)

    def aggregate(self, name: str, codes: np.ndarray, size: int, x: np.ndarray) -> np.ndarray:
        """Sums of the rows of ``x`` by ``codes``, with the sparse aggregator cached
        under ``name`` so that every chunk of variables reuses it."""
        if x.shape[1] <= 2:
            return _bincount2(codes, x, size)
        agg = self._agg.get(name)
        if agg is None:
            agg = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                                shape=(size, len(codes)))
            self._agg[name] = agg
        return np.asarray(agg @ x)

    @property
    def n_cells(self) -> int:
        return len(self.cell_domain)

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Sums of the columns of ``values`` (n x m) within cells, (C, m)."""
        return np.asarray(self.rows @ values)

    def wsum(self, values: np.ndarray) -> np.ndarray:
        """Weighted sums ``sum w * value`` of the columns of ``values`` within cells."""
        return np.asarray(self.rows_w @ values)

    def wsum_column(self, y: np.ndarray) -> np.ndarray:
        """``sum w y`` within cells for one column: a scatter that reads ``y`` in row
        order and releases the GIL, so columns can run on several threads."""
        csc = self._agg.get("rows_w_csc")
        if csc is None:
            csc = self._agg["rows_w_csc"] = self.rows_w.tocsc()
        return csc @ y

    def by_domain(self, cell_values: np.ndarray) -> np.ndarray:
        """Sums of cell values (C, m) within domains, (D, m)."""
        if self.n_domains == 1:
            return cell_values.sum(axis=0, keepdims=True)
        return self.aggregate("domain", self.cell_domain, self.n_domains, cell_values)


def cell_index(design: Design, domain: np.ndarray, n_domains: int) -> CellIndex:
    """Index the rows of ``design`` by (finest unit, domain); ``domain`` -1 = no domain.

    The index of the whole sample (one domain, every row) is cached on the design.
    """
    whole = n_domains == 1 and bool((domain == 0).all())
    if whole and design._cache.get("cell_index") is not None:
        return design._cache["cell_index"]
    idx = _cell_index(design, domain, n_domains)
    if whole:
        design._cache["cell_index"] = idx
    return idx


def _cell_index(design: Design, domain: np.ndarray, n_domains: int) -> CellIndex:
    st = design.stages
    D = n_domains
    finest = st[-1]
    key = np.where(domain >= 0, finest.unit * D + domain, -1)
    inv, uniq = _dense_codes(key, finest.n_unit_total * D)
    rows = np.flatnonzero(inv >= 0)
    C = len(uniq)
    ind = sp.csr_matrix((np.ones(len(rows)), (inv[rows], rows)), shape=(C, len(domain)))
    ind_w = sp.csr_matrix((design.w[rows], (inv[rows], rows)), shape=(C, len(domain)))
    cell_domain = (uniq % D).astype(np.int64)
    cell_finest = uniq // D
    # each finest unit lies in one unit per stage: map through a unit-level lookup
    first_row = _first_rows(finest.unit)
    cell_unit = tuple(s.unit[first_row[cell_finest]] for s in st)
    stage_cells = []
    for s, u in zip(st, cell_unit):
        sinv, suniq = _dense_codes(u * D + cell_domain, s.n_unit_total * D)
        stage_cells.append((sinv, s.unit_group[suniq // D], suniq % D))
    return CellIndex(rows=ind, rows_w=ind_w, cell_domain=cell_domain, cell_unit=cell_unit,
                     stage_cells=tuple(stage_cells), n_domains=D)


def _stage_term(st: Stage, t: np.ndarray, idx: CellIndex, s: int, lonely: str,
                present: np.ndarray | None) -> np.ndarray:
    """Variance contribution of one stage, per (domain, column): returns (D, k).

    ``t`` holds linearised totals per finest cell (C x k). Units without a cell in a
    domain have total zero there, which is how R pads PSUs absent from a subset.
    """
    D = idx.n_domains
    k = t.shape[1]
    G = st.n_groups
    inv, u_group, u_dom = idx.stage_cells[s]
    shape = idx._agg.get(f"shape{s}")
    if shape is None:  # the structure of this stage's cells, the same for every variable
        order = None
        if len(u_group) == len(inv) and not (inv[1:] > inv[:-1]).all():
            order = np.argsort(inv)
        gd = u_group * D + u_dom  # (group, domain) code of each unit-cell
        n_cells = np.bincount(gd, minlength=G * D).astype(float)
        shape = idx._agg[f"shape{s}"] = (order, gd, n_cells)
    order, gd, n_cells = shape
    if len(u_group) < len(inv):
        tu = idx.aggregate(f"unit{s}", inv, len(u_group), t)
    elif order is None:
        tu = t  # cells are already this stage's units, in order
    else:
        tu = t[order]
    n_g = st.n_units
    f = st.fpc_factor
    lonely_g = n_g == 1
    adjust_g = lonely_g & (lonely == "adjust")
    # group sums and means over all n_g units (absent units count as zeros)
    gsum = idx.aggregate(f"group{s}", gd, G * D, tu)  # (G*D, k)
    gmean = gsum / np.repeat(n_g, D)[:, None]
    gmean[np.repeat(adjust_g, D)] = 0.0  # R does not centre a lonely PSU under "adjust"
    dev = tu - gmean[gd]
    dev *= dev
    ss = idx.aggregate(f"group{s}", gd, G * D, dev)
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
    """Sums of the rows of ``x`` (m, k) by integer code, (size, k)."""
    k = x.shape[1]
    if k <= 2:
        out = np.empty((size, k))
        for j in range(k):
            out[:, j] = np.bincount(codes, weights=x[:, j], minlength=size)
        return out
    agg = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(size, len(codes)))
    return np.asarray(agg @ x)


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


def ratio_variance(design: Design, idx: CellIndex, A: np.ndarray, B: np.ndarray, ratio: np.ndarray,
                   denom: np.ndarray, present: list[np.ndarray] | None = None) -> np.ndarray:
    """Variances of ratios ``R[d, j] = Y[d, j] / X[d, j]`` from cell sums, (D, k).

    ``A`` and ``B`` are the cell sums (C x k) of ``w y`` and ``w x`` (missing rows
    zeroed). Totals are ``ratio = 0, denom = 1``. ``present`` (per stage, G*D x k)
    marks strata with rows in the domain, needed only for ``lonely_psu="average"``.
    """
    if idx.n_domains == 1:  # one domain: broadcast, no gathers
        t = (A - ratio[0] * B) / denom[0]
    else:
        d = idx.cell_domain
        t = (A - ratio[d] * B) / denom[d]
    out = np.zeros((idx.n_domains, A.shape[1]))
    for s, st in enumerate(_active_stages(design)):
        pres = present[s] if present is not None else None
        out += _stage_term(st, t, idx, s, design.lonely_psu, pres)
    return out


def linearized_variance(design: Design, z: np.ndarray, present: list[np.ndarray] | None = None,
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
    idx = cell_index(design, np.zeros(design.n, dtype=np.int64), 1)
    t = idx.sum(z)
    out = np.zeros(z.shape[1])
    for s, st in enumerate(_active_stages(design)):
        pres = present[s] if present is not None else None
        out += _stage_term(st, t, idx, s, design.lonely_psu, pres)[0]
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
