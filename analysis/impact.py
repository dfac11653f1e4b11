"""Effects of migration on households: design-based impact estimates.

The estimand is the effect on the treated (ATT): the mean outcome of migrant
households minus what comparable non-migrant households show, both weighted to the
population. Five estimators share one interface (:func:`impact`):

- ``"raw"``: difference of domain means, SE from their joint covariance.
- ``"regression"``: coefficient of the treatment in a survey-weighted GLM with the
  controls (``svyglm(y ~ treated + controls)``).
- ``"ipw"``: propensity model ``svyglm(treated ~ controls, quasibinomial)`` with the
  design weights; comparison units reweighted by ``w p / (1 - p)``.
- ``"aipw"``: doubly robust: IPW of the residuals of an outcome model fitted on the
  comparison units.
- ``"psm"``: nearest-neighbour matching on the logit of the propensity, with
  replacement, design weights carried by the treated.

Variances of IPW and AIPW come from stacked estimating equations (propensity score,
outcome model, the two weighted means) linearised over the design, so they account
for the estimated propensity; ``variance="fixed"`` treats the IPW weights as known
(R's ``svyglm`` on a design with the IPW weights); ``variance="replicate"`` refits
everything with each replicate weight.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from analysis.balance import balance
from analysis.contrast import contrast
from analysis.estimators import mean
from analysis.glm import glm_fit
from survey.design import Design
from survey.errors import EstimationError, SurveyWarning, did_you_mean
from survey.estimate import Estimate
from survey.variance import linearized_variance, replicate_variance

__all__ = ["ImpactFit", "impact", "impact_fit", "treatment_indicator"]

Method = Literal["raw", "regression", "ipw", "aipw", "psm"]
Variance = Literal["linearization", "fixed", "replicate"]
METHODS = ("raw", "regression", "ipw", "aipw", "psm")
_T = "_treated"  # the treatment indicator column added to the design's data
_EDGE = 1e-6  # fitted propensities closer than this to 0 or 1 signal separation


@dataclass(frozen=True, eq=False)
class ImpactFit:
    """An impact estimate with what it was made from.

    Attributes
    ----------
    estimate, se, df
        Effect on the treated, its design-based SE and degrees of freedom.
    n_treated, n_control
        Unweighted units used (after the common-support rule).
    dropped_treated, dropped_control
        Units of the comparison left out by the common-support rule.
    support
        Per row: used in the estimate.
    propensity
        Fitted propensity per row (NaN where not fitted); None for raw/regression.
    weights
        The analysis weights per row (IPW or matching weights; design weights for
        raw and regression), 0 outside the estimate.
    balance
        Standardised differences before and after weighting (ipw, aipw, psm).
    """

    outcome: str
    method: str
    variance: str
    estimate: float
    se: float
    df: float
    n_treated: int
    n_control: int
    dropped_treated: int = 0
    dropped_control: int = 0
    support: np.ndarray | None = field(default=None, repr=False)
    propensity: np.ndarray | None = field(default=None, repr=False)
    weights: np.ndarray | None = field(default=None, repr=False)
    balance: pd.DataFrame | None = field(default=None, repr=False)
    level: float = 0.95

    @property
    def p_value(self) -> float:
        """Two-sided p-value of the t statistic on ``df`` degrees of freedom (NaN when
        the SE or the df is not positive, as the interval is then undefined too)."""
        if not (np.isfinite(self.se) and self.se > 0 and self.df > 0):
            return float("nan")
        return float(2 * stats.t.sf(abs(self.estimate / self.se), self.df))

    def confint(self, level: float | None = None) -> tuple[float, float]:
        """The t interval ``estimate -/+ t(df) se`` (R's ``confint(svyglm)``); the same
        quantile as :attr:`p_value`, so p < 1 - level exactly when it excludes 0."""
        level = self.level if level is None else level
        if not (np.isfinite(self.se) and self.df > 0):
            return float("nan"), float("nan")
        q = float(stats.t.ppf(0.5 + level / 2, self.df))
        return self.estimate - q * self.se, self.estimate + q * self.se

    def to_estimate(self) -> Estimate:
        """One row: variable, method, estimate, se, t, p, df, deff, n, and the counts."""
        table = pd.DataFrame({
            "variable": [self.outcome], "method": [self.method], "variance": [self.variance],
            "estimate": [self.estimate], "se": [self.se],
            "t": [self.estimate / self.se if self.se > 0 else np.nan], "p": [self.p_value],
            "df": [float(self.df)], "deff": [np.nan], "n": [self.n_treated + self.n_control],
            "n_treated": [self.n_treated], "n_control": [self.n_control],
            "dropped": [self.dropped_treated + self.dropped_control],
        })
        return Estimate("impact", table, ci="t", level=self.level)


def treatment_indicator(design: Design, treatment: str, treated: str | Sequence[str] | None = None,
                        control: str | Sequence[str] | None = None) -> np.ndarray:
    """1 for treated, 0 for comparison, NaN for neither, from a column.

    With ``treated`` (a level or list of levels), comparison units are those in
    ``control`` (default: every other non-missing level). Without it, the column
    must be 0/1 or boolean.
    """
    if treatment not in design.data.columns:
        raise EstimationError("treatment column not found", column=treatment,
                              hint=did_you_mean(treatment, design.data.columns))
    s = design.data[treatment]
    na = s.isna().to_numpy()
    if treated is None:
        x = s.to_numpy(dtype=float, na_value=np.nan) if pd.api.types.is_numeric_dtype(s) or \
            pd.api.types.is_bool_dtype(s) else None
        if x is None or not np.isin(x[~na], [0, 1]).all():
            raise EstimationError("the treatment must be 0/1, or name its treated level(s)",
                                  column=treatment,
                                  hint='e.g. treatment="migration_group", treated=["emigrant", '
                                       '"returnee"], control="none"')
        return np.where(na, np.nan, x)
    tl = [treated] if isinstance(treated, str) else list(treated)
    vals = s.astype(object).to_numpy()
    is_t = pd.Series(vals).isin(tl).to_numpy()
    if control is None:
        is_c = ~is_t & ~na
    else:
        cl = [control] if isinstance(control, str) else list(control)
        is_c = pd.Series(vals).isin(cl).to_numpy()
    return np.where(is_t, 1.0, np.where(is_c, 0.0, np.nan))


def _separation(design: Design, t: np.ndarray, controls: Sequence[str],
                rows: np.ndarray) -> np.ndarray:
    """Rows in a level of a categorical control holding only treated or only comparison
    units: the propensity separates them perfectly. Returns the mask of those rows."""
    bad = np.zeros(design.n, dtype=bool)
    msgs = []
    for c in controls:
        s = design.data[c]
        if pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype):
            continue
        frame = pd.DataFrame({"lev": s.astype(object).to_numpy()[rows], "t": t[rows]})
        share = frame.groupby("lev", sort=True)["t"].mean()
        for lev, sh in share.items():
            if sh in (0.0, 1.0):
                bad |= rows & (s.astype(object).to_numpy() == lev)
                msgs.append(f"{c} = {lev!r} has only {'treated' if sh == 1 else 'comparison'} units")
    if msgs:
        warnings.warn(f"the propensity model separates perfectly: {'; '.join(msgs)}. The common-"
                      f"support rule leaves those {int(bad.sum())} units out of the estimate",
                      SurveyWarning, stacklevel=3)
    return bad


def _formula(response: str, controls: Sequence[str]) -> str:
    return f"{response} ~ " + (" + ".join(controls) if controls else "1")


def _expand(d: Design, controls: Sequence[str], rows: np.ndarray) -> tuple[Design, list[str]]:
    """Controls as numeric model columns: a categorical control becomes 0/1 columns for
    the levels present in ``rows`` after the first (R's treatment contrasts within
    the domain), so a level absent from a domain or a support is no empty column."""
    new, names = {}, []
    for c in controls:
        s = d.data[c]
        if (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)) and \
                not isinstance(s.dtype, pd.CategoricalDtype):
            names.append(c)
            continue
        na = s.isna().to_numpy()
        vals = np.where(na, None, s.astype(object).to_numpy())
        levels = sorted({v for v in vals[rows & ~na]}, key=str)
        for k, lev in enumerate(levels[1:], start=1):
            col = f"_{c}_{k}"
            new[col] = np.where(na, np.nan, (vals == lev).astype(float))
            names.append(col)
    return (d.map(lambda df: df.assign(**new)) if new else d), names


def _logit_newton(X: np.ndarray, t: np.ndarray, W: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Weighted logistic fits for a stack of weight vectors ``W`` (n, R): (R, p)."""
    beta = np.repeat(start[None, :], W.shape[1], axis=0)
    for _ in range(50):
        eta = np.clip(X @ beta.T, -30, 30)  # (n, R)
        p = 1 / (1 + np.exp(-eta))
        g = X.T @ (W * (t[:, None] - p))  # (p, R)
        H = np.einsum("ni,nj,nr->rij", X, X, W * p * (1 - p))
        step = np.linalg.solve(H, g.T[..., None])[..., 0]
        beta = beta + step
        if np.abs(step).max() < 1e-10:
            break
    return beta


def _wls(X: np.ndarray, y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Weighted least squares for a stack of weight vectors ``W`` (n, R): (R, q)."""
    A = np.einsum("ni,nj,nr->rij", X, X, W)
    b = (X * y[:, None]).T @ W
    return np.linalg.solve(A, b.T[..., None])[..., 0]


@dataclass
class _Parts:
    """Arrays over all rows (zeros outside) for the stacked estimating equations."""

    w: np.ndarray
    t: np.ndarray
    y: np.ndarray
    S: np.ndarray  # rows in the estimate (support)
    P: np.ndarray | None = None  # rows of the propensity fit
    X: np.ndarray | None = None  # propensity model matrix
    p: np.ndarray | None = None
    Xo: np.ndarray | None = None  # outcome model matrix (aipw)


def _means(parts: _Parts, odds: np.ndarray | None, beta: np.ndarray | None) -> tuple[float, float]:
    w, t, S = parts.w, parts.t, parts.S
    e = parts.y - (parts.Xo @ beta if beta is not None else 0.0)
    a1 = np.where(S, w * t, 0.0)
    a0 = np.where(S, w * (1 - t) * (odds if odds is not None else 1.0), 0.0)
    e0 = np.where(S, e, 0.0)
    return float((a1 * e0).sum() / a1.sum()), float((a0 * e0).sum() / a0.sum())


def _stacked_influence(parts: _Parts, beta: np.ndarray | None, propensity: bool) -> np.ndarray:
    """Influence values (n,) of mu1 - mu0 from the stacked estimating equations."""
    w, t, S = parts.w, parts.t, parts.S
    n = len(w)
    odds = parts.p / (1 - parts.p) if parts.p is not None else np.ones(n)
    mu1, mu0 = _means(parts, odds, beta)
    e = parts.y - (parts.Xo @ beta if beta is not None else 0.0)
    e = np.where(S, e, 0.0)
    blocks = []
    k_g = parts.X.shape[1] if (propensity and parts.X is not None) else 0
    k_b = parts.Xo.shape[1] if beta is not None else 0
    k = k_g + k_b + 2
    M = np.zeros((k, k))
    c = 1 - t
    wS = np.where(S, w, 0.0)
    if k_g:
        wP = np.where(parts.P, w, 0.0)
        blocks.append(parts.X * (wP * (t - parts.p))[:, None])
        M[:k_g, :k_g] = -(parts.X * (wP * parts.p * (1 - parts.p))[:, None]).T @ parts.X
    if k_b:
        Xo = parts.Xo
        blocks.append(Xo * (wS * c * e)[:, None])
        M[k_g:k_g + k_b, k_g:k_g + k_b] = -(Xo * (wS * c)[:, None]).T @ Xo
    i1, i0 = k - 2, k - 1
    blocks.append((wS * t * (e - mu1))[:, None])
    blocks.append((wS * c * odds * (e - mu0))[:, None])
    M[i1, i1] = -(wS * t).sum()
    M[i0, i0] = -(wS * c * odds).sum()
    if k_b:
        M[i1, k_g:k_g + k_b] = -(parts.Xo * (wS * t)[:, None]).sum(axis=0)
        M[i0, k_g:k_g + k_b] = -(parts.Xo * (wS * c * odds)[:, None]).sum(axis=0)
    if k_g:
        M[i0, :k_g] = (parts.X * (wS * c * odds * (e - mu0))[:, None]).sum(axis=0)
    U = np.column_stack(blocks)
    Z = -np.linalg.solve(M, U.T).T
    return Z[:, i1] - Z[:, i0]


def _degf(design: Design, rows: np.ndarray) -> float:
    """Degrees of freedom of a difference of two weighted means over ``rows``.

    R's ``svyglm(y ~ treated)`` residual df, ``degf - p + 1`` with ``p = 2``, which is
    also what ``svyttest`` uses: the design df of the rows (PSUs with a row minus
    strata with a row; the replicate design's df for replicate weights) minus one.
    Raw, IPW (fixed weights: exactly ``svyglm`` on the IPW-weighted design; stacked
    linearisation and replicates: the same df), AIPW and matching use it; the
    propensity and outcome models' coefficients are nuisance parameters and are not
    subtracted, as in R's weighted ``svyglm`` practice (subtracting them would widen
    the intervals by a few percent with 40 PSUs).
    """
    g = design.degf() if design.replicates is not None else design.degf(rows)
    return float(g - 1)


def impact_fit(design: Design, outcome: str, treatment: str, controls: Sequence[str] = (),
               method: Method = "ipw", *, treated: str | Sequence[str] | None = None,
               control: str | Sequence[str] | None = None, mask: np.ndarray | None = None,
               support: Literal["minmax", "none"] | tuple[float, float] = "minmax",
               variance: Variance | None = None, k: int = 1, caliper: float | None = None,
               level: float = 0.95, refit: bool = True,
               cache: dict | None = None) -> ImpactFit:
    """Fit an impact estimate and keep its parts; see :func:`impact`.

    ``refit`` refits the propensity model on the common support (default). ``cache``
    is a dict that keeps propensity fits for other outcomes with the same rows.
    """
    if method not in METHODS:
        raise EstimationError(f"method={method!r} is not one of {', '.join(METHODS)}")
    controls = list(controls)
    data = design.data
    for c in [outcome, *controls]:
        if c not in data.columns:
            raise EstimationError("column not found in the data", column=c,
                                  hint=did_you_mean(c, data.columns, "check the name against the design's data"))
    t = treatment_indicator(design, treatment, treated, control)
    s = data[outcome]
    if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)) or \
            isinstance(s.dtype, pd.CategoricalDtype):
        raise EstimationError(f"the outcome must be numeric (0/1 for a share), got {s.dtype}",
                              column=outcome)
    y = s.to_numpy(dtype=float, na_value=np.nan)
    rows = ~np.isnan(t) & ~np.isnan(y) & (design.w > 0)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != (design.n,):
            raise EstimationError(f"mask has shape {m.shape}, expected ({design.n},)")
        rows &= m
    if method != "raw":
        for c in controls:
            rows &= data[c].notna().to_numpy()
    n1, n0 = int((rows & (t == 1)).sum()), int((rows & (t == 0)).sum())
    tl = treated if treated is not None else "treated (1)"
    if n1 == 0 or n0 == 0:
        who = f"{tl!r} units" if n1 == 0 else "comparison units"
        raise EstimationError(f"no {who} with a value of {outcome!r} in the domain "
                              f"({n1} treated, {n0} comparison)", column=treatment,
                              hint="choose a larger domain, or report this domain as empty")
    if variance is None:
        variance = "replicate" if design.replicates is not None else "linearization"
    if variance not in ("linearization", "fixed", "replicate"):
        raise EstimationError(f"variance={variance!r} is not linearization, fixed or replicate")
    if design.replicates is None and variance == "replicate":
        design = design.replicate("jkn")
    if design.replicates is not None and variance == "linearization":
        variance = "replicate"
    d = design.map(lambda df: df.assign(**{_T: np.where(rows, t, np.nan)}))
    tt = np.where(rows, t, 0.0)
    y0 = np.where(rows, y, 0.0)
    w = design.w
    if method == "raw":
        return _raw(d, outcome, y0, tt, rows, w, variance, level)
    if method == "regression":
        dx, cols = _expand(d, controls, rows)
        fit = glm_fit(dx, _formula(outcome, [_T, *cols]), mask=rows)
        j = fit.terms.index(_T)
        return ImpactFit(outcome, method, "replicate" if d.replicates is not None else
                         "linearization", float(fit.coef[j]), float(fit.se[j]),
                         float(fit.df_residual), n1, n0, support=rows, weights=np.where(rows, w, 0),
                         level=level)
    # propensity-score methods: the fit depends on the rows, not the outcome, so outcomes
    # with the same rows share it (``cache``, used by the impact table)
    key = (id(design), treatment, tuple(controls), str(support), refit,
           hash(rows.tobytes()), hash(t.tobytes()))
    ps = cache.get(key) if cache is not None else None
    if ps is None:
        ps = _propensity(d, t, controls, rows, support, refit, treatment)
        if cache is not None:
            cache[key] = ps
    for msg in ps.warnings:
        warnings.warn(msg, SurveyWarning, stacklevel=2)
    S, fit_rows, p, X, pfit = ps.S, ps.fit_rows, ps.p, ps.X, ps.fit
    d1, d0 = int((rows & (t == 1) & ~S).sum()), int((rows & (t == 0) & ~S).sum())
    n1, n0 = int((S & (t == 1)).sum()), int((S & (t == 0)).sum())
    pp = np.where(fit_rows, p, 0.5)
    odds = pp / (1 - pp)
    parts = _Parts(w=w, t=tt, y=y0, S=S, P=fit_rows, X=X, p=pp)
    common = dict(dropped_treated=d1, dropped_control=d0, support=S, propensity=p, level=level)
    if method == "psm":
        return _psm(d, outcome, parts, controls, k, caliper, common, n1, n0)
    wt = np.where(S, np.where(tt == 1, w, w * odds), 0.0)
    bal = balance(d, np.where(rows, t, np.nan), controls, mask=S, weights=wt) if controls else None
    beta = None
    if method == "aipw":
        Xo = X  # outcome model with the same controls, fitted on comparison units
        parts.Xo = Xo
        beta = _wls(Xo, y0, np.where(S & (tt == 0), w, 0.0)[:, None])[0]
    mu1, mu0 = _means(parts, odds, beta)
    est = mu1 - mu0
    if variance == "replicate":
        se = _replicate_se(d, parts, pfit.coef, est, method)
        df = _degf(d, S)
    elif variance == "fixed":
        if method == "aipw":
            raise EstimationError('variance="fixed" is for ipw; aipw uses "linearization"')
        dw = d.with_weights(wt, "_ipw_weight")
        f2 = glm_fit(dw, _formula(outcome, [_T]), mask=S)
        se, df = float(f2.se[1]), float(f2.df_residual)
    else:
        z = _stacked_influence(parts, beta, propensity=True)
        se = float(np.sqrt(linearized_variance(d, z)[0]))
        df = _degf(d, S)
    return ImpactFit(outcome, method, variance, est, se, df, n1, n0, weights=wt, balance=bal,
                     **common)


@dataclass(frozen=True, eq=False)
class _Propensity:
    fit: object  # GLMFit of the final propensity model
    p: np.ndarray  # fitted propensity (NaN outside fit_rows)
    X: np.ndarray  # its model matrix over all rows
    fit_rows: np.ndarray
    S: np.ndarray  # common support
    warnings: tuple[str, ...]


def _propensity(d: Design, t: np.ndarray, controls: Sequence[str], rows: np.ndarray, support,
                refit: bool, treatment: str) -> _Propensity:
    """Fit the propensity model, apply the separation checks and the support rule."""
    msgs = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SurveyWarning)
        sep = _separation(d, t, controls, rows)
    msgs += [str(c.message) for c in caught if issubclass(c.category, SurveyWarning)]
    fit_rows = rows & ~sep
    if (fit_rows & (t == 1)).sum() == 0 or (fit_rows & (t == 0)).sum() == 0:
        raise EstimationError("no common support: the controls separate treated and comparison "
                              "units completely", column=treatment,
                              hint="use fewer or coarser controls")

    def fit(on: np.ndarray):
        try:
            dx, cols = _expand(d, controls, on)
            f = glm_fit(dx, _formula(_T, cols), family="binomial", mask=on)
        except EstimationError as err:
            raise EstimationError(
                f"the propensity model of {treatment!r} on {', '.join(controls) or 'nothing'} "
                f"cannot be fitted ({err.message}): the controls separate treated and "
                "comparison units (perfectly)", column=treatment,
                hint="there is no common support to compare; use fewer or coarser controls",
            ) from err
        return f, np.where(on, f.fitted, np.nan), f.model.matrix(dx.data)[0]

    pfit, p, X = fit(fit_rows)
    edge = fit_rows & ((p < _EDGE) | (p > 1 - _EDGE))
    if edge.any():
        msgs.append(f"the propensity model separates (quasi-)perfectly: {int(edge.sum())} units "
                    "have fitted probabilities numerically 0 or 1; the common-support rule "
                    "leaves them out")
    S = _support(p, t, fit_rows & ~edge, support)
    if (S & (t == 1)).sum() == 0 or (S & (t == 0)).sum() == 0:
        raise EstimationError("the common-support rule leaves no treated or comparison units",
                              column=treatment, hint='try support="none" or fewer controls')
    if refit and (S != fit_rows).any():
        # the propensity of the support is refitted on it, so that the comparison units'
        # odds weights represent the treated units that remain, not those dropped
        fit_rows = S
        pfit, p, X = fit(fit_rows)
    return _Propensity(pfit, p, X, fit_rows, S, tuple(msgs))


def _support(p: np.ndarray, t: np.ndarray, rows: np.ndarray, rule) -> np.ndarray:
    """Rows inside the common support of the propensity (min-max rule or fixed bounds)."""
    if isinstance(rule, str) and rule == "none":
        return rows.copy()
    if isinstance(rule, str):
        if rule != "minmax":
            raise EstimationError(f"support={rule!r} is not 'minmax', 'none' or (low, high)")
        p1, p0 = p[rows & (t == 1)], p[rows & (t == 0)]
        lo, hi = max(p1.min(), p0.min()), min(p1.max(), p0.max())
    else:
        lo, hi = float(rule[0]), float(rule[1])
    return rows & (p >= lo) & (p <= hi)


def _raw(d: Design, outcome: str, y0, tt, rows, w, variance, level) -> ImpactFit:

    arm = np.where(tt == 1, "treated", "control")
    arm = np.where(rows, arm, "outside")  # outside the mask: a domain with no rows used
    dd = d.map(lambda df: df.assign(_arm=pd.array(arm, dtype="string")))
    m = mean(dd, outcome, by="_arm", mask=rows, vcov=True)
    c = contrast(m, {"treated": 1, "control": -1})
    n1, n0 = int((rows & (tt == 1)).sum()), int((rows & (tt == 0)).sum())
    df = _degf(d, rows)  # svyttest's df: svyglm(y ~ treated)'s residual df
    return ImpactFit(outcome, "raw", "replicate" if d.replicates is not None else "linearization",
                     float(c.estimate[0]), float(c.se[0]), df, n1, n0, support=rows,
                     weights=np.where(rows, w, 0.0), level=level)


def _replicate_se(d: Design, parts: _Parts, gamma: np.ndarray, est: float, method: str) -> float:
    """Refit the propensity (and outcome) model with every replicate's weights.

    A replicate that leaves a model without information on a coefficient (it drops
    the only units of a category in the domain) cannot be refitted: that is a clear
    error rather than a number, as R's refit gives NA there.
    """
    try:
        return _replicate_se_fit(d, parts, gamma, est, method)
    except np.linalg.LinAlgError as exc:
        raise EstimationError(
            "a replicate's propensity or outcome model is singular: some replicate leaves "
            "a control without variation in this comparison or domain",
            hint='use variance="linearization" (the default), or fewer or coarser controls '
                 "in small domains",
        ) from exc


def _replicate_se_fit(d: Design, parts: _Parts, gamma: np.ndarray, est: float, method: str) -> float:
    Wr = d.replicates.weights
    P, S, t = parts.P, parts.S, parts.t
    thetas = np.empty(Wr.shape[1])
    step = max(1, int(2e7 // max(parts.X.size, 1)))
    for lo in range(0, Wr.shape[1], step):
        W = Wr[:, lo:lo + step]
        g = _logit_newton(parts.X[P], t[P], W[P], gamma)  # (R, p)
        eta = np.clip(parts.X @ g.T, -30, 30)
        odds = np.exp(eta)  # p / (1 - p)
        a1 = np.where(S[:, None], W * t[:, None], 0.0)
        a0 = np.where(S[:, None], W * (1 - t)[:, None] * odds, 0.0)
        e = np.repeat(parts.y[:, None], W.shape[1], axis=1)
        if method == "aipw":
            b = _wls(parts.Xo[S], parts.y[S], np.where((t[S] == 0)[:, None], W[S], 0.0))
            e = e - parts.Xo @ b.T
        e = np.where(S[:, None], e, 0.0)
        thetas[lo:lo + step] = (a1 * e).sum(0) / a1.sum(0) - (a0 * e).sum(0) / a0.sum(0)
    return float(np.sqrt(replicate_variance(d, np.array(est), thetas)))


def _psm(d: Design, outcome: str, parts: _Parts, controls, k: int, caliper, common,
         n1: int, n0: int) -> ImpactFit:
    """Nearest-neighbour matching with replacement on the logit propensity."""
    S, t, w = parts.S, parts.t, parts.w
    lp = np.log(parts.p / (1 - parts.p))
    ti, ci = np.flatnonzero(S & (t == 1)), np.flatnonzero(S & (t == 0))
    k = int(k)
    if k < 1 or k > len(ci):
        raise EstimationError(f"k={k} neighbours but {len(ci)} comparison units",
                              hint="use k between 1 and the number of comparison units")
    order = ci[np.argsort(lp[ci], kind="stable")]
    sorted_lp = lp[order]
    pos = np.searchsorted(sorted_lp, lp[ti])
    cand = np.clip(pos[:, None] + np.arange(-k, k)[None, :], 0, len(order) - 1)
    dist = np.abs(sorted_lp[cand] - lp[ti][:, None])
    pick = np.take_along_axis(cand, np.argsort(dist, axis=1, kind="stable")[:, :k], axis=1)
    dmin = np.take_along_axis(dist, np.argsort(dist, axis=1, kind="stable")[:, :k], axis=1)
    keep = np.ones(len(ti), dtype=bool)
    if caliper is not None:
        keep = (dmin <= caliper * lp[S].std()).all(axis=1)
    v = np.zeros(len(w))
    np.add.at(v, order[pick[keep]].ravel(), np.repeat(w[ti[keep]] / k, k))
    S2 = S.copy()
    S2[ti[~keep]] = False
    S2[ci] = v[ci] > 0
    wt = np.where(S2, np.where(t == 1, w, v), 0.0)
    a1, a0 = np.where(S2 & (t == 1), wt, 0.0), np.where(S2 & (t == 0), wt, 0.0)
    mu1, mu0 = (a1 * parts.y).sum() / a1.sum(), (a0 * parts.y).sum() / a0.sum()
    z = a1 * (parts.y - mu1) / a1.sum() - a0 * (parts.y - mu0) / a0.sum()
    se = float(np.sqrt(linearized_variance(d, z)[0])) if d.replicates is None else np.nan
    bal = balance(d, np.where(S, t, np.nan), controls, mask=S, weights=wt) if controls else None
    common = {**common, "support": S2,
              "dropped_treated": common["dropped_treated"] + int((~keep).sum())}
    return ImpactFit(outcome, "psm", "fixed", float(mu1 - mu0), se, _degf(d, S2),
                     int((S2 & (t == 1)).sum()), int((S2 & (t == 0)).sum()), weights=wt,
                     balance=bal, **common)


def impact(design: Design, outcome: str, treatment: str, controls: Sequence[str] = (),
           method: Method = "ipw", *, treated: str | Sequence[str] | None = None,
           control: str | Sequence[str] | None = None, mask: np.ndarray | None = None,
           support: Literal["minmax", "none"] | tuple[float, float] = "minmax",
           variance: Variance | None = None, k: int = 1, caliper: float | None = None,
           level: float = 0.95) -> Estimate:
    """The effect of migration on migrant households, with a design-based SE.

    Parameters
    ----------
    design
        Household (or person) design; linearisation or replicate weights.
    outcome
        Numeric column (0/1 for a share): the indicator.
    treatment
        Column defining the comparison: 0/1, or levels named by ``treated`` and
        ``control`` (e.g. ``treatment="migration_group", treated=["emigrant",
        "returnee"], control="none"``). Rows in neither are outside the comparison.
    controls
        Covariates of the regression and propensity models (DOMAIN.md: head's age,
        sex, education; household size and composition; urban/rural; region).
        Text and categorical columns enter as treatment contrasts.
    method
        ``"raw"``, ``"regression"``, ``"ipw"`` (default), ``"aipw"`` or ``"psm"``.
    mask
        A domain (e.g. urban households): the comparison is made within it, with the
        whole design kept for the variance.
    support
        Common-support rule for propensity methods: ``"minmax"`` keeps units whose
        propensity lies within both groups' ranges; ``(low, high)`` fixed bounds;
        ``"none"``. The counts dropped are reported.
    variance
        ``"linearization"`` (default; stacked estimating equations, accounting for
        the estimated propensity and outcome model), ``"fixed"`` (IPW weights
        treated as known: R's ``svyglm(y ~ treated)`` on a design with the IPW
        weights), or ``"replicate"`` (refit the propensity model with every
        replicate weight; a linearisation design is first turned into JKn
        replicates). Replicate designs use ``"replicate"``.
    k, caliper
        Matching: neighbours per treated unit, and the largest distance allowed in
        standard deviations of the logit propensity (treated units without a match
        are dropped and counted).
    level
        Confidence level of the t interval. Intervals and p-values use the t
        distribution on ``df``: for the regression, svyglm's residual df
        (``degf - p + 1``); for raw, IPW, AIPW and matching, the df of a difference
        of two means, ``degf - 1`` over the rows used (as R's ``svyttest`` and
        ``svyglm(y ~ treated)`` on the IPW-weighted design); the propensity and
        outcome models' coefficients are not subtracted.

    Returns
    -------
    Estimate
        ``statistic="impact"``: one row with ``variable`` (the outcome), ``method``,
        ``variance``, ``estimate``, ``se``, ``t``, ``p``, ``df``, ``n``,
        ``n_treated``, ``n_control``, ``dropped``. Use :func:`impact_fit` for the
        propensities, weights and balance table.

    Raises
    ------
    EstimationError
        A domain with no treated (or no comparison) units with an outcome; no
        common support.

    Warns
    -----
    SurveyWarning
        The propensity model separates treated and comparison units (a level of a
        control with only one group, or fitted probabilities of 0 or 1): the units
        concerned are left out by the common-support rule and counted as dropped.

    Notes
    -----
    IPW for the effect on the treated weights comparison units by the odds of
    treatment ``w_i p_i / (1 - p_i)``, where ``p`` comes from a logistic model
    fitted with the design weights (DuGoff, Schuler and Stuart 2014; Ridgeway et
    al. 2015: the design weights enter both the propensity model and the outcome
    comparison). The estimate solves the stacked equations
    ``sum w x (T - p) = 0``, ``sum w T (y - mu1) = 0`` and
    ``sum w (1 - T) p/(1-p) (y - mu0) = 0``; its linearised variance uses the
    sandwich of their Jacobian and the design variance of the summed scores, so it
    includes the uncertainty of the propensity model (Binder 1983). AIPW replaces
    ``y`` by the residual of a weighted linear outcome model fitted on comparison
    units: consistent when either model is right. Matching variances treat the
    matched comparison weights as fixed.

    References
    ----------
    Rosenbaum, P. R. and Rubin, D. B. (1983). The central role of the propensity
    score in observational studies for causal effects. *Biometrika* 70, 41-55.
    Hirano, K., Imbens, G. W. and Ridder, G. (2003). Efficient estimation of average
    treatment effects using the estimated propensity score. *Econometrica* 71,
    1161-1189.
    DuGoff, E. H., Schuler, M. and Stuart, E. A. (2014). Generalizing observational
    study results. *Health Services Research* 49, 284-303.
    Ridgeway, G., Kovalchik, S. A., Griffin, B. A. and Kabeto, M. U. (2015).
    Propensity score analysis with survey weighted data. *Journal of Causal
    Inference* 3, 237-249.
    Austin, P. C. (2011). *Multivariate Behavioral Research* 46, 399-424.
    """
    return impact_fit(design, outcome, treatment, controls, method, treated=treated,
                      control=control, mask=mask, support=support, variance=variance, k=k,
                      caliper=caliper, level=level).to_estimate()
