"""Nonresponse adjustment: weighting classes and response-propensity classes.

Within each cell the respondents' weights are scaled so that they carry the weight
of every eligible unit of the cell: ``w' = w * sum(eligible w) / sum(respondent w)``.
Nonrespondents keep their row with weight 0, so the design keeps every PSU and the
variance counts them (a domain, not a filter). Ineligible units (vacant, not found,
no longer a household) are not nonrespondents: they neither receive nor give weight.

On a replicate design the step is repeated on every replicate, all replicates at
once: factors per (cell, replicate), and for propensity classes a batched refit of
the response model, the replicates' own class boundaries and their own collapses.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from survey.design import Design
from survey.errors import SurveyWarning, WeightingError
from weighting._common import as_list, cell_codes, cell_label, group_sums, new_design

__all__ = ["NonresponseAdjustment", "nonresponse"]


@dataclass(frozen=True, eq=False)
class NonresponseAdjustment:
    """What :func:`nonresponse` leaves on the design.

    ``residualize`` turns the influence values of the adjusted estimator into those
    of the two-phase (eligible -> respondent) estimator: with ``a_c = E_c / R_c`` and
    ``Z_c`` the cell sum of z, ``z - w' Z_c / E_c + e w Z_c / E_c``: the respondents'
    deviations from the cell mean plus the cell mean spread over every eligible unit.

    ``table`` reports every cell of the full sample (after collapsing): eligible and
    respondent counts and weights, the factor, and which original cells were merged
    into it. On a replicate design ``refit`` says how the replicates were adjusted
    (``"each"``: their own propensity model and classes; ``"once"``: within the
    full-sample cells; see :func:`nonresponse`), and ``replicate_collapses`` lists
    every cell that a replicate merged (or left below ``min_respondents``):
    ``replicate`` (1-based), ``cell``, ``merged_into`` and ``respondents``
    (respondents with positive replicate weight in the merged cell); it is empty
    when no replicate collapsed.
    """

    codes: np.ndarray  # (n,) final cell of eligible rows, -1 otherwise
    n_cells: int
    eligible_w: np.ndarray  # (n,) w for eligible rows, 0 otherwise
    adjusted_w: np.ndarray  # (n,) w' (0 for nonrespondents and ineligibles)
    table: pd.DataFrame
    refit: str | None = None  # "each" or "once" on a replicate design, else None
    replicate_collapses: pd.DataFrame | None = None

    def residualize(self, z: np.ndarray) -> np.ndarray:
        act = self.codes >= 0
        Z = group_sums(self.codes, z, self.n_cells)
        E = np.bincount(self.codes[act], weights=self.eligible_w[act], minlength=self.n_cells)
        mean = np.where(act[:, None], (Z / E[:, None])[np.maximum(self.codes, 0)], 0.0)
        return z + mean * (self.eligible_w - self.adjusted_w)[:, None]


def _bool_column(design: Design, col: str | np.ndarray | pd.Series, what: str) -> np.ndarray:
    if isinstance(col, str):
        if col not in design.data.columns:
            raise WeightingError(f"{what} column not found in the data", column=col)
        s = design.data[col]
        name = col
    else:
        s = pd.Series(np.asarray(col))
        name = what
    if len(s) != design.n:
        raise WeightingError(f"{what} has {len(s)} values, expected {design.n}")
    if s.isna().any():
        i = int(np.flatnonzero(s.isna().to_numpy())[0])
        raise WeightingError(f"missing value in the {what} indicator", column=name, row=i + 1,
                             hint="code every unit True/False (1/0)")
    vals = s.to_numpy()
    if s.dtype == bool or pd.api.types.is_bool_dtype(s):
        return vals.astype(bool)
    uniq = set(pd.unique(vals).tolist())
    if not uniq <= {0, 1}:
        raise WeightingError(f"the {what} indicator must be True/False or 1/0, got {sorted(map(str, uniq))[:5]}",
                             column=name)
    return vals.astype(float) == 1


def _parents(keys: pd.DataFrame) -> np.ndarray:
    """Code of the higher-level cell (all columns but the last) of each cell of ``keys``;
    the keys are sorted, so the cells of a higher-level cell are contiguous."""
    if keys.shape[1] == 1:
        return np.zeros(len(keys), dtype=np.int64)
    return pd.factorize(keys.iloc[:, :-1].astype(str).agg("|".join, axis=1))[0].astype(np.int64)


def _collapse(keys: pd.DataFrame, resp: np.ndarray, minimum: int, policy: str) -> tuple[np.ndarray, list]:
    """Merge cells with fewer than ``minimum`` respondents with the next cell in sort
    order inside the same higher-level cell (all columns but the last); the last
    cell of a group merges with the previous one. Returns the new cell of each old
    cell and a list of (cell, merged-into) labels."""
    C = len(keys)
    target = np.arange(C)
    parent = _parents(keys)
    merged: list[tuple[str, str]] = []
    stuck: set[int] = set()  # cells left small: nothing to merge with in their higher-level cell
    while True:
        roots = np.unique(target)
        counts = np.bincount(target, weights=resp, minlength=C)
        small = [r for r in roots if counts[r] < minimum and r not in stuck]
        if not small:
            return target, merged
        r = small[0]
        if policy == "fail":
            what = "no respondents" if counts[r] == 0 else f"{int(counts[r])} respondent(s), fewer than {minimum}"
            raise WeightingError(f"nonresponse cell has {what}", key=cell_label(keys, r),
                                 hint='collapse cells (collapse="next") or choose coarser cells')
        same = [x for x in roots if parent[x] == parent[r] and x != r]
        if not same:
            if counts[r] == 0:
                raise WeightingError("nonresponse cell has no respondents and nothing to merge with "
                                     "inside its higher-level cell", key=cell_label(keys, r),
                                     hint="use coarser cells")
            stuck.add(r)  # left small (reported by the caller); the other cells go on
            continue
        nxt = [x for x in same if x > r]
        into = nxt[0] if nxt else same[-1]
        target[target == r] = into
        merged.append((cell_label(keys, r), cell_label(keys, into)))


def _design_matrix(design: Design, covariates: Sequence[str], rows: np.ndarray) -> np.ndarray:
    """Intercept, numeric covariates and dummies (first level dropped) for every row."""
    cols = []
    for c in covariates:
        if c not in design.data.columns:
            raise WeightingError("covariate not found in the data", column=c)
        s = design.data[c]
        bad = s.isna().to_numpy() & rows
        if bad.any():
            raise WeightingError("missing covariate value for an eligible unit", column=c,
                                 row=int(np.flatnonzero(bad)[0]) + 1,
                                 hint="impute, or add a 'missing' category")
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            cols.append(s.to_numpy(dtype=float, na_value=0.0))
        else:
            d = pd.get_dummies(s.astype("string").fillna("(missing)"), drop_first=True, dtype=float)
            cols.extend(d.to_numpy().T)
    return np.column_stack([np.ones(design.n), *cols])


def _propensity(X: np.ndarray, y: np.ndarray, w: np.ndarray, max_iter: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression of y on X with weights w (0 outside the eligible rows); p for
    every row, and the coefficients."""
    beta = np.zeros(X.shape[1])
    for _ in range(max_iter):  # IRLS: a few Newton steps, each one vectorised
        p = 1 / (1 + np.exp(-(X @ beta)))
        grad = X.T @ (w * (y - p))
        H = (X * (w * p * (1 - p))[:, None]).T @ X
        step = np.linalg.lstsq(H, grad, rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return 1 / (1 + np.exp(-(X @ beta))), beta


def _expit(eta: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-eta))`` in place, as :func:`_propensity` rounds it."""
    np.negative(eta, out=eta)
    np.exp(eta, out=eta)
    eta += 1
    return np.reciprocal(eta, out=eta)


def _propensity_replicates(X: np.ndarray, Wn: np.ndarray, Wy: np.ndarray, beta: np.ndarray,
                           max_iter: int = 50) -> np.ndarray:
    """:func:`_propensity` for R replicates at once, on covariate patterns.

    ``X`` (u, p) holds the distinct rows of the design matrix among eligible units,
    ``Wn`` (R, u) the replicate weight of each pattern and ``Wy`` (R, u) that of its
    respondents: the weighted likelihood depends on the rows only through these sums.
    The R fits share each Newton iteration: the R gradients are one product, the R
    Hessians (R, p, p) another (with the products of covariate pairs), and the R
    steps come from one stacked pseudo-inverse (the minimum-norm step of ``lstsq``,
    so a dummy whose rows a replicate drops keeps its coefficient). Each replicate
    starts from the full-sample coefficients ``beta`` and stops moving when its own
    step is below the full-sample tolerance. Returns the propensities (R, u).
    """
    R, k = Wn.shape[0], X.shape[1]
    ia, ib = np.triu_indices(k)
    XX = X[:, ia] * X[:, ib]  # (u, p(p+1)/2): H_r = sum_u V_ru x_u x_u'
    B = np.tile(beta, (R, 1))
    active = np.ones(R, dtype=bool)
    H = np.empty((R, k, k))
    P = np.empty(Wn.shape)
    T = np.empty(Wn.shape)
    rtol = np.finfo(float).eps * k  # lstsq's rcond=None cut-off
    WyX = Wy @ X  # the respondents' part of the gradients does not change
    for _ in range(max_iter):
        _expit(np.matmul(B, X.T, out=P))
        np.multiply(Wn, P, out=T)
        grad = WyX - T @ X  # (R, p)
        np.multiply(T, P, out=P)
        np.subtract(T, P, out=T)  # w p (1 - p)
        H[:, ia, ib] = H[:, ib, ia] = T @ XX
        step = np.einsum("rab,rb->ra", np.linalg.pinv(H, rtol=rtol, hermitian=True), grad)
        step[~active] = 0.0
        B += step
        active &= np.abs(step).max(axis=1) >= 1e-10
        if not active.any():
            break
    return _expit(np.matmul(B, X.T, out=P))


def _weighted_quantile_classes(p: np.ndarray, w: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Class 0..k-1 by weighted quantiles of p among ``rows`` (equal weight per class)."""
    order = np.argsort(p[rows], kind="stable")
    cw = np.cumsum(w[rows][order])
    cuts = np.searchsorted(cw / cw[-1], np.arange(1, k) / k, side="left")
    edges = p[rows][order][np.minimum(cuts, len(order) - 1)]
    return np.searchsorted(edges, p, side="left")


def _quantile_classes_replicates(P: np.ndarray, W: np.ndarray, k: int) -> np.ndarray:
    """:func:`_weighted_quantile_classes` for every row of P and W (R, n) at once (n
    units or covariate patterns with their summed weights); classes are (R, n).

    A cut point is the smallest p whose cumulative weight share reaches j/k: units
    of weight 0 in a replicate add nothing to the cumulative weight, so they are
    never the cut point (as if absent), and the order of equal p does not change it.
    """
    R, n = P.shape
    order = np.argsort(P, axis=1)
    order += (np.arange(R) * n)[:, None]
    share = np.take(W.ravel(), order)  # weights in the order of p, replicate by replicate
    del order
    ps = np.sort(P, axis=1)
    np.cumsum(share, axis=1, out=share)
    with np.errstate(invalid="ignore", divide="ignore"):
        share /= share[:, -1:]
    cls = np.zeros((R, n), dtype=np.int32)
    q = np.arange(1, k) / k
    rr = np.arange(R)
    for j in range(k - 1):  # one cut point of every replicate at a time
        cut = np.minimum((share < q[j]).sum(axis=1), n - 1)  # searchsorted(share, q, "left")
        cls += P > ps[rr, cut][:, None]  # searchsorted(edges, p, "left"): the edges below p
    return cls


def _collapse_replicates(counts: np.ndarray, present: np.ndarray, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_collapse` (policy "next") for many replicates at once.

    ``counts`` and ``present`` are (G, m, R): G higher-level cells, each with up to m
    cells in sort order (absent cells: ``present`` False), R replicates. Read left
    to right inside a higher-level cell, _collapse closes a group at the first cell
    where the respondents since the last group reach ``minimum``; cells after the
    last group merge into it; a higher-level cell with no group at all is merged
    into its last cell and left small. Returns the position of each cell's group
    (G, m, R; -1 for absent cells) and a (G, R) mask of higher-level cells that have
    eligible units but no respondent at all (an error for the caller).
    """
    G, m, R = counts.shape
    acc = np.zeros((G, R))
    closes = np.zeros((G, m, R), dtype=bool)
    for j in range(m):  # positions inside a higher-level cell (a handful)
        acc = acc + np.where(present[:, j], counts[:, j], 0)
        closes[:, j] = present[:, j] & (acc >= minimum)
        acc = np.where(closes[:, j], 0, acc)
    root = np.full((G, m, R), -1, dtype=np.int64)
    nxt = np.full((G, R), -1, dtype=np.int64)
    for j in range(m - 1, -1, -1):
        nxt = np.where(closes[:, j], j, nxt)
        root[:, j] = nxt
    pos = np.arange(m)[None, :, None]
    last_close = np.where(closes, pos, -1).max(axis=1)
    last_present = np.where(present, pos, -1).max(axis=1)
    tail = np.where(last_close >= 0, last_close, last_present)
    root = np.where(present & (root < 0), tail[:, None, :], root)
    root = np.where(present, root, -1)
    total = np.where(present, counts, 0).sum(axis=1)
    empty = (last_present >= 0) & (total == 0)
    return root, empty


def _no_collapses() -> pd.DataFrame:
    return pd.DataFrame({"replicate": np.array([], dtype=np.int64), "cell": np.array([], dtype=object),
                         "merged_into": np.array([], dtype=object), "respondents": np.array([], dtype=np.int64)})


def _dense(parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cells with sorted higher-level codes ``parent`` (C,) laid out as a (G, m) grid:
    the position of each cell in its higher-level cell, and the cell at each grid
    point (-1 where a higher-level cell has fewer than m cells)."""
    pos = np.arange(len(parent)) - np.searchsorted(parent, parent, side="left")
    grid = np.full((int(parent.max()) + 1, int(pos.max()) + 1), -1, dtype=np.int64)
    grid[parent, pos] = np.arange(len(parent))
    return pos, grid


def _merge_replicates(counts: np.ndarray, present: np.ndarray, parent: np.ndarray, minimum: int,
                      label: Callable[[int], str], replicate: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """Collapse (policy "next") the cells (C, R') of the replicates ``replicate`` (R',
    0-based): cell ``parent`` codes are sorted, ``counts`` are respondents with positive
    replicate weight. Returns the cell each cell merges into (C, R'; -1 where absent)
    and the records of :attr:`NonresponseAdjustment.replicate_collapses`."""
    pos, grid = _dense(parent)
    G, m = grid.shape
    R = counts.shape[1]
    at = np.maximum(grid, 0)
    inside = (grid >= 0)[:, :, None]
    root_pos, empty = _collapse_replicates(np.where(inside, counts[at], 0), inside & present[at], minimum)
    if empty.any():
        g, r = np.argwhere(empty.T)[0][::-1]
        c = grid[g, np.flatnonzero(present[grid[g][grid[g] >= 0], r])[-1]]  # named as _collapse does
        raise WeightingError(f"replicate {replicate[r] + 1}: nonresponse cell has no respondents and nothing "
                             "to merge with inside its higher-level cell", key=label(int(c)),
                             hint="use coarser cells")
    root = root_pos[parent, pos]  # (C, R') position of the merged cell in its higher-level cell
    root = np.where(root >= 0, grid[parent[:, None], np.maximum(root, 0)], -1)
    merged_count = np.zeros((len(parent), R))
    cols = np.broadcast_to(np.arange(R), root.shape)
    np.add.at(merged_count, (root[present], cols[present]), counts[present])
    own = np.arange(len(parent))[:, None]
    show = present & ((root != own) | (merged_count[np.maximum(root, 0), cols] < minimum))
    c, r = np.nonzero(show.T)[::-1]
    if len(c) == 0:
        return root, _no_collapses()
    names = {int(x): label(int(x)) for x in np.unique(np.r_[c, root[c, r]])}
    records = pd.DataFrame({"replicate": replicate[r] + 1, "cell": [names[int(x)] for x in c],
                            "merged_into": [names[int(x)] for x in root[c, r]],
                            "respondents": merged_count[root[c, r], r].astype(np.int64)})
    return root, records


def _replicates_fixed(W: np.ndarray, codes: np.ndarray, K: int, parent: np.ndarray, labels: list[str],
                      elig: np.ndarray, resp: np.ndarray, collapse: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Replicate factors (K, R) within the full-sample cells; a cell with eligible
    weight but no respondent weight in a replicate is merged in that replicate by the
    full-sample rule (only the replicates concerned are looked at)."""
    Er = group_sums(np.where(elig, codes, -1), W, K)
    Rr = group_sums(np.where(resp, codes, -1), W, K)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(Rr > 0, Er / Rr, 0.0)
    lost = (Rr <= 0) & (Er > 0)
    if not lost.any():
        return f, _no_collapses()
    r, k = np.argwhere(lost.T)[0]
    if collapse == "fail":
        raise WeightingError(f"replicate {r + 1} has no respondent (with positive replicate weight) in a "
                             "nonresponse cell that has eligible units", key=labels[k],
                             hint='collapse="next" merges the cell, in that replicate, with a neighbouring '
                                  "cell by the full-sample rule; or choose coarser cells")
    hit = np.flatnonzero(lost.any(axis=0))  # the few replicates concerned
    counts = group_sums(np.where(resp, codes, -1), (W[:, hit] > 0).astype(float), K)
    root, records = _merge_replicates(counts, Er[:, hit] > 0, parent, 1, lambda c: labels[c], hit)
    cols = np.broadcast_to(np.arange(len(hit)), root.shape)
    ok = root >= 0
    Em = np.zeros((K, len(hit)))
    Rm = np.zeros((K, len(hit)))
    np.add.at(Em, (root[ok], cols[ok]), Er[:, hit][ok])
    np.add.at(Rm, (root[ok], cols[ok]), Rr[:, hit][ok])
    at = np.maximum(root, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f[:, hit] = np.where(ok, Em[at, cols] / Rm[at, cols], 0.0)
    return f, records


def _replicates_refit(X: np.ndarray, beta: np.ndarray, W: np.ndarray, elig: np.ndarray, resp: np.ndarray,
                      g: np.ndarray, G: int, k: int, minimum: int, collapse: str,
                      label: Callable[[int], str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Adjusted replicate weights (n, R) when every replicate refits the response
    model, its own propensity classes (crossed with the cells ``g``) and its collapse.

    A replicate cell is (cell, class), ``g * k + class``; the sums per (cell,
    replicate) are one bincount on ``cell * R + r``."""
    n, R = W.shape
    rows = np.flatnonzero(elig)
    We = W if len(rows) == n else W[rows]
    re = resp[rows]
    # the response model sees the rows only through their covariate pattern: fit on the
    # patterns' summed weights when there are far fewer patterns than rows
    pat = pd.DataFrame(X[rows]).groupby(list(range(X.shape[1])), sort=False, dropna=False).ngroup().to_numpy()
    u = int(pat.max()) + 1
    if 2 * u < len(rows):
        Xu = X[rows[np.unique(pat, return_index=True)[1]]]
        Wn = np.ascontiguousarray(group_sums(pat, We, u).T)  # (R, u)
        Wy = np.ascontiguousarray(group_sums(np.where(re, pat, -1), We, u).T)
    else:
        pat, Xu = None, X[rows]
        Wn = np.ascontiguousarray(We.T)
        Wy = np.where(re, Wn, 0.0)
    Pu = _propensity_replicates(Xu, Wn, Wy, beta)
    del Wy
    cls = _quantile_classes_replicates(Pu, Wn, k)
    del Pu, Wn
    cls = cls.T.astype(np.int64, order="C")  # (eligible rows or patterns, R)
    if pat is not None:
        cls = cls[pat]
    M = G * k
    flat = cls
    flat += g[rows][:, None] * k  # the replicate cell (cell, class) of each row ...
    flat *= R
    flat += np.arange(R)  # ... as cell * R + r
    Wr, fr = We[re], flat[re]
    E = np.bincount(flat.ravel(), weights=We.ravel(), minlength=M * R).reshape(M, R)
    Rw = np.bincount(fr.ravel(), weights=Wr.ravel(), minlength=M * R).reshape(M, R)
    present = E > 0
    counts = np.bincount(fr.ravel(), weights=(Wr > 0).ravel(), minlength=M * R).reshape(M, R)
    small = present & (counts < minimum)
    root = np.where(present, np.arange(M)[:, None], -1)
    records = _no_collapses()
    if small.any():
        r, c = np.argwhere(small.T)[0]
        if collapse == "fail":
            what = "no respondents" if counts[c, r] == 0 else \
                f"{int(counts[c, r])} respondent(s), fewer than {minimum}"
            raise WeightingError(f"replicate {r + 1}: its nonresponse cell has {what} (with positive "
                                 "replicate weight)", key=label(int(c)),
                                 hint='collapse="next" merges it, in that replicate, with a neighbouring cell '
                                      'by the full-sample rule; refit="once" keeps the full-sample classes')
        hit = np.flatnonzero(small.any(axis=0))
        root[:, hit], records = _merge_replicates(counts[:, hit], present[:, hit], np.repeat(np.arange(G), k),
                                                  minimum, label, hit)
        rf = np.where(root >= 0, root * R + np.arange(R), M * R)  # merged sums: one bincount
        E = np.bincount(rf.ravel(), weights=E.ravel(), minlength=M * R + 1)[:-1].reshape(M, R)
        Rw = np.bincount(rf.ravel(), weights=Rw.ravel(), minlength=M * R + 1)[:-1].reshape(M, R)
    at = np.maximum(root, 0)
    cols = np.arange(R)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(root >= 0, E[at, cols] / Rw[at, cols], 0.0)  # (M, R) factor of each replicate cell
    rep = np.zeros((n, R))
    rep[rows[re]] = Wr * f.ravel()[fr]
    return rep, records


def nonresponse(design: Design, responded: str | np.ndarray, cells: str | Sequence[str] | None = None, *,
                eligible: str | np.ndarray | None = None,
                method: Literal["class", "propensity"] = "class",
                covariates: Sequence[str] | None = None, classes: int = 5,
                min_respondents: int = 1, collapse: Literal["fail", "next"] = "fail",
                ineligible: Literal["set_aside", "keep"] = "set_aside",
                refit: Literal["each", "once"] = "each",
                name: str = "w_nonresponse") -> Design:
    """Adjust the weights of respondents for eligible nonrespondents, within cells.

    Parameters
    ----------
    design
        The design with base weights (linearisation or replicate).
    responded
        Column (or array) that is True for responding eligible units.
    cells
        Weighting-class columns, coarsest first (e.g. ``["stratum", "group"]``).
        With ``method="propensity"`` the classes are crossed with these cells.
    eligible
        Column (or array) that is True for eligible units (default: all). A
        responding unit must be eligible.
    method
        ``"class"``: weighting classes are ``cells``. ``"propensity"``: a design-
        weighted logistic model of response on ``covariates`` among eligible units;
        units are grouped into ``classes`` classes at weighted quantiles of the
        predicted propensity, and the adjustment is made within classes.
    min_respondents, collapse
        A cell with fewer respondents than ``min_respondents`` is an error naming the
        cell (``collapse="fail"``, the default), or is merged with the next cell in
        sort order inside the same higher-level cell (``collapse="next"``; the last
        cell of a group merges with the previous one), with a :class:`SurveyWarning`.
        A cell with no respondents is always either merged or an error.
    ineligible
        ``"set_aside"`` (default): ineligible units get weight 0 (they are outside
        the population of households; their rows stay for the variance).
        ``"keep"``: they keep their weight, e.g. to estimate the number of vacant
        dwellings; either way they do not inflate the respondents.
    refit
        What a replicate design repeats on every replicate (ignored otherwise).
        ``"each"`` (default): the whole step. With ``method="propensity"`` each
        replicate refits the design-weighted logistic model with its own replicate
        weights (rows of replicate weight 0 drop out), forms its own ``classes``
        classes at its own weighted quantiles, crosses them with ``cells``, applies
        ``min_respondents`` and ``collapse`` to its own cells (counting respondents
        with positive replicate weight) and adjusts within them: replicate r gets
        the weights (up to rounding) that this function gives a design whose
        weights are replicate r's. So with ``collapse="fail"`` and
        ``min_respondents`` above 1 a replicate's own cell may fail where the
        full-sample cells pass. ``"once"``: the propensity classes are estimated
        on the full sample and kept for every replicate; the replicate SEs then
        leave out the variability of the estimated model and class boundaries.
        With ``method="class"`` both mean the same: the replicates adjust within the
        full-sample cells (after the full-sample collapse). Whenever replicates use
        the full-sample cells, a cell with eligible weight but no respondent weight
        in a replicate (a jackknife replicate deleted the only PSU with respondents
        in it) is merged in that replicate by the same rule as the full sample
        (``collapse="next"``, among the respondents with positive replicate weight;
        the other replicates are unchanged), or is an error naming the replicate
        and the cell (``collapse="fail"``). Merges in replicates are listed in the
        adjustment's ``replicate_collapses`` and summarised in one
        :class:`SurveyWarning`.
    name
        Name of the new weight column.

    Returns
    -------
    Design
        Same rows; respondents ``w * E_c / R_c``, nonrespondents 0. The adjustment
        is recorded (``design.calibrations[-1]``, a :class:`NonresponseAdjustment`
        whose ``table`` reports cells, factors and merges) so linearised SEs include
        the estimation of the cell factors. On a replicate design the factors (and
        with ``refit="each"`` the propensity model and classes) are recomputed on
        every replicate, so replicate SEs include them.

    Notes
    -----
    The variance treats the adjustment as a two-phase estimator: the eligible total
    of each cell is estimated from the full sample, the cell mean from respondents
    (Sarndal, Swensson and Wretman 1992, section 9.7; Kim and Kim 2007). When every
    eligible unit responds the adjustment is the identity, and so is its variance.

    Replicate variances are valid for the whole weighting step only if every
    replicate repeats every data-dependent part of it (Valliant 2004): with
    ``method="propensity"`` that includes the response model and the class
    boundaries, hence ``refit="each"``. The R refits are one batched Newton
    iteration (R Hessians solved together) and the classes and cell sums of all
    replicates are array operations, so the cost grows with n x R, not with a loop
    over replicates.

    References
    ----------
    Kalton, G. and Flores-Cervantes, I. (2003). Weighting methods. *J. Off. Stat.* 19, 81-97.
    Little, R. J. A. (1986). Survey nonresponse adjustments for estimates of means.
    *Int. Stat. Rev.* 54, 139-157.
    Valliant, Dever and Kreuter (2018), ch. 13.
    Valliant, R. (2004). The effect of multiple weighting steps on variance
    estimation. *J. Off. Stat.* 20, 1-18.
    """
    if method not in ("class", "propensity"):
        raise WeightingError(f"method={method!r} is not 'class' or 'propensity'")
    if collapse not in ("fail", "next"):
        raise WeightingError(f"collapse={collapse!r} is not 'fail' or 'next'")
    if ineligible not in ("set_aside", "keep"):
        raise WeightingError(f"ineligible={ineligible!r} is not 'set_aside' or 'keep'")
    if refit not in ("each", "once"):
        raise WeightingError(f"refit={refit!r} is not 'each' or 'once'")
    if method == "propensity" and (int(classes) != classes or classes < 1):
        raise WeightingError(f"classes={classes!r} is not a positive whole number",
                             hint="e.g. classes=5")
    w = design.w
    resp = _bool_column(design, responded, "responded")
    elig = np.ones(design.n, dtype=bool) if eligible is None else _bool_column(design, eligible, "eligible")
    elig &= w > 0
    bad = resp & ~elig
    if bad.any():
        raise WeightingError("a unit responded but is marked ineligible (or has weight 0)",
                             row=int(np.flatnonzero(bad)[0]) + 1,
                             hint="respondents are eligible by definition; check the eligibility codes")
    cols = as_list(cells)
    user_cols = cols
    data = design.data
    if method == "propensity":
        if not covariates:
            raise WeightingError("method='propensity' needs covariates=[...]")
        X = _design_matrix(design, list(covariates), elig)
        p, beta = _propensity(X, resp.astype(float), np.where(elig, w, 0.0))
        cls = _weighted_quantile_classes(p, w, elig, int(classes))
        data = data.assign(_propensity_class=cls + 1)
        cols = [*cols, "_propensity_class"]
    if not cols:
        raise WeightingError("no cells given", hint='pass cells=["stratum", "group"] or method="propensity"')
    codes0, keys = cell_codes(data, cols, elig, what="nonresponse cell")
    C = len(keys)
    n_resp = np.bincount(codes0[resp], minlength=C).astype(float)
    target, merged = _collapse(keys, n_resp, max(int(min_respondents), 1), collapse)
    _, final = np.unique(target, return_inverse=True)
    codes = np.where(codes0 >= 0, final[np.maximum(codes0, 0)], -1)
    K = int(final.max()) + 1
    ew = np.where(elig, w, 0.0)
    E = np.bincount(codes[elig], weights=w[elig], minlength=K)
    Rsum = np.bincount(codes[resp], weights=w[resp], minlength=K)
    if (Rsum == 0).any():
        k = int(np.flatnonzero(Rsum == 0)[0])
        raise WeightingError("nonresponse cell has no respondents", key=cell_label(keys, int(np.flatnonzero(final == k)[0])),
                             hint='collapse="next" merges it with a neighbouring cell')
    factor = E / Rsum
    new_w = np.where(resp, w * factor[np.maximum(codes, 0)], 0.0)
    if ineligible == "keep":
        new_w = np.where(~elig & (w > 0), w, new_w)
    labels = [cell_label(keys, int(np.flatnonzero(final == k)[0])) for k in range(K)]
    members = [", ".join(cell_label(keys, c) for c in np.flatnonzero(final == k)) for k in range(K)]
    table = pd.DataFrame({
        "cell": labels, "merged": members,
        "eligible": np.bincount(codes[elig], minlength=K), "respondents": np.bincount(codes[resp], minlength=K),
        "eligible_weight": E, "respondent_weight": Rsum, "factor": factor})
    small = table["respondents"] < min_respondents
    if merged or small.any():
        parts = [f"{a} -> {b}" for a, b in merged]
        if small.any():
            parts.append(f"still below {min_respondents}: {', '.join(table.loc[small, 'cell'])}")
        warnings.warn(f"nonresponse cells collapsed: {'; '.join(parts)} (see the adjustment's table)",
                      SurveyWarning, stacklevel=2)
    rep = None
    records = None
    if design.replicates is not None:
        W = design.replicates.weights
        if method == "propensity" and refit == "each":
            if user_cols:
                g, gkeys = cell_codes(design.data, user_cols, elig, what="nonresponse cell")
                G = len(gkeys)
            else:
                g, gkeys, G = np.where(elig, 0, -1), None, 1

            def label(c: int) -> str:
                gi, j = divmod(c, int(classes))
                return ", ".join([*([cell_label(gkeys, gi)] if gkeys is not None else []),
                                  f"_propensity_class={j + 1}"])

            rep, records = _replicates_refit(X, beta, W, elig, resp, g, G, int(classes),
                                             max(int(min_respondents), 1), collapse, label)
        else:
            first = np.unique(final, return_index=True)[1]  # a member of each final cell
            f, records = _replicates_fixed(W, codes, K, _parents(keys)[first], labels, elig, resp, collapse)
            rep = np.where(resp[:, None], W * f[np.maximum(codes, 0)], 0.0)
        if ineligible == "keep":
            rep = np.where((~elig & (w > 0))[:, None], W, rep)
        if len(records):
            n_rep = records["replicate"].nunique()
            shown = records.drop_duplicates("replicate").head(3)
            parts = [f"replicate {r}: {a} -> {b}" for r, a, b in
                     zip(shown["replicate"], shown["cell"], shown["merged_into"], strict=True)]
            low = records["respondents"] < max(int(min_respondents), 1)
            below = len(records.loc[low, ["replicate", "merged_into"]].drop_duplicates())
            still = f"; {below} replicate cell(s) still below {min_respondents}" if below else ""
            warnings.warn(f"nonresponse cells collapsed in {n_rep} of {W.shape[1]} replicates "
                          f"({'; '.join(parts)}{'; ...' if n_rep > len(shown) else ''}){still} "
                          "(see the adjustment's replicate_collapses)", SurveyWarning, stacklevel=2)
    adj = NonresponseAdjustment(codes=codes, n_cells=K, eligible_w=ew, adjusted_w=np.where(resp, new_w, 0.0),
                                table=table, refit=None if design.replicates is None else
                                ("each" if method == "propensity" and refit == "each" else "once"),
                                replicate_collapses=records)
    return new_design(design, new_w, name, calibration=adj, replicate_values=rep)
