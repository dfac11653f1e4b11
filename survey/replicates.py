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

    Replicates made from a design (jackknife, BRR, Fay, bootstrap) are PSU-level
    multipliers: ``weights = base_w * factors[unit]``. They are then kept as the
    (PSU x replicate) ``factors``, so estimators can form replicate totals from PSU
    totals, and the (rows x replicates) matrix is built only when asked for.
    """

    method: str
    matrix: np.ndarray | None  # (n, R) analysis weights, or None when given by factors
    scale: float
    rscales: np.ndarray  # (R,)
    mse: bool
    columns: tuple[str, ...] = ()
    rho: float | None = None
    degf_value: int | None = None
    factors: np.ndarray | None = None  # (U, R) PSU-level multipliers
    unit: np.ndarray | None = None  # (n,) PSU code of each row, indexing factors
    base_w: np.ndarray | None = None  # (n,) the weights the factors multiply

    @property
    def weights(self) -> np.ndarray:
        """The (rows x replicates) analysis weights, combined with the sampling weights."""
        if self.matrix is None:
            W = self.factors[self.unit]
            W *= self.base_w[:, None]
            object.__setattr__(self, "matrix", W)  # a cache of derived values
        return self.matrix

    @property
    def n_replicates(self) -> int:
        return self.factors.shape[1] if self.factors is not None else self.matrix.shape[1]

    def factored_for(self, w: np.ndarray) -> bool:
        """Whether replicate totals may be taken from PSU totals of ``w``-weighted data."""
        return self.factors is not None and self.base_w is not None and np.array_equal(w, self.base_w)

    def with_weights(self, weights: np.ndarray) -> ReplicateInfo:
        w = np.asarray(weights, dtype=float)
        shape = (len(self.unit) if self.unit is not None else self.matrix.shape[0], self.n_replicates)
        if w.shape != shape:
            raise DesignError(f"replicate weights have shape {w.shape}, expected {shape}")
        return dataclasses.replace(self, matrix=w, factors=None, unit=None, base_w=None)

    def degf(self, design, mask: np.ndarray | None = None) -> int:
        """R's ``degf.svyrep.design``: stored df, else rank of the weights minus one."""
        if self.degf_value is not None:
            return self.degf_value
        if mask is None and self.factors is not None and (self.base_w > 0).all():
            # rank(W) = rank(F): diag(w) times the row-to-PSU indicator has full column rank
            return _rank(self.factors) - 1
        w = self.weights if mask is None else self.weights[mask]
        return _rank(w) - 1


def _rank(a: np.ndarray, tol: float = 1e-5) -> int:
    """Numerical rank by pivoted QR, with R's ``qr(..., tol = 1e-5)`` relative tolerance."""
    from scipy.linalg import qr

    if a.shape[0] > 4 * a.shape[1]:
        a = qr(a, mode="r")[0][: a.shape[1]]  # the same rank, from a square factor
    r = qr(a, mode="r", pivoting=True)[0]
    d = np.abs(np.diag(r))
    return int((d > tol * d[0]).sum()) if len(d) and d[0] > 0 else 0


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
    info = ReplicateInfo(method=method, matrix=W, scale=float(scale), rscales=rs, mse=mse,
                         columns=tuple(cols), rho=rho, degf_value=degf)
    object.__setattr__(base, "replicates", info)
    return base
