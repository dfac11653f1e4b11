"""The stages of a survey project, wired to the packages that do the work.

Each stage function reads its inputs from the project (``survey.toml``, ``data/``,
the store), calls the public API of a stage package, and writes its outputs to the
store in one transaction (and to ``out/``). The functions are what the CLI calls;
analysts can call them from Python with a :class:`~survey.project.Project`.

Stages run in the order of :data:`STAGES`; each names the stage it needs
(:data:`NEEDS`). Running a stage again replaces its outputs; stages downstream of
it are then shown as *stale* by :func:`status` until they are run again.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from survey.errors import SamplingError
from survey.project import Project
from survey.stages._common import COMMANDS, NEEDS, STAGES, StageResult, records, require
from survey.stages.analysis import analyze
from survey.stages.export import export
from survey.stages.fieldwork import import_exports, listing_import, select_households
from survey.stages.public import public_export
from survey.stages.report import report
from survey.stages.weights import weight

__all__ = ["COMMANDS", "NEEDS", "STAGES", "StageResult", "analyze", "design", "export",
           "frame_check", "import_exports", "listing_import", "public_export", "records", "report",
           "require", "select_eas", "select_households", "status", "weight"]

#: Canonical column names of the stored frame.
FRAME_COLUMNS = ("ea_id", "households", "region", "urban", "migrant_share")


# -- stage: frame ---------------------------------------------------------------------
def frame_check(project: Project) -> StageResult:
    """Read the frame file named in ``survey.toml``, check it, and store it.

    The stored ``frame`` table has the canonical columns ``ea_id``, ``households``,
    ``region``, ``urban`` (and ``migrant_share`` when the frame has one) plus
    ``stratum``: the ``[strata] by`` values joined by ``" / "``, then ``" / high"``
    or ``" / low"`` migration intensity when ``migration_intensity`` is set. Other
    columns are kept as they are.

    Raises
    ------
    SamplingError
        From :func:`sampling.frame.read_frame`, naming file, row and column.
    """
    from sampling.frame import read_frame

    start = time.perf_counter()
    cfg = project.config
    f = cfg.frame
    to_file = {"ea_id": f.ea, "households": f.size, "region": f.region, "urban": f.urban}
    if f.migrant_share:
        to_file["migrant_share"] = f.migrant_share
    strata = [to_file.get(c, c) for c in cfg.strata.by]
    sort_cols = [to_file.get(c, c) for c in cfg.allocation.sort_by]
    path = project.path(f.file)
    frame = read_frame(path, ea=f.ea, size=f.size, strata=strata, columns=sort_cols,
                       stratum="_stratum", sheet=f.sheet)
    frame = frame.rename(columns={v: k for k, v in to_file.items()})
    stratum = frame["_stratum"].astype("string")
    if cfg.strata.migration_intensity:
        if "migrant_share" not in frame.columns:
            raise SamplingError("migration_intensity needs the frame's migrant share column",
                                file=str(path), column=f.migrant_share or "migrant_share",
                                hint="set frame.migrant_share to the column, or turn "
                                     "strata.migration_intensity off")
        high = frame["migrant_share"].to_numpy(dtype=float) >= cfg.strata.intensity_cutoff
        frame = frame.assign(intensity=pd.array(np.where(high, "high", "low"), dtype="string"))
        stratum = stratum + " / " + frame["intensity"]
    frame = frame.drop(columns=["_stratum"]).assign(stratum=stratum)
    ordered = [c for c in (*FRAME_COLUMNS, "stratum") if c in frame.columns]
    frame = frame[ordered + [c for c in frame.columns if c not in ordered]]

    agg = {"eas": ("ea_id", "size"), "households": ("households", "sum")}
    if "migrant_share" in frame.columns:
        agg["migrant_share"] = ("migrant_share", "mean")
    summary = frame.groupby("stratum", sort=True, observed=True).agg(**agg).reset_index()
    counts = {"eas": len(frame), "households": int(frame["households"].sum()),
              "strata": len(summary)}
    small = summary.loc[summary["eas"] < 2, "stratum"].tolist()
    detail = f"{len(summary)} strata" + (f"; fewer than 2 EAs in: {', '.join(small)}" if small else "")
    seconds = time.perf_counter() - start
    with project.store() as st:
        st.replace_stage("frame", {"frame": frame}, counts=counts, seconds=seconds, detail=detail)
    return StageResult("frame", counts, seconds, summary, (), detail)


# -- stage: design ---------------------------------------------------------------------
def design(project: Project) -> StageResult:
    """Allocate ``[allocation] n_eas`` EAs to the strata of the stored frame.

    Uses :func:`sampling.allocation.allocate` with the configured method, minimum per
    stratum and power exponent; strata with fewer EAs than their allocation are
    taken whole. Stores the ``allocation`` table (one row per stratum) and writes
    ``out/allocation.csv``.
    """
    from sampling.allocation import allocate, strata_summary

    require(project, "frame", by="survey design")
    start = time.perf_counter()
    cfg = project.config.allocation
    with project.store(read_only=True) as st:
        frame = st.read("frame")
    table = strata_summary(frame, "stratum", "households")
    alloc = allocate(table, cfg.n_eas, cfg.method, stratum="stratum", size="households",
                     power_q=cfg.power, minimum=cfg.min_per_stratum)
    takes = project.config.takes
    alloc = alloc.assign(households_to_interview=alloc["n"] * sum(takes.values()))
    out = project.out_dir / "allocation.csv"
    seconds = time.perf_counter() - start
    counts = {"strata": len(alloc), "eas": int(alloc["n"].sum()),
              "take_all_strata": int(alloc["take_all"].sum()),
              "households_to_interview": int(alloc["households_to_interview"].sum())}
    with project.store() as st:
        st.replace_stage("design", {"allocation": alloc}, counts=counts, seconds=seconds,
                         detail=f"{cfg.method} allocation of {cfg.n_eas} EAs")
    alloc.to_csv(out, index=False)
    summary = alloc[["stratum", "households", "eas", "n", "take_all", "households_to_interview"]]
    return StageResult("design", counts, seconds, summary, (out,), f"{cfg.method} allocation")


# -- stage: select_eas -----------------------------------------------------------------
def select_eas(project: Project) -> StageResult:
    """Select EAs by PPS systematic sampling within strata, with the configured seed.

    Uses :func:`sampling.eas.select_eas` with the stored allocation, implicit
    stratification by ``[allocation] sort_by`` and ``[seeds] select_eas``. Stores
    ``selected_eas`` (with ``pi1``, ``certainty``, ``selection_order``, ``seed``) and
    writes ``out/selected_eas.csv`` for the listing teams.
    """
    from sampling.eas import select_eas as _select

    require(project, "design", by="survey select eas")
    start = time.perf_counter()
    cfg = project.config
    with project.store(read_only=True) as st:
        frame = st.read("frame")
        alloc = st.read("allocation")
    sel = _select(frame, alloc[["stratum", "n"]], strata="stratum", size="households",
                  method="pps_systematic", sort_by=list(cfg.allocation.sort_by) or None,
                  rng=cfg.seeds.select_eas, ea="ea_id")
    sel = sel.reset_index(drop=True)
    sel.attrs = {}
    counts = {"eas": len(sel), "certainty": int(sel["certainty"].sum()),
              "strata": int(sel["stratum"].nunique()),
              "households": int(sel["households"].sum())}
    seconds = time.perf_counter() - start
    with project.store() as st:
        st.replace_stage("select_eas", {"selected_eas": sel}, counts=counts, seconds=seconds,
                         detail=f"PPS systematic, seed {cfg.seeds.select_eas}")
    out = project.out_dir / "selected_eas.csv"
    sel.to_csv(out, index=False)
    summary = (sel.groupby("stratum", sort=True, observed=True)
               .agg(eas=("ea_id", "size"), certainty=("certainty", "sum"),
                    households=("households", "sum"), min_pi1=("pi1", "min"),
                    max_pi1=("pi1", "max")).reset_index())
    return StageResult("select_eas", counts, seconds, summary, (out,), "PPS systematic")


# -- status ---------------------------------------------------------------------------
def status(project: Project) -> dict[str, Any]:
    """What has been done, with counts, what is stale, and problems outstanding.

    Returns
    -------
    dict
        ``project``, ``country``, ``stages`` (one entry per stage in :data:`STAGES`
        with ``done``, ``done_at``, ``seconds``, ``counts``, ``stale``, ``command``),
        ``next`` (the first stage not yet run, with its command), ``problems``
        (rows in the problems table) and ``tables`` (row counts).
    """
    with project.store(read_only=True) as st:
        summary = st.summary()
        records = {r.stage: r for r in st.stages()}
    stages = {}
    for name in STAGES:
        rec = records.get(name)
        need = NEEDS.get(name)
        up = records.get(need) if need else None
        stale = bool(rec and up and up.done_at > rec.done_at)
        stages[name] = {
            "done": rec is not None,
            "done_at": rec.done_at.isoformat(timespec="seconds") if rec else None,
            "seconds": round(rec.seconds, 3) if rec else None,
            "counts": dict(rec.counts) if rec else {},
            "detail": rec.detail if rec else "",
            "stale": stale,
            "command": COMMANDS[name],
        }
    pending = [s for s in STAGES if not stages[s]["done"] or stages[s]["stale"]]
    nxt = pending[0] if pending else None
    return {
        "project": str(project.root),
        "country": project.config.survey.country,
        "stages": stages,
        "next": {"stage": nxt, "command": COMMANDS[nxt]} if nxt else None,
        "problems": summary["problems"],
        "batches": summary["batches"],
        "tables": summary["tables"],
    }
