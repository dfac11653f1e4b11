"""Import speed: an ODK Central zip of 100,000 households and ~500,000 roster rows.

Run: ``.venv/bin/python benchmarks/bench_instruments.py [households]``. The export is
simulated from the bundled household form (every household interviewed, so the roster
has about five rows per household), written as Central writes it, then imported with
full typing and validation (types, choice lists, required, relevant, constraints,
repeat counts, duplicates and edits). Prints rows per second and the peak memory
(resident set size of the process, from ``resource.getrusage``) of the import.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

import instruments
from instruments.simulate import fake_sample


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(households: int = 100_000, seed: int = 20260315) -> dict[str, float]:
    form = instruments.read_form(instruments.form_path("household"))
    rng = np.random.default_rng(seed)
    sample = fake_sample(households, rng)
    t0 = time.perf_counter()
    raw = instruments.simulate_submissions(form, sample, rng, nonresponse=0.0, edits=100,
                                           duplicates=100, conflicts=20, bad_values=50)
    t_sim = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "household.zip"
        t0 = time.perf_counter()
        instruments.write_odk_central_zip(raw, path, form)
        t_write = time.perf_counter() - t0
        size_mb = path.stat().st_size / 2**20
        del raw
        before = _peak_mb()
        t0 = time.perf_counter()
        result = instruments.read_export(path, form, today=date(2026, 3, 15))
        t_import = time.perf_counter() - t0
        peak = _peak_mb()
    led = result.ledger
    assert (led["read"] == led["kept"] + led["quarantined"] + led["duplicates"]).all()
    rows = int(led["read"].sum())
    out = {
        "households": int(led.loc[led["table"] == "household", "read"].iloc[0]),
        "roster_rows": int(led.loc[led["table"] == "members", "read"].iloc[0]),
        "rows_total": rows,
        "zip_mb": round(size_mb, 1),
        "simulate_s": round(t_sim, 2),
        "write_s": round(t_write, 2),
        "import_s": round(t_import, 2),
        "rows_per_s": round(rows / t_import),
        "problems": len(result.problems),
        "peak_rss_mb_before_import": round(before),
        "peak_rss_mb": round(peak),
    }
    for k, v in out.items():
        print(f"{k:>26}: {v}")
    return out


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
