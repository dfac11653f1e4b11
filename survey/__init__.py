"""Core types of the toolkit: the sample design, estimates, and errors."""

from survey.design import Design
from survey.errors import SurveyError
from survey.estimate import Estimate

__all__ = ["Design", "Estimate", "SurveyError"]
