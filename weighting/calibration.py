"""Calibration (generalised regression, raking ratio, logit) with bounds.

``calibrate`` finds adjustment factors g close to 1 in a chosen distance such that
the calibrated weights ``w g`` reproduce known population totals of categorical
and numeric auxiliaries (Deville and Sarndal 1992). The returned design remembers
the calibration model, so linearised variances use the residuals of the weighted
regression of the influence values on the auxiliaries (R's ``greg_calibration``).
On a replicate design every replicate is calibrated too, all replicates solved
together as a batch of small Newton systems.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.linalg as sla

from survey.design import Design
from survey.errors import WeightingError
from weighting._common import new_design
from weighting.totals import Margin, match_margin, parse_totals

__all__ = ["GregCalibration", "calibrate"]

Method = Literal["linear", "raking", "logit"]
_EPS = np.finfo(float).eps


@dataclass(frozen=True, eq=False)
class GregCalibration:
    """What :func:`calibrate` leaves on the design (R's ``greg_calibration``).

    ``residualize(z)`` returns ``resid(z / wc) * wc`` with ``wc = g sqrt(w0)`` and the
    residuals of the least-squares projection on the columns of ``X sqrt(w0)``.
    """

    q: np.ndarray  # (n, r) orthonormal basis of X sqrt(w0) (zero rows for zero weights)
    wc: np.ndarray  # (n,) g * sqrt(w0)
    method: str
    table: pd.DataFrame

    def residualize(self, z: np.ndarray) -> np.ndarray:
        act = self.wc != 0
        x = np.divide(z, self.wc[:, None], out=np.zeros_like(z, dtype=float), where=act[:, None])
        r = x - self.q @ (self.q.T @ x)
        # rows outside the calibration (weight 0) pass through: an earlier step (a
        # nonresponse adjustment) may have put its own terms there
        return np.where(act[:, None], r * self.wc[:, None], z)


@dataclass(frozen=True)
class _Model:
    X: np.ndarray  # (n, k), zero on inactive rows
    totals: np.ndarray  # (k,)
    labels: list[str]  # "margin=category" or the numeric column
    margin_of: list[int]  # margin index of each column
    margins: list[Margin]
    cat_codes: dict[int, tuple[np.ndarray, np.ndarray, tuple]]  # margin -> (codes, totals, levels)


def _model(design: Design, margins: list[Margin], active: np.ndarray, w: np.ndarray) -> _Model:
    n = design.n
    cols, tots, labels, owner = [], [], [], []
    cat: dict[int, tuple[np.ndarray, np.ndarray, tuple]] = {}
    has_cat = any(m.kind == "categorical" for m in margins)
    first = True
    for i, m in enumerate(margins):
        if m.kind == "intercept":
            if not has_cat:
                cols.append(active.astype(float))
                tots.append(float(m.totals[0]))
                labels.append(m.name)
                owner.append(i)
            continue
        if m.kind == "numeric":
            col = m.columns[0]
            if col not in design.data.columns:
                raise WeightingError("calibration variable not found in the data", column=col)
            s = design.data[col]
            if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                raise WeightingError(f"a numeric total was given but the column has dtype {s.dtype}",
                                     column=col, hint="give a total per category for a categorical "
                                                      "variable: {col: {level: total}}")
            x = s.to_numpy(dtype=float, na_value=np.nan)
            bad = np.isnan(x) & active
            if bad.any():
                raise WeightingError(f"{int(bad.sum())} missing value(s) in a calibration variable",
                                     column=col, row=int(np.flatnonzero(bad)[0]) + 1,
                                     hint="impute or recode before calibrating")
            cols.append(np.where(active, x, 0.0))
            tots.append(float(m.totals[0]))
            labels.append(col)
            owner.append(i)
            continue
        codes, tot, levels = match_margin(design.data, m, active, w)
        cat[i] = (codes, tot, levels)
        # the first categorical margin gets every category (it spans the intercept);
        # later ones drop their first category, as R's treatment contrasts do
        for j in range(0 if first else 1, len(tot)):
            cols.append((codes == j).astype(float))
            tots.append(float(tot[j]))
            labels.append(f"{m.name}={levels[j]}")
            owner.append(i)
        first = False
    X = np.column_stack(cols) if cols else np.zeros((n, 0))
    return _Model(X, np.asarray(tots), labels, owner, margins, cat)


# -- distance functions (R's cal.linear, cal.raking, cal.logit) ------------------------------


def _fm1(method: str, u: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if method == "linear":
        return np.clip(u + 1, lo, hi) - 1
    if method == "raking":
        with np.errstate(over="ignore"):
            return np.clip(np.exp(u), lo, hi) - 1
    a = (hi - lo) / ((hi - 1) * (1 - lo))
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(a * u)
        return (lo * (hi - 1) + hi * (1 - lo) * e) / (hi - 1 + (1 - lo) * e) - 1


def _df(method: str, u: np.ndarray, lo: float, hi: float) -> np.ndarray:
    inside = (u < hi - 1) & (u > lo - 1)
    if method == "linear":
        return inside.astype(float)
    if method == "raking":
        with np.errstate(over="ignore"):
            return np.where(inside, np.exp(u), 0.0)
    a = (hi - lo) / ((hi - 1) * (1 - lo))
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(a * u)
        den = hi - 1 + (1 - lo) * e
        return hi * (1 - lo) * e * a / den - (lo * (hi - 1) + hi * (1 - lo) * e) * ((1 - lo) * e * a) / den**2


def solve_g(X: np.ndarray, W: np.ndarray, T: np.ndarray, method: str, lo: float, hi: float,
            maxit: int, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adjustment factors for each column of W (n, R), R's ``grake`` batched over columns.

    Returns g (n, R), the final relative misfit (k, R) and a converged flag (R,).
    """
    n, R = W.shape
    k = X.shape[1]
    S = X.T @ W  # (k, R) sample totals
    if method == "linear" and np.isinf(lo) and np.isinf(hi):
        # closed form (R's regcalibrate), no rescaling
        XX = _cross(X)
        Tm = (XX.T @ W).T.reshape(R, k, k)
        lam = np.einsum("rkl,lr->kr", np.linalg.pinv(Tm, rcond=256 * _EPS), T[:, None] - S)
        g = 1 + X @ lam
        misfit = (T[:, None] - X.T @ (W * g)) / (1 + np.abs(T))[:, None]
        return g, misfit, np.ones(R, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        scales = T[:, None] / S
    # R rescales the weights when every total is >20 times its estimate (bounds then
    # apply to the rescaled weights)
    big = np.min(scales, axis=0) > 20 if k else np.zeros(R, dtype=bool)
    scale = np.where(big, np.mean(scales, axis=0), 1.0)
    W = W * scale
    S = S * scale
    XX = _cross(X)
    eta = np.zeros((k, R))
    u = np.zeros((n, R))
    todo = np.ones(R, dtype=bool)
    misfit = np.zeros((k, R))
    it = 1
    while True:
        d = _df(method, u[:, todo], lo, hi)
        F = _fm1(method, u[:, todo], lo, hi)
        Wt = W[:, todo]
        Tm = (XX.T @ (Wt * d)).T.reshape(-1, k, k)
        mis = T[:, None] - S[:, todo] - X.T @ (Wt * F)
        deta = np.einsum("rkl,lr->kr", np.linalg.pinv(Tm, rcond=256 * _EPS), mis)
        et = eta[:, todo] + deta
        ut = X @ et
        # step halving while some factor is not finite (R: while iter < maxit)
        for _ in range(60):
            bad = ~np.isfinite(_fm1(method, ut, lo, hi)).all(axis=0) | \
                ~np.isfinite(_df(method, ut, lo, hi)).all(axis=0)
            if not bad.any() or it >= maxit:
                break
            it += 1
            deta[:, bad] /= 2
            et[:, bad] -= deta[:, bad]
            ut[:, bad] = X @ et[:, bad]
        eta[:, todo] = et
        u[:, todo] = ut
        F = _fm1(method, ut, lo, hi)
        mis = (T[:, None] - S[:, todo] - X.T @ (Wt * F)) / (1 + np.abs(T))[:, None]
        misfit[:, todo] = mis
        done = np.all(np.abs(mis) < eps, axis=0)
        idx = np.flatnonzero(todo)
        todo[idx[done]] = False
        if not todo.any():
            break
        it += 1
        if it > maxit:
            break
    g = (1 + _fm1(method, u, lo, hi)) * scale
    return g, misfit, ~todo


def _cross(X: np.ndarray) -> np.ndarray:
    """Row-wise outer products of X, (n, k*k): Tmat for any weights is one product."""
    n, k = X.shape
    return (X[:, :, None] * X[:, None, :]).reshape(n, k * k)


def _achievable(model: _Model, j: int, w: np.ndarray, lo: float, hi: float) -> tuple[float, float] | None:
    x = model.X[:, j]
    if (x < 0).any():
        return None
    s = float(x @ w)
    return (lo * s if np.isfinite(lo) else (-np.inf if lo < 0 else 0.0), hi * s)


def _check_bounds(model: _Model, w: np.ndarray, lo: float, hi: float, scale: float) -> None:
    """Necessary conditions: each total is reachable with factors in [lo, hi]."""
    if np.isinf(lo) and np.isinf(hi):
        return
    checks = []
    for i, (codes, tot, levels) in model.cat_codes.items():
        s = np.bincount(codes[codes >= 0], weights=w[codes >= 0], minlength=len(tot)) * scale
        for c in range(len(tot)):
            checks.append((model.margins[i].name, levels[c], tot[c], lo * s[c], hi * s[c]))
    for j, lab in enumerate(model.labels):
        if model.margins[model.margin_of[j]].kind == "numeric":
            r = _achievable(model, j, w * scale, lo, hi)
            if r is not None:
                checks.append((lab, None, model.totals[j], r[0], r[1]))
    for name, lev, t, a, b in checks:
        if not a - 1e-9 * abs(a) <= t <= b + 1e-9 * abs(b):
            cat = f", category {lev!r}" if lev is not None else ""
            raise WeightingError(
                f"bounds ({lo:g}, {hi:g}) are infeasible for margin {name!r}{cat}: the total "
                f"{t:.10g} is outside the achievable range [{a:.10g}, {b:.10g}]",
                hint="widen the bounds, collapse categories, or check the totals")


def calibrate(design: Design, totals, method: Method = "linear",
              bounds: tuple[float, float] | None = None, *, maxit: int = 50, tol: float = 1e-10,
              name: str = "w_calibrated") -> Design:
    """Calibrate the weights to population totals of categorical and numeric auxiliaries.

    Parameters
    ----------
    design
        The design to adjust (linearisation or replicate).
    totals
        ``{"stype": {"E": 4421, "H": 755, "M": 1018}, "api99": 3914069}``: a total
        per category for categorical variables (tuple keys for cross-classifications),
        one total for numeric ones, ``"(Intercept)"`` for the population size when no
        categorical margin gives it; or a DataFrame with ``variable, level, total``.
    method
        Distance function: ``"linear"`` (GREG, chi-square distance), ``"raking"``
        (multiplicative, g = exp(x'lambda)) or ``"logit"`` (bounded; needs ``bounds``).
    bounds
        ``(lo, hi)`` on the adjustment factors g = w_new / w (R's ``bounds``). A total
        outside the range the bounds allow is an error that states that range.
    maxit, tol
        Newton iterations and tolerance on ``|misfit| / (1 + |total|)`` (R's
        ``maxit`` and ``epsilon``).
    name
        Name of the new weight column.

    Returns
    -------
    Design
        Weights ``w g`` with the calibration recorded for variance estimation.

    Notes
    -----
    The model matrix has the same column space as R's ``model.matrix(~ a + b + x)``
    (the first categorical margin carries the intercept), so weights and standard
    errors agree with R's ``calibrate``. Unbounded linear calibration is the closed
    form GREG solution; other cases use R's Newton iteration (``grake``). The
    variance is that of the GREG estimator, residuals of the weighted regression
    on the auxiliaries, for every distance (asymptotically equivalent, Deville and
    Sarndal 1992, result 1). Linear calibration may give negative weights: that is
    an error here (use bounds or raking).

    References
    ----------
    Deville, J.-C. and Sarndal, C.-E. (1992). Calibration estimators in survey
    sampling. *JASA* 87, 376-382.
    Sarndal, C.-E., Swensson, B. and Wretman, J. (1992). *Model Assisted Survey
    Sampling*, ch. 6-7. Springer.
    Valliant, R., Dever, J. A. and Kreuter, F. (2018). *Practical Tools for Designing
    and Weighting Survey Samples*, ch. 14. Springer.
    """
    if method not in ("linear", "raking", "logit"):
        raise WeightingError(f"method={method!r} is not 'linear', 'raking' or 'logit'")
    lo, hi = (-np.inf, np.inf) if bounds is None else (float(bounds[0]), float(bounds[1]))
    if not lo < hi:
        raise WeightingError(f"bounds ({lo:g}, {hi:g}): the lower bound must be below the upper")
    if method == "logit" and not (np.isfinite(lo) and np.isfinite(hi) and lo < 1 < hi):
        raise WeightingError(f"logit calibration needs finite bounds around 1, got ({lo:g}, {hi:g})",
                             hint="e.g. bounds=(0.5, 2)")
    if lo > 1 or hi < 1:
        raise WeightingError(f"bounds ({lo:g}, {hi:g}) exclude g = 1 (no adjustment)",
                             hint="bounds on the adjustment factor must contain 1")
    margins = parse_totals(totals)
    w = design.w
    active = w > 0
    model = _model(design, margins, active, w)
    X, T = model.X, model.totals
    S = X.T @ w
    with np.errstate(divide="ignore"):
        sc = T / S
    unbounded_linear = method == "linear" and bounds is None
    scale = float(np.mean(sc)) if len(sc) and np.min(sc) > 20 and not unbounded_linear else 1.0
    _check_bounds(model, w, lo, hi, scale)
    g, misfit, ok = solve_g(X, w[:, None], T, method, lo, hi, maxit, tol)
    g = g[:, 0]
    if not ok[0]:
        j = int(np.argmax(np.abs(misfit[:, 0])))
        r = _achievable(model, j, w * scale, lo, hi)
        rng = f"; with these bounds it can reach [{r[0]:.10g}, {r[1]:.10g}]" if r else ""
        raise WeightingError(
            f"calibration did not converge in {maxit} iterations: {model.labels[j]!r} is still "
            f"{abs(misfit[j, 0]):.3g} (relative) from its total {T[j]:.10g}{rng}",
            hint="the bounds may be infeasible for the margins jointly: widen them, or raise maxit")
    new_w = np.where(active, w * g, 0.0)
    if (new_w < 0).any():
        i = int(np.flatnonzero(new_w < 0)[0])
        raise WeightingError(
            f"linear calibration gives {int((new_w < 0).sum())} negative weight(s) "
            f"(smallest factor g = {g[active].min():.4g})", row=i + 1,
            hint="use bounds=(0, U) or method='raking' to keep weights positive")
    # R: qr(mm * sqrt(w0)) and w = g * sqrt(w0); zero-weight rows stay out of the model
    whalf = np.sqrt(w)
    A = X * whalf[:, None]
    if A.shape[1]:
        Q, Rm, _ = sla.qr(A, mode="economic", pivoting=True)
        d = np.abs(np.diag(Rm))
        rank = int((d > d[0] * 1e-7).sum()) if len(d) and d[0] > 0 else 0
        Q = Q[:, :rank]
    else:
        Q = np.zeros((design.n, 0))
    table = pd.DataFrame({"auxiliary": model.labels, "total": T, "before": S,
                          "after": X.T @ new_w})
    cal = GregCalibration(q=Q, wc=np.where(active, g * whalf, 0.0), method=method, table=table)
    rep = None
    if design.replicates is not None:
        Wr = design.replicates.weights
        G, mis, okr = solve_g(X, Wr, T, method, lo, hi, maxit, tol)
        if not okr.all():
            r = int(np.flatnonzero(~okr)[0])
            j = int(np.argmax(np.abs(mis[:, r])))
            raise WeightingError(
                f"calibration of replicate {r + 1} did not converge: {model.labels[j]!r} is "
                f"{abs(mis[j, r]):.3g} (relative) from its total",
                hint="bounds that the full sample meets may be infeasible in a replicate; widen them")
        rep = np.where(active[:, None], Wr * G, 0.0)
        if (rep < 0).any():
            raise WeightingError("linear calibration gives negative replicate weights",
                                 hint="use bounds=(0, U) or method='raking'")
    return new_design(design, new_w, name, calibration=cal, replicate_values=rep)
