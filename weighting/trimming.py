"""Trimming extreme weights, with the trimmed amount shared among the other units."""

from __future__ import annotations

import numpy as np

from survey.design import Design
from survey.errors import WeightingError
from weighting._common import new_design

__all__ = ["trim"]


def _trim_pass(w: np.ndarray, lower: float, upper: float, active: np.ndarray) -> tuple[np.ndarray, bool]:
    """One pass of R's ``trimWeights`` on the columns of w (n,) or (n, R).

    Weights outside [lower, upper] are set to the bound; the total trimmed is added
    in equal parts to the active weights that were inside.
    """
    outside = ((w < lower) | (w > upper)) & active
    if not outside.any():
        return w, False
    new = np.clip(w, lower, upper)
    new = np.where(active, new, w)
    trimmed = (w - new).sum(axis=0)
    inside = ~outside & active
    k = inside.sum(axis=0)
    if np.any(k == 0):
        raise WeightingError(f"every weight is outside [{lower:g}, {upper:g}]: nothing to redistribute to",
                             hint="widen the bounds")
    return np.where(inside, new + trimmed / k, new), True


def trim(design: Design, lower: float | None = None, upper: float | None = None, *,
         strict: bool = False, max_iter: int = 1000, name: str = "w_trimmed") -> Design:
    """Trim weights to ``[lower, upper]`` and share the excess among the other units.

    Parameters
    ----------
    design
        The design to adjust (linearisation or replicate). Zero weights (units set
        aside by earlier steps) are left alone and receive nothing.
    lower, upper
        Bounds on the weights themselves (not on adjustment factors); either may be
        omitted.
    strict
        Repeat until no weight is outside the bounds (the redistribution can push
        units over a bound again); one pass otherwise. R's ``trimWeights``.
    max_iter
        Passes before giving up under ``strict``.
    name
        Name of the new weight column.

    Returns
    -------
    Design
        The trimmed weights; their sum is unchanged. Earlier calibrations stay on
        the design (as in R), so linearised SEs still use the calibration residuals;
        replicate weights are trimmed replicate by replicate.

    Notes
    -----
    As R's ``trimWeights``, the trimmed amount is added *equally* (not
    proportionally) to the weights inside the bounds. Trimming trades bias for
    variance; a calibration after trimming restores the control totals.

    References
    ----------
    Potter, F. (1990). A study of procedures to identify and trim extreme sampling
    weights. *Proc. Survey Research Methods Section*, ASA, 225-230.
    Valliant, Dever and Kreuter (2018), section 14.4.
    """
    lo = -np.inf if lower is None else float(lower)
    hi = np.inf if upper is None else float(upper)
    if not lo < hi:
        raise WeightingError(f"trimming bounds ({lo:g}, {hi:g}): lower must be below upper")
    w = design.w
    active = w > 0
    total = w.sum()
    n_act = int(active.sum())
    if n_act and not (lo * n_act <= total <= hi * n_act):
        raise WeightingError(
            f"no weights in [{lo:g}, {hi:g}] can add up to the total {total:.10g} over {n_act} units "
            f"(the mean weight is {total / n_act:.6g})", hint="choose bounds around the mean weight")
    out = _run(w, lo, hi, strict, max_iter)
    rep = None
    if design.replicates is not None:
        # each replicate on its own units: PSUs a replicate deletes (weight 0) stay out
        rep = _run(design.replicates.weights, lo, hi, strict, max_iter)
    return new_design(design, out, name, replicate_values=rep)


def _run(w: np.ndarray, lo: float, hi: float, strict: bool, max_iter: int) -> np.ndarray:
    active = w > 0
    w, changed = _trim_pass(w, lo, hi, active)
    it = 1
    while strict and changed:
        if it >= max_iter:
            raise WeightingError(f"strict trimming did not settle in {max_iter} passes",
                                 hint="widen the bounds")
        w, changed = _trim_pass(w, lo, hi, active)
        it += 1
    return w
