"""Weighting: from selection probabilities to calibrated, trimmed and replicate weights.

Every step takes a :class:`survey.Design` and returns a new one whose variance
estimates account for the adjustment (see DESIGN.md, "Data flow").
"""

from weighting.calibration import calibrate
from weighting.poststrat import poststratify, rake
from weighting.trimming import trim

__all__ = ["calibrate", "poststratify", "rake", "trim"]
