"""Design-weighted generalised linear models with design-based standard errors.

``glm`` fits by iteratively reweighted least squares with the sampling weights as
prior weights, as R ``survey``'s ``svyglm`` does (the same starting values, steps and
convergence rule as R's ``glm.fit``, so the coefficients agree with R to rounding).
Standard errors are the sandwich of Binder (1983): the inverse information times the
design-based variance of the estimating-function totals, or, for replicate-weight
designs, the spread of the coefficients refitted with each replicate's weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from analysis._prep import check_column
from survey.design import Design
from survey.errors import EstimationError
from survey.estimate import Estimate
from survey.variance import linearized_vcov, replicate_vcov

__all__ = ["GLMFit", "glm", "glm_fit"]

Family = Literal["gaussian", "binomial", "quasibinomial", "poisson", "quasipoisson"]
_EPS = np.finfo(float).eps
_EPSILON, _MAXIT = 1e-8, 25  # R's glm.control()


# -- formulas ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Var:
    """One variable of a formula: its column, and whether it is categorical."""

    column: str
    label: str  # as written (``C(x)`` keeps its wrapper, for R-style term names)
    forced: bool  # C()/factor(): categorical whatever the dtype


_VAR = re.compile(r"^(?:(C|factor|as\.factor)\(\s*([^()]+?)\s*\)|([A-Za-z_.][A-Za-z0-9_.]*))$")


def _var(text: str, formula: str) -> _Var:
    m = _VAR.match(text.strip())
    if not m:
        raise EstimationError(f"cannot read {text.strip()!r} in the formula {formula!r}",
                              hint="write terms as column names, C(column) for a categorical, "
                                   "a:b for an interaction and a*b for both main effects and it")
    if m.group(2):
        return _Var(m.group(2), text.strip().replace(" ", ""), True)
    return _Var(m.group(3), m.group(3), False)


def _parse(formula: str) -> tuple[_Var, list[tuple[_Var, ...]], bool]:
    """Response, terms (in R's order: by degree, then as written), intercept."""
    if formula.count("~") != 1:
        raise EstimationError(f"the formula {formula!r} needs one '~'",
                              hint='e.g. "api00 ~ ell + meals + C(stype)"')
    lhs, rhs = formula.split("~")
    response = _var(lhs, formula)
    intercept = True
    terms: list[tuple[_Var, ...]] = []
    drop: list[tuple[_Var, ...]] = []
    for sign, chunk in re.findall(r"([+-]?)\s*((?:[^+\-()]|\([^()]*\))+)", rhs):
        chunk = chunk.strip()
        if chunk in ("0", "1"):
            intercept = chunk == "1" and sign != "-"
            continue
        expanded: list[tuple[_Var, ...]] = []
        for part in chunk.split("*"):
            new = tuple(_var(v, formula) for v in part.split(":"))
            expanded = [*expanded, new, *(e + new for e in expanded)]
        (drop if sign == "-" else terms).extend(expanded)
    seen: list[frozenset] = []
    out: list[tuple[_Var, ...]] = []
    dropped = {frozenset(v.column for v in t) for t in drop}
    for t in terms:
        key = frozenset(v.column for v in t)
        if key not in seen and key not in dropped:
            seen.append(key)
            out.append(t)
    out.sort(key=len)  # stable: R puts main effects first, then interactions
    return response, out, intercept


def _is_categorical(s: pd.Series, v: _Var) -> bool:
    if v.forced or isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(s):
        return True
    return not pd.api.types.is_numeric_dtype(s)


def _levels(s: pd.Series) -> list:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return [c for c in s.cat.categories if (s == c).any()]
    return sorted(s.dropna().unique().tolist())


@dataclass(frozen=True)
class _Model:
    """How to turn a DataFrame into the model matrix (kept for predictions)."""

    terms: tuple[tuple[_Var, ...], ...]
    intercept: bool
    levels: dict[str, list]  # categorical columns -> levels
    coding: tuple[tuple[bool, ...], ...]  # per term, per variable: treatment contrasts?
    names: tuple[str, ...]

    def matrix(self, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Model matrix (n x p) and the rows with every value present."""
        n = len(data)
        ok = np.ones(n, dtype=bool)
        cols = [np.ones(n)] if self.intercept else []
        coded: dict[tuple[str, bool], np.ndarray] = {}
        for term, contr in zip(self.terms, self.coding):
            blocks = []
            for v, c in zip(term, contr):
                s = data[v.column]
                ok &= s.notna().to_numpy()
                if v.column in self.levels:
                    key = (v.column, c)
                    if key not in coded:
                        levs = self.levels[v.column]
                        codes = pd.Index(levs).get_indexer(s)
                        unknown = (codes < 0) & s.notna().to_numpy()
                        if unknown.any():
                            raise EstimationError(
                                f"value {s.iloc[int(np.flatnonzero(unknown)[0])]!r} is not a level "
                                "seen when the model was fitted", column=v.column,
                                hint=f"levels are {levs}")
                        first = 1 if c else 0
                        coded[key] = (codes[:, None] == np.arange(first, len(levs))).astype(float)
                    blocks.append(coded[key])
                else:
                    blocks.append(s.to_numpy(dtype=float, na_value=np.nan)[:, None])
            out = blocks[0]
            for b in blocks[1:]:  # the first factor varies fastest, as R's model.matrix
                out = (out[:, None, :] * b[:, :, None]).reshape(n, -1)
            cols.extend(out.T)
        X = np.column_stack(cols) if cols else np.zeros((n, 0))
        return np.where(ok[:, None], X, 0.0), ok


def _model(design: Design, terms: list[tuple[_Var, ...]], intercept: bool,
           rows: np.ndarray) -> _Model:
    levels: dict[str, list] = {}
    for t in terms:
        for v in t:
            s = check_column(design, v.column)
            if _is_categorical(s, v) and v.column not in levels:
                levels[v.column] = _levels(s[rows])
    coding, names = [], ["(Intercept)"] if intercept else []
    present = {frozenset()} if intercept else set()
    for t in terms:
        contr = []
        for v in t:
            rest = frozenset(u.column for u in t if u is not v)
            contr.append(rest in present)  # R: contrasts when the margin is in the model
        present.add(frozenset(u.column for u in t))
        coding.append(tuple(contr))
        labels = [[""]]
        for v, c in zip(t, contr):
            if v.column in levels:
                levs = levels[v.column][1:] if c else levels[v.column]
                lab = [f"{v.label}{lev}" for lev in levs]
            else:
                lab = [v.label]
            labels = [[*prev, x] for x in lab for prev in labels]
        names.extend(":".join(p for p in lab if p) for lab in labels)
    return _Model(tuple(terms), intercept, levels, tuple(coding), tuple(names))


def _response(design: Design, v: _Var, family: str) -> tuple[np.ndarray, str]:
    s = check_column(design, v.column)
    if family in ("binomial", "quasibinomial") and _is_categorical(s, v):
        levs = _levels(s)
        if len(levs) != 2:
            raise EstimationError(f"a binomial response needs two levels, found {len(levs)}",
                                  column=v.column, hint="recode the outcome as 0/1")
        vals = s.to_numpy(dtype=object)
        return np.where(s.isna().to_numpy(), np.nan, (vals == levs[1]).astype(float)), str(levs[1])
    if _is_categorical(s, v) and not pd.api.types.is_bool_dtype(s):
        raise EstimationError(f"the response must be numeric, got dtype {s.dtype}", column=v.column,
                              hint='for a yes/no outcome use family="binomial"')
    return s.to_numpy(dtype=float, na_value=np.nan), ""


# -- families (R's C code for logit and the stats:: family objects) -----------------------

class _Family:
    def __init__(self, name: str) -> None:
        self.name = {"quasibinomial": "binomial", "quasipoisson": "poisson"}.get(name, name)

    def start(self, y: np.ndarray, pw: np.ndarray) -> np.ndarray:
        if self.name == "binomial":
            return (pw * np.where(pw == 0, 0.0, y) + 0.5) / (pw + 1)
        return y + 0.1 if self.name == "poisson" else y.copy()

    def link(self, mu: np.ndarray) -> np.ndarray:
        if self.name == "binomial":
            return np.log(mu / (1 - mu))
        return np.log(mu) if self.name == "poisson" else mu

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        if self.name == "binomial":
            t = np.where(eta < -30, _EPS, np.where(eta > 30, 1 / _EPS, np.exp(np.clip(eta, -30, 30))))
            return t / (1 + t)
        return np.maximum(np.exp(eta), _EPS) if self.name == "poisson" else eta

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        if self.name == "binomial":
            e = np.exp(np.clip(eta, -30, 30))
            return np.where(np.abs(eta) > 30, _EPS, e / ((1 + e) * (1 + e)))
        return np.maximum(np.exp(eta), _EPS) if self.name == "poisson" else np.ones_like(eta)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        if self.name == "binomial":
            return mu * (1 - mu)
        return mu if self.name == "poisson" else np.ones_like(mu)

    def deviance(self, y: np.ndarray, mu: np.ndarray, pw: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.name == "binomial":
                a = np.where(y != 0, y * np.log(y / mu), 0.0)
                b = np.where(1 - y != 0, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
                return (2 * pw * (a + b)).sum(axis=-1)
            if self.name == "poisson":
                r = np.where(y > 0, pw * (y * np.log(y / mu) - (y - mu)), mu * pw)
                return (2 * r).sum(axis=-1)
        return (pw * (y - mu) ** 2).sum(axis=-1)


def _wls(X: np.ndarray, z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Least squares of z on X with root-weights w, for a stack of fits: (k, p)."""
    A = X[None, :, :] * w[:, :, None]
    Q, R = np.linalg.qr(A)
    return np.linalg.solve(R, np.einsum("knp,kn->kp", Q, z * w)[..., None])[..., 0]


def _wls_pre(Xt: np.ndarray, T: np.ndarray, z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The same least squares through preconditioned normal equations: ``Xt = X T``
    is near-orthonormal under weights close to the full sample's, so ``Xt' W Xt`` is
    well conditioned and one batched GEMM replaces a QR per fit."""
    W = w * w
    A = np.matmul((Xt[None, :, :] * W[:, :, None]).transpose(0, 2, 1), Xt)
    gamma = np.linalg.solve(A, ((W * z) @ Xt)[..., None])[..., 0]
    return gamma @ T.T


def _irls(X: np.ndarray, y: np.ndarray, pw: np.ndarray, fam: _Family,
          start: np.ndarray | None,
          precond: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R's ``glm.fit`` for a stack of prior-weight vectors ``pw`` (k, n).

    ``precond`` (p x p), when given, switches the least-squares steps to
    :func:`_wls_pre` with ``Xt = X precond`` (used for the replicate refits).

    Returns coefficients (k, p), the final eta (k, n) and the working weights of the
    last iteration (k, n), which R's ``summary`` and ``svyglm`` use.
    """
    k, n = pw.shape
    if start is None:
        eta = fam.link(fam.start(y[None, :], pw))
        beta = np.zeros((k, X.shape[1]))
    else:
        beta = np.array(start, dtype=float)
        eta = beta @ X.T
    mu = fam.inverse(eta)
    devold = fam.deviance(y, mu, pw)
    wt = np.zeros((k, n))
    active = np.ones(k, dtype=bool)
    Xt = X @ precond if precond is not None else None
    for _ in range(_MAXIT):
        a = np.flatnonzero(active)
        me = fam.mu_eta(eta[a])
        good = (pw[a] > 0) & (me != 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(good, eta[a] + (y - mu[a]) / me, 0.0)
            w = np.where(good, np.sqrt(pw[a] * me * me / fam.variance(mu[a])), 0.0)
        beta[a] = _wls(X, z, w) if Xt is None else _wls_pre(Xt, precond, z, w)
        wt[a] = w * w
        eta[a] = beta[a] @ X.T
        mu[a] = fam.inverse(eta[a])
        dev = fam.deviance(y, mu[a], pw[a])
        if not np.isfinite(dev).all():
            raise EstimationError("the fit diverged (non-finite deviance)",
                                  hint="check the outcome's range for this family, or remove "
                                       "terms that separate the outcome perfectly")
        done = np.abs(dev - devold[a]) / (np.abs(dev) + 0.1) < _EPSILON
        devold[a] = dev
        active[a[done]] = False
        if not active.any():
            break
    else:
        raise EstimationError(f"the fit did not converge in {_MAXIT} iterations",
                              hint="the outcome may be perfectly separated by a term")
    return beta, eta, wt


# -- the result ----------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class GLMFit:
    """A fitted design-weighted GLM.

    Attributes
    ----------
    coef
        Coefficients (p,), in the order of ``terms``.
    vcov
        Design-based covariance matrix of the coefficients (p, p).
    influence
        Influence values of the coefficients (n, p), one row per row of
        ``design.data`` (zero outside the fit): the coefficients' errors are
        approximately their column totals, so ``survey.variance.linearized_vcov``
        of them is ``vcov`` on a linearisation design. Combine them with other
        influence values for the variance of a function of several estimates.
    fitted, linear_predictor
        ``mu`` and ``eta`` per row of the data (NaN where a value is missing).
    df_residual
        ``degf(design) + 1 - p``, as ``svyglm``.
    """

    formula: str
    family: str
    terms: tuple[str, ...]
    coef: np.ndarray
    vcov: np.ndarray
    influence: np.ndarray = field(repr=False)
    fitted: np.ndarray = field(repr=False)
    linear_predictor: np.ndarray = field(repr=False)
    df_residual: int
    n: int
    response: str
    model: _Model = field(repr=False)
    fam: _Family = field(repr=False)

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))

    def summary(self) -> pd.DataFrame:
        """Coefficient table as R's ``summary.svyglm``: estimate, se, t, p, df."""
        t = self.coef / self.se
        df = self.df_residual
        p = 2 * stats.t.sf(np.abs(t), df) if df > 0 else np.full(len(t), np.nan)
        return pd.DataFrame({"term": list(self.terms), "estimate": self.coef, "se": self.se,
                             "t": t, "p": p, "df": float(df)})

    def estimate(self, level: float = 0.95) -> Estimate:
        """The coefficients as an :class:`~survey.estimate.Estimate` with t intervals."""
        s = self.summary()
        table = pd.DataFrame({"variable": np.full(len(s), self.response, dtype=object),
                              "term": s["term"].to_numpy(dtype=object)})
        for c in ("estimate", "se", "t", "p", "df"):
            table[c] = s[c].to_numpy()
        table["deff"] = np.nan
        table["n"] = float(self.n)
        return Estimate("coefficient", table, vcov=self.vcov, ci="t", level=level)

    def predict(self, data: pd.DataFrame, type: Literal["response", "link"] = "response") -> np.ndarray:
        """Predictions for new rows (NaN where a predictor is missing)."""
        for t in self.model.terms:
            for v in t:
                if v.column not in data.columns:
                    raise EstimationError("predictor not found in the new data", column=v.column)
        X, ok = self.model.matrix(data)
        eta = X @ self.coef
        out = eta if type == "link" else self.fam.inverse(eta)
        return np.where(ok, out, np.nan)


def glm_fit(design: Design, formula: str, family: Family = "gaussian", *,
            mask: np.ndarray | None = None) -> GLMFit:
    """Fit a design-weighted GLM and keep what predictions and contrasts need.

    Parameters are those of :func:`glm`; returns a :class:`GLMFit`.
    """
    if family not in ("gaussian", "binomial", "quasibinomial", "poisson", "quasipoisson"):
        raise EstimationError(f"family={family!r} is not one of gaussian, binomial, poisson",
                              hint="binomial is fitted as R's quasibinomial, poisson as quasipoisson")
    fam = _Family(family)
    resp, terms, intercept = _parse(formula)
    y, _ = _response(design, resp, fam.name)
    n = design.n
    inset = np.ones(n, dtype=bool)
    if mask is not None:
        inset = np.asarray(mask, dtype=bool)
        if inset.shape != (n,):
            raise EstimationError(f"mask has shape {inset.shape}, expected ({n},)")
    ok_y = ~np.isnan(y)
    pre_ok = ok_y.copy()
    for t in terms:
        for v in t:
            pre_ok &= check_column(design, v.column).notna().to_numpy()
    model = _model(design, terms, intercept, pre_ok)
    X, ok = model.matrix(design.data)
    ok &= ok_y
    y0 = np.where(ok, y, 0.0)
    if fam.name == "binomial" and ((y0 < 0) | (y0 > 1)).any():
        raise EstimationError("a binomial response must lie in [0, 1]", column=resp.column,
                              hint="use a 0/1 or yes/no column")
    if fam.name == "poisson" and (y0 < 0).any():
        raise EstimationError("a poisson response must not be negative", column=resp.column)
    rep = design.replicates
    w = design.w * inset
    # R rescales the weights by their mean (over the rows of the design or its subset)
    pw = w / (w[inset].mean() if rep is not None else w.mean())
    pw = np.where(ok, pw, 0.0)
    use = pw > 0
    p = X.shape[1]
    if use.sum() <= p or np.linalg.matrix_rank(X[use] * np.sqrt(pw[use])[:, None]) < p:
        raise EstimationError(
            f"the model matrix is rank deficient ({p} columns, terms {', '.join(model.names)})",
            hint="drop a term that is collinear with others, or a level absent from the domain")
    beta, eta, wt = _irls(X, y0, pw[None, :], fam, None)
    beta, eta, wt = beta[0], eta[0], wt[0]
    mu = fam.inverse(eta)
    with np.errstate(divide="ignore", invalid="ignore"):
        resid = np.where(ok, (y0 - mu) / fam.mu_eta(eta), 0.0)
    Xw = X * np.sqrt(wt)[:, None]
    ainv = np.linalg.inv(Xw.T @ Xw)
    influence = (X * (resid * wt)[:, None]) @ ainv
    if rep is None:
        vcov = linearized_vcov(design, influence)
        df_res = _degf(design, inset & ok) + 1 - p
    else:
        vcov = _replicate_vcov(design, X, y0, ok & inset, fam, beta, wt)
        df_res = design.degf(inset if mask is not None else None) + 1 - p
    return GLMFit(formula=formula, family=family, terms=model.names, coef=beta, vcov=vcov,
                  influence=influence, fitted=np.where(ok, mu, np.nan),
                  linear_predictor=np.where(ok, eta, np.nan), df_residual=int(df_res),
                  n=int((ok & (w != 0)).sum()), response=resp.label, model=model, fam=fam)


def _degf(design: Design, mask: np.ndarray) -> int:
    """R's ``degf`` of the subset design: PSUs minus strata with nonzero weight in mask
    (``Design.degf`` with O(n) bincounts in place of hashing)."""
    st = design.stages[0]
    sel = mask & (design.w != 0)
    return int(np.count_nonzero(np.bincount(st.unit[sel], minlength=st.n_unit_total))
               - np.count_nonzero(np.bincount(st.group[sel], minlength=st.n_groups)))


def _replicate_vcov(design: Design, X: np.ndarray, y: np.ndarray, rows: np.ndarray,
                    fam: _Family, beta: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """Refit with each replicate's weights (normalised to sum 1), from the full-sample
    coefficients, as ``svyglm.svyrep.design``; a chunk of replicates at a time, each
    step preconditioned by the full-sample fit's R factor (``wt``: its working weights)."""
    Wr = design.replicates.weights
    R = Wr.shape[1]
    Xr, yr = X[rows], y[rows]
    r0 = np.linalg.qr(Xr * np.sqrt(wt[rows] / wt[rows].mean())[:, None], mode="r")
    T = np.linalg.inv(r0)
    betas = np.empty((R, X.shape[1]))
    step = max(1, int(2e7 // max(Xr.size, 1)))
    for lo in range(0, R, step):
        wr = Wr[rows, lo: lo + step].T
        wr = wr / wr.sum(axis=1, keepdims=True)
        start = np.repeat(beta[None, :], wr.shape[0], axis=0)
        betas[lo: lo + step] = _irls(Xr, yr, wr, fam, start, precond=T)[0]
    return replicate_vcov(design, beta, betas.T)


def glm(design: Design, formula: str, family: Family = "gaussian", *,
        mask: np.ndarray | None = None, level: float = 0.95) -> Estimate:
    """Design-weighted regression: linear, logistic or log-linear (R's ``svyglm``).

    Parameters
    ----------
    design
        The sample design (linearisation or replicate weights).
    formula
        ``"y ~ x1 + x2"``. Text, categorical and boolean columns, and any column
        wrapped in ``C()``, enter as treatment contrasts against their first level
        (R's default coding, levels sorted); ``a:b`` is an interaction and ``a*b``
        adds both main effects too; ``- 1`` or ``+ 0`` drops the intercept.
    family
        ``"gaussian"`` (identity link), ``"binomial"`` (logit link, fitted as R's
        ``quasibinomial`` so non-integer weights are fine; the response is 0/1,
        boolean, or a two-level column modelled as the second level), or
        ``"poisson"`` (log link, as ``quasipoisson``).
    mask
        Fit within a domain (R's ``subset=``): rows outside keep their place in the
        design with zero weight. Rows with a missing value are a domain too.
    level
        Confidence level of the t intervals.

    Returns
    -------
    Estimate
        ``statistic="coefficient"``: columns ``variable`` (the response), ``term``,
        ``estimate``, ``se``, ``t``, ``p``, ``df`` (residual df), ``deff`` (NaN), ``n``,
        and the full covariance matrix in ``vcov``. Use :func:`glm_fit` for
        predictions and influence values.

    Notes
    -----
    The coefficients solve the weighted score equations
    ``sum_i w_i x_i (y_i - mu_i) / V(mu_i) g'(mu_i) = 0``. With ``A`` the weighted
    information at the solution and ``u_i`` the score contributions, the
    covariance is ``A^{-1} Var(sum u_i) A^{-1}``, the variance taken over the design
    (strata, clusters, fpc, calibrations), which R computes with ``svyrecvar``. t
    statistics use ``degf(design) + 1 - p`` degrees of freedom.

    References
    ----------
    Binder, D. A. (1983). On the variances of asymptotically normal estimators from
    complex surveys. *International Statistical Review* 51, 279-292.
    Lumley (2010), chapter 5. Lumley, T. and Scott, A. (2017). Fitting regression
    models to survey data. *Statistical Science* 32, 265-278.
    """
    return glm_fit(design, formula, family, mask=mask).estimate(level)
