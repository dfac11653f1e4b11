"""Sampling: frame checks, sample size and allocation, selection of EAs then households.

The two-stage, two-phase design of DOMAIN.md: EAs by PPS within strata (``pi1``), a
listing screened into migration groups, then households per EA and group (``pi2``),
with every probability recorded for the base weights and field outputs for the teams.
"""

from .allocation import allocate, strata_summary
from .eas import inclusion_probabilities, select_eas
from .field import assignment_workbook, preload_csv
from .frame import check_frame, read_frame
from .households import base_weights, household_cells, select_households
from .listing import GROUPS, check_listing, read_listing
from .plan import SamplePlan, kish_deff, plan, tradeoff, tradeoff_figure, weighting_deff

__all__ = [
    "GROUPS",
    "SamplePlan",
    "allocate",
    "assignment_workbook",
    "base_weights",
    "check_frame",
    "check_listing",
    "household_cells",
    "inclusion_probabilities",
    "kish_deff",
    "plan",
    "preload_csv",
    "read_frame",
    "read_listing",
    "select_eas",
    "select_households",
    "strata_summary",
    "tradeoff",
    "tradeoff_figure",
    "weighting_deff",
]
