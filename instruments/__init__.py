"""Questionnaires (XLSForms) and the import of field data into typed, validated tables.

>>> import instruments
>>> form = instruments.read_form(instruments.form_path("household"))
"""

from .build import build_form, form_path
from .form import Form, read_form

__all__ = ["Form", "build_form", "form_path", "read_form"]
