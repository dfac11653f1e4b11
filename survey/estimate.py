"""The one result type every estimator returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["Estimate"]

CIMethod = Literal["normal", "t", "logit", "woodruff", "wald"]


@dataclass(frozen=True, eq=False)
class Estimate:
    """Estimates with their standard errors, one row per variable (and domain).

    Parameters
    ----------
    statistic
        What was estimated: ``"mean"``, ``"total"``, ``"ratio"``, ``"proportion"``,
        ``"quantile"``, ``"coefficient"``, ``"contrast"``.
    table
        One row per estimate: ``variable``, optional domain / ``level`` /
        ``quantile`` columns, then ``estimate``, ``se``, ``df``, ``deff``, ``n``, and
        optionally precomputed ``ci_low``/``ci_high`` (quantiles, logit intervals).
    vcov
        Covariance matrix of the estimates in table order, when computed.
    ci
        How intervals are formed: ``"normal"`` (R's ``confint`` default), ``"t"`` with
        the design degrees of freedom, or precomputed (``"logit"``, ``"woodruff"``).
    """

    statistic: str
    table: pd.DataFrame
    vcov: np.ndarray | None = field(default=None, repr=False)
    ci: CIMethod = "normal"
    level: float = 0.95
    by: tuple[str, ...] = ()

    @property
    def estimate(self) -> np.ndarray:
        return self.table["estimate"].to_numpy(dtype=float)

    @property
    def se(self) -> np.ndarray:
        return self.table["se"].to_numpy(dtype=float)

    @property
    def variance(self) -> np.ndarray:
        return self.se ** 2

    @property
    def cv(self) -> np.ndarray:
        """Coefficient of variation, se / |estimate|."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.se / np.abs(self.estimate)

    def __len__(self) -> int:
        return len(self.table)

    def confint(self, level: float | None = None, ci: CIMethod | None = None) -> np.ndarray:
        """Interval bounds (rows x 2) at ``level`` (default: the estimate's level)."""
        level = self.level if level is None else level
        ci = self.ci if ci is None else ci
        if ci in ("logit", "woodruff") and level == self.level and "ci_low" in self.table:
            return self.table[["ci_low", "ci_high"]].to_numpy(dtype=float)
        from scipy import stats  # imported when needed: it is slow to load

        est, se = self.estimate, self.se
        if ci == "t":
            df = self.table["df"].to_numpy(dtype=float)
            q = stats.t.ppf(0.5 + level / 2, np.where(df > 0, df, np.nan))
        else:
            q = stats.norm.ppf(0.5 + level / 2)
        return np.column_stack([est - q * se, est + q * se])

    def to_frame(self, level: float | None = None, ci: CIMethod | None = None) -> pd.DataFrame:
        """Tidy table: variable, [domain columns], estimate, se, ci_low, ci_high, df, deff, n."""
        out = self.table.copy()
        bounds = self.confint(level, ci)
        out["ci_low"] = bounds[:, 0]
        out["ci_high"] = bounds[:, 1]
        front = [c for c in out.columns if c not in _TAIL]
        return out[front + [c for c in _TAIL if c in out.columns]]

    def __repr__(self) -> str:
        return f"<Estimate {self.statistic}: {len(self.table)} row(s)>\n{self.to_frame().to_string(index=False)}"


_TAIL = ("estimate", "se", "ci_low", "ci_high", "df", "deff", "n")
