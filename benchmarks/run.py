"""Run every benchmark in turn (``make bench``): each prints its peers as ratios to ours.

Each benchmark is a separate process so that one's memory and threads do not colour
the next one's timings. Pass benchmark names to run only some:
``python benchmarks/run.py core weighting``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
ALL = ("core", "weighting", "sampling", "instruments")


def main(names: list[str]) -> int:
    failed = []
    for name in names or ALL:
        script = HERE / f"bench_{name}.py"
        if not script.exists():
            print(f"no benchmark named {name!r}; choose from {', '.join(ALL)}")
            return 2
        print(f"\n=== {name} ===", flush=True)
        t = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script)])
        print(f"(bench_{name}.py finished in {time.perf_counter() - t:.0f} s, exit {rc})", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
