"""Replicate-weight designs: what R's ``svrepdesign`` holds, and building one.

Generating replicate weights from a linearisation design (jackknife, BRR, Fay,
bootstrap) lives in :mod:`survey.repweights`; this module holds the replicate
information that estimators use and the constructor for user-supplied weights.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from survey.errors import DesignError

__all__ = ["ReplicateInfo", "replicate_design"]

METHODS = ("jk1", "jkn", "brr", "fay", "bootstrap", "other")


@dataclass(frozen=True, eq=False)
class ReplicateInfo:
    """Replicate weights (rows x replicates) and how to turn them into a variance.

    ``variance = scale * sum_r rscales[r] * (theta_r - centre)^2`` where the centre
    is the full-sample estimate when ``mse`` and the replicates' mean otherwise.
    """

    method: str
    weights: np.ndarray  # (n, R) analysis weights, combined with the sampling weights
    scale: float
    rscales: np.ndarray  # (R,)
    mse: bool
    columns: tuple[str, ...] = ()
    rho: float | None = None
    degf_value: int | None = None

    @property
    def n_replicates(self) -> int:
        return self.weights.shape[1]

    def with_weights(self, weights: np.ndarray) -> ReplicateInfo:
        w = np.asarray(weights, dtype=float)
        if w.shape != self.weights.shape:
            raise DesignError(f"replicate weights have shape {w.shape}, expected {self.weights.shape}")
        return dataclasses.replace(self, weights=w)

    def degf(self, design, mask: np.ndarray | None = None) -> int:
        """R's ``degf.svyrep.design``: stored df, else rank of the weights minus one."""
        if self.degf_value is not None:
            return self.degf_value
        w = self.weights if mask is None else self.weights[mask]
        gram = w.T @ w
        ev = np.linalg.eigvalsh(gram)
        return int((ev > ev.max() * 1e-10).sum()) - 1


def _replicate_columns(data: pd.DataFrame, spec: Sequence[str] | str) -> list[str]:
    if isinstance(spec, str):
        cols = [c for c in data.columns if re.search(spec, str(c))]
        if not cols:
            raise DesignError(f"no column matches the replicate-weight pattern {spec!r}",
                              hint="pass a list of column names or a regular expression that matches them")
        return cols
    cols = list(spec)
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise DesignError("replicate weight column not found", column=missing[0],
                          hint="check the replicate_weights= list against the data")
    if not cols:
        raise DesignError("no replicate weight columns given")
    return cols


def replicate_design(data: pd.DataFrame, weights: str, replicate_weights: Sequence[str] | str,
                     method: str = "jk1", *, scale: float | None = None,
                     rscales: Sequence[float] | np.ndarray | float | None = None,
                     rho: float | None = None, mse: bool = False,
                     combined_weights: bool = True, degf: int | None = None):
    """Build a replicate :class:`~survey.design.Design` (see ``Design.from_replicates``)."""
    from survey.design import Design

    method = method.lower()
    if method not in METHODS:
        raise DesignError(f"replicate method {method!r} is not one of {', '.join(METHODS)}")
    cols = _replicate_columns(data, replicate_weights)
    if method == "fay" and rho is None:
        raise DesignError("method='fay' needs rho (Fay's coefficient, e.g. 0.5)")
    if rho is not None and not 0 <= rho < 1:
        raise DesignError(f"rho={rho} must be in [0, 1)")
    W = data[cols].to_numpy(dtype=float, na_value=np.nan)
    if np.isnan(W).any():
        j = int(np.flatnonzero(np.isnan(W).any(axis=0))[0])
        raise DesignError("missing values in a replicate weight column", column=cols[j],
                          hint="every row needs every replicate weight (0 where a unit is dropped)")
    if (W < 0).any():
        j = int(np.flatnonzero((W < 0).any(axis=0))[0])
        raise DesignError("negative replicate weight", column=cols[j])
    base = Design(data, weights=weights)
    if not combined_weights:
        W = W * base.w[:, None]
    R = W.shape[1]
    if rscales is not None:
        rs = np.broadcast_to(np.asarray(rscales, dtype=float), (R,)).copy() if np.ndim(rscales) == 0 \
            else np.asarray(rscales, dtype=float)
        if rs.shape != (R,):
            raise DesignError(f"rscales has length {len(rs)}, expected {R} (one per replicate)")
    else:
        rs = None
    if method == "brr":
        scale = 1.0 / R
    elif method == "fay":
        scale = 1.0 / (R * (1 - rho) ** 2)
    elif method == "bootstrap":
        scale = 1.0 / (R - 1) if scale is None else scale
    elif method == "jk1" and scale is None:
        scale = (R - 1) / R
    elif method == "jkn" and rs is None:
        raise DesignError("method='jkn' needs rscales: (n_h - 1)/n_h for the stratum of each replicate",
                          hint="pass rscales=, or build the replicates with design.replicate('jkn')")
    if scale is None:
        scale = 1.0
    if rs is None:
        rs = np.ones(R)
    info = ReplicateInfo(method=method, weights=W, scale=float(scale), rscales=rs, mse=mse,
                         columns=tuple(cols), rho=rho, degf_value=degf)
    object.__setattr__(base, "replicates", info)
    return base
