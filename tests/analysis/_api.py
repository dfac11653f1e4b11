"""The R golden designs shared by the analysis tests (quantile, glm, tests, contrast).

Each mirrors a ``svydesign`` call of ``tests/data/analysis/make_goldens.R``:
apistrat stratified with fpc, apiclus1 one-stage cluster with and without fpc,
apiclus2 two-stage with fpc at both stages, and the JK1 replicate design of
apiclus1 read back from R's weights; plus apiclus1 post-stratified or
GREG-calibrated (R's ``postStratify`` / ``calibrate``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from survey import Design
from survey.datasets import load_api

DATA = Path(__file__).parent.parent / "data" / "analysis"


def api_designs() -> dict[str, Design]:
    s, c1, c2 = load_api("apistrat"), load_api("apiclus1"), load_api("apiclus2")
    jk = pd.read_csv(DATA / "apiclus1_jk1.csv")
    reps = [c for c in jk.columns if c.startswith("rep")]
    return {
        "strat": Design(s, weights="pw", strata="stype", fpc="fpc"),
        "clus1": Design(c1, weights="pw", psu="dnum", fpc="fpc"),
        "clus1nofpc": Design(c1, weights="pw", psu="dnum"),
        "clus2": Design(c2, psu=["dnum", "snum"], fpc=["fpc1", "fpc2"]),
        "jk1": Design.from_replicates(jk, weights="pw", replicate_weights=reps, method="jk1"),
    }


def calibrated(name: str) -> Design:
    """apiclus1 post-stratified ("ps1", R's postStratify) or GREG-calibrated (R's
    calibrate) to stype counts (and api99's total); goldens in calibrated_golden.csv."""
    import weighting

    c1 = Design(load_api("apiclus1"), weights="pw", psu="dnum", fpc="fpc")
    counts = {"E": 4421, "H": 755, "M": 1018}
    if name == "ps1":
        return weighting.poststratify(c1, "stype", counts)
    return weighting.calibrate(c1, {"stype": counts, "api99": 3914069})
