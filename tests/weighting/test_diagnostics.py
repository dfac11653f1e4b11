"""diagnostics(), weight_chain(), control_totals() and the replicate chain export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import analysis
import weighting
from tests.weighting._golden import POP_SCHWIDE, POP_TOTALS, POP_TYPES, dclus1, dstratpsu


def test_kish_deff_matches_the_textbook_example():
    # DOMAIN.md: migrants 10% of households sampled 50/50 -> sum W_g^2/k_g = 1.64
    df = pd.DataFrame({"g": ["m"] * 500 + ["n"] * 500, "w": [0.1 / 500] * 500 + [0.9 / 500] * 500,
                       "psu": range(1000)})
    from survey import Design
    out = weighting.diagnostics(Design(df, weights="w", psu="psu"), by="g")
    assert out.loc[0, "deff_kish"] == pytest.approx(0.1**2 / 0.5 + 0.9**2 / 0.5)
    assert out.loc[0, "n_eff"] == pytest.approx(1000 / 1.64)
    assert out.loc[1:, "deff_kish"].tolist() == pytest.approx([1.0, 1.0])
    assert out.loc[0, "ratio"] == pytest.approx(9.0)


def test_weight_chain_lists_every_step_in_order():
    d = weighting.trim(weighting.calibrate(weighting.poststratify(dclus1(), "stype", POP_TYPES),
                                           POP_TOTALS, method="raking"), upper=40)
    chain = weighting.weight_chain(d)
    assert chain["step"].tolist() == ["pw", "w_poststratified", "w_calibrated", "w_trimmed"]
    assert chain["sum"].iloc[1:].to_numpy() == pytest.approx([6194.0] * 3)
    ct = weighting.control_totals(d, POP_TOTALS)
    assert ct["level"].tolist()[:3] == ["E", "H", "M"] and ct["margin"].tolist()[3] == "api99"
    assert ct["difference"].abs().max() > 1  # trimming after calibration moves the totals
    ct2 = weighting.control_totals(weighting.calibrate(dclus1(), POP_TOTALS), POP_TOTALS)
    assert ct2["difference"].abs().max() < 1e-5


def test_rerun_on_replicates_and_export(tmp_path):
    steps = [lambda d: weighting.poststratify(d, "stype", POP_TYPES),
             (weighting.rake, {"margins": {"stype": POP_TYPES, "sch.wide": POP_SCHWIDE}}),
             (weighting.trim, {"upper": 60})]
    r = weighting.rerun_on_replicates(dstratpsu(), steps, method="jkn")
    lin = dstratpsu()
    for s in steps:
        lin = s(lin) if callable(s) else s[0](lin, **s[1])
    np.testing.assert_allclose(r.w, lin.w)
    # every replicate meets the margins too
    W = r.replicates.weights
    sw = r.data["sch.wide"].to_numpy()
    np.testing.assert_allclose(W[sw == "Yes"].sum(axis=0), 5122, rtol=1e-3)
    assert analysis.mean(r, "api00").se[0] > 0
    out = weighting.export_replicates(r, tmp_path / "w.dta", keep=["snum"])
    assert out.shape == (200, 2 + W.shape[1])
    assert out.attrs["svyset"].startswith("svyset [pw=w_trimmed], vce(jackknife) jkrweight(repw_1-")
    back = pd.read_stata(tmp_path / "w.dta")
    np.testing.assert_allclose(back[f"repw_{W.shape[1]}"], W[:, -1])
