"""Public example data bundled with the toolkit.

The California Academic Performance Index samples (``apisrs``, ``apistrat``,
``apiclus1``, ``apiclus2``) as distributed with R's ``survey`` package (Lumley),
from the California Department of Education's public API data files.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from survey.errors import SurveyError

__all__ = ["load_api"]

_API = ("apisrs", "apistrat", "apiclus1", "apiclus2")


def load_api(name: str) -> pd.DataFrame:
    """One of the California API school samples used throughout R's ``survey`` docs."""
    if name not in _API:
        raise SurveyError(f"unknown dataset {name!r}", hint=f"choose one of {', '.join(_API)}")
    with resources.files(__name__).joinpath(f"{name}.csv").open("rb") as fh:
        df = pd.read_csv(fh, dtype={"cds": "string"})
    return df
