"""trim() against R's ``trimWeights`` (single pass and strict).

Golden values: tests/data/weighting/make_golden.R (R 4.2.2, survey 4.1.1,
``options(digits = 15)``)::

    dcal <- calibrate(dclus1, ~stype + api99, pop.totals, calfun = "raking", epsilon = 1e-13)
    trimWeights(dcal, upper = 36, lower = 31)                 # and strict = TRUE
"""

from __future__ import annotations

import numpy as np
import pytest

import weighting
from survey.errors import WeightingError
from tests.weighting._golden import POP_TOTALS, check_estimates, dclus1, weights


def _dcal():
    return weighting.calibrate(dclus1(), POP_TOTALS, method="raking", tol=1e-13)


@pytest.mark.parametrize(("strict", "case"), [(False, "trim_single"), (True, "trim_strict")])
def test_trim_matches_r(strict, case):
    t = weighting.trim(_dcal(), lower=31, upper=36, strict=strict)
    np.testing.assert_allclose(t.w, weights(case), rtol=1e-9)
    check_estimates(t, case)


def test_trim_keeps_the_sum_and_strict_leaves_nothing_outside():
    d = _dcal()
    t = weighting.trim(d, lower=31, upper=36, strict=True)
    assert t.w.sum() == pytest.approx(d.w.sum(), rel=1e-12)
    assert t.w.min() >= 31 - 1e-9 and t.w.max() <= 36 + 1e-9
    single = weighting.trim(d, lower=31, upper=36)
    assert (single.w > 36 + 1e-9).any()  # one pass can push units back over the bound
    assert t.history == ("pw", "w_calibrated", "w_trimmed")
    # nothing outside: the weights are unchanged
    np.testing.assert_array_equal(weighting.trim(d, upper=1e6).w, d.w)


def test_trim_bad_bounds():
    with pytest.raises(WeightingError, match="lower must be below upper"):
        weighting.trim(dclus1(), lower=40, upper=30)
    with pytest.raises(WeightingError, match=r"can add up to the total .* mean weight is 33\.8"):
        weighting.trim(dclus1(), lower=1, upper=20)
