"""The ``survey`` command.

Global options come before the command: ``survey [--quiet] [--json] [--debug]
[-C DIR] COMMAND``. A user error (bad configuration, bad input file, a stage run
before the one it needs, a damaged store) prints its message and hint on stderr
without a traceback and exits with status 2; anything else is a failure (a bug),
printed briefly with exit status 1. ``--debug`` adds the traceback to either.
With ``--json`` the result goes to stdout as one JSON document, and errors go to
stderr as JSON too.
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from survey import pipeline
from survey.errors import FAILURE_EXIT, USER_ERROR_EXIT, SurveyError
from survey.project import Project, init_project

__all__ = ["app", "main"]

app = typer.Typer(
    name="survey",
    help="Run a migration and development household survey: frame to report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
frame_app = typer.Typer(help="The sampling frame of enumeration areas.", no_args_is_help=True)
app.add_typer(frame_app, name="frame")
select_app = typer.Typer(help="Select the sample: EAs, then households.", no_args_is_help=True)
app.add_typer(select_app, name="select")
listing_app = typer.Typer(help="The household listing of the selected EAs.", no_args_is_help=True)
app.add_typer(listing_app, name="listing")


@dataclass
class Options:
    """Global options, set by the root callback and read by every command."""

    quiet: bool = False
    json: bool = False
    debug: bool = False
    project: Path = Path(".")


def _out() -> Console:
    return Console(file=sys.stdout, highlight=False, soft_wrap=True)


def _err() -> Console:
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def _opts(ctx: typer.Context) -> Options:
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, Options) else Options()


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _report_error(err: BaseException, opts: Options, code: int) -> None:
    con = _err()
    if opts.debug:
        con.print("".join(traceback.format_exception(err)), markup=False)
    if isinstance(err, SurveyError):
        if opts.json:
            sys.stderr.write(json.dumps({"error": err.message, "hint": err.hint,
                                         "where": err.where, "type": type(err).__name__,
                                         "exit": code}, default=str) + "\n")
        else:
            con.print(f"[bold red]error:[/] {err}", markup=True)
        return
    msg = f"{type(err).__name__}: {err}"
    if opts.json:
        sys.stderr.write(json.dumps({"error": msg, "type": "failure", "exit": code}) + "\n")
    else:
        con.print(f"[bold red]failure:[/] {msg}", markup=True)
        if not opts.debug:
            con.print("This is a bug in survey, not in your data. Re-run with --debug for "
                      "the traceback and report it.", markup=False)


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn SurveyError into exit 2 and other exceptions into exit 1, without traceback."""

    @functools.wraps(fn)
    def wrapper(ctx: typer.Context, *args: Any, **kwargs: Any) -> Any:
        opts = _opts(ctx)
        try:
            return fn(ctx, *args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except SurveyError as err:
            _report_error(err, opts, USER_ERROR_EXIT)
            raise typer.Exit(USER_ERROR_EXIT) from None
        except Exception as err:
            _report_error(err, opts, FAILURE_EXIT)
            raise typer.Exit(FAILURE_EXIT) from None

    return wrapper


@contextmanager
def _progress(opts: Options, description: str) -> Iterator[None]:
    """A spinner with elapsed time on stderr, for steps that may take a while."""
    if opts.quiet or opts.json:
        yield
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=_err(), transient=True) as bar:
        bar.add_task(description, total=None)
        yield


def _table(df, title: str | None = None) -> Table:
    t = Table(title=title, show_edge=False, header_style="bold")
    for c in df.columns:
        t.add_column(str(c), justify="right" if df[c].dtype.kind in "iuf" else "left")
    for row in df.itertuples(index=False):
        t.add_row(*[(f"{v:.3f}" if isinstance(v, float) else str(v)) for v in row])
    return t


@app.callback()
def _root(
    ctx: typer.Context,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print results as JSON (for scripts).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    project: Annotated[Path, typer.Option("-C", "--project", help="Project folder (default: here).",
                                          file_okay=False)] = Path("."),
) -> None:
    """Run a migration and development household survey: frame to report."""
    ctx.obj = Options(quiet=quiet, json=json_, debug=debug, project=project)


@app.command("init")
@_guard
def init_cmd(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Folder for the new project.")],
    country: Annotated[str, typer.Option(help="Country name for survey.toml.")] = "Demoland",
) -> None:
    """Make a project folder: survey.toml, forms/, data/, out/ and the store."""
    opts = _opts(ctx)
    project = init_project(directory, country)
    forms = sorted(p.name for p in project.forms_dir.glob("*.xlsx"))
    if opts.json:
        _emit_json({"project": str(project.root), "config": str(project.config_file),
                    "store": str(project.store_file), "forms": forms})
    elif not opts.quiet:
        con = _out()
        con.print(f"Made project [bold]{project.root}[/] for {country}.")
        con.print(f"  edit      {project.config_file}")
        con.print(f"  put data  {project.data_dir}/ (the frame: {project.config.frame.file})")
        con.print(f"  forms     {', '.join(forms) if forms else '(none bundled yet)'}")
        con.print(f"Next: cd {directory} && survey frame check")


@app.command("status")
@_guard
def status_cmd(ctx: typer.Context) -> None:
    """Show what has been done, counts, what is stale and problems outstanding."""
    opts = _opts(ctx)
    project = Project.open(opts.project)
    info = pipeline.status(project)
    if opts.json:
        _emit_json(info)
        return
    if opts.quiet:
        return
    con = _out()
    con.print(f"Project [bold]{info['project']}[/] ({info['country']})")
    t = Table(show_edge=False, header_style="bold")
    for col in ("stage", "state", "when", "counts"):
        t.add_column(col)
    for name, s in info["stages"].items():
        state = "stale" if s["stale"] else ("done" if s["done"] else "-")
        counts = ", ".join(f"{k} {v:,}" for k, v in s["counts"].items())
        t.add_row(name, state, s["done_at"] or "", counts)
    con.print(t)
    con.print(f"Problems outstanding: {info['problems']:,}   Import batches: {info['batches']:,}")
    if info["next"]:
        con.print(f"Next: {info['next']['command']}")


@frame_app.command("check")
@_guard
def frame_check_cmd(ctx: typer.Context) -> None:
    """Read and check the frame file of survey.toml and store it."""
    opts = _opts(ctx)
    project = Project.open(opts.project)
    with _progress(opts, "Checking the frame"):
        result = pipeline.frame_check(project)
    if opts.json:
        _emit_json(result.to_dict())
        return
    if opts.quiet:
        return
    con = _out()
    c = result.counts
    con.print(f"Frame OK: {c['eas']:,} EAs, {c['households']:,} households, "
              f"{c['strata']} strata ({result.seconds:.2f} s).")
    if "fewer than 2" in result.detail:
        con.print(f"[yellow]warning:[/] {result.detail.split('; ', 1)[1]}")
    con.print(_table(result.summary))


def _run_stage(ctx: typer.Context, fn: Callable[[Project], pipeline.StageResult],
               doing: str, done: Callable[[pipeline.StageResult], str]) -> None:
    opts = _opts(ctx)
    project = Project.open(opts.project)
    with _progress(opts, doing):
        result = fn(project)
    if opts.json:
        _emit_json(result.to_dict())
        return
    if opts.quiet:
        return
    con = _out()
    con.print(done(result) + f" ({result.seconds:.2f} s)")
    con.print(_table(result.summary))
    for f in result.files:
        con.print(f"wrote {f}")


@app.command("design")
@_guard
def design_cmd(ctx: typer.Context) -> None:
    """Allocate the EAs of survey.toml to strata (needs `survey frame check`)."""
    _run_stage(ctx, lambda p: pipeline.design(p), "Allocating EAs to strata",
               lambda r: f"Allocated {r.counts['eas']:,} EAs to {r.counts['strata']} strata; "
                         f"{r.counts['households_to_interview']:,} households to interview")


@select_app.command("eas")
@_guard
def select_eas_cmd(ctx: typer.Context) -> None:
    """Select EAs by PPS systematic sampling (needs `survey design`)."""
    _run_stage(ctx, lambda p: pipeline.select_eas(p), "Selecting EAs",
               lambda r: f"Selected {r.counts['eas']:,} EAs ({r.counts['certainty']} certainty) "
                         f"holding {r.counts['households']:,} census households")


@listing_app.command("import")
@_guard
def listing_import_cmd(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="Listing file (default: [listing] file).")] = None,
) -> None:
    """Read and check the listing of the selected EAs (needs `survey select eas`)."""
    _run_stage(ctx, lambda p: pipeline.listing_import(p, file), "Reading the listing",
               lambda r: f"Listed {r.counts['households']:,} households in {r.counts['eas']} EAs "
                         f"({r.counts['warnings']} warnings)")


@select_app.command("households")
@_guard
def select_households_cmd(ctx: typer.Context) -> None:
    """Select households per EA and group; write the preload CSV and assignments."""
    _run_stage(ctx, lambda p: pipeline.select_households(p), "Selecting households",
               lambda r: f"Selected {r.counts['households']:,} households and "
                         f"{r.counts['reserves']:,} reserves in {r.counts['eas']} EAs")


@app.command("import")
@_guard
def import_cmd(
    ctx: typer.Context,
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Exports: files, folders or zips (default: everything in [fieldwork] exports).")] = None,
    from_odk_central: Annotated[bool, typer.Option(
        "--from-odk-central", help="Pull from ODK Central with pyodk's config file.")] = False,
    project_id: Annotated[int | None, typer.Option(
        "--project-id", help="ODK Central project id (default: [fieldwork] central_project).")] = None,
) -> None:
    """Import field data (ODK Central, Kobo, SurveyCTO, ODK XML) into the store."""
    if from_odk_central and paths:
        from survey.errors import ConfigError

        raise ConfigError("give export files or --from-odk-central, not both")
    _run_stage(ctx, lambda p: pipeline.import_exports(p, paths or (), from_central=from_odk_central,
                                                      central_project=project_id),
               "Importing field data",
               lambda r: f"Imported {r.counts['new_batches']} new export(s) "
                         f"({r.counts['skipped_batches']} already imported): "
                         f"{r.counts['submissions']:,} submissions, "
                         f"{r.counts['problems']:,} problems recorded")


@app.command("weight")
@_guard
def weight_cmd(ctx: typer.Context) -> None:
    """Weight: base, nonresponse, calibration, trimming and replicate weights."""
    _run_stage(ctx, lambda p: pipeline.weight(p), "Weighting",
               lambda r: f"Weighted {r.counts['weighted']:,} respondents of "
                         f"{r.counts['sampled']:,} sampled households; "
                         f"{r.counts['replicates']} replicate weights; Kish deff "
                         f"{r.counts['deff_kish_x100'] / 100:.2f}")


@app.command("analyze")
@_guard
def analyze_cmd(ctx: typer.Context) -> None:
    """Estimate the indicators and the impact table of migration (needs `survey weight`)."""
    _run_stage(ctx, lambda p: pipeline.analyze(p), "Estimating the indicators and impacts",
               lambda r: f"Estimated {r.counts['indicators']} indicators for "
                         f"{r.counts['households']:,} households and {r.counts['persons']:,} "
                         f"persons; {r.counts['impact_rows']} impact-table rows "
                         f"({r.counts['significant']} national rows significant). Headline:")


@app.command("report")
@_guard
def report_cmd(ctx: typer.Context) -> None:
    """Write the HTML report of the results (needs `survey analyze`)."""
    _run_stage(ctx, lambda p: pipeline.report(p), "Writing the report",
               lambda r: f"Wrote the report: {r.counts['charts']} charts, "
                         f"{r.counts['bytes'] / 1e6:.1f} MB, works offline")


@app.command("export")
@_guard
def export_cmd(
    ctx: typer.Context,
    formats: Annotated[list[str] | None, typer.Option(
        "--format", "-f", help="dta, sav, xlsx, parquet or csv (repeatable; default: [output] formats).")] = None,
    public_use: Annotated[bool, typer.Option(
        "--public-use", help="Write the public-use release (disclosure control) to out/public/.")] = False,
) -> None:
    """Write the weighted, labelled data for Stata, SPSS, Excel and Parquet users."""
    fmts = tuple(formats) if formats else None
    if public_use:
        _run_stage(ctx, lambda p: pipeline.public_export(p, fmts), "Writing the public-use files",
                   lambda r: f"Wrote {r.counts['files']} public-use files: k-anonymity at "
                             f"k = {r.counts['k']} ({r.counts['suppressed_cells']:,} cells "
                             f"suppressed, {r.counts['removed_columns']} identifying columns "
                             f"removed); the code crosswalk stays in the store")
        return
    _run_stage(ctx, lambda p: pipeline.export(p, fmts),
               "Exporting the data",
               lambda r: f"Wrote {r.counts['files']} files")


@app.command("demo")
@_guard
def demo_cmd(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Folder for the demo project.")],
    eas: Annotated[int, typer.Option(help="EAs in the demo country's frame.")] = 20_000,
    households: Annotated[int, typer.Option(help="Households in the demo country.")] = 3_000_000,
    sample_eas: Annotated[int | None, typer.Option(help="EAs to select (default 100).")] = None,
) -> None:
    """Run every stage on a synthetic country with known effects of migration."""
    from survey.demo.run import run_demo

    opts = _opts(ctx)
    show = not (opts.quiet or opts.json)
    if show:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                      console=_err(), transient=True) as bar:
            task = bar.add_task("Demo", total=15)

            @contextmanager
            def step(description: str) -> Iterator[None]:
                bar.update(task, description=description)
                yield
                bar.advance(task)

            result = run_demo(directory, n_eas=eas, households=households,
                              sample_eas=sample_eas, step=step)
    else:
        result = run_demo(directory, n_eas=eas, households=households, sample_eas=sample_eas)
    if opts.json:
        _emit_json({"project": str(result.project.root), "seconds": round(result.seconds, 2),
                    "stages": {k: v.to_dict() for k, v in result.stages.items()},
                    "headline": pipeline.records(result.headline),
                    "files": {k: str(v) for k, v in result.files.items()}})
        return
    if opts.quiet:
        return
    con = _out()
    from survey.stages.analysis import headline

    with result.project.store(read_only=True) as st:
        table = st.read("impact_table")
    main_rows = headline(table, result.project.config.indicators.headline)
    main_rows = main_rows[main_rows["comparison"] == table["comparison"].iloc[0]]
    view = main_rows.assign(interval=[f"[{a:.3g}, {b:.3g}]" for a, b in
                                      zip(main_rows["ipw_ci_low"], main_rows["ipw_ci_high"])])
    con.print(_table(view[["area", "label", "mean_none", "raw_diff", "adj_diff", "ipw_diff",
                           "interval", "stars", "n"]],
                     title="Impact of migration on households: migrant vs non-migrant "
                           "(headline rows of the impact table)"))
    head = result.headline
    view = head.assign(interval=[f"[{a:.3g}, {b:.3g}]" for a, b in zip(head["ci_low"], head["ci_high"])],
                       inside=head["covered"].map({True: "yes", False: "NO"}))
    con.print(_table(view[["label", "group", "estimate", "se", "interval", "known", "inside"]],
                     title="Known effects of the demo country against the IPW estimates "
                           "(each group vs non-migrant)"))
    c = result.stages["weight"].counts
    con.print(f"{c['respondent']:,} interviews of {c['sampled']:,} sampled households in "
              f"{result.stages['select_eas'].counts['eas']} EAs; "
              f"{head['covered'].sum()} of {len(head)} known effects inside the 95% intervals.")
    out = result.project.out_dir
    con.print(f"Project  {result.project.root}")
    con.print(f"Report   {result.files['report']}")
    con.print(f"Tables   {out / 'impact_table.xlsx'} (.csv, .dta)")
    con.print(f"Data     {out / 'data'} (Stata, SPSS, Parquet); public use: {out / 'public'}")
    con.print(f"Field    {out / 'fieldwork'}; ODK Central export {result.files['export']}")
    con.print(f"Done in {result.seconds:.1f} s. Try: survey -C {directory} status")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``survey`` console script; returns the exit status."""
    try:
        app(args=argv, prog_name="survey")
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else FAILURE_EXIT)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
