"""Benchmark: stage-1 PPS systematic selection and phase-2 household selection.

Ours (sampling.select_eas / select_households) against samplics 0.6 (SampleSelection),
svy 0.35 (Sample.sampling.pps_sys / srs) and R `sampling` (UPsystematic / srswor, timed
inside R with system.time around the grouping and selection calls only), in one run, on the same
synthetic data:

* frame: 100,000 EAs in 20 strata, 50 EAs per stratum (1,000 EAs);
* listing: the 1,000 selected EAs with 300,000 households in three migration groups,
  7 + 7 + 7 households per EA (take-all where fewer are listed).

Each timing is the best of a few repeats (one for slow peers). Ratios are peer time /
our time (above 1: we are faster). Run: ``.venv/bin/python benchmarks/bench_sampling.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _timing import timed

import sampling

N_EAS, N_STRATA, N_SELECT, N_HH = 100_000, 20, 1_000, 300_000
TAKE = {"emigrant": 7, "returnee": 7, "none": 7}




def make_data(seed: int = 2026):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "ea_id": [f"EA{i:06d}" for i in range(N_EAS)],
            "stratum": np.repeat([f"S{h:02d}" for h in range(N_STRATA)], N_EAS // N_STRATA),
            "district": rng.integers(0, 40, N_EAS),
            "households": rng.integers(20, 400, N_EAS),
        }
    )
    alloc = {f"S{h:02d}": N_SELECT // N_STRATA for h in range(N_STRATA)}
    eas = sampling.select_eas(frame, alloc, rng=1)
    sizes = rng.multinomial(N_HH - 50 * N_SELECT, np.full(N_SELECT, 1 / N_SELECT)) + 50
    ea = np.repeat(eas["ea_id"].to_numpy(), sizes)
    listing = pd.DataFrame(
        {
            "ea_id": ea,
            "hh_id": [f"H{i:07d}" for i in range(ea.size)],
            "group": rng.choice(["emigrant", "returnee", "none"], ea.size, p=[0.03, 0.02, 0.95]),
        }
    )
    return frame, alloc, eas, listing


def bench_ours(frame, alloc, eas, listing) -> dict:
    return {
        "eas": timed(lambda: sampling.select_eas(frame, alloc, rng=3), 10),
        "eas_sorted": timed(
            lambda: sampling.select_eas(frame, alloc, sort_by="district", serpentine=True, rng=3), 10
        ),
        "hh": timed(
            lambda: sampling.select_households(listing, TAKE, method="srs", reserve=0, rng=3), 10
        ),
        "hh_full": timed(lambda: sampling.select_households(listing, TAKE, eas=eas, rng=3), 10),
    }


def bench_samplics(frame, alloc, listing) -> dict:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from samplics.sampling import SampleSelection
            from samplics.utils.types import SelectMethod
    except ImportError:
        return {}
    out = {}
    sel = SampleSelection(method=SelectMethod.pps_sys, strat=True, wr=False)
    unit, strat, mos = (
        frame["ea_id"].to_numpy(object),
        frame["stratum"].to_numpy(object),
        frame["households"].to_numpy(),
    )
    out["eas"] = timed(
        lambda: sel.select(samp_unit=unit, samp_size=alloc, stratum=strat, mos=mos), repeat=1
    )
    cell = (listing["ea_id"] + "_" + listing["group"]).to_numpy(object)
    L = pd.Series(cell).value_counts()
    sizes = {k: int(min(7, v)) for k, v in L.items()}
    srs = SampleSelection(method=SelectMethod.srs_wor, strat=True, wr=False)
    hh = listing["hh_id"].to_numpy(object)
    out["hh"] = timed(lambda: srs.select(samp_unit=hh, samp_size=sizes, stratum=cell), repeat=1)
    return out


def bench_svy(frame, alloc, listing) -> dict:
    try:
        import polars as pl
        import svy
    except ImportError:
        return {}
    out = {}
    pf = pl.from_pandas(frame)

    def eas():
        s = svy.Sample(pf, svy.Design(stratum="stratum", mos="households"))
        s.sampling.pps_sys(alloc, rstate=3)

    out["eas"] = timed(eas, repeat=10)
    lf = pl.from_pandas(listing.assign(cell=listing["ea_id"] + "_" + listing["group"]))
    L = listing.groupby(["ea_id", "group"]).size()
    sizes = {f"{e}_{g}": int(min(7, v)) for (e, g), v in L.items()}

    def hh():
        s = svy.Sample(lf, svy.Design(stratum="cell"))
        s.sampling.srs(sizes, rstate=3)

    out["hh"] = timed(hh, repeat=10)
    return out


R_SCRIPT = r"""
suppressMessages(library(sampling))
options(digits = 15)
frame <- read.csv(file.path(dir, "frame.csv"))
lst <- read.csv(file.path(dir, "listing.csv"))
alloc <- 50
best <- function(expr_fun, k = 10) min(replicate(k, system.time(expr_fun())[["elapsed"]]))
# timed: grouping the units by stratum (cell) and the selection itself, as ours does
t_eas <- best(function() {
  by_stratum <- split(frame$households, frame$stratum)
  lapply(by_stratum, function(x) UPsystematic(inclusionprobabilities(x, alloc)))
})
t_hh <- best(function() {
  cells <- split(seq_len(nrow(lst)), list(lst$ea_id, lst$group), drop = TRUE)
  lapply(cells, function(i) { L <- length(i); i[srswor(min(7, L), L) == 1] })
})
# the same with the grouping done before the clock starts (selection calls only)
by_stratum <- split(frame$households, frame$stratum)
t_eas_sel <- best(function() lapply(by_stratum, function(x) UPsystematic(inclusionprobabilities(x, alloc))))
cells <- split(seq_len(nrow(lst)), list(lst$ea_id, lst$group), drop = TRUE)
t_hh_sel <- best(function() lapply(cells, function(i) { L <- length(i); i[srswor(min(7, L), L) == 1] }))
cat(sprintf("%.6f %.6f %.6f %.6f R-%s sampling-%s\n", t_eas, t_hh, t_eas_sel, t_hh_sel,
            getRversion(), packageVersion("sampling")))
"""


def bench_r(frame, listing) -> dict:
    if shutil.which("Rscript") is None:
        return {}
    with tempfile.TemporaryDirectory() as d:
        frame[["ea_id", "stratum", "households"]].to_csv(Path(d) / "frame.csv", index=False)
        listing.to_csv(Path(d) / "listing.csv", index=False)
        script = Path(d) / "bench.R"
        script.write_text(f'dir <- "{d}"\n' + R_SCRIPT)
        res = subprocess.run(["Rscript", str(script)], capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        print("R failed:", res.stderr[-500:])
        return {}
    parts = res.stdout.split()
    return {
        "eas": float(parts[0]),
        "hh": float(parts[1]),
        "eas_sel": float(parts[2]),
        "hh_sel": float(parts[3]),
        "version": " ".join(parts[4:]),
    }


def main() -> None:
    frame, alloc, eas, listing = make_data()
    print(
        f"frame {len(frame):,} EAs / {N_STRATA} strata -> {N_SELECT:,} EAs; listing {len(listing):,} households"
    )
    ours = bench_ours(frame, alloc, eas, listing)
    peers = {
        "samplics 0.6": bench_samplics(frame, alloc, listing),
        "svy 0.35": bench_svy(frame, alloc, listing),
        "R sampling": bench_r(frame, listing),
    }
    rows = [
        ("EA selection, PPS systematic", "eas", ours["eas"]),
        ("household selection, SRS per EA x group", "hh", ours["hh"]),
    ]
    print(f"\n{'task':42s} {'ours (s)':>9s} " + " ".join(f"{p:>22s}" for p in peers))
    for label, key, t in rows:
        cells = []
        for p in peers.values():
            if key in p:
                cells.append(f"{p[key]:9.4f} ({p[key] / t:7.1f}x)")
            else:
                cells.append(f"{'n/a':>22s}")
        print(f"{label:42s} {t:9.4f} " + " ".join(f"{c:>22s}" for c in cells))
    print(
        f"\nours, EA selection with serpentine implicit stratification: {ours['eas_sorted']:.4f} s"
    )
    print(
        f"ours, households systematic + 2 reserves + pi1 carried from EAs: {ours['hh_full']:.4f} s"
    )
    r = peers["R sampling"]
    if r:
        print(
            f"R ({r['version']}): system.time around split() and the selection calls; data reading excluded."
        )
        print(
            f"R with split() done before the clock (selection calls only): EAs {r['eas_sel']:.4f} s "
            f"({r['eas_sel'] / ours['eas']:.1f}x), households {r['hh_sel']:.4f} s ({r['hh_sel'] / ours['hh']:.1f}x)"
        )
    print("ratios are peer time / our time: above 1 means ours is faster")


if __name__ == "__main__":
    main()
