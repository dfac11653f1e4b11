"""base_weights(): 1/(pi1 pi2), the frame check, and probabilities outside (0, 1]."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import weighting
from survey import Design
from survey.errors import WeightingError


def _sample() -> pd.DataFrame:
    # 2 strata x 3 EAs, households in 2 groups; pi1 = n_h M_hi / M_h, pi2 = m_hig / L_hig
    rng = np.random.default_rng(11)
    rows = []
    for h in range(2):
        M = rng.integers(80, 120, size=3).astype(float)
        Mh = M.sum() * 10  # the stratum's frame total: the 3 EAs are about 1/10 of it
        for i in range(3):
            # the listing finds a few more or fewer households than the frame says
            for g, L in (("migrant", 12.0), ("none", M[i] - 12.0 + rng.integers(-15, 15))):
                m = 7
                for _ in range(m):
                    rows.append({"h": h, "ea": f"{h}-{i}", "group": g, "pi1": 3 * M[i] / Mh, "pi2": m / L})
    return pd.DataFrame(rows)


def test_base_weight_is_the_inverse_of_the_product():
    df = _sample()
    d = weighting.base_weights(Design(df.assign(one=1.0), weights="one", strata="h", psu="ea"))
    np.testing.assert_allclose(d.w, 1 / (df["pi1"] * df["pi2"]), rtol=1e-14)
    assert d.weights == "w_base" and d.history == ("one", "w_base")


def test_frame_check_passes_within_sampling_error_and_fails_outside():
    df = _sample()
    d = Design(df.assign(one=1.0), weights="one", strata="h", psu="ea")
    est = (1 / (df["pi1"] * df["pi2"])).sum()
    weighting.base_weights(d, frame_total=est - 10)
    with pytest.raises(WeightingError, match=r"base weights sum to .* households but the frame has"):
        weighting.base_weights(d, frame_total=est * 3)


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.2, np.nan])
def test_probabilities_outside_zero_one_are_errors(bad):
    df = _sample()
    df.loc[4, "pi2"] = bad
    d = Design(df.assign(one=1.0), weights="one", strata="h", psu="ea")
    with pytest.raises(WeightingError, match=r"row 5.*outside \(0, 1\]|outside \(0, 1\].*row 5"):
        weighting.base_weights(d)
