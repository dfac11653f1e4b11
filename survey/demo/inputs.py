"""Write the demo country's inputs into a project folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from survey.demo.country import census_totals, make_country
from survey.project import Project

__all__ = ["write_demo_inputs"]


def write_demo_inputs(project: Project, *, n_eas: int = 20_000, households: int = 3_000_000,
                      rng: np.random.Generator | None = None) -> dict[str, Path]:
    """Write ``data/frame.csv`` and the census totals for a project.

    The file names are those of ``survey.toml`` (``frame.file``,
    ``calibration.totals``), so a fresh ``survey init`` project runs as is.

    Parameters
    ----------
    project
        The project to fill.
    n_eas, households
        Size of the demo country.
    rng
        Random generator; defaults to one seeded with ``seeds.demo`` from the config.

    Returns
    -------
    dict
        ``{"frame": path, "totals": path}`` (``totals`` absent when calibration is off).
    """
    cfg = project.config
    if rng is None:
        rng = np.random.default_rng(cfg.seeds.demo)
    frame = make_country(rng, n_eas=n_eas, households=households)
    out = {"frame": project.path(cfg.frame.file)}
    out["frame"].parent.mkdir(parents=True, exist_ok=True)
    frame.rename(columns={"ea_id": cfg.frame.ea, "households": cfg.frame.size,
                          "region": cfg.frame.region, "urban": cfg.frame.urban}
                 ).to_csv(out["frame"], index=False)
    if cfg.calibration.method != "none" and cfg.calibration.totals:
        out["totals"] = project.path(cfg.calibration.totals)
        out["totals"].parent.mkdir(parents=True, exist_ok=True)
        census_totals(frame, by=[c for c in cfg.calibration.by if c in frame.columns]
                      ).to_csv(out["totals"], index=False)
    return out
