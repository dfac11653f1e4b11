"""Nonresponse adjustment: weighting classes and response-propensity classes.

Within each cell the respondents' weights are scaled so that they carry the weight
of every eligible unit of the cell: ``w' = w * sum(eligible w) / sum(respondent w)``.
Nonrespondents keep their row with weight 0, so the design keeps every PSU and the
variance counts them (a domain, not a filter). Ineligible units (vacant, not found,
no longer a household) are not nonrespondents: they neither receive nor give weight.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
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

    ``table`` reports every cell (after collapsing): eligible and respondent counts
    and weights, the factor, and which original cells were merged into it.
    """

    codes: np.ndarray  # (n,) final cell of eligible rows, -1 otherwise
    n_cells: int
    eligible_w: np.ndarray  # (n,) w for eligible rows, 0 otherwise
    adjusted_w: np.ndarray  # (n,) w' (0 for nonrespondents and ineligibles)
    table: pd.DataFrame

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


def _collapse(keys: pd.DataFrame, resp: np.ndarray, minimum: int, policy: str) -> tuple[np.ndarray, list]:
    """Merge cells with fewer than ``minimum`` respondents with the next cell in sort
    order inside the same higher-level cell (all columns but the last); the last
    cell of a group merges with the previous one. Returns the new cell of each old
    cell and a list of (cell, merged-into) labels."""
    C = len(keys)
    target = np.arange(C)
    parent = keys.iloc[:, :-1].astype(str).agg("|".join, axis=1).to_numpy() if keys.shape[1] > 1 \
        else np.zeros(C, dtype=object)
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


def _propensity(design: Design, covariates: Sequence[str], y: np.ndarray, rows: np.ndarray,
                max_iter: int = 50) -> np.ndarray:
    """Design-weighted logistic regression of response on covariates; p for every row."""
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
    X = np.column_stack([np.ones(design.n), *cols])
    w = np.where(rows, design.w, 0.0)
    beta = np.zeros(X.shape[1])
    for _ in range(max_iter):  # IRLS: a few Newton steps, each one vectorised
        p = 1 / (1 + np.exp(-(X @ beta)))
        grad = X.T @ (w * (y - p))
        H = (X * (w * p * (1 - p))[:, None]).T @ X
        step = np.linalg.lstsq(H, grad, rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return 1 / (1 + np.exp(-(X @ beta)))


def _weighted_quantile_classes(p: np.ndarray, w: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Class 0..k-1 by weighted quantiles of p among ``rows`` (equal weight per class)."""
    order = np.argsort(p[rows], kind="stable")
    cw = np.cumsum(w[rows][order])
    cuts = np.searchsorted(cw / cw[-1], np.arange(1, k) / k, side="left")
    edges = p[rows][order][np.minimum(cuts, len(order) - 1)]
    return np.searchsorted(edges, p, side="left")


def nonresponse(design: Design, responded: str | np.ndarray, cells: str | Sequence[str] | None = None, *,
                eligible: str | np.ndarray | None = None,
                method: Literal["class", "propensity"] = "class",
                covariates: Sequence[str] | None = None, classes: int = 5,
                min_respondents: int = 1, collapse: Literal["fail", "next"] = "fail",
                ineligible: Literal["set_aside", "keep"] = "set_aside",
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
    name
        Name of the new weight column.

    Returns
    -------
    Design
        Same rows; respondents ``w * E_c / R_c``, nonrespondents 0. The adjustment
        is recorded (``design.calibrations[-1]``, a :class:`NonresponseAdjustment`
        whose ``table`` reports cells, factors and merges) so linearised SEs include
        the estimation of the cell factors. On a replicate design the factors are
        recomputed on every replicate (the propensity classes are kept fixed).

    Notes
    -----
    The variance treats the adjustment as a two-phase estimator: the eligible total
    of each cell is estimated from the full sample, the cell mean from respondents
    (Sarndal, Swensson and Wretman 1992, section 9.7; Kim and Kim 2007). When every
    eligible unit responds the adjustment is the identity, and so is its variance.

    References
    ----------
    Kalton, G. and Flores-Cervantes, I. (2003). Weighting methods. *J. Off. Stat.* 19, 81-97.
    Little, R. J. A. (1986). Survey nonresponse adjustments for estimates of means.
    *Int. Stat. Rev.* 54, 139-157.
    Valliant, Dever and Kreuter (2018), ch. 13.
    """
    if method not in ("class", "propensity"):
        raise WeightingError(f"method={method!r} is not 'class' or 'propensity'")
    if collapse not in ("fail", "next"):
        raise WeightingError(f"collapse={collapse!r} is not 'fail' or 'next'")
    if ineligible not in ("set_aside", "keep"):
        raise WeightingError(f"ineligible={ineligible!r} is not 'set_aside' or 'keep'")
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
    data = design.data
    if method == "propensity":
        if not covariates:
            raise WeightingError("method='propensity' needs covariates=[...]")
        p = _propensity(design, list(covariates), resp.astype(float), elig)
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
    adj = NonresponseAdjustment(codes=codes, n_cells=K, eligible_w=ew, adjusted_w=np.where(resp, new_w, 0.0),
                                table=table)
    rep = None
    if design.replicates is not None:
        W = design.replicates.weights
        Er = group_sums(np.where(elig, codes, -1), W, K)
        Rr = group_sums(np.where(resp, codes, -1), W, K)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(Rr > 0, Er / Rr, 0.0)
        lost = (Rr == 0) & (Er > 0)
        if lost.any():
            k, r = np.argwhere(lost)[0]
            raise WeightingError(f"replicate {r + 1} has no respondent in a nonresponse cell",
                                 key=labels[k], hint="collapse small cells (min_respondents=, collapse='next')")
        rep = np.where(resp[:, None], W * f[np.maximum(codes, 0)], 0.0)
        if ineligible == "keep":
            rep = np.where((~elig & (w > 0))[:, None], W, rep)
    return new_design(design, new_w, name, calibration=adj, replicate_values=rep)
