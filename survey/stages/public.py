"""The public-use release: ``survey export --public-use``.

The respondents' tables (household, members, emigrants...) with the design columns
and the final weight go through :func:`instruments.disclosure.public_use`: direct
identifiers (the form's ``privacy = direct`` fields: names, phones, GPS, free text)
are dropped, EA points displaced as DHS does, ages and amounts top-coded, rare
categories grouped, household, submission and EA ids replaced by random codes, and
key values suppressed until k-anonymity holds at ``[output] k_anonymity``. The files
and the disclosure report go to ``out/public/``; the crosswalk from random codes back
to the real ids goes only into the store (``public_use_crosswalk``).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from survey.errors import ConfigError
from survey.project import Project
from survey.stages._common import StageResult, require

__all__ = ["PUBLIC_FORMATS", "public_export"]

#: Formats of the public-use files.
PUBLIC_FORMATS = ("csv", "dta", "sav", "xlsx", "parquet")

#: Design columns released with the household table (ids are recoded, not dropped).
_DESIGN = ("hh_id", "ea_id", "stratum", "region", "urban", "group", "L_hig", "m_hig", "pi1",
           "pi2", "key", "weight")


def _release_tables(project: Project, form) -> dict[str, pd.DataFrame]:
    """Respondents' typed tables, direct identifiers still in (public_use removes them)."""
    root = form.form_id
    with project.store(read_only=True) as st:
        w = st.read("weights")
        raw = {t: st.read(f"data.{t}") for t in form.tables if st.has(f"data.{t}")}
    w = w.loc[w["weight"] > 0, [c for c in _DESIGN if c in w.columns]]
    sub = raw[root]
    hh = w.merge(sub.drop(columns=[c for c in (*w.columns, "batch_id") if c in sub.columns
                                   and c != "key"]), on="key", how="left", validate="one_to_one")
    out = {root: hh}
    keys = set(hh["key"].astype(str))
    for t, df in raw.items():
        if t == root or "parent_key" not in df.columns:
            continue
        out[t] = df[df["parent_key"].astype(str).isin(keys)].drop(
            columns=["batch_id"], errors="ignore").reset_index(drop=True)
    # repeats nested in repeats keep their own parents; keep those whose parent is kept
    return out


def public_export(project: Project, formats: tuple[str, ...] | None = None) -> StageResult:
    """Write the public-use files and the disclosure report to ``out/public/``.

    Parameters
    ----------
    project
        The project (needs ``survey weight``).
    formats
        Any of :data:`PUBLIC_FORMATS`; default: those of ``[output] formats`` that
        apply (csv, dta, sav, xlsx, parquet).

    Notes
    -----
    Risk is measured with the final weights (sdcMicro's individual and global risk);
    the key variables are those the form marks ``privacy = key`` plus the columns of
    ``[output] public_keys`` present in the data (``region``, ``urban``). GPS is
    released as one displaced point per EA (urban up to 2 km, rural up to 5 km, 1 in
    100 rural up to 10 km). The random codes come from ``[seeds] public_use``, so a
    re-run releases the same codes. The stored crosswalk is the only link back to the
    interviews; it never leaves the store.
    """
    from instruments.disclosure import public_use, write_public_use
    from survey.stages.fieldwork import read_project_form

    require(project, "weight", by="survey export --public-use")
    start = time.perf_counter()
    cfg = project.config
    bad = [f for f in (formats or ()) if f not in PUBLIC_FORMATS]
    if bad:
        raise ConfigError(f"cannot write a public-use file as {bad[0]!r}", key="output.formats",
                          hint=f"public-use formats: {', '.join(PUBLIC_FORMATS)}")
    chosen = tuple(f for f in (formats or cfg.output.formats) if f in PUBLIC_FORMATS) or ("csv",)
    form = read_project_form(project)
    tables = _release_tables(project, form)
    root = form.form_id
    overrides = {f"{root}.{c}": "key" for c in cfg.output.public_keys if c in tables[root].columns}
    res = public_use(tables, form, weights="weight", k=cfg.output.k_anonymity,
                     rng=np.random.default_rng(cfg.seeds.public_use), overrides=overrides,
                     urban="urban" if "urban" in tables[root].columns else None, gps="cluster")
    folder = project.out_dir / "public"
    if folder.exists():  # a re-run replaces the release whole
        for f in folder.iterdir():
            if f.is_file():
                f.unlink()
    files = write_public_use(res, folder, formats=chosen)
    risk = res.report.risk
    after = risk[risk["stage"] == "after"]
    below = f"below_k{cfg.output.k_anonymity}"
    counts = {f"{t}_rows": len(df) for t, df in res.tables.items()} | {
        "files": len(files), "k": cfg.output.k_anonymity,
        "removed_columns": len(res.report.removed),
        "suppressed_cells": int(res.report.suppressed["cells"].sum()),
        "below_k_after": int(after[below].sum()) if below in after else 0}
    seconds = time.perf_counter() - start
    with project.store() as st:
        st.replace_stage("public_use", {"public_use_crosswalk": res.crosswalk,
                                        "disclosure_risk": risk},
                         counts=counts, seconds=seconds,
                         detail=f"k = {cfg.output.k_anonymity}, GPS by EA, {', '.join(chosen)}")
    summary = risk.copy()
    return StageResult("public_use", counts, seconds, summary, tuple(files),
                       f"k-anonymity at k = {cfg.output.k_anonymity}")
