"""Design-based estimation: means, totals, ratios, proportions, and more."""

from analysis.estimators import mean, proportion, ratio, total

__all__ = ["mean", "proportion", "ratio", "total"]
