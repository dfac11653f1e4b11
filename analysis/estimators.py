"""Means, totals, ratios and proportions, for many variables and domains in one pass.

Each estimator reads the data once into (PSU x domain) cell sums and derives every
variance from them (see :mod:`survey.variance`). Domains are masks: rows outside a
domain keep their place in the design with weight zero, as R's ``svyby`` does, so
domain standard errors count every PSU of every stratum.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from analysis._prep import (
    Domains,
    as_list,
    check_column,
    domains,
    numeric_block,
    numeric_column,
    numeric_matrix,
)
from survey.design import Design
from survey.errors import EstimationError
from survey.estimate import Estimate
from survey.variance import (
    CellIndex,
    _bincount2,
    cell_index,
    linearized_variance,
    linearized_vcov,
    ratio_variance,
    replicate_variance,
    replicate_vcov,
)

__all__ = ["mean", "proportion", "ratio", "total"]

Deff = bool | Literal["replace"]
NA = Literal["available", "complete"]
_CHUNK = 10  # variables per pass: bounds memory at cells x _CHUNK floats
_PARALLEL_ROWS = 200_000  # below this, threads cost more than they save
_PARALLEL_CELLS = 50_000  # variances per variable on the pool from this many cells
_BLOCK_FLOATS = 4_000_000  # replicate designs: variables are read in blocks of rows x step <= this
_POOL = ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) if (os.cpu_count() or 1) > 1 else None


def _by_sum(code: np.ndarray, inside: np.ndarray, x: np.ndarray, D: int) -> np.ndarray:
    """Column sums of x (n, k) per domain -> (D, k)."""
    c = np.where(inside, code, D)  # rows outside go to a discard bin
    out = np.empty((D, x.shape[1]))
    for j in range(x.shape[1]):
        out[:, j] = np.bincount(c, weights=x[:, j], minlength=D + 1)[:D]
    return out


def _domain_degf(design: Design, idx: CellIndex, nonzero: np.ndarray) -> np.ndarray:
    """R's ``degf`` of each domain's subset design: PSUs minus strata with rows there.

    ``nonzero`` marks cells holding a row with nonzero weight.
    """
    D = idx.n_domains
    st = design.stages[0]
    d = idx.cell_domain[nonzero]
    u = idx.cell_unit[0][nonzero]

    def distinct(codes: np.ndarray, size: int) -> np.ndarray:
        seen = np.zeros(D * size, dtype=bool)
        seen[d * size + codes] = True
        return seen.reshape(D, size).sum(axis=1)

    return (distinct(u, st.n_unit_total) - distinct(st.unit_group[u], st.n_groups)).astype(float)


@dataclass(frozen=True)
class _Chunk:
    """Cell sums being filled for one chunk of variables (one column per variable)."""

    A: np.ndarray  # sum w y
    B: np.ndarray | None  # sum w x (ratios)
    Q: np.ndarray | None  # sum w (y - c)^2 (design effects)
    c: np.ndarray  # the shift c per variable
    miss: dict[int, np.ndarray]  # rows with a value, for variables with missing values


def _scatter(idx: CellIndex, chunk: _Chunk, jj: int, y: np.ndarray, x: np.ndarray | None) -> None:
    """Fill column ``jj`` of the chunk's cell sums from one variable (and denominator)."""
    if chunk.Q is None:
        a = idx.wsum_column(y)
        b = idx.wsum_column(x) if x is not None else None
        # a missing value in a cell makes the sum NaN (rows in no cell never count):
        # only then are the rows with values found and the column summed again
        if not (np.isnan(a.sum()) or (b is not None and np.isnan(b.sum()))):
            chunk.A[:, jj] = a
            if b is not None:
                chunk.B[:, jj] = b
            return
    miss = np.isnan(y) if x is None else np.isnan(y) | np.isnan(x)
    if miss.any():
        chunk.miss[jj] = ~miss
        y = np.where(miss, 0.0, y)
        x = np.where(miss, 0.0, x) if x is not None else None
    chunk.A[:, jj] = idx.wsum_column(y)
    if x is not None:
        chunk.B[:, jj] = idx.wsum_column(x)
    if chunk.Q is not None:
        ok = ~miss
        chunk.c[jj] = y[ok].mean() if ok.any() else 0.0
        chunk.Q[:, jj] = idx.wsum_column(np.where(miss, 0.0, (y - chunk.c[jj]) ** 2))


def _variances(design: Design, idx: CellIndex, A: np.ndarray, B: np.ndarray, ratio: np.ndarray,
               denom: np.ndarray, present: list[np.ndarray] | None) -> np.ndarray:
    """``ratio_variance`` a variable at a time, so that its (cells,) columns stay in
    cache through every stage; on the pool when there are many cells."""
    def one(jj: int) -> np.ndarray:
        c = slice(jj, jj + 1)
        pres = None if present is None else [p[:, c] for p in present]
        return ratio_variance(design, idx, A[:, c], B[:, c], ratio[:, c], denom[:, c], pres)

    m = A.shape[1]
    if _POOL is not None and idx.n_cells >= _PARALLEL_CELLS and m > 1:
        return np.concatenate(list(_POOL.map(one, range(m))), axis=1)
    return np.concatenate([one(jj) for jj in range(m)], axis=1)


def _columns(design: Design, names: Sequence[str], statistic: str, lo: int, hi: int,
             complete: np.ndarray | None) -> np.ndarray:
    y = numeric_matrix(design, names[lo:hi], statistic)
    if complete is not None:
        y[~complete] = np.nan
    return y


def _complete_rows(design: Design, names: Sequence[str], dens: Sequence[str] | None, statistic: str,
                   na: str) -> np.ndarray | None:
    """Rows with a value in every variable (``na="complete"``), or None (``"available"``)."""
    if na == "complete":
        cols = list(names) + list(dens or [])
        return ~np.isnan(numeric_matrix(design, cols, statistic)).any(axis=1)
    if na != "available":
        raise EstimationError(f"na={na!r} is not 'available' or 'complete'")
    return None


def _linear(design: Design, names: Sequence[str], dens: Sequence[str] | None, dom: Domains,
            kind: str, *, statistic: str, deff: bool = False, want_vcov: bool = False,
            na: str = "available", y_all: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Estimates and variances of totals, means or ratios of variables, per domain.

    Reads the variables a chunk at a time into (unit x domain) cell sums and finishes
    each chunk (estimates, variances) before the next, so memory stays at cells x
    chunk. Variables without missing values share the cell sums of the weights.
    Returns arrays of shape (D, k): estimate, var, n, wsum (sum of weights of rows
    with values), s2 (weighted variance, when ``deff``); df (D,); and ``vcov``
    (D*k x D*k, domain-major) when ``want_vcov``.
    """
    if design.replicates is not None:
        return _replicate_linear(design, names, dens, dom, kind, statistic=statistic, deff=deff,
                                 want_vcov=want_vcov, na=na, y_all=y_all)
    k, D = len(names), dom.n
    w = design.w
    idx = cell_index(design, dom.code, D)
    wz = (w != 0).astype(float)
    cached = idx is design._cache.get("cell_index")
    base = design._cache.get("cell_base") if cached else None
    if base is None:  # per cell: weights, rows with nonzero weight, rows
        base = idx.sum(np.column_stack([w, wz, np.ones_like(w)]))
        if cached:
            design._cache["cell_base"] = base
    base_d = idx.by_domain(base)
    complete = _complete_rows(design, names, dens, statistic, na)
    out = {key: np.full((D, k), np.nan) for key in ("estimate", "var", "n", "wsum", "s2")}
    row_level = bool(design.calibrations)
    present_rows = design.lonely_psu == "average" and not design.calibrations
    def column(j: int, denominator: bool = False) -> np.ndarray:
        if y_all is not None:
            return y_all[:, j]
        v = numeric_column(design, (dens if denominator else names)[j], statistic)
        return np.where(complete, v, np.nan) if complete is not None else v

    C = idx.n_cells
    for lo in range(0, k, _CHUNK):
        hi = min(lo + _CHUNK, k)
        m = hi - lo
        # one scatter per variable on its column, used in place: no n x k matrix
        # column-major: each variable's cell sums are contiguous, for the per-variable variances
        A = np.empty((C, m), order="F")
        B = np.empty((C, m), order="F") if dens is not None else None
        Q = np.empty((C, m)) if deff else None
        c = np.zeros(m)
        chunk = _Chunk(A=A, B=B, Q=Q, c=c, miss={})
        # columns are read on the caller's thread (pandas), scattered on a small pool:
        # the sparse scatter and numpy's ufuncs release the GIL
        work = [(idx, chunk, jj, column(j), column(j, True) if dens is not None else None)
                for jj, j in enumerate(range(lo, hi))]
        if _POOL is not None and design.n >= _PARALLEL_ROWS and len(work) > 1:
            list(_POOL.map(lambda a: _scatter(*a), work))
        else:
            for a in work:
                _scatter(*a)
        miss_cols = chunk.miss
        has = np.zeros(m, dtype=bool)
        has[list(miss_cols)] = True
        # weight sums and counts: shared by the variables without missing values
        W_d = np.repeat(base_d[:, :1], m, axis=1)
        N_d = np.repeat(base_d[:, 1:2], m, axis=1)
        cols = np.flatnonzero(has)
        if len(cols):
            ok = np.column_stack([miss_cols[jj] for jj in cols]).astype(float)
            W_miss = idx.wsum(ok)
            W_d[:, cols] = idx.by_domain(W_miss)
            N_d[:, cols] = idx.by_domain(idx.sum(ok * wz[:, None]))
        if dens is None:
            if len(cols):
                B = np.asfortranarray(np.repeat(base[:, :1], m, axis=1))
                B[:, cols] = W_miss
            else:
                B = np.broadcast_to(base[:, :1], (C, m))
        Y = idx.by_domain(A)
        X = W_d if dens is None else idx.by_domain(B)
        with np.errstate(invalid="ignore", divide="ignore"):
            if kind == "total":
                est, ratio, denom = Y, np.zeros_like(Y), np.ones_like(Y)
            else:
                est = Y / X
                ratio, denom = est, X
            if deff and dens is None:
                Q = idx.by_domain(Q)
                out["s2"][:, lo:hi] = (Q - W_d * (Y / W_d - c) ** 2) / W_d * N_d / (N_d - 1)
            elif deff:
                # R: the deff of svytotal of the residual r = (y - R x) / X, whose weighted
                # mean is zero; a second pass once R is known (no cancellation)
                code = np.where(dom.code >= 0, dom.code, 0)
                for jj, j in enumerate(range(lo, hi)):
                    yv, xv = column(j), column(j, True)
                    r = np.where(np.isnan(yv) | np.isnan(xv), 0.0, yv - est[code, jj] * xv)
                    Qr = idx.by_domain(idx.wsum_column(r * r)[:, None])[:, 0]
                    out["s2"][:, lo + jj] = Qr / W_d[:, jj] * N_d[:, jj] / (N_d[:, jj] - 1) / X[:, jj] ** 2
        out["estimate"][:, lo:hi] = est
        out["n"][:, lo:hi] = N_d
        out["wsum"][:, lo:hi] = W_d
        if not row_level:
            present = None
            if present_rows:
                rows_with = np.repeat(base[:, 2:3] > 0, m, axis=1)
                if len(cols):
                    rows_with[:, cols] = idx.sum(ok) > 0
                present = [_bincount2(sgrp[sinv] * D + sdom[sinv], rows_with.astype(float),
                                      design.stages[s].n_groups * D) > 0
                           for s, (sinv, sgrp, sdom) in enumerate(idx.stage_cells)]
            out["var"][:, lo:hi] = _variances(design, idx, A, np.asarray(B), ratio, denom, present)
    vcov = None
    if row_level or want_vcov:
        est = out["estimate"]
        y = y_all if y_all is not None else _columns(design, names, statistic, 0, k, complete)
        xm = None if dens is None else _columns(design, dens, statistic, 0, k, complete)
        inside = dom.code >= 0
        code = np.where(inside, dom.code, 0)
        miss = np.isnan(y) if xm is None else np.isnan(y) | np.isnan(xm)
        msk = ~miss & inside[:, None]
        wm = np.where(msk, w[:, None], 0.0)
        wy = np.where(msk, y, 0.0) * wm
        wx = wm if xm is None else np.where(msk, xm, 0.0) * wm
        if kind == "total":
            ratio, denom = np.zeros_like(est), np.ones_like(est)
        else:
            ratio, denom = est, _by_sum(code, inside, wx, D)
        if design.calibrations:
            out["var"] = _calibrated_linear(design, wy, wx, code, inside, ratio, denom, D)
        if want_vcov:
            # the full covariance (for contrasts) needs the influence values of every estimate
            cols = [(d, j) for d in range(D) for j in range(k)]
            vcov = linearized_vcov(design, _influence(wy, wx, code, inside, ratio, denom, cols))
    out["vcov"] = vcov
    out["df"] = _domain_degf(design, idx, base[:, 1] > 0)
    return out


def _influence(wy: np.ndarray, wx: np.ndarray, code: np.ndarray, inside: np.ndarray,
               ratio: np.ndarray, denom: np.ndarray, cols: Sequence[tuple[int, int]]) -> np.ndarray:
    """Weighted influence values (n x len(cols)) of the (domain, variable) estimates."""
    z = np.zeros((wy.shape[0], len(cols)))
    for c, (d, j) in enumerate(cols):  # per estimate column, not per row
        rows = inside & (code == d)
        z[rows, c] = (wy[rows, j] - ratio[d, j] * wx[rows, j]) / denom[d, j]
    return z


def _calibrated_linear(design: Design, wy: np.ndarray, wx: np.ndarray, code: np.ndarray,
                       inside: np.ndarray, ratio: np.ndarray, denom: np.ndarray, D: int) -> np.ndarray:
    """Variances on a calibrated design: materialise influence values, a chunk at a time."""
    n, k = wy.shape
    var = np.empty((D, k))
    cols = [(d, j) for d in range(D) for j in range(k)]
    step = max(1, min(len(cols), 4_000_000 // max(n, 1)))
    for lo in range(0, len(cols), step):
        chunk = cols[lo: lo + step]
        v = linearized_variance(design, _influence(wy, wx, code, inside, ratio, denom, chunk))
        for c, (d, j) in enumerate(chunk):
            var[d, j] = v[c]
    return var


def _rows_to_keys(dom: Domains, values: np.ndarray, group: np.ndarray | None = None,
                  n_groups: int = 1) -> sp.csc_matrix:
    """A sparse (groups * D x n) matrix with ``values[i]`` at row ``group_i * D + domain_i``
    of column i, for rows inside a domain: one entry per column, so it is built in
    O(n) without sorting, and ``matrix @ data`` sums rows into (group, domain) keys."""
    D = dom.n
    inside = dom.code >= 0
    key = dom.code if group is None else group * D + dom.code
    indptr = np.zeros(len(key) + 1, dtype=np.int64)
    np.cumsum(inside, out=indptr[1:])
    return sp.csc_matrix((values[inside], key[inside], indptr), shape=(n_groups * D, len(key)))


def _replicate_linear(design: Design, names: Sequence[str], dens: Sequence[str] | None, dom: Domains,
                      kind: str, *, statistic: str, deff: bool, want_vcov: bool, na: str,
                      y_all: np.ndarray | None) -> dict[str, np.ndarray]:
    """``_linear`` for replicate designs: sparse products of blocks of variables.

    When the replicates were made from the design (PSU multipliers), a block of
    variables is summed into (PSU x domain) totals by one sparse product; the
    full-sample sums add those over PSUs and the replicate sums are the PSU factors
    times them, for all variables in one product. Otherwise the full-sample sums are a
    (domain x rows) product and the replicate sums a BLAS product with the (rows x
    replicates) weights. Blocks bound memory at rows x ``step`` floats.
    """
    info = design.replicates
    k, D, n = len(names), dom.n, design.n
    w = design.w
    factored = info.factored_for(w)
    G = info.factors.shape[0] if factored else 1
    P = _rows_to_keys(dom, w, info.unit if factored else None, G)  # (G*D, n)
    inside = dom.code >= 0
    code = np.where(inside, dom.code, 0)
    nonzero = inside & (w != 0)
    complete = _complete_rows(design, names, dens, statistic, na)
    ones_T = np.asarray(P.sum(axis=1)).ravel()  # sum of w per (group, domain) key
    n_all = np.bincount(dom.code[nonzero], minlength=D).astype(float)
    Ty, Tx, N = np.empty((G * D, k)), np.empty((G * D, k)), np.empty((D, k))
    Tw = np.empty((G * D, k)) if dens is not None else Tx  # sums of w over rows with values
    Q = np.full((G * D, k), np.nan)
    own = np.zeros(k, dtype=bool)  # variables whose denominators are their own (missing values)
    R = info.n_replicates
    Yr = None if factored else np.empty((D, k, R))
    Xr = None if factored else np.empty((D, k, R))
    step = max(1, min(k, _BLOCK_FLOATS // max(n, 1)))
    for lo in range(0, k, step):
        hi = min(k, lo + step)
        Yb = y_all[:, lo:hi] if y_all is not None else numeric_block(design, names[lo:hi], statistic)
        Xb = None if dens is None else numeric_block(design, dens[lo:hi], statistic)
        if complete is not None:
            Yb = np.where(complete[:, None], Yb, np.nan)
            Xb = None if Xb is None else np.where(complete[:, None], Xb, np.nan)
        Ty[:, lo:hi] = P @ Yb
        if Xb is not None:
            Tx[:, lo:hi] = P @ Xb
        Tw[:, lo:hi] = ones_T[:, None]
        N[:, lo:hi] = n_all[:, None]
        # a missing value inside a domain makes its column's sums NaN: only those columns
        # are read again, with missing values as a domain (zeroed and not counted)
        bad = np.isnan(Ty[:, lo:hi].sum(axis=0))
        if Xb is not None:
            bad |= np.isnan(Tx[:, lo:hi].sum(axis=0))
        miss = np.flatnonzero(bad)
        OK = None
        if len(miss):
            okm = ~np.isnan(Yb[:, miss]) if Xb is None else ~(np.isnan(Yb[:, miss]) | np.isnan(Xb[:, miss]))
            Yb = np.array(Yb)  # a copy: never write to the data or the caller's matrix
            Yb[:, miss] = np.where(okm, Yb[:, miss], 0.0)
            Ty[:, lo + miss] = P @ Yb[:, miss]
            if Xb is not None:
                Xb = np.array(Xb)
                Xb[:, miss] = np.where(okm, Xb[:, miss], 0.0)
                Tx[:, lo + miss] = P @ Xb[:, miss]
            Tw[:, lo + miss] = P @ okm.astype(float)
            for c, jj in enumerate(miss):
                N[:, lo + jj] = np.bincount(dom.code[nonzero & okm[:, c]], minlength=D)
            OK = np.ones(Yb.shape, dtype=bool)
            OK[:, miss] = okm
            own[lo + miss] = True
        if deff:
            # the weighted variance of y in the domain, or for a ratio R's deff of the
            # total of the residual (y - R x) / X: a second pass, no cancellation
            Yd = Ty[:, lo:hi].reshape(G, D, -1).sum(axis=0)
            Xd = Tx[:, lo:hi].reshape(G, D, -1).sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                r = Yb - (Yd / Xd)[code] if Xb is None else Yb - (Yd / Xd)[code] * Xb
            if OK is not None:
                r[~OK] = 0.0
            Q[:, lo:hi] = P @ (r * r)
        if not factored:
            # explicit replicate weights: rows outside every domain count too (as zeros)
            Yz = np.where(np.isnan(Yb), 0.0, Yb)
            Xz = None
            if kind != "total":
                Xz = (np.ones(Yb.shape) if OK is None else OK.astype(float)) if Xb is None \
                    else np.where(np.isnan(Xb), 0.0, Xb)
            Yr[:, lo:hi], Xr_b = _replicate_sums(info.weights, Yz, Xz, dom)
            if Xr_b is not None:
                Xr[:, lo:hi] = Xr_b
    Y = Ty.reshape(G, D, k).sum(axis=0)
    X = Tx.reshape(G, D, k).sum(axis=0)
    W = X if dens is None else Tw.reshape(G, D, k).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        est = Y if kind == "total" else Y / X
        s2 = Q.reshape(G, D, k).sum(axis=0) / W * N / (N - 1)
        if dens is not None:
            s2 /= X * X
    if factored:
        # replicates are PSU multipliers: replicate totals = F' (PSU x domain totals), in
        # one product; the denominators of variables without missing values are shared
        if dens is not None:
            own[:] = True
        Z = np.concatenate([Ty, Tx[:, own]] + ([] if own.all() else [ones_T[:, None]]), axis=1)
        parts = (info.factors.T @ Z.reshape(G, -1)).reshape(R, D, -1)
        Yr = parts[:, :, :k].transpose(1, 2, 0)
        Xr = np.empty((D, k, R))
        Xr[:, own] = parts[:, :, k:k + own.sum()].transpose(1, 2, 0)
        if not own.all():
            Xr[:, ~own] = parts[:, :, -1].T[:, None, :]
    if kind == "total":
        theta = Yr
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            theta = Yr / Xr
    return {
        "estimate": est, "var": replicate_variance(design, est, theta), "n": N, "wsum": W, "s2": s2,
        "vcov": replicate_vcov(design, est.ravel(), theta.reshape(D * k, R)) if want_vcov else None,
        "df": np.full(D, float(design.degf())),
    }


def _replicate_sums(Wr: np.ndarray, yz: np.ndarray, xz: np.ndarray | None,
                    dom: Domains) -> tuple[np.ndarray, np.ndarray | None]:
    """Replicate sums (D, k, R) of ``yz`` (and ``xz``) under explicit (n x R) weights."""
    n, k = yz.shape
    D, R = dom.n, Wr.shape[1]
    cols = [yz] if xz is None else [yz, xz]
    outs = [np.empty((D * k, R)) for _ in cols]
    if D <= 32:
        # a dense BLAS product per chunk of (domain, variable) columns beats a sparse
        # product by far although it multiplies the zeros outside each domain
        step = max(1, 32 // k) if k < 32 else 1
        for d0 in range(0, D, step):
            ds = range(d0, min(d0 + step, D))
            ind = np.stack([dom.code == d for d in ds], axis=1).astype(float)  # (n, |ds|)
            for z, o in zip(cols, outs):
                o[d0 * k: (ds[-1] + 1) * k] = (z[:, None, :] * ind[:, :, None]).reshape(n, -1).T @ Wr
    else:
        rows = np.flatnonzero(dom.code >= 0)  # every (row inside a domain, variable) pair
        rr, jj = np.repeat(rows, k), np.tile(np.arange(k), len(rows))
        key = dom.code[rr] * k + jj
        for z, o in zip(cols, outs):
            o[:] = np.asarray(sp.csr_matrix((z[rr, jj], (key, rr)), shape=(D * k, n)) @ Wr)
    outs = [o.reshape(D, k, R) for o in outs]
    return outs[0], (outs[1] if xz is not None else None)


def _deff(kind: str, deff: Deff, res: dict[str, np.ndarray]) -> np.ndarray:
    v, s2, nobs, N = res["var"], res["s2"], res["n"], res["wsum"]
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "mean":
            vsrs = s2 / nobs if deff == "replace" else np.where(N < nobs, np.nan, s2 * (N - nobs) / (N * nobs))
        else:
            vsrs = s2 * N * N / nobs if deff == "replace" else s2 * N * N * (N - nobs) / (N * nobs)
        return v / vsrs


def _table(statistic: str, names: Sequence[str], dom: Domains, res: dict[str, np.ndarray],
           deff: Deff, design: Design, extra: dict[str, Sequence] | None = None) -> pd.DataFrame:
    D, k = res["estimate"].shape
    df = res["df"]
    parts = {"variable": np.tile(np.asarray(names, dtype=object), D)}
    if extra:
        for key, vals in extra.items():
            parts[key] = np.tile(np.asarray(vals, dtype=object), D)
    for c in dom.by:
        parts[c] = np.repeat(dom.keys[c].to_numpy(), k)
    parts["estimate"] = res["estimate"].ravel()
    parts["se"] = np.sqrt(np.maximum(res["var"].ravel(), 0.0))
    parts["df"] = np.repeat(df, k)
    parts["deff"] = _deff(statistic if statistic != "proportion" else "mean", deff, res).ravel() \
        if deff else np.full(D * k, np.nan)
    parts["n"] = res["n"].ravel().astype(np.int64)
    return pd.DataFrame(parts)  # one construction: a column at a time costs a copy each


def mean(design: Design, variables: str | Sequence[str], by: str | Sequence[str] | None = None, *,
         mask: np.ndarray | None = None, deff: Deff = False, na: NA = "available",
         level: float = 0.95, ci: Literal["normal", "t"] = "normal", vcov: bool = False) -> Estimate:
    """Weighted means with design-based standard errors.

    Parameters
    ----------
    design
        The sample design.
    variables
        One numeric column or a list of them.
    by
        Domain column(s); every combination present in the data is a domain.
    mask
        A boolean domain restriction (one per row), combined with ``by``.
    deff
        Design effect against simple random sampling without replacement (True) or
        with replacement (``"replace"``).
    na
        ``"available"``: each variable uses the rows where it is recorded (R's
        ``svymean(~y, design, na.rm=TRUE)`` for each variable alone); ``"complete"``:
        rows missing any of the variables are left out of all (R's multi-variable
        call with ``na.rm=TRUE``). Either way missing rows are a domain, not a filter.
    level, ci
        Confidence level and interval type: normal (R's ``confint`` default) or t
        with the domain's design degrees of freedom.

    Notes
    -----
    The linearised variance uses ``z_i = w_i (y_i - ybar_d) / W_d`` in the domain.
    ``df`` is R's ``degf`` of the domain's subset design (PSUs minus strata with rows
    in the domain).

    References
    ----------
    Lumley (2010), section 2.2; Sarndal, Swensson and Wretman (1992), section 5.8.
    """
    names = as_list(variables)
    dom = domains(design, by, mask)
    res = _linear(design, names, None, dom, "mean", statistic="mean", deff=bool(deff), want_vcov=vcov, na=na)
    return Estimate("mean", _table("mean", names, dom, res, deff, design), vcov=res["vcov"], ci=ci,
                    level=level, by=dom.by)


def total(design: Design, variables: str | Sequence[str], by: str | Sequence[str] | None = None, *,
          mask: np.ndarray | None = None, deff: Deff = False, na: NA = "available",
          level: float = 0.95, ci: Literal["normal", "t"] = "normal", vcov: bool = False) -> Estimate:
    """Weighted totals (Horvitz-Thompson) with design-based standard errors.

    Parameters are those of :func:`mean`. Under ``lonely_psu="adjust"`` a single-PSU
    stratum contributes its whole PSU total (R centres it at zero, not at the mean).

    References
    ----------
    Horvitz and Thompson (1952); Lumley (2010), section 2.2.
    """
    names = as_list(variables)
    dom = domains(design, by, mask)
    res = _linear(design, names, None, dom, "total", statistic="total", deff=bool(deff), want_vcov=vcov, na=na)
    return Estimate("total", _table("total", names, dom, res, deff, design), vcov=res["vcov"], ci=ci,
                    level=level, by=dom.by)


def ratio(design: Design, numerator: str | Sequence[str], denominator: str | Sequence[str],
          by: str | Sequence[str] | None = None, *, mask: np.ndarray | None = None,
          deff: Deff = False, level: float = 0.95, ci: Literal["normal", "t"] = "normal",
          vcov: bool = False) -> Estimate:
    """Ratios of weighted totals, ``sum(w y) / sum(w x)``, with linearised SEs.

    ``numerator`` and ``denominator`` are paired column by column (or one
    denominator for every numerator). Rows missing either value are a domain.
    ``deff`` is R's: the design effect of the total of the linearised residual
    ``(y - R x) / X``.

    References
    ----------
    Cochran (1977), section 6.3; Lumley (2010), section 2.2 (``svyratio``).
    """
    num, den = as_list(numerator), as_list(denominator)
    if len(den) == 1 and len(num) > 1:
        den = den * len(num)
    if len(den) != len(num):
        raise EstimationError(f"{len(num)} numerators but {len(den)} denominators",
                              hint="give one denominator, or one per numerator")
    dom = domains(design, by, mask)
    res = _linear(design, num, den, dom, "ratio", statistic="ratio", deff=bool(deff), want_vcov=vcov)
    names = [f"{a}/{b}" for a, b in zip(num, den)]
    return Estimate("ratio", _table("ratio", names, dom, res, deff, design), vcov=res["vcov"], ci=ci,
                    level=level, by=dom.by)


def _levels(s: pd.Series) -> list:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return list(s.cat.categories)
    return sorted(s.dropna().unique().tolist(), key=lambda v: (str(type(v)), v))


def proportion(design: Design, variable: str, by: str | Sequence[str] | None = None, *,
               mask: np.ndarray | None = None, deff: Deff = False, level: float = 0.95,
               ci: Literal["logit", "normal", "t"] = "logit", vcov: bool = False) -> Estimate:
    """The share of every level of a categorical variable, with logit intervals.

    Missing values are a domain: shares are of the rows where the variable is
    recorded. The default interval is R's ``svyciprop(method="logit")``:
    ``expit(logit(p) +/- t_df se / (p (1 - p)))`` with the domain's design df.

    References
    ----------
    Korn and Graubard (1998); Lumley (2010), section 2.3.
    """
    s = check_column(design, variable)
    levels = _levels(s)
    if not levels:
        raise EstimationError("the variable has only missing values", column=variable)
    na = s.isna().to_numpy()
    vals = s.to_numpy(dtype=object)
    y = np.column_stack([np.where(na, np.nan, (vals == lev).astype(float)) for lev in levels])
    dom = domains(design, by, mask)
    res = _linear(design, [variable] * len(levels), None, dom, "mean", statistic="proportion",
                  deff=bool(deff), want_vcov=vcov, y_all=y)
    table = _table("proportion", [variable] * len(levels), dom, res, deff, design,
                   extra={"level": levels})
    cols = ["variable", "level", *dom.by]
    table = table[cols + [c for c in table.columns if c not in cols]]
    method = "logit" if ci == "logit" else ci
    if ci == "logit":
        from scipy import stats

        p, se, df = table["estimate"].to_numpy(), table["se"].to_numpy(), table["df"].to_numpy()
        q = stats.t.ppf(0.5 + level / 2, np.where(df > 0, df, np.nan))
        with np.errstate(divide="ignore", invalid="ignore"):
            lp = np.log(p / (1 - p))
            half = q * se / (p * (1 - p))
            lo = 1 / (1 + np.exp(-(lp - half)))
            hi = 1 / (1 + np.exp(-(lp + half)))
        edge = (p <= 0) | (p >= 1)
        table["ci_low"] = np.where(edge, p, lo)
        table["ci_high"] = np.where(edge, p, hi)
    return Estimate("proportion", table, vcov=res["vcov"], ci=method, level=level, by=dom.by)
