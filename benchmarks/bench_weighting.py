"""Weighting speed against svy 0.35 and samplics 0.6.1 in the same run.

1. Raking 1,000,000 records to 3 margins (region x 10, group x 3, sex-age x 8).
2. JKn replicate creation plus SEs of 20 means on 20,000 households (100 strata x
   4 EAs, 50 households each; 400 replicates).

Run: ``.venv/bin/python benchmarks/bench_weighting.py`` (``--rows`` to change the
raking size). Prints seconds and the ratio peer / ours. Never part of the tests.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
from _timing import timed

import analysis
import weighting
from survey import Design


def rake_data(rows: int, seed: int = 1) -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "region": rng.integers(0, 10, rows).astype(str),
        "group": rng.choice(["emigrant", "returnee", "none"], rows, p=[0.3, 0.2, 0.5]),
        "sexage": rng.integers(0, 8, rows).astype(str),
        "w": rng.uniform(50, 150, rows),
        "psu": np.arange(rows),
    })
    N = 1.1 * df["w"].sum()
    margins = {
        "region": {str(k): N * v for k, v in zip(range(10), rng.dirichlet(np.ones(10) * 20))},
        "group": {"emigrant": 0.1 * N, "returnee": 0.1 * N, "none": 0.8 * N},
        "sexage": {str(k): N / 8 for k in range(8)},
    }
    return df, margins


def bench_rake(rows: int) -> None:
    df, margins = rake_data(rows)
    d = Design(df, weights="w", psu="psu")
    ours = timed(lambda: weighting.rake(d, margins, tol=1e-6), 3)
    mine = weighting.rake(d, margins, tol=1e-6).w
    print(f"rake {rows:,} rows x 3 margins: ours {ours:.3f}s")
    try:
        import polars as pl
        import svy

        pdf = pl.from_pandas(df)
        sample = svy.Sample(pdf, svy.Design(psu="psu", wgt="w"))
        t = timed(lambda: sample.weighting.rake(controls=margins, tol=1e-6, wgt_name="rk"), 2)
        theirs = sample.weighting.rake(controls=margins, tol=1e-6, wgt_name="rk")
        theirs = (theirs.data if hasattr(theirs, "data") else sample.data)["rk"].to_numpy()
        gap = np.max(np.abs(theirs / mine - 1))
        print(f"  svy {svy.__version__ if hasattr(svy, '__version__') else '0.35'}: {t:.3f}s  ratio {t / ours:.1f}x"
              f"  (weights agree to {gap:.1e}; both stop at 1e-6)")
    except Exception as e:  # a peer that fails is reported, not fatal
        print(f"  svy: not run ({type(e).__name__}: {e})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from samplics.weighting import SampleWeight

            sw = SampleWeight()
            ctrl = {"region": margins["region"], "group": margins["group"], "sexage": margins["sexage"]}
            t = timed(lambda: sw.rake(samp_weight=df["w"].to_numpy(), control=ctrl,
                                      margins={k: df[k].to_numpy() for k in ctrl}, tol=1e-6), 1)
        print(f"  samplics 0.6.1: {t:.3f}s  ratio {t / ours:.1f}x")
    except Exception as e:
        print(f"  samplics: not run ({type(e).__name__}: {e})")


def jkn_data(seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    strata, eas, hh = 100, 4, 50
    n = strata * eas * hh
    ea = np.repeat(np.arange(strata * eas), hh)
    df = pd.DataFrame({"stratum": ea // eas, "ea": ea, "w": rng.uniform(50, 150, n)})
    ys = rng.normal(size=(n, 20)) + rng.normal(size=(strata * eas, 1))[ea]
    return pd.concat([df, pd.DataFrame(ys, columns=[f"y{i}" for i in range(20)])], axis=1)


def bench_jkn() -> None:
    df = jkn_data()
    names = [f"y{i}" for i in range(20)]
    d = Design(df, weights="w", strata="stratum", psu="ea")

    def ours_run():
        from survey.repweights import make_replicates

        r = make_replicates(d, "jkn")
        return analysis.mean(r, names).se

    ours = timed(ours_run, 5)
    print(f"JKn (400 replicates) + SEs of 20 means, 20,000 households: ours {ours:.4f}s")
    try:
        import polars as pl
        import svy

        def svy_run():
            s = svy.Sample(pl.from_pandas(df), svy.Design(stratum="stratum", psu="ea", wgt="w"))
            s = s.weighting.create_jk_wgts()
            # svy's default is Taylor even with replicate weights: ask for replication
            return s.estimation.mean(names, method="replication")

        t = timed(svy_run, 2)
        se = svy_run().to_polars()["se"].to_numpy()
        gap = np.max(np.abs(se / ours_run() - 1))
        print(f"  svy 0.35 (replication): {t:.3f}s  ratio {t / ours:.1f}x  (SEs agree to {gap:.1e})")
    except Exception as e:
        print(f"  svy: not run ({type(e).__name__}: {e})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    bench_rake(args.rows)
    bench_jkn()


if __name__ == "__main__":
    main()
