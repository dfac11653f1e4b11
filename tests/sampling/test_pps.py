"""Selection kernels: simulated inclusion frequencies match the probabilities.

Each test repeats the selection R times in ONE kernel call by tiling the population R
times as R independent strata (the kernels draw every stratum independently), then
compares each unit's selection count with R * pi using the binomial z statistic
z = (count - R pi) / sqrt(R pi (1 - pi)). The test fails if any |z| > 4.5: for K units
the chance of that under a correct design is at most K * 6.8e-6 (Bonferroni), below
0.1% for the populations used. Seeds are fixed, so the outcome is deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest

from sampling import pps

Z_MAX = 4.5


def _population(seed: int = 3):
    rng = np.random.default_rng(seed)
    size = rng.integers(10, 400, 45).astype(float)
    size[[4, 30]] = [4000, 9000]  # certainty EAs
    codes = np.repeat(np.arange(3), 15)
    n_h = np.array([4, 5, 2])
    return size, codes, n_h


def _tile(p, codes, n_rest, R):
    H = len(n_rest)
    tcodes = (np.repeat(np.arange(R), p.size) * H + np.tile(codes, R)).astype(np.int64)
    return np.tile(p, R), tcodes, np.tile(n_rest, R)


def test_probabilities_with_iterative_certainty():
    size, codes, n_h = _population()
    pi, cert = pps.pps_probabilities(size, codes, n_h)
    np.testing.assert_allclose(np.bincount(codes, weights=pi), n_h)
    assert cert.tolist().count(True) == 2 and cert[4] and cert[30]
    assert (pi[~cert] < 1).all()
    # the rest of the stratum's allocation is spread in proportion to size
    rest = ~cert & (codes == 0)
    np.testing.assert_allclose(pi[rest], 3 * size[rest] / size[rest].sum())
    # a certainty unit that pushes another over 1 (iteration): sizes 100, 60, 30, 10; n = 3
    pi2, cert2 = pps.pps_probabilities(
        np.array([100.0, 60, 30, 10]), np.zeros(4, dtype=np.int64), np.array([3])
    )
    assert cert2.tolist() == [True, True, False, False]
    np.testing.assert_allclose(pi2, [1, 1, 0.75, 0.25])


@pytest.mark.parametrize("kernel,R", [("systematic", 20000), ("brewer", 8000), ("sampford", 4000)])
def test_kernel_frequencies_match_probabilities(kernel, R):
    size, codes, n_h = _population()
    pi, cert = pps.pps_probabilities(size, codes, n_h)
    n_rest = n_h - np.bincount(codes, weights=cert.astype(float)).astype(np.int64)
    p = np.where(cert, 0.0, pi)
    tp, tc, tn = _tile(p, codes, n_rest, R)
    idx = getattr(pps, kernel)(tp, tc, tn, np.random.default_rng(2026))
    # sizes exact in every replicate and stratum, no unit twice
    assert len(np.unique(idx)) == idx.size == n_rest.sum() * R
    np.testing.assert_array_equal(np.bincount(tc[idx], minlength=tn.size), tn)
    count = np.bincount(idx % p.size, minlength=p.size)
    free = ~cert
    z = (count[free] - R * p[free]) / np.sqrt(R * p[free] * (1 - p[free]))
    assert np.abs(z).max() < Z_MAX
    assert (count[cert] == 0).all()


def test_srs_frequencies_and_sizes():
    codes = np.repeat(np.arange(2), [12, 30])
    n_rest = np.array([3, 7])
    R = 20000
    p = np.where(codes == 0, 3 / 12, 7 / 30)
    tp, tc, tn = _tile(p, codes, n_rest, R)
    idx = pps.srs(tc, tn, np.ones(tc.size, dtype=bool), np.random.default_rng(7))
    np.testing.assert_array_equal(np.bincount(tc[idx], minlength=tn.size), tn)
    count = np.bincount(idx % p.size, minlength=p.size)
    z = (count - R * p) / np.sqrt(R * p * (1 - p))
    assert np.abs(z).max() < Z_MAX


def test_systematic_follows_the_sort_order():
    # equal probabilities 1/2 in order: the sample is every other unit
    p = np.full(10, 0.5)
    idx = pps.systematic(p, np.zeros(10, dtype=np.int64), np.array([5]), np.random.default_rng(1))
    assert np.diff(idx).tolist() == [2, 2, 2, 2]


def test_probabilities_match_r_sampling_inclusionprobabilities():
    """Golden values from R: sampling::inclusionprobabilities(size, n), which also caps
    certainty units at 1 iteratively. R 4.2.2, sampling 2.9, options(digits = 15);
    script tests/data/sampling/inclusionprobabilities.R, output inclusionprobabilities.csv."""
    from pathlib import Path

    import pandas as pd

    gold = pd.read_csv(
        Path(__file__).parents[1] / "data" / "sampling" / "inclusionprobabilities.csv"
    )
    codes = (gold["case"] - 1).to_numpy()
    n_h = gold.groupby("case")["n"].first().to_numpy()
    pi, cert = pps.pps_probabilities(gold["size"].to_numpy(float), codes, n_h)
    np.testing.assert_allclose(pi, gold["pik"], rtol=1e-12)
    assert cert.sum() == (gold["pik"] >= 1 - 1e-12).sum() > 0
