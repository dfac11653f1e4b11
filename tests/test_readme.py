"""The README's Python tour runs as written, and its printed table is what it says."""

from __future__ import annotations

import re
from pathlib import Path

import analysis

README = Path(__file__).parents[1] / "README.md"


def test_python_tour_runs_and_prints_what_it_shows() -> None:
    text = README.read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    scope: dict = {}
    exec(compile(block, str(README), "exec"), scope)  # our own README
    frame = analysis.mean(scope["d"], ["api00", "enroll"], deff=True).to_frame()
    for _, row in frame.iterrows():
        shown = re.search(rf"{row['variable']}\s+([\d.]+)\s+([\d.]+)", block)
        assert shown is not None
        assert float(shown.group(1)) == round(row["estimate"], 6)
        assert float(shown.group(2)) == round(row["se"], 6)
