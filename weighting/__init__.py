"""Weighting: from selection probabilities to calibrated, trimmed and replicate weights.

Every step takes a :class:`survey.Design` and returns a new one whose variance
estimates account for the adjustment (see DESIGN.md, "Data flow"):
``base_weights -> nonresponse -> poststratify / rake / calibrate -> trim``, and
``rerun_on_replicates`` repeats the chain on every replicate.
"""

from weighting.base import base_weights
from weighting.calibration import calibrate
from weighting.diagnostics import control_totals, diagnostics, weight_chain
from weighting.nonresponse import nonresponse
from weighting.poststrat import poststratify, rake
from weighting.replicates import export_replicates, rerun_on_replicates
from weighting.trimming import trim

__all__ = [
    "base_weights",
    "calibrate",
    "control_totals",
    "diagnostics",
    "export_replicates",
    "nonresponse",
    "poststratify",
    "rake",
    "rerun_on_replicates",
    "trim",
    "weight_chain",
]
