"""Questionnaires (XLSForms) and the import of field data into typed, validated tables.

>>> import instruments
>>> form = instruments.read_form(instruments.form_path("household"))
>>> result = instruments.read_export("household.zip", form)    # any supported export
>>> result.tables["members"], result.problems, result.ledger
"""

from .build import build_form, form_path
from .form import Form, read_form
from .formats.odk_central import write_odk_central_zip
from .importer import ImportResult, read_export
from .link import link_sample
from .simulate import fake_sample, simulate_submissions

__all__ = [
    "Form",
    "ImportResult",
    "build_form",
    "fake_sample",
    "form_path",
    "link_sample",
    "read_export",
    "read_form",
    "simulate_submissions",
    "write_odk_central_zip",
]
