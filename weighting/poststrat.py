"""Post-stratification and raking to known population counts.

Both return a new design that remembers the adjustment, so that linearised
standard errors use residuals within post-strata (R's ``postStratify``) or the
raking margins (R's ``rake``); on a replicate design every replicate is adjusted
too (R's ``postStratify.svyrep.design``), in one array operation per margin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from survey.design import Design, _countable, _dense_codes, _first_rows
from survey.errors import WeightingError
from weighting._common import as_list, group_sums, new_design
from weighting.totals import Margin, match_margin, parse_totals

__all__ = ["PostStratification", "Raking", "poststratify", "rake"]


@dataclass(frozen=True, eq=False)
class PostStratification:
    """What :func:`poststratify` leaves on the design (R's ``postStrata`` index).

    ``residualize`` replaces each weighted influence value by its deviation from the
    post-stratum mean: ``z - w_new * sum_c(z w_old / w_new) / sum_c(w_old)``.
    """

    codes: np.ndarray  # (n,) post-stratum per row, -1 for rows with zero weight
    n_cells: int
    weights: np.ndarray  # after
    oldweights: np.ndarray  # before
    margin: str
    table: pd.DataFrame

    def residualize(self, z: np.ndarray) -> np.ndarray:
        act = self.codes >= 0
        ratio = np.divide(self.oldweights, self.weights, out=np.zeros_like(self.weights),
                          where=self.weights > 0)
        num = group_sums(self.codes, z * ratio[:, None], self.n_cells)
        den = np.bincount(self.codes[act], weights=self.oldweights[act], minlength=self.n_cells)
        means = num / den[:, None]
        return z - np.where(act[:, None], means[np.maximum(self.codes, 0)], 0.0) * self.weights[:, None]


@dataclass(frozen=True, eq=False)
class Raking:
    """What :func:`rake` leaves on the design (R's ``raking`` postStrata list).

    ``residualize`` centres ``z / w_m`` within each margin's cells, ten sweeps over
    the margins, with ``w_m`` the weights after margin ``m`` in the last iteration,
    exactly as R's ``svyrecvar`` does for raked designs.
    """

    codes: tuple[np.ndarray, ...]
    n_cells: tuple[int, ...]
    weights: tuple[np.ndarray, ...]
    margins: tuple[str, ...]
    iterations: int
    table: pd.DataFrame
    sweeps: int = 10

    def residualize(self, z: np.ndarray) -> np.ndarray:
        z = np.array(z, dtype=float)
        prepared = []
        for codes, k, w in zip(self.codes, self.n_cells, self.weights):
            act = (codes >= 0) & (w > 0)
            c = np.where(act, codes, -1)
            cnt = np.bincount(c[act], minlength=k).astype(float)
            inv = np.divide(1.0, w, out=np.zeros_like(w), where=act)
            prepared.append((c, k, w, inv, cnt, act))
        for _ in range(self.sweeps):
            for c, k, w, inv, cnt, act in prepared:
                means = group_sums(c, z * inv[:, None], k) / cnt[:, None]
                z = z - np.where(act[:, None], means[np.maximum(c, 0)], 0.0) * w[:, None]
        return z


def _as_margin_totals(by: str | Sequence[str], totals) -> object:
    cols = as_list(by)
    key = cols[0] if len(cols) == 1 else tuple(cols)
    if isinstance(totals, pd.Series):
        return {key: totals}
    if isinstance(totals, Mapping) and key not in totals:
        return {key: totals}
    return totals


def _replicate_factor(totals: np.ndarray, sums: np.ndarray, margin: Margin, levels: tuple) -> np.ndarray:
    bad = np.argwhere((sums <= 0) & (totals[:, None] > 0))
    if len(bad):
        c, r = bad[0]
        raise WeightingError(
            f"margin {margin.name!r}: category {levels[c]!r} has no weight in replicate {r + 1}",
            column=margin.columns[0],
            hint="a replicate dropped every unit of the category; collapse small categories")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sums > 0, totals[:, None] / sums, 0.0)


def poststratify(design: Design, by: str | Sequence[str], totals, *, name: str = "w_poststratified",
                 ) -> Design:
    """Post-stratify: scale the weights in each cell of ``by`` to its population count.

    Parameters
    ----------
    design
        The design to adjust (linearisation or replicate).
    by
        The post-stratification column, or several columns (their cross-classification).
    totals
        Population count per cell: ``{"E": 4421, "H": 755, "M": 1018}``, the same
        under the column's name (``{"stype": {...}}``), a Series indexed by category,
        or R's layout (a DataFrame with the ``by`` columns and a ``Freq`` column).
    name
        Name of the new weight column.

    Returns
    -------
    Design
        ``w_i * N_c / sum_{j in c} w_j`` for unit i in cell c; rows with zero
        weight stay zero.

    Notes
    -----
    The variance uses the residuals from the post-stratum means (Sarndal, Swensson
    and Wretman 1992, section 7.6; R's ``postStratify``). A cell in the totals with
    no sample unit is an error unless its total is 0; a sample cell without a total
    is an error.

    References
    ----------
    Holt, D. and Smith, T. M. F. (1979). Post stratification. *JRSS A* 142, 33-46.
    Kalton, G. and Flores-Cervantes, I. (2003). Weighting methods. *J. Off. Stat.* 19, 81-97.
    """
    margins = parse_totals(_as_margin_totals(by, totals), categorical_only=True)
    if len(margins) != 1:
        raise WeightingError("poststratify takes one margin; use rake() or calibrate() for several")
    m = margins[0]
    w = design.w
    codes, tot, levels = match_margin(design.data, m, w > 0, w)
    sums = np.bincount(codes[codes >= 0], weights=w[codes >= 0], minlength=len(tot))
    factor = tot / sums
    new_w = np.where(codes >= 0, w * factor[np.maximum(codes, 0)], 0.0)
    table = pd.DataFrame({"margin": m.name, "level": list(levels), "total": tot,
                          "before": sums, "factor": factor})
    cal = PostStratification(codes=codes, n_cells=len(tot), weights=new_w, oldweights=w,
                             margin=m.name, table=table)
    rep = None
    if design.replicates is not None:
        W = design.replicates.weights
        f = _replicate_factor(tot, group_sums(codes, W, len(tot)), m, levels)
        rep = np.where((codes >= 0)[:, None], W * f[np.maximum(codes, 0)], 0.0)
    return new_design(design, new_w, name, calibration=cal, replicate_values=rep)


def _rake_arrays(w: np.ndarray, cells: list[tuple[np.ndarray, np.ndarray, int]], tol: float,
                 max_iter: int, names: list[str], keep_after: bool = True
                 ) -> tuple[np.ndarray, list[np.ndarray], int, list[tuple[np.ndarray, np.ndarray]]]:
    """Iterative proportional fitting of w (n,) or W (n, R) to every margin.

    Rows with the same category in every margin are scaled by the same factors, so
    the fitting runs on the table of the margins' cross-classes (its weight sums, once)
    and the rows are scaled once at the end: the sweeps cost nothing per row.
    Returns the weights, the weights after each margin in the last sweep (when
    ``keep_after``; the last is the result), the number of sweeps, and each margin's
    weighted counts before and after. Convergence: every margin within ``tol``
    (relative) of its totals.
    """
    n = w.shape[0]
    act = np.ones(n, dtype=bool)
    for codes, _, _ in cells:
        act &= codes >= 0
    sizes = [k for _, _, k in cells]
    if _countable(int(np.prod(sizes, dtype=float)), n):
        # mixed-radix cross-class code; each cross-class's categories by arithmetic
        size = int(np.prod(sizes))
        key = np.zeros(n, dtype=np.int64)
        for codes, _, k in cells:
            key *= k
            key += codes
        key[~act] = -1
        cell = np.arange(size)
        stride = np.cumprod([1, *sizes[::-1]])[:-1][::-1]
        cats = [(cell // st) % k for st, k in zip(stride, sizes)]
    else:  # many categories: number the observed cross-classes only
        key = np.zeros(n, dtype=np.int64)
        size = 1
        for codes, _, k in cells:
            key, uniq = _dense_codes(np.where(act, key * k + codes, -1), size * k)
            size = len(uniq)
        rows = np.flatnonzero(act)
        first = rows[_first_rows(key[rows])]  # the first row of each cross-class
        cats = [codes[first] for codes, _, _ in cells]
    W0 = group_sums(key, w, size)  # (size,) or (size, R)
    F = np.ones(W0.shape)
    after: list[np.ndarray] = []
    worst, j = np.inf, 0
    for it in range(1, max_iter + 1):
        after = []
        worst, j = 0.0, 0
        for i, (cat, (_, tot, k)) in enumerate(zip(cats, cells)):
            s = group_sums(cat, W0 * F, k)
            with np.errstate(divide="ignore", invalid="ignore"):
                f = tot / s if w.ndim == 1 else tot[:, None] / s
                # relative distance of the margin from its totals before this step
                e = float(np.max(np.abs(1 / f - 1))) if f.size else 0.0
            if not e <= worst:  # NaN counts as worst
                worst, j = e, i
            F = F * f[cat]
            after.append(F)
        if not np.isfinite(worst):
            raise WeightingError(f"raking failed at margin {names[j]!r}: a category lost all its weight",
                                 hint="collapse small categories")
        if worst < tol:
            sums = [(group_sums(cat, W0, k), group_sums(cat, W0 * F, k)) for cat, (_, _, k) in zip(cats, cells)]
            if not keep_after:
                return _expand(w, key, act, F), [], it, sums
            rows_after = [_expand(w, key, act, a) for a in after]
            return rows_after[-1], rows_after, it, sums
    raise WeightingError(
        f"raking did not converge in {max_iter} iterations: margin {names[j]!r} is still "
        f"{worst:.3g} (relative) from its totals (tolerance {tol:g})",
        hint="the margins may be inconsistent with the sample's empty cross-classes; raise "
             "max_iter, loosen tol, or collapse categories of that margin")


def _expand(w: np.ndarray, key: np.ndarray, act: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Row weights from the cross-class factors: ``w * F[cross-class]`` (inactive rows kept)."""
    if act.all():
        return w * F[key]
    return np.where(act if w.ndim == 1 else act[:, None], w * F[np.maximum(key, 0)], w)


def rake(design: Design, margins, *, tol: float = 1e-10, max_iter: int = 100,
         name: str = "w_raked") -> Design:
    """Rake (iterative proportional fitting) to several categorical margins.

    Parameters
    ----------
    design
        The design to adjust (linearisation or replicate).
    margins
        Population counts per category of each margin: ``{"stype": {...},
        "sch.wide": {...}}``, tuple keys for cross-classified margins, or a list of
        R-style DataFrames (margin columns plus ``Freq``).
    tol
        Convergence: the largest relative difference between a margin's weighted
        count and its total. R's ``rake`` stops on an absolute change in the full
        cross-table (default 1); run to tight convergence, the two agree.
    max_iter
        Iterations (sweeps over all margins) before a non-convergence error that names
        the margin furthest from its totals.
    name
        Name of the new weight column.

    Notes
    -----
    Raking is the raking-ratio calibration estimator (Deville and Sarndal 1992) and
    converges when a solution exists. Zero-weight rows stay zero. On a replicate
    design each replicate is raked to the same margins (all replicates together).

    References
    ----------
    Deming, W. E. and Stephan, F. F. (1940). *Ann. Math. Stat.* 11, 427-444.
    Deville, J.-C. and Sarndal, C.-E. (1992). *JASA* 87, 376-382.
    Kalton and Flores-Cervantes (2003), section 2.3.
    """
    ms = parse_totals(margins, categorical_only=True)
    w = design.w
    active = w > 0
    cells = []
    tables = []
    for m in ms:
        codes, tot, levels = match_margin(design.data, m, active, w)
        cells.append((codes, tot, len(tot)))
        tables.append(pd.DataFrame({"margin": m.name, "level": list(levels), "total": tot}))
    names = [m.name for m in ms]
    new_w, after, iters, sums = _rake_arrays(w, cells, tol, max_iter, names)
    table = pd.concat(tables, ignore_index=True)
    table["before"] = np.concatenate([b for b, _ in sums])
    table["after"] = np.concatenate([a for _, a in sums])
    cal = Raking(codes=tuple(c for c, _, _ in cells), n_cells=tuple(k for _, _, k in cells),
                 weights=tuple(after), margins=tuple(names), iterations=iters, table=table)
    rep = None
    if design.replicates is not None:
        rep, _, _, _ = _rake_arrays(design.replicates.weights, cells, tol, max_iter, names, keep_after=False)
    return new_design(design, new_w, name, calibration=cal, replicate_values=rep)
