"""Design-based estimation (means, totals, ratios, proportions, quantiles,
regression, tests, contrasts) and the impact analysis of migration: indicators,
group estimates, propensity-weighted effects, balance, the impact table, the report."""

from analysis.balance import balance
from analysis.contrast import contrast
from analysis.estimators import mean, proportion, ratio, total
from analysis.glm import GLMFit, glm, glm_fit
from analysis.impact import impact, impact_fit
from analysis.impact_table import group_estimates, impact_table
from analysis.quantile import quantile
from analysis.report import write_report
from analysis.tests import TestResult, chisq, ttest

__all__ = [
    "GLMFit",
    "TestResult",
    "balance",
    "chisq",
    "contrast",
    "glm",
    "glm_fit",
    "group_estimates",
    "impact",
    "impact_fit",
    "impact_table",
    "mean",
    "proportion",
    "quantile",
    "ratio",
    "total",
    "ttest",
    "write_report",
]
