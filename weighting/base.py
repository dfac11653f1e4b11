"""Base weights from per-stage selection probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd

from survey.design import Design
from survey.errors import WeightingError
from weighting._common import new_design

__all__ = ["base_weights"]


def _prob(design: Design, col: str) -> np.ndarray:
    if col not in design.data.columns:
        raise WeightingError("selection-probability column not found in the data", column=col,
                             hint="the sampling stage records pi1 per EA and pi2 per household")
    s = design.data[col]
    if not pd.api.types.is_numeric_dtype(s):
        raise WeightingError(f"probabilities must be numeric, got dtype {s.dtype}", column=col)
    p = s.to_numpy(dtype=float, na_value=np.nan)
    bad = ~((p > 0) & (p <= 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise WeightingError(
            f"{int(bad.sum())} probabilit(ies) outside (0, 1] (first: {p[i]!r})", column=col, row=i + 1,
            hint="an inclusion probability is in (0, 1]; units with pi > 1 are certainty units (pi = 1)")
    return p


def base_weights(design: Design, pi1: str = "pi1", pi2: str | None = "pi2", *,
                 frame_total: float | None = None, z: float = 3.0, name: str = "w_base") -> Design:
    """Base weights ``1 / (pi1 * pi2)`` from per-stage inclusion probabilities.

    Parameters
    ----------
    design
        The sample design (strata and EAs as PSUs); its current weights are used
        only for the check against the frame.
    pi1, pi2
        Columns of the EA (stage 1) and household-within-EA (phase 2, by migration
        group: ``m_hig / L_hig``) inclusion probabilities. ``pi2=None`` for one stage.
    frame_total
        The frame's household count. When given, the sum of the base weights (the
        Horvitz-Thompson estimate of the number of households) must lie within ``z``
        design-based standard errors of it, else a :class:`WeightingError`.
    name
        Name of the new weight column.

    Returns
    -------
    Design
        A design whose weights are the base weights.

    Notes
    -----
    ``w = 1/(pi1 pi2) = (M_h / (n_h M_hi)) (L_hig / m_hig)`` (DOMAIN.md). The check uses
    the linearised SE of the estimated total count under the design.

    References
    ----------
    Horvitz, D. G. and Thompson, D. J. (1952). *JASA* 47, 663-685.
    Valliant, Dever and Kreuter (2018), ch. 13.1.
    """
    p = _prob(design, pi1)
    if pi2 is not None:
        p = p * _prob(design, pi2)
    w = 1.0 / p
    out = new_design(design, w, name)
    if frame_total is not None:
        from survey.variance import linearized_variance

        est = float(w.sum())
        se = float(np.sqrt(linearized_variance(out, w[:, None], calibrate=False)[0]))
        if abs(est - frame_total) > z * se + 1e-9 * frame_total:
            raise WeightingError(
                f"base weights sum to {est:,.1f} households but the frame has {frame_total:,.1f} "
                f"(difference {est - frame_total:+,.1f}, {z:g} SE = {z * se:,.1f})",
                column=pi1, hint="check pi1/pi2 (L_hig, m_hig per household, M_hi per EA) against "
                                 "the frame and the listing")
    return out
