"""Design-based tests: two-group t test and tests of association in a two-way table.

``ttest`` is R ``survey``'s ``svyttest``: the difference of two domain means as the
slope of a weighted regression on a group indicator, with the design degrees of
freedom. ``chisq`` is ``svychisq``: Pearson's statistic on the weighted table,
corrected for the design by Rao and Scott's first- or second-order adjustment, or a
Wald test of independence on the estimated cell totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from analysis._prep import check_column
from analysis.estimators import mean
from analysis.glm import glm_fit
from survey.design import Design
from survey.errors import EstimationError
from survey.variance import linearized_vcov, replicate_vcov

__all__ = ["TestResult", "chisq", "ttest"]


@dataclass(frozen=True)
class TestResult:
    """The result of a design-based test (what R's ``htest`` holds).

    ``df`` is ``(df,)`` for t and chi-square statistics and ``(ndf, ddf)`` for F.
    ``estimate`` and ``conf_int`` are set by :func:`ttest`; ``pearson`` (the
    unadjusted Pearson X^2 on the table scaled to the sample size) by :func:`chisq`.
    """

    __test__ = False  # not a pytest class

    method: str
    statistic_name: str
    statistic: float
    df: tuple[float, ...]
    p_value: float
    estimate: float | None = None
    conf_int: tuple[float, float] | None = None
    pearson: float | None = None

    def to_frame(self) -> pd.DataFrame:
        """One-row table: method, statistic, df (or ndf, ddf), p_value, estimate, ci."""
        row: dict[str, object] = {"method": self.method, "statistic_name": self.statistic_name,
                                  "statistic": self.statistic}
        if len(self.df) == 2:
            row["ndf"], row["ddf"] = self.df
        else:
            row["df"] = self.df[0]
        row["p_value"] = self.p_value
        if self.estimate is not None:
            row["estimate"] = self.estimate
        if self.conf_int is not None:
            row["ci_low"], row["ci_high"] = self.conf_int
        return pd.DataFrame([row])


def ttest(design: Design, variable: str, group: str | None = None, *,
          mask: np.ndarray | None = None, level: float = 0.95) -> TestResult:
    """Design-based t test of a difference in means between two groups (``svyttest``).

    Parameters
    ----------
    design
        The sample design.
    variable
        Numeric outcome.
    group
        A column with exactly two values (text, boolean, or numbers such as 0/1).
        The estimate is the mean of the second level minus that of the first
        (levels sorted). ``None``: a one-sample test that the mean is zero.
    mask
        Test within a domain.
    level
        Confidence level of the interval for the difference.

    Notes
    -----
    The difference is the slope of the weighted least-squares regression of the
    outcome on the group indicator, whose design-based (sandwich) SE accounts for
    the covariance of the two domain means. The t statistic has
    ``degf(design) - 1`` degrees of freedom. Rows missing the outcome or the group
    are a domain, not dropped from the design.

    References
    ----------
    Lumley (2010), section 5.2 (``svyttest``); Binder (1983).
    """
    check_column(design, variable)
    if group is None:
        est = mean(design, variable, mask=mask)
        m, se = float(est.estimate[0]), float(est.se[0])
        df = design.degf(mask) - 1
        method = "Design-based one-sample t-test"
    else:
        g = check_column(design, group, "group")
        levels = g.dropna().unique()
        if len(levels) != 2:
            raise EstimationError(f"the group must have two values, found {len(levels)}",
                                  column=group, hint="choose a two-level column, or build one")
        d2 = design.map(lambda df: df.assign(_ttest_y=df[variable], _ttest_g=df[group]))
        fit = glm_fit(d2, "_ttest_y ~ C(_ttest_g)", "gaussian", mask=mask)
        m, se, df = float(fit.coef[1]), float(fit.se[1]), fit.df_residual
        method = "Design-based t-test"
    t = m / se
    p = float(2 * stats.t.sf(abs(t), df)) if df > 0 else float("nan")
    q = stats.t.ppf(0.5 + level / 2, df) if df > 0 else float("nan")
    return TestResult(method=method, statistic_name="t", statistic=t, df=(float(df),), p_value=p,
                      estimate=m, conf_int=(m - q * se, m + q * se))


def _codes(design: Design, col: str, inset: np.ndarray) -> tuple[np.ndarray, list]:
    s = check_column(design, col)
    if s[inset].isna().all():
        raise EstimationError("the column has only missing values", column=col)
    codes, uniq = pd.factorize(s, sort=True)
    # levels of the rows in use, in sorted order (R: factor of the data)
    used = np.unique(codes[inset & (codes >= 0)])
    remap = np.full(len(uniq) + 1, -1)
    remap[used] = np.arange(len(used))
    return remap[codes], [uniq[i] for i in used]


def chisq(design: Design, row: str, col: str, statistic: Literal["F", "Chisq", "Wald", "adjWald"] = "F",
          *, mask: np.ndarray | None = None) -> TestResult:
    """Test of association in a two-way table under the design (``svychisq``).

    Parameters
    ----------
    design
        The sample design.
    row, col
        The two categorical columns. Rows missing either are a domain (R's
        ``na.rm = TRUE``).
    statistic
        ``"F"`` (default): Pearson's X^2 with Rao and Scott's second-order
        correction, referred to an F distribution with ``d0`` and ``d0 nu`` df;
        ``"Chisq"``: Pearson's X^2 with the first-order (mean design effect)
        correction, referred to chi-square with ``(r-1)(c-1)`` df; ``"Wald"`` and
        ``"adjWald"``: Wald tests of the interaction cell totals (Koch et al. 1975),
        the latter with Fellegi's adjustment of the denominator df.
    mask
        Test within a domain.

    Returns
    -------
    TestResult
        ``statistic`` as R reports it (for ``"Chisq"`` the unadjusted X^2; the
        p-value uses X^2 divided by the mean generalised design effect), ``df``,
        ``p_value``, and the unadjusted ``pearson`` statistic.

    Notes
    -----
    With ``P`` the estimated cell proportions and ``V`` their design-based
    covariance, the generalised design effects are the eigenvalues of
    ``Delta = (C' D^{-1} C / N)^{-1} C' D^{-1} V D^{-1} C`` with ``C`` a basis of the
    interaction contrasts and ``D = diag(P)``. X^2 on the weighted table (scaled to
    the sample size ``N``) is divided by ``trace(Delta)``; ``d0 = trace(Delta)^2 /
    trace(Delta^2)``; ``nu`` is the design df (PSUs minus strata).

    References
    ----------
    Rao, J. N. K. and Scott, A. J. (1984). On chi-squared tests for multiway
    contingency tables with cell proportions estimated from survey data. *Annals
    of Statistics* 12, 46-60. Lumley (2010), section 6.1.
    """
    if statistic not in ("F", "Chisq", "Wald", "adjWald"):
        raise EstimationError(f"statistic={statistic!r} is not one of F, Chisq, Wald, adjWald")
    n = design.n
    inset = np.ones(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if inset.shape != (n,):
        raise EstimationError(f"mask has shape {inset.shape}, expected ({n},)")
    rc, rlev = _codes(design, row, inset)
    cc, clev = _codes(design, col, inset)
    nr, nc = len(rlev), len(clev)
    if nr < 2 or nc < 2:
        which = row if nr < 2 else col
        raise EstimationError("a test of association needs at least two values in each column",
                              column=which, hint="this column has one value in the rows tested")
    ok = inset & (rc >= 0) & (cc >= 0)
    cell = np.where(ok, rc + nr * cc, -1)  # R's interaction(): row level varies fastest
    K = nr * nc
    rep = design.replicates
    N = int(inset.sum()) if (rep is not None and mask is not None) else n
    nu = design.degf(mask) if rep is not None else \
        design.stages[0].n_unit_total - design.stages[0].n_groups
    w = np.where(ok, design.w, 0.0)
    rows = np.flatnonzero(ok)
    M = sp.csr_matrix((np.ones(len(rows)), (rows, cell[rows])), shape=(n, K))
    tab = np.asarray(M.T @ w)  # weighted cell totals, (K,)
    obs = tab * N / tab.sum()
    table = obs.reshape(nc, nr).T
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    pearson = float(((table - expected) ** 2 / expected).sum())
    if statistic in ("Wald", "adjWald"):
        return _wald(design, M, w, ok, nr, nc, nu, statistic, pearson)
    P = tab / tab.sum()
    if rep is None:
        z = np.where(ok[:, None], w[:, None] * (M.toarray() - P) / tab.sum(), 0.0)
        V = linearized_vcov(design, z)
    else:
        Wr = np.where(ok[:, None], rep.weights, 0.0)
        reps = np.asarray(M.T @ Wr) / Wr.sum(axis=0)
        V = replicate_vcov(design, P, reps)
    grid_r, grid_c = np.tile(np.arange(nr), nc), np.repeat(np.arange(nc), nr)
    X1 = np.column_stack([np.ones(K), *(grid_r == i for i in range(1, nr)),
                          *(grid_c == j for j in range(1, nc))]).astype(float)
    inter = np.column_stack([(grid_r == i) & (grid_c == j) for j in range(1, nc)
                             for i in range(1, nr)]).astype(float)
    C = inter - X1 @ np.linalg.lstsq(X1, inter, rcond=None)[0]
    with np.errstate(divide="ignore"):
        idm = np.where(P == 0, 0.0, 1 / P)
    denom = C.T @ (idm[:, None] / N * C)
    numr = (C * idm[:, None]).T @ V @ (idm[:, None] * C)
    delta = np.linalg.solve(denom, numr)
    tr = np.trace(delta)
    d0 = tr * tr / np.trace(delta @ delta)
    if statistic == "F":
        f = pearson / tr
        return TestResult("Pearson's X^2: Rao & Scott adjustment", "F", f, (d0, d0 * nu),
                          float(stats.f.sf(f, d0, d0 * nu)), pearson=pearson)
    k = delta.shape[1]
    return TestResult("Pearson's X^2: Rao & Scott adjustment", "X-squared", pearson, (float(k),),
                      float(stats.chi2.sf(pearson / (tr / k), k)), pearson=pearson)


def _wald(design: Design, M: sp.csr_matrix, w: np.ndarray, ok: np.ndarray, nr: int, nc: int,
          nu: float, statistic: str, pearson: float) -> TestResult:
    """Wald test that the cell totals equal row total x column total / total."""
    K = nr * nc
    cells = M.toarray()
    grid_r, grid_c = np.tile(np.arange(nr), nc), np.repeat(np.arange(nc), nr)
    # totals of: cells, rows, columns, one (R's svytotal(~mm + mr + mc + one))
    G = np.column_stack([np.eye(K), (grid_r[:, None] == np.arange(nr)),
                         (grid_c[:, None] == np.arange(nc)), np.ones(K)]).astype(float)
    vals = np.where(ok[:, None], cells @ G, 0.0)
    tot = w @ vals
    rep = design.replicates
    if rep is None:
        V = linearized_vcov(design, w[:, None] * vals)
    else:
        V = replicate_vcov(design, tot, vals.T @ rep.weights)
    rt, ct, T = tot[K: K + nr], tot[K + nr: K + nr + nc], tot[-1]
    J = np.column_stack([np.eye(K), -(grid_r[:, None] == np.arange(nr)).astype(float) * (ct[grid_c] / T)[:, None],
                         -(grid_c[:, None] == np.arange(nc)).astype(float) * (rt[grid_r] / T)[:, None],
                         (rt[grid_r] * ct[grid_c]) / T ** 2])
    Y = tot[:K] - rt[grid_r] * ct[grid_c] / T
    VY = J @ V @ J.T
    use = np.flatnonzero((grid_r > 0) & (grid_c > 0))
    stat = float(Y[use] @ np.linalg.solve(VY[np.ix_(use, use)], Y[use]))
    numdf = (nr - 1) * (nc - 1)
    if statistic == "Wald":
        stat, ddf = stat / numdf, nu
    else:
        ddf = nu - numdf + 1
        stat = stat * ddf / (numdf * nu)
    return TestResult("Design-based Wald test of association", "F", stat, (float(numdf), float(ddf)),
                      float(stats.f.sf(stat, numdf, ddf)), pearson=pearson)
