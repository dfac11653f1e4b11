"""Fieldwork stages: the listing, the household sample, and importing what comes back.

``listing_import`` reads and checks the listing of the selected EAs
(:mod:`sampling.listing`); ``select_households`` draws the phase-2 sample per EA and
migration group (:mod:`sampling.households`) and writes what field teams need (the
preload CSV the bundled form reads with ``pulldata`` and an assignment workbook);
``import_exports`` reads exports or pulls from ODK Central (:mod:`instruments`) into
the store, one batch per export, so that importing the same export twice changes
nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from survey.errors import InstrumentError, SamplingError
from survey.project import Project
from survey.stages._common import StageResult, require

__all__ = ["EXPORT_SUFFIXES", "import_exports", "listing_import", "read_project_form",
           "select_households"]

#: Files in the exports folder that ``survey import`` reads (folders are read too).
EXPORT_SUFFIXES = (".zip", ".json", ".xlsx", ".csv", ".xml")

#: Columns of the stored listing, whatever the file calls them.
LISTING_COLUMNS = ("ea_id", "hh_id", "group")


# -- stage: listing --------------------------------------------------------------------
def listing_import(project: Project, path: str | Path | None = None) -> StageResult:
    """Read the household listing, check it against the selected EAs, and store it.

    Parameters
    ----------
    project
        The project.
    path
        The listing file (CSV, XLSX or Parquet); default ``[listing] file``.

    Notes
    -----
    Fatal problems (a household in an EA that was not selected, duplicate household
    ids, an unknown migration group) stop the stage with a
    :class:`~survey.errors.SamplingError`; every problem, fatal or not, is written to
    ``out/listing_problems.csv`` so the listing can be fixed in one pass. Warnings
    (EAs not listed yet, listed counts far from the census) are stored with the
    listing in ``listing_problems``.
    """
    from sampling.listing import check_listing, read_listing

    require(project, "select_eas", by="survey listing import")
    start = time.perf_counter()
    cfg = project.config.listing
    file = Path(path) if path is not None else project.path(cfg.file)
    if not file.exists():
        raise SamplingError("listing file not found", file=str(file),
                            hint="give the listing file, or set [listing] file in survey.toml")
    listing = read_listing(file, ea=cfg.ea, hh=cfg.hh, group=cfg.group, sheet=cfg.sheet)
    listing = listing.rename(columns={cfg.ea: "ea_id", cfg.hh: "hh_id", cfg.group: "group"})
    with project.store(read_only=True) as st:
        selected = st.read("selected_eas")
    out = project.out_dir / "listing_problems.csv"
    try:
        problems = check_listing(listing, selected, groups=project.config.groups,
                                 size="households")
    except SamplingError as err:
        found = getattr(err, "problems", None)
        if found is not None:
            found.to_csv(out, index=False)
            err.hint = f"every problem is listed in {out}; fix the listing and import it again"
        raise
    problems.to_csv(out, index=False)
    listed = listing[listing["hh_id"].notna()]
    by_group = listed["group"].value_counts()
    counts = {"households": len(listed), "eas": int(listed["ea_id"].nunique()),
              **{g: int(by_group.get(g, 0)) for g in project.config.groups},
              "warnings": len(problems)}
    summary = (listed.merge(selected[["ea_id", "stratum"]], on="ea_id", how="left")
               .pivot_table(index="stratum", columns="group", values="hh_id", aggfunc="count",
                            fill_value=0, observed=True)
               .reindex(columns=list(project.config.groups), fill_value=0)
               .reset_index())
    summary.columns.name = None
    seconds = time.perf_counter() - start
    with project.store() as st:
        st.replace_stage("listing", {"listing": listing, "listing_problems": problems},
                         counts=counts, seconds=seconds, detail=f"from {file.name}")
    return StageResult("listing", counts, seconds, summary, (out,), f"from {file.name}")


# -- stage: select_households ----------------------------------------------------------
def _assignments(sample: pd.DataFrame, path: Path) -> Path:
    """An assignment workbook: one summary row per EA, then every household to visit."""
    per_ea = (sample.assign(main=~sample["reserve"].astype(bool))
              .groupby(["stratum", "ea_id"], sort=True, observed=True)
              .agg(households=("main", "sum"), reserves=("reserve", "sum")).reset_index())
    cols = ["stratum", "ea_id", "hh_id", "group", "reserve", "reserve_order"]
    extra = [c for c in ("hh_number", "listing_row") if c in sample.columns]
    visits = sample[cols + extra].sort_values(["stratum", "ea_id", "reserve", "reserve_order"],
                                              kind="stable")
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path, engine="openpyxl") as xl:
        per_ea.to_excel(xl, sheet_name="EAs", index=False)
        visits.to_excel(xl, sheet_name="households", index=False)
    return path


def select_households(project: Project) -> StageResult:
    """Select households per EA and migration group from the stored listing.

    Uses :func:`sampling.households.select_households` with ``[takes]``, ``[listing]
    method`` and ``reserve`` and ``[seeds] select_households``. Stores ``sample``
    (main sample and reserves, with ``pi1``, ``pi2``, ``L_hig``, ``m_hig``) and
    ``household_cells``; writes ``out/fieldwork/households.csv`` (the preload file the
    household form reads) and ``out/fieldwork/assignments.xlsx``.
    """
    from sampling.field import preload_csv
    from sampling.households import household_cells
    from sampling.households import select_households as _select

    require(project, "listing", by="survey select households")
    start = time.perf_counter()
    cfg = project.config
    with project.store(read_only=True) as st:
        listing = st.read("listing")
        selected = st.read("selected_eas")
    eas = selected[["ea_id", "stratum", "pi1", "certainty"]]
    take = dict(cfg.takes)
    sample = _select(listing, take, eas=eas, groups=cfg.groups, method=cfg.listing.method,
                     reserve=cfg.listing.reserve, rng=cfg.seeds.select_households)
    sample.attrs = {}
    cells = household_cells(listing, take, eas=eas, groups=cfg.groups)
    main = sample[~sample["reserve"].astype(bool)]
    folder = project.out_dir / "fieldwork"
    folder.mkdir(parents=True, exist_ok=True)
    preload = folder / "households.csv"
    preload_csv(sample, preload)
    workbook = _assignments(sample, folder / "assignments.xlsx")
    by_group = main["group"].value_counts()
    counts = {"households": len(main), "reserves": int(sample["reserve"].sum()),
              "eas": int(main["ea_id"].nunique()),
              **{g: int(by_group.get(g, 0)) for g in cfg.groups},
              "empty_cells": int(cells["empty"].sum()),
              "take_all_cells": int(cells["take_all"].sum())}
    seconds = time.perf_counter() - start
    detail = f"{cfg.listing.method}, seed {cfg.seeds.select_households}"
    with project.store() as st:
        st.replace_stage("select_households", {"sample": sample, "household_cells": cells},
                         counts=counts, seconds=seconds, detail=detail)
    summary = (cells.groupby("group", sort=False, observed=True)
               .agg(listed=("L_hig", "sum"), selected=("m_hig", "sum"),
                    empty_cells=("empty", "sum"), take_all_cells=("take_all", "sum"))
               .reset_index())
    return StageResult("select_households", counts, seconds, summary, (preload, workbook), detail)


# -- stage: import ---------------------------------------------------------------------
def read_project_form(project: Project):
    """The questionnaire of ``[fieldwork] form``, read by :func:`instruments.read_form`."""
    from instruments import read_form

    path = project.path(project.config.fieldwork.form)
    if not path.is_file():
        raise InstrumentError("questionnaire not found", file=str(path),
                              hint="set [fieldwork] form in survey.toml to the XLSForm fielded")
    return read_form(path)


def _hash_path(path: Path) -> str:
    """SHA-256 of a file's bytes, or of a folder's file names and bytes."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        if path.is_dir():
            h.update(p.relative_to(path).as_posix().encode())
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _hash_raw(raw) -> str:
    """SHA-256 of pulled raw tables, so that pulling unchanged data twice changes nothing."""
    h = hashlib.sha256()
    for name in sorted(raw.tables):
        h.update(name.encode())
        df = raw.tables[name]
        h.update(df.sort_values("key", kind="stable").to_csv(index=False).encode()
                 if "key" in df.columns else df.to_csv(index=False).encode())
    return h.hexdigest()


def _default_exports(project: Project) -> list[Path]:
    folder = project.path(project.config.fieldwork.exports)
    if not folder.is_dir():
        raise InstrumentError("no exports to import: the exports folder does not exist",
                              file=str(folder),
                              hint="put the exports there, give them on the command line, "
                                   "or use --from-odk-central")
    found = sorted(p for p in folder.iterdir()
                   if not p.name.startswith(".")
                   and (p.is_dir() or p.suffix.lower() in EXPORT_SUFFIXES))
    if not found:
        raise InstrumentError("no exports to import: the exports folder is empty", file=str(folder),
                              hint=f"put ODK Central, Kobo or SurveyCTO exports there "
                                   f"({', '.join(EXPORT_SUFFIXES)} or folders)")
    return found


def _central_client(project_id: int) -> Any:
    """A pyodk client configured from pyodk's own config file (never from the project)."""
    try:
        from pyodk.client import Client
    except ImportError:  # pragma: no cover - pyodk is a dependency
        raise InstrumentError("pulling from ODK Central needs pyodk",
                              hint="install the optional extra: pip install 'survey[odk]'") from None
    try:
        return Client(project_id=project_id)
    except Exception as exc:  # the message may quote the config; say only what kind of error
        raise InstrumentError(f"cannot set up the ODK Central client ({type(exc).__name__})",
                              hint="check pyodk's config file (~/.config/pyodk/config.toml or "
                                   "PYODK_CONFIG_FILE): base_url, username, password") from None


def _store_result(project: Project, source: str, sha: str, result) -> tuple[Any, dict[str, int]]:
    tables = dict(result.tables)
    ledger = result.ledger[["table", "read", "kept", "quarantined", "duplicates"]]
    keys = {t: "key" for t, df in tables.items() if "key" in df.columns}
    with project.store() as st:
        batch = st.import_batch(source, sha, tables, problems=result.problems, ledger=ledger,
                                keys=keys)
    return batch, {"read": batch.read, "kept": batch.kept, "quarantined": batch.quarantined,
                   "duplicates": batch.duplicates}


def import_exports(project: Project, paths: Sequence[str | Path] = (), *,
                   from_central: bool = False, central_project: int | None = None,
                   client_factory: Callable[[int], Any] | None = None) -> StageResult:
    """Import field-data exports (or an ODK Central pull) into the store.

    Parameters
    ----------
    project
        The project.
    paths
        Exports (files, folders or zips in any format :func:`instruments.importer.read_export`
        reads); default: everything in ``[fieldwork] exports``.
    from_central
        Pull every submission from ODK Central through pyodk instead. The server and
        credentials come from pyodk's own config file; they are never stored, logged
        or printed by this program.
    central_project
        ODK Central project id (default ``[fieldwork] central_project``).
    client_factory
        Makes the pyodk client from a project id (for tests; default
        ``pyodk.client.Client(project_id=...)``).

    Notes
    -----
    Each export is one batch, recorded with its SHA-256: an export imported before
    is skipped, and rows whose key is already stored (from an earlier, overlapping
    export) are counted as duplicates. Every row read is kept, quarantined (with a
    coded problem) or counted as a duplicate.
    """
    from instruments.importer import import_raw, read_export

    require(project, "select_households", by="survey import")
    start = time.perf_counter()
    form = read_project_form(project)
    rows = []
    if from_central:
        pid = central_project or project.config.fieldwork.central_project
        if pid is None:
            raise InstrumentError("no ODK Central project id",
                                  hint="give --project-id or set [fieldwork] central_project")
        from instruments.formats.odata import pull_odk_central

        client = (client_factory or _central_client)(pid)
        raw = pull_odk_central(client, pid, form)
        sha = _hash_raw(raw)
        source = f"central:project{pid}/{form.form_id}"
        with project.store(read_only=True) as st:
            old = st.batch_for(sha)
        if old is None:
            result = import_raw(raw, form, source=source, sha256=sha)
            batch, c = _store_result(project, source, sha, result)
        else:
            batch, c = old, {}
        rows.append({"source": source, "new": batch.new, **c})
    else:
        files = [Path(p) for p in paths] or _default_exports(project)
        for f in files:
            if not f.exists():
                raise InstrumentError("export not found", file=str(f), hint="check the path")
        for f in files:
            sha = _hash_path(f)
            with project.store(read_only=True) as st:
                old = st.batch_for(sha)
            if old is not None:
                rows.append({"source": f.name, "new": False})
                continue
            result = read_export(f, form)
            batch, c = _store_result(project, f.name, sha, result)
            rows.append({"source": f.name, "new": batch.new, **c})
    summary = pd.DataFrame(rows).reindex(
        columns=["source", "new", "read", "kept", "quarantined", "duplicates"])
    with project.store(read_only=True) as st:
        root = form.form_id
        counts = {"new_batches": int(summary["new"].sum()),
                  "skipped_batches": int((~summary["new"].astype(bool)).sum()),
                  "batches": st.count("import_batches"),
                  "submissions": st.count(f"data.{root}"),
                  "problems": st.count("problems")}
    seconds = time.perf_counter() - start
    return StageResult("import", counts, seconds, summary, (),
                       f"{counts['new_batches']} new, {counts['skipped_batches']} already imported")
