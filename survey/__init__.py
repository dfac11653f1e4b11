"""Core types of the toolkit: the sample design, estimates, and errors."""

from survey.errors import SurveyError

__all__ = ["SurveyError"]
