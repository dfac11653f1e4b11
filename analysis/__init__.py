"""Design-based estimation: means, totals, ratios, proportions, quantiles,
regression, tests of association and contrasts."""

from analysis.contrast import contrast
from analysis.estimators import mean, proportion, ratio, total
from analysis.glm import GLMFit, glm, glm_fit
from analysis.quantile import quantile
from analysis.tests import TestResult, chisq, ttest

__all__ = [
    "GLMFit",
    "TestResult",
    "chisq",
    "contrast",
    "glm",
    "glm_fit",
    "mean",
    "proportion",
    "quantile",
    "ratio",
    "total",
    "ttest",
]
