"""Estimation core: 20 means with SEs on a 1,000,000-household stratified cluster sample.

Compares, in one run on the same data: ours, svy 0.35 (Python + Rust), samplics 0.6.1,
and R ``survey`` (when ``Rscript`` and the package are installed). Prints each peer's
time as a ratio to ours, and our peak memory against the size of the numeric columns
used. Run with ``make bench`` or ``python benchmarks/bench_core.py [--rows N]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _timing import timed

import analysis
from survey import Design

N_VARS = 20


def make_data(rows: int, strata: int = 20, psus: int = 100_000, domains: int = 10,
              seed: int = 20261129) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    psu = rng.integers(0, psus, rows)
    stratum = psu % strata
    cluster_effect = rng.normal(0, 1, psus)[psu]
    df = pd.DataFrame({
        "stratum": stratum, "psu": psu, "w": rng.uniform(50, 500, rows),
        "dom": rng.integers(0, domains, rows),
    })
    for j in range(N_VARS):
        df[f"y{j}"] = 10 + j + cluster_effect * (1 + j / 10) + rng.normal(0, 3, rows)
    return df




def ours(df: pd.DataFrame, names: list[str]) -> dict[str, float]:
    d = Design(df, weights="w", strata="stratum", psu="psu")
    out = {
        "design": timed(lambda: Design(df, weights="w", strata="stratum", psu="psu"), 1),
        "means": timed(lambda: analysis.mean(d, names)),
        "means_by": timed(lambda: analysis.mean(d, names, by="dom")),
    }
    tracemalloc.start()
    analysis.mean(d, names, by="dom")
    out["peak_bytes"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out


def svy_times(df: pd.DataFrame, names: list[str]) -> dict[str, float] | None:
    try:
        import polars as pl
        import svy
    except ImportError:
        return None
    data = pl.from_pandas(df)
    t0 = time.perf_counter()
    sample = svy.Sample(data, svy.Design(stratum="stratum", psu="psu", wgt="w"))
    build = time.perf_counter() - t0
    return {
        "design": build,
        "means": timed(lambda: sample.estimation.mean(names)),
        "means_by": timed(lambda: sample.estimation.mean(names, by="dom"), 1),
    }


def samplics_times(df: pd.DataFrame, names: list[str], max_vars: int) -> dict[str, float] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from samplics.estimation import TaylorEstimator
            from samplics.utils.types import PopParam
    except ImportError:
        return None
    use = names[:max_vars]
    scale = len(names) / len(use)

    def run(domain: bool) -> None:
        for v in use:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                TaylorEstimator(PopParam.mean).estimate(
                    y=df[v].to_numpy(), samp_weight=df["w"].to_numpy(), stratum=df["stratum"].to_numpy(),
                    psu=df["psu"].to_numpy(), domain=df["dom"].to_numpy() if domain else None,
                )
    return {"means": timed(lambda: run(False), 1) * scale,
            "means_by": timed(lambda: run(True), 1) * scale, "vars_timed": len(use)}


R_SCRIPT = """
suppressMessages(library(survey))
df <- read.csv("{csv}")
d <- svydesign(id = ~psu, strata = ~stratum, weights = ~w, data = df)
f <- as.formula(paste("~", paste(sprintf("y%d", 0:{last}), collapse = "+")))
t1 <- system.time(svymean(f, d))[["elapsed"]]
t2 <- system.time(svyby(f, ~dom, d, svymean))[["elapsed"]]
cat(t1, t2, "\\n")
"""


def r_times(df: pd.DataFrame, names: list[str]) -> dict[str, float] | None:
    if shutil.which("Rscript") is None:
        return None
    ok = subprocess.run(["Rscript", "-e", "library(survey)"], capture_output=True)
    if ok.returncode != 0:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "data.csv"
        df[["stratum", "psu", "w", "dom", *names]].to_csv(csv, index=False)
        script = Path(tmp) / "bench.R"
        script.write_text(R_SCRIPT.format(csv=csv, last=len(names) - 1))
        res = subprocess.run(["Rscript", str(script)], capture_output=True, text=True)
        if res.returncode != 0:
            print("R failed:", res.stderr[-500:])
            return None
        t1, t2 = (float(x) for x in res.stdout.split())
    return {"means": t1, "means_by": t2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--samplics-vars", type=int, default=2,
                    help="variables timed for samplics (it is slow); its time is scaled to 20")
    ap.add_argument("--no-r", action="store_true")
    args = ap.parse_args()
    df = make_data(args.rows)
    names = [f"y{j}" for j in range(N_VARS)]
    numeric_bytes = df[["stratum", "psu", "w", "dom", *names]].memory_usage(index=False).sum()
    print(f"data: {len(df):,} rows, {df['stratum'].nunique()} strata, {df['psu'].nunique():,} PSUs, "
          f"{N_VARS} outcomes, {df['dom'].nunique()}-level domain")
    res = {"ours": ours(df, names), "svy 0.35": svy_times(df, names),
           "samplics 0.6.1": samplics_times(df, names, args.samplics_vars),
           "R survey": None if args.no_r else r_times(df, names)}
    base = res["ours"]
    print(f"\n{'':16s} {'20 means (s)':>14s} {'ratio':>8s} {'by domain (s)':>14s} {'ratio':>8s}")
    for name, r in res.items():
        if r is None:
            print(f"{name:16s} {'not installed':>14s}")
            continue
        note = f"  (timed {r['vars_timed']} variables, scaled to {N_VARS})" if "vars_timed" in r else ""
        print(f"{name:16s} {r['means']:14.3f} {r['means'] / base['means']:8.1f} "
              f"{r['means_by']:14.3f} {r['means_by'] / base['means_by']:8.1f}{note}")
    print(f"\nours: design construction {base['design']:.3f} s (once per design)")
    if res["svy 0.35"] is not None:
        print(f"svy: Sample construction {res['svy 0.35']['design']:.3f} s")
    print(f"ours: peak memory of the by-domain call {base['peak_bytes'] / 2**20:.0f} MiB = "
          f"{base['peak_bytes'] / numeric_bytes:.2f} x the numeric columns used "
          f"({numeric_bytes / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
