"""Risk measures against hand calculations, and local suppression to k-anonymity.

sdcMicro is not installable here (CRAN unreachable, no Debian package r-cran-sdcmicro),
so the numbers below are worked by hand from the formulas of sdcMicro's
``measure_risk`` (src/Measure_Risk.h, ``compute_risk``): with ``p = f/F - 0.0001``,
``q = 1 - p``::

    f = 1:  r = p/q * ln(1/p)
    f = 2:  r = p/q - (p/q)^2 * ln(1/p)
    f > 2:  r = p / (f - q)
"""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instruments.disclosure import (
    frequencies,
    individual_risk,
    local_suppression,
    measure_risk,
)
from survey.errors import InstrumentError


@pytest.fixture
def six():
    """Six records, two key variables, weights.

    ======  ===  ==  ===  ====  =====================================================
    region  sex  w   f_k  F_k   risk
    ======  ===  ==  ===  ====  =====================================================
    A       m    10  2    30    p = 2/30 - 1e-4 = 0.0665667; p/q = 0.0713139;
    A       m    20  2    30    r = 0.0713139 - 0.0713139^2 * ln(15.0225) = 0.0575339
    A       f    5   1    5     p = 0.1999; r = 0.1999/0.8001 * ln(1/0.1999) = 0.4022330
    B       f    8   3    20    p = 0.1499; r = 0.1499 / (3 - 0.8501) = 0.0697242
    B       f    8   3    20
    B       f    4   3    20
    ======  ===  ==  ===  ====  =====================================================

    Expected re-identifications = 2(0.0575339) + 0.4022330 + 3(0.0697242) = 0.7264734,
    global risk = 0.7264734 / 6 = 0.1210789.
    """
    return pd.DataFrame({"region": ["A", "A", "A", "B", "B", "B"],
                         "sex": ["m", "m", "f", "f", "f", "f"],
                         "w": [10.0, 20.0, 5.0, 8.0, 8.0, 4.0]})


def test_frequencies_by_hand(six):
    f = frequencies(six, ["region", "sex"], "w")
    assert f["fk"].tolist() == [2, 2, 1, 3, 3, 3]
    assert f["Fk"].tolist() == [30.0, 30.0, 5.0, 20.0, 20.0, 20.0]


def test_individual_and_global_risk_by_hand(six):
    m = measure_risk(six, ["region", "sex"], "w")
    expected = [0.057533940945365555] * 2 + [0.40223298799076235] + [0.06972417321735895] * 3
    assert m.records["risk"].to_numpy() == pytest.approx(expected, rel=1e-12)
    assert m.expected_reidentifications == pytest.approx(0.7264733895335703, rel=1e-12)
    assert m.global_risk == pytest.approx(0.12107889825559505, rel=1e-12)
    assert m.violations(2) == 1 and m.violations(3) == 3
    # the same numbers from the formulas written out
    p, q = 1 / 5 - 1e-4, 1 - (1 / 5 - 1e-4)
    assert m.records["risk"].iloc[2] == pytest.approx(p / q * math.log(1 / p), rel=1e-12)


def test_unweighted_risk_is_one_over_fk(six):
    m = measure_risk(six, ["region", "sex"])
    assert m.records["risk"].tolist() == pytest.approx([0.5, 0.5, 1.0, 1 / 3, 1 / 3, 1 / 3])
    assert m.expected_reidentifications == pytest.approx(3.0)  # one per key


def test_missing_value_matches_every_category(six):
    """A seventh record (B, missing sex, w=10) could be any B record.

    Its f_k = 4 (the three (B, f) and itself), F_k = 8+8+4+10 = 30; each (B, f) record
    now also counts it: f_k = 4, F_k = 30. The A records do not change.
    """
    seven = pd.concat([six, pd.DataFrame({"region": ["B"], "sex": [None], "w": [10.0]})],
                      ignore_index=True)
    f = frequencies(seven, ["region", "sex"], "w")
    assert f["fk"].tolist() == [2, 2, 1, 4, 4, 4, 4]
    assert f["Fk"].tolist() == [30.0, 30.0, 5.0, 30.0, 30.0, 30.0, 30.0]
    # a record missing everything matches all
    allna = pd.DataFrame({"region": ["A", "B", None], "sex": ["m", "f", None]})
    assert frequencies(allna, ["region", "sex"])["fk"].tolist() == [2, 2, 3]


def test_risk_formula_branches_are_finite_at_pk_one():
    r = individual_risk([1, 2, 3], [1.0, 2.0, 3.0])
    assert np.isfinite(r).all() and (r > 0.3).all() and (r <= 1).all()


def test_local_suppression_blanks_the_fewest_cells(six):
    """k = 3: (A, f) is unique and (A, m) a pair. Blanking the sex of (A, f) makes it
    (A, *) with f_k = 3, and lifts each (A, m) to 3 as well: one cell suffices."""
    out, flags = local_suppression(six, ["region", "sex"], k=3)
    assert int(flags.to_numpy().sum()) == 1
    assert bool(flags.loc[2, "sex"]) and pd.isna(out.loc[2, "sex"])
    assert (frequencies(out, ["region", "sex"])["fk"] >= 3).all()
    assert six["sex"].notna().all()  # input untouched


def test_suppression_respects_fixed_variables_and_fails_loudly(six):
    # region may not be blanked: the lone A record can only be helped through sex
    out, flags = local_suppression(six, ["region", "sex"], k=3, suppressible=["sex"])
    assert not flags.columns.tolist() == ["region"]
    assert (frequencies(out, ["region", "sex"])["fk"] >= 3).all()
    with pytest.raises(InstrumentError, match="stay below k=4"):
        local_suppression(six, ["region", "sex"], k=4, suppressible=["sex"])


def test_importance_breaks_ties():
    """(A, f) is unique among three (A, m) and three (B, f); blanking either its region
    or its sex lifts it to f_k = 4 and leaves no one at risk: importance decides."""
    df = pd.DataFrame({"region": list("AAABBBA"), "sex": list("mmmffff")})
    _, flags = local_suppression(df, ["region", "sex"], k=3, importance=["sex", "region"])
    assert flags["region"].tolist() == [False] * 6 + [True] and not flags["sex"].any()
    _, flags = local_suppression(df, ["region", "sex"], k=3, importance=["region", "sex"])
    assert flags["sex"].tolist() == [False] * 6 + [True] and not flags["region"].any()


def test_frequencies_equal_replicated_rows():
    """Integer weights give the same F_k as replicating each record w times."""
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"a": rng.integers(0, 3, 40), "b": rng.integers(0, 2, 40),
                       "w": rng.integers(1, 4, 40)})
    rep = df.loc[df.index.repeat(df["w"])]
    F = frequencies(df, ["a", "b"], "w")["Fk"].to_numpy()
    f_rep = frequencies(rep, ["a", "b"])["fk"].groupby(level=0).first().to_numpy()
    assert F == pytest.approx(f_rep)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(8, 60), k=st.integers(2, 4), seed=st.integers(0, 10_000),
       na=st.floats(0, 0.3))
def test_property_k_anonymity_after_suppression(n, k, seed, na):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"r": rng.integers(0, 3, n).astype(float),
                       "s": rng.integers(0, 2, n).astype(float),
                       "a": rng.integers(0, 8, n).astype(float)})
    df = df.mask(rng.random(df.shape) < na)
    before = df.copy()
    out, flags = local_suppression(df, ["r", "s", "a"], k=k)
    pd.testing.assert_frame_equal(df, before)
    assert (frequencies(out, ["r", "s", "a"])["fk"] >= k).all()
    # only flagged cells changed, and only to missing
    changed = (out.isna() & df.notna())
    assert (changed == flags).all().all()
    assert (out.notna() | df.isna() | flags).all().all()
    # blanking never lowers a frequency
    f0 = frequencies(df, ["r", "s", "a"])["fk"]
    assert (frequencies(out, ["r", "s", "a"])["fk"] >= f0).all()


def test_bad_weights_are_refused(six):
    with pytest.raises(InstrumentError, match="positive"):
        measure_risk(six.assign(w=[1, 0, 1, 1, 1, 1.0]), ["region"], "w")
    with pytest.raises(InstrumentError, match="not in the table"):
        frequencies(six, ["age"])
