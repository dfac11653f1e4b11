"""Import speed: an ODK Central zip of 100,000 households and ~500,000 roster rows.

Run: ``.venv/bin/python benchmarks/bench_instruments.py [households]``. The export is
simulated from the bundled household form (every household interviewed, so the roster
has about five rows per household), written as Central writes it, then imported with
full typing and validation (types, choice lists, required, relevant, constraints,
repeat counts, duplicates and edits). Prints rows per second (by wall time and by CPU
time, which a busy machine disturbs less) and the peak memory (resident set size:
``VmHWM`` on Linux, else ``resource.getrusage``). The import runs in a fresh process,
so that its peak memory is its own and not the simulation's.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from multiprocessing import get_context
from pathlib import Path

import numpy as np

import instruments
from instruments.simulate import fake_sample


def _peak_mb() -> float:
    """Peak resident set size of this process in MB.

    Linux's ``VmHWM`` belongs to the process image, so a spawned child does not
    inherit the parent's peak (``ru_maxrss`` survives ``exec``); elsewhere getrusage.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _import(path: str):
    """Import the export in this (fresh) process: ledger, wall s, CPU s, MB before/peak."""
    form = instruments.read_form(instruments.form_path("household"))
    before = _peak_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    result = instruments.read_export(path, form, today=date(2026, 3, 15))
    t_import, cpu_import = time.perf_counter() - t0, time.process_time() - c0
    return result.ledger, t_import, cpu_import, before, _peak_mb(), len(result.problems)


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
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            got = pool.submit(_import, str(path)).result()
    led, t_import, cpu_import, before, peak, n_problems = got
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
        "import_cpu_s": round(cpu_import, 2),
        "rows_per_s": round(rows / t_import),
        "rows_per_cpu_s": round(rows / cpu_import),
        "problems": n_problems,
        "peak_rss_mb_before_import": round(before),
        "peak_rss_mb": round(peak),
    }
    for k, v in out.items():
        print(f"{k:>26}: {v}")
    return out


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
