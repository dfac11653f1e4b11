"""Replicate weights from a linearisation design: JK1, JKn, BRR, Fay, bootstrap.

Each method builds one (PSU x replicate) matrix of adjustment factors with array
operations and expands it to rows by indexing with the PSU code: ``W = w[:, None] *
F[psu]``. Replicates are ordered as R's ``as.svrepdesign`` orders them (strata and
PSUs in order of first appearance), so replicate weights compare column by column.
Only stage 1 is used (ultimate clusters), as in R.
"""

from __future__ import annotations

import numpy as np

from survey.design import Design
from survey.errors import DesignError
from survey.replicates import ReplicateInfo

__all__ = ["hadamard", "make_replicates"]

_METHODS = ("jk1", "jkn", "brr", "fay", "bootstrap")


def _is_prime(q: int) -> bool:
    return q > 1 and all(q % d for d in range(2, int(q**0.5) + 1))


def _paley(q: int) -> np.ndarray:
    """Paley construction I: a Hadamard matrix of order q + 1 for a prime q = 3 mod 4."""
    r = np.arange(q)
    square = np.zeros(q, dtype=bool)
    square[(r[1:] ** 2) % q] = True
    chi = np.where(square, 1, -1)
    chi[0] = 0
    S = np.zeros((q + 1, q + 1), dtype=int)
    S[0, 1:] = 1
    S[1:, 0] = -1
    S[1:, 1:] = chi[(r[None, :] - r[:, None]) % q]
    return _normalise(S + np.eye(q + 1, dtype=int))


def _normalise(H: np.ndarray) -> np.ndarray:
    H = H * H[0][None, :]  # first row all +1
    return H * H[:, 0][:, None]  # first column all +1


def hadamard(n_strata: int) -> np.ndarray:
    """A normalised Hadamard matrix (entries +-1) of the smallest order > ``n_strata``
    among Sylvester (powers of 2) and Paley (prime + 1) orders.

    Row 0 is all +1 and is not used; strata take rows 1..H, replicates are columns.
    """
    need = n_strata + 1
    order = 1
    while order < need:
        order *= 2
    best = ("sylvester", order)
    q = need - 1
    while q + 1 < best[1]:
        if q >= 3 and q % 4 == 3 and _is_prime(q):
            best = ("paley", q + 1)
            break
        q += 1
    if best[0] == "paley":
        return _paley(best[1] - 1)
    H = np.array([[1]])
    while H.shape[0] < best[1]:
        H = np.block([[H, H], [H, -H]])
    return H


def _appearance_order(codes: np.ndarray) -> np.ndarray:
    """The distinct codes in order of first appearance."""
    _, first = np.unique(codes, return_index=True)
    return codes[np.sort(first)]


def _finish(design: Design, method: str, F: np.ndarray, unit: np.ndarray, scale: float,
            rscales: np.ndarray, mse: bool, rho: float | None = None) -> Design:
    R = F.shape[1]
    # R's degf is the rank of the weights minus 1. For a delete-one jackknife it is known:
    # each stratum's columns sum to n_h times the ones vector, so rank(F) = 1 + sum(n_h - 1)
    # and degf = PSUs - strata, the design's own, when every stratum has 2+ PSUs and every
    # weight is positive. Otherwise it is computed from F (a pivoted QR) when first needed.
    st = design.stages[0]
    known = method in ("jk1", "jkn") and (st.n_units >= 2).all() and (design.w > 0).all()
    # kept as PSU-level factors: estimators take replicate totals from PSU totals and
    # the rows x replicates matrix is built only when something asks for it
    info = ReplicateInfo(method=method, matrix=None, scale=float(scale), rscales=np.asarray(rscales, float),
                         mse=mse, columns=tuple(f"repw_{i + 1}" for i in range(R)), rho=rho,
                         degf_value=design.degf() if known else None,
                         factors=np.asarray(F, dtype=float), unit=np.asarray(unit), base_w=design.w.copy())
    return design._evolve(replicates=info)


def make_replicates(design: Design, method: str = "jkn", *, replicates: int | None = None,
                    rng: np.random.Generator | int | None = None, rho: float | None = None,
                    hadamard_matrix: np.ndarray | None = None, mse: bool = False) -> Design:
    """Convert a design to replicate weights (R's ``as.svrepdesign``).

    Parameters
    ----------
    design
        A linearisation design (strata, PSUs at stage 1, optional fpc).
    method
        ``"jk1"`` (delete-one-PSU jackknife, unstratified designs), ``"jkn"``
        (delete one PSU within its stratum), ``"brr"`` (balanced repeated
        replication, Hadamard; exactly two PSUs per stratum), ``"fay"`` (BRR with
        Fay's ``rho``) or ``"bootstrap"`` (Rao-Wu rescaling bootstrap).
    replicates
        Number of bootstrap replicates (default 500).
    rng
        Random generator (or seed) for the bootstrap; required for it.
    rho
        Fay's coefficient in [0, 1) for ``"fay"`` (default 0.5).
    hadamard_matrix
        A Hadamard matrix to use for BRR/Fay (entries of two values, at least
        strata + 1 rows; R's ``hadamard.matrix``). Default: Sylvester or Paley.
    mse
        Centre replicate variances at the full-sample estimate (True) or at the
        replicate mean (False, R's default).

    Returns
    -------
    Design
        The same design carrying replicate weights (n x R) and the variance
        multipliers.

    Notes
    -----
    JK1: ``scale = (1 - f)(n - 1)/n``. JKn: ``rscales_r = (1 - f_h)(n_h - 1)/n_h`` for the
    stratum of the deleted PSU; strata sampled completely (``f_h = 1``) give no
    replicate; single-PSU strata follow ``design.lonely_psu`` as R's ``jknweights``.
    BRR/Fay: replicate factors ``2 - rho`` and ``rho`` for the half-samples chosen by
    the rows of a Hadamard matrix, ``scale = 1/(R (1 - rho)^2)``; fpc is not used.
    Bootstrap: in stratum h draw ``m_h = n_h - 1`` PSUs with replacement, PSU i drawn
    ``m_hi`` times; factor ``1 - l + l (n_h/m_h) m_hi`` with ``l = sqrt(m_h (1 - f_h)/(n_h - 1))``
    (Rao and Wu 1988; without fpc this is R's ``subbootweights``); ``scale = 1/(R - 1)``.

    References
    ----------
    Wolter, K. (2007). *Introduction to Variance Estimation*, 2nd ed., ch. 3-5.
    Rao, J. N. K. and Wu, C. F. J. (1988). Resampling inference with complex survey
    data. *JASA* 83, 231-241.
    Judkins, D. (1990). Fay's method for variance estimation. *J. Off. Stat.* 6, 223-239.
    """
    method = str(method).lower()
    if method not in _METHODS:
        raise DesignError(f"replicate method {method!r} is not one of {', '.join(_METHODS)}")
    if design.replicates is not None:
        raise DesignError("the design already has replicate weights",
                          hint="make replicates from the linearisation design")
    st = design.stages[0]
    unit, group = st.unit, st.group
    U = st.n_unit_total
    n_h = st.n_units
    f_h = st.fpc_factor  # 1 - n/N, 1 without fpc
    has_strata = design.strata and design.strata[0] is not None
    if method == "jk1":
        if has_strata and st.n_groups > 1:
            raise DesignError("JK1 is for unstratified designs; this design has strata",
                              column=design.strata[0], hint='use method="jkn"')
        order = _appearance_order(unit)
        n = len(order)
        F = np.full((U, n), n / (n - 1))
        F[order, np.arange(n)] = 0.0
        return _finish(design, "jk1", F, unit, f_h[0] * (n - 1) / n, np.ones(n), mse)
    if method == "jkn":
        return _jkn(design, unit, group, U, n_h, f_h, mse)
    if method in ("brr", "fay"):
        rho = (0.5 if method == "fay" else 0.0) if rho is None else float(rho)
        if not 0 <= rho < 1:
            raise DesignError(f"rho={rho} must be in [0, 1)")
        return _brr(design, unit, group, U, n_h, rho, hadamard_matrix, mse)
    return _bootstrap(design, unit, group, U, n_h, f_h, replicates, rng, mse)


def _jkn(design, unit, group, U, n_h, f_h, mse) -> Design:
    st = design.stages[0]
    lonely = design.lonely_psu
    psu_order = _appearance_order(unit)
    strata_order = _appearance_order(group)
    # replicate order: strata by first appearance, PSUs by first appearance within
    rank_stratum = np.empty(st.n_groups, dtype=np.int64)
    rank_stratum[strata_order] = np.arange(st.n_groups)
    psu_pos = np.empty(U, dtype=np.int64)
    psu_pos[psu_order] = np.arange(U)
    g_of = st.unit_group
    keyed = np.lexsort((psu_pos, rank_stratum[g_of]))  # PSUs in replicate order
    single = (n_h == 1) & (f_h > 0)
    if single.any() and lonely == "fail":
        g = int(np.flatnonzero(single)[0])
        raise DesignError("stratum has only one PSU: JKn cannot delete it", stratum=st.group_labels[g],
                          hint='collapse strata or set lonely_psu on the design')
    # a PSU gives a replicate unless its stratum is sampled completely or is a lonely
    # stratum dropped by the policy (R's jknweights)
    gives = (f_h[g_of] > 0) & ~(single[g_of] & (lonely != "adjust"))
    reps = keyed[gives[keyed]]
    R = len(reps)
    if R == 0:
        raise DesignError("every stratum was sampled completely: no replicate to make",
                          hint="with fpc equal to the sample size there is no sampling variance")
    rg = g_of[reps]
    same = g_of[:, None] == rg[None, :]
    factor = np.where(single[rg], 0.0, n_h[rg] / np.maximum(n_h[rg] - 1, 1))
    F = np.where(same, factor[None, :], 1.0)
    F[reps, np.arange(R)] = 0.0
    rscales = f_h[rg] * (n_h[rg] - 1) / n_h[rg]
    if lonely == "adjust" and single.any():
        S = st.n_groups
        lone = single[rg]
        F[:, lone] = np.where(same[:, lone], 0.0, S / (S - 1))
        rscales = np.where(lone, (S - 1) / S, rscales)
    scale = U / R if lonely == "average" and R < U else 1.0
    return _finish(design, "jkn", F, unit, scale, rscales, mse)


def _brr(design, unit, group, U, n_h, rho, H, mse) -> Design:
    st = design.stages[0]
    bad = np.flatnonzero(n_h != 2)
    if len(bad):
        g = int(bad[0])
        raise DesignError(
            f"BRR needs exactly 2 PSUs per stratum; this stratum has {int(n_h[g])} "
            f"({len(bad)} such strata)", stratum=st.group_labels[g],
            hint='pair PSUs into pseudo-strata of two, or use method="jkn" or "bootstrap"')
    G = st.n_groups
    if H is None:
        H = hadamard(G)
    else:
        H = np.asarray(H)
        if len(np.unique(H)) != 2 or H.shape[0] < G + 1:
            raise DesignError(f"hadamard_matrix must have two distinct values and at least {G + 1} "
                              f"rows, got shape {H.shape}")
    # within a stratum the first PSU (in order of appearance) is half 1; strata take
    # rows 1..G of H in the order of their (sorted) codes, as R's brrweights
    psu_pos = np.empty(U, dtype=np.int64)
    psu_pos[_appearance_order(unit)] = np.arange(U)
    g_of = st.unit_group
    order = np.lexsort((psu_pos, g_of))
    first = np.zeros(U, dtype=bool)
    first[order[::2]] = True
    sign = H[1 + g_of, :]  # (U, R)
    # H entry "low" (R's 0) -> first PSU gets rho, second 2 - rho
    low = sign == H.min()
    in_half = np.where(first[:, None], ~low, low)
    F = np.where(in_half, 2.0 - rho, rho)
    R = H.shape[1]
    method = "fay" if rho > 0 else "brr"
    return _finish(design, method, F, unit, 1.0 / (R * (1 - rho) ** 2), np.ones(R), mse,
                   rho=rho if rho > 0 else None)


def _bootstrap(design, unit, group, U, n_h, f_h, replicates, rng, mse) -> Design:
    st = design.stages[0]
    if rng is None:
        raise DesignError("the bootstrap needs rng= (a numpy Generator or a seed)",
                          hint="pass rng=np.random.default_rng(2024) so replicates can be reproduced")
    rng = np.random.default_rng(rng)
    R = 500 if replicates is None else int(replicates)
    if R < 2:
        raise DesignError(f"replicates={R}: the bootstrap needs at least 2")
    single = n_h < 2
    if single.any():
        g = int(np.flatnonzero(single)[0])
        raise DesignError("stratum has one PSU: the bootstrap cannot resample it",
                          stratum=st.group_labels[g], hint="collapse strata first")
    g_of = st.unit_group
    order = np.argsort(g_of, kind="stable")  # PSUs grouped by stratum
    offset = np.concatenate([[0], np.cumsum(n_h)[:-1]]).astype(np.int64)
    m_h = (n_h - 1).astype(np.int64)
    slot_stratum = np.repeat(np.arange(st.n_groups), m_h)  # one slot per draw
    u = rng.random((len(slot_stratum), R))
    pick = offset[slot_stratum][:, None] + np.floor(u * n_h[slot_stratum][:, None]).astype(np.int64)
    key = pick + U * np.arange(R)[None, :]
    counts = np.bincount(key.ravel(), minlength=U * R).reshape(R, U).T  # sorted-PSU x R
    m = np.empty((U, R))
    m[order] = counts
    lam = np.sqrt(m_h * f_h / (n_h - 1))[g_of][:, None]
    F = 1 - lam + lam * (n_h / m_h)[g_of][:, None] * m
    return _finish(design, "bootstrap", F, unit, 1.0 / (R - 1), np.ones(R), mse)
