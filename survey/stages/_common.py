"""What every stage shares: the stage order, the result type and the order check."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from survey.project import Project

__all__ = ["COMMANDS", "NEEDS", "STAGES", "StageResult", "records", "require"]

#: Every stage of a project, in order.
STAGES = ("frame", "design", "select_eas", "listing", "select_households", "import",
          "weight", "analyze", "report", "export", "public_use")

#: The stage each stage needs to have run first.
NEEDS: Mapping[str, str] = {
    "design": "frame", "select_eas": "design", "listing": "select_eas",
    "select_households": "listing", "import": "select_households", "weight": "import",
    "analyze": "weight", "report": "analyze", "export": "weight", "public_use": "weight",
}

#: The command that runs each stage.
COMMANDS: Mapping[str, str] = {
    "frame": "survey frame check", "design": "survey design", "select_eas": "survey select eas",
    "listing": "survey listing import", "select_households": "survey select households",
    "import": "survey import", "weight": "survey weight", "analyze": "survey analyze",
    "report": "survey report", "export": "survey export",
    "public_use": "survey export --public-use",
}


@dataclass(frozen=True)
class StageResult:
    """What a stage did: counts for the status, a summary table, files written."""

    stage: str
    counts: Mapping[str, int]
    seconds: float
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    files: tuple[Path, ...] = ()
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``--json``)."""
        return {"stage": self.stage,
                "counts": {k: (float(v) if isinstance(v, float) else int(v))
                           for k, v in self.counts.items()},
                "seconds": round(self.seconds, 3), "detail": self.detail,
                "files": [str(f) for f in self.files],
                "summary": records(self.summary)}


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a DataFrame as JSON-ready dicts (missing values as None)."""
    out = df.astype(object).where(df.notna(), None).to_dict("records")
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()} for r in out]


def require(project: Project, stage: str, *, by: str) -> None:
    """Raise a :class:`~survey.errors.StoreError` unless ``stage`` has run (naming its command)."""
    with project.store(read_only=True) as st:
        st.require(stage, by=by, command=COMMANDS.get(stage))
