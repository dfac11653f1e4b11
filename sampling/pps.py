"""Selection kernels on arrays: inclusion probabilities with certainty units and
fixed-size without-replacement designs (PPS systematic, Brewer, Sampford, SRS).

All kernels take units already sorted by stratum (``codes`` non-decreasing, one
stratum a contiguous block, units in their within-stratum order) and draw every
stratum at once: loops run over draws, never over units.
"""

from __future__ import annotations

import numpy as np

__all__ = ["brewer", "pps_probabilities", "sampford", "srs", "systematic"]


def _bounds(codes: np.ndarray, n_strata: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) positions of each stratum's block."""
    counts = np.bincount(codes, minlength=n_strata)
    end = np.cumsum(counts)
    return end - counts, end


def pps_probabilities(
    size: np.ndarray, codes: np.ndarray, n_h: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Inclusion probabilities ``n_h M_hi / M_h`` with certainty units found iteratively.

    A unit whose probability reaches 1 is taken with certainty; the stratum's
    remaining allocation is spread over the other units in proportion to size, and
    this is repeated until no probability exceeds 1.

    Returns
    -------
    pi, certainty
        Probabilities (1 for certainty units) and the certainty flag.
    """
    size = np.asarray(size, dtype=float)
    H = len(n_h)
    cert = np.zeros(size.shape, dtype=bool)
    while True:
        free = ~cert
        total = np.bincount(codes, weights=np.where(free, size, 0.0), minlength=H)
        rest = n_h - np.bincount(codes, weights=cert.astype(float), minlength=H)
        with np.errstate(divide="ignore", invalid="ignore"):
            pi = np.where(cert, 1.0, rest[codes] * size / total[codes])
        pi = np.nan_to_num(pi, nan=0.0)
        new = free & (pi >= 1 - 1e-12)
        if not new.any():
            return pi, cert
        cert = cert | new


def systematic(
    pi: np.ndarray, codes: np.ndarray, n_rest: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """PPS systematic selection (Madow 1949) with one random start per stratum.

    ``pi`` are the non-certainty probabilities (0 for units not to be drawn), summing
    to the integer ``n_rest[h]`` in each stratum. Cumulated probabilities are laid end
    to end across strata (stratum h occupies ``(O_h, O_h + n_h]``), the points
    ``O_h + u_h + k`` are located with one ``searchsorted``.

    Returns
    -------
    numpy.ndarray
        Positions of the selected units, in order of selection within each stratum.
    """
    H = len(n_rest)
    start, end = _bounds(codes, H)
    cs = np.cumsum(pi)
    before = np.where(start > 0, cs[np.maximum(start - 1, 0)], 0.0)
    within = cs - before[codes]
    tot = np.where(end > start, within[np.maximum(end - 1, 0)], 0.0)
    scale = np.divide(n_rest, tot, out=np.zeros(H), where=tot > 0)
    offset = np.concatenate([[0], np.cumsum(n_rest)[:-1]]).astype(float)
    grid = within * scale[codes] + offset[codes]
    which = np.repeat(np.arange(H), n_rest)
    k = np.arange(which.size) - np.repeat(np.cumsum(n_rest) - n_rest, n_rest)
    u = rng.random(H)
    points = offset[which] + u[which] + k
    idx = np.searchsorted(grid, points, side="left")
    return np.clip(idx, start[which], end[which] - 1)


def _draw_one(
    weights: np.ndarray,
    codes: np.ndarray,
    active: np.ndarray,
    rng: np.random.Generator,
    H: int,
    start: np.ndarray,
    end: np.ndarray,
) -> np.ndarray:
    """One unit per active stratum with probability proportional to ``weights``."""
    cs = np.cumsum(weights)
    before = np.where(start > 0, cs[np.maximum(start - 1, 0)], 0.0)
    tot = np.where(end > start, cs[np.maximum(end - 1, 0)], 0.0) - before
    h = np.flatnonzero(active)
    target = before[h] + rng.random(h.size) * tot[h]
    idx = np.searchsorted(cs, target, side="right")
    idx = np.clip(idx, start[h], end[h] - 1)
    # never land on a zero-weight unit through rounding at a block edge
    bad = weights[idx] <= 0
    if bad.any():
        for j in np.flatnonzero(bad):  # rare: rounding at the last unit of a block
            cand = np.flatnonzero(weights[start[h[j]] : end[h[j]]] > 0) + start[h[j]]
            idx[j] = cand[-1]
    return idx


def brewer(
    pi: np.ndarray, codes: np.ndarray, n_rest: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Brewer's draw-by-draw method: exact inclusion probabilities ``pi``, fixed size.

    At draw i (of n) a unit k not yet selected is drawn with probability proportional
    to ``pi_k (n - a - pi_k) / (n - a - pi_k (n - i + 1))``, with a the sum of ``pi``
    over the units already drawn. All strata draw at once; the loop is over draws.

    References
    ----------
    Brewer, K. R. W. (1975). A simple procedure for sampling pi-ps wor. *Australian
    Journal of Statistics* 17, 166-172. Tille, Y. (2006). *Sampling Algorithms*,
    section 7.3 (Brewer method).
    """
    H = len(n_rest)
    start, end = _bounds(codes, H)
    taken = np.zeros(pi.shape, dtype=bool)
    used = np.zeros(H)
    picks = []
    n = n_rest.astype(float)
    for i in range(1, int(n_rest.max(initial=0)) + 1):
        active = n_rest >= i
        left = (n - used)[codes]
        denom = left - pi * (n[codes] - i + 1)
        w = np.where(
            taken | (pi <= 0) | ~active[codes], 0.0, pi * (left - pi) / np.maximum(denom, 1e-300)
        )
        idx = _draw_one(w, codes, active, rng, H, start, end)
        taken[idx] = True
        used[np.flatnonzero(active)] += pi[idx]
        picks.append(idx)
    if not picks:
        return np.zeros(0, dtype=np.int64)
    # order within stratum = draw order
    allp = np.concatenate(picks)
    return allp[np.argsort(codes[allp], kind="stable")]


def sampford(
    pi: np.ndarray,
    codes: np.ndarray,
    n_rest: np.ndarray,
    rng: np.random.Generator,
    max_draws: int = 2_000_000,
) -> np.ndarray:
    """Sampford's rejective method: exact inclusion probabilities ``pi``, fixed size.

    The first unit is drawn with probability ``pi_k / n``, the other n - 1 with
    replacement with probability proportional to ``pi_k / (1 - pi_k)``; the sample is
    kept when all n units differ, else drawn again. Candidate samples are drawn in
    vectorised batches per stratum.

    References
    ----------
    Sampford, M. R. (1967). On sampling without replacement with unequal probabilities
    of selection. *Biometrika* 54, 499-513. Tille, Y. (2006), section 7.6.
    """
    H = len(n_rest)
    start, end = _bounds(codes, H)
    out = []
    for h in np.flatnonzero(n_rest > 0):
        n = int(n_rest[h])
        p = pi[start[h] : end[h]]
        pos = np.flatnonzero(p > 0)
        p = p[pos]
        c1 = np.cumsum(p / p.sum())
        q = p / (1 - p)
        c2 = np.cumsum(q / q.sum())
        batch, tried = 64, 0
        while True:
            first = np.searchsorted(c1, rng.random((batch, 1)) * c1[-1], side="right")
            rest = np.searchsorted(c2, rng.random((batch, n - 1)) * c2[-1], side="right")
            s = np.sort(np.minimum(np.concatenate([first, rest], axis=1), len(p) - 1), axis=1)
            ok = (np.diff(s, axis=1) > 0).all(axis=1)
            tried += batch
            if ok.any():
                row = int(np.flatnonzero(ok)[0])
                draw = np.concatenate([first[row], rest[row]])
                out.append(start[h] + pos[np.minimum(draw, len(p) - 1)])
                break
            if tried > max_draws:
                raise RuntimeError(f"Sampford: no distinct sample in {tried} tries")
            batch = min(batch * 4, 65536)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def srs(
    codes: np.ndarray, n_rest: np.ndarray, eligible: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Simple random sampling without replacement of ``n_rest[h]`` eligible units per stratum.

    Sort by stratum and a uniform random key; the first n_h of each stratum are drawn.
    """
    H = len(n_rest)
    key = np.where(eligible, rng.random(codes.size), np.inf)
    order = np.lexsort((key, codes))
    start, _ = _bounds(codes, H)
    rank = np.empty(codes.size, dtype=np.int64)
    rank[order] = np.arange(codes.size) - start[codes[order]]
    chosen = np.flatnonzero((rank < n_rest[codes]) & eligible)
    return chosen[np.lexsort((rank[chosen], codes[chosen]))]
