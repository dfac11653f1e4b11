"""Golden values from R (tests/data/weighting/make_golden.R) and the designs they use.

R 4.2.2, survey 4.1.1, ``options(digits = 15)``. The suite never runs R.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import analysis
from survey import Design
from survey.datasets import load_api

DATA = Path(__file__).resolve().parents[1] / "data" / "weighting"

POP_TYPES = {"E": 4421, "H": 755, "M": 1018}
POP_SCHWIDE = {"No": 1072, "Yes": 5122}
POP_COMPIMP = {"No": 2200, "Yes": 3994}
POP_TOTALS = {"stype": POP_TYPES, "api99": 3914069}


def dclus1() -> Design:
    return Design(load_api("apiclus1"), weights="pw", psu="dnum", fpc="fpc")


def dstrat() -> Design:
    return Design(load_api("apistrat"), weights="pw", strata="stype", fpc="fpc")


def dstratpsu() -> Design:
    return Design(load_api("apistrat"), weights="pw", strata="stype", psu="dnum", nest=True)


def weights(case: str) -> np.ndarray:
    g = pd.read_csv(DATA / "golden_weights.csv")
    return g.loc[g["case"] == case, "weight"].to_numpy()


def estimates(case: str, file: str = "golden_estimates.csv") -> pd.DataFrame:
    g = pd.read_csv(DATA / file)
    return g.loc[g["case"] == case].set_index("variable")


def check_estimates(design: Design, case: str, variables=("api00", "enroll", "api99"),
                    rel: float = 1e-8, file: str = "golden_estimates.csv") -> None:
    """Means and totals and their SEs against R, relative tolerance ``rel``."""
    exp = estimates(case, file)
    vs = [v for v in variables if v in exp.index]
    m = analysis.mean(design, vs).to_frame().set_index("variable")
    t = analysis.total(design, vs).to_frame().set_index("variable")
    np.testing.assert_allclose(m.loc[vs, "estimate"], exp.loc[vs, "mean"], rtol=1e-10)
    np.testing.assert_allclose(t.loc[vs, "estimate"], exp.loc[vs, "total"], rtol=1e-10)
    # a calibration variable has SE ~ 0 (rounding noise): compare it on the estimate's scale
    np.testing.assert_allclose(m.loc[vs, "se"], exp.loc[vs, "mean_se"], rtol=rel,
                               atol=1e-10 * exp.loc[vs, "mean"].abs().max())
    np.testing.assert_allclose(t.loc[vs, "se"], exp.loc[vs, "total_se"], rtol=rel,
                               atol=1e-10 * exp.loc[vs, "total"].abs().max())
