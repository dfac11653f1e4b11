"""The report stage: one self-contained HTML page of the survey's results.

``report`` reads what ``survey analyze`` stored (impact table, group estimates,
balance) and the weights, and writes ``out/report.html`` with
:func:`analysis.report.write_report`: sample flow and response rates by listing
group, weight diagnostics (:func:`weighting.diagnostics`) and the weight chain, group
comparisons, the forest plot of the impact estimates and the balance of the
propensity model. plotly.js is embedded, so the page works offline.
"""

from __future__ import annotations

import time

import pandas as pd

from survey.project import Project
from survey.stages._common import StageResult, require

__all__ = ["report"]


def report(project: Project) -> StageResult:
    """Write ``out/report.html`` from the stored analysis (needs ``survey analyze``).

    The impact section shows the comparison of all migrant groups with
    ``[indicators] comparison`` (nationally and by domain); the group-by-group
    comparisons of the headline indicators follow in their own table.
    """
    from analysis.report import response_rates, write_report
    from survey.stages.analysis import household_design

    require(project, "analyze", by="survey report")
    start = time.perf_counter()
    cfg = project.config
    with project.store(read_only=True) as st:
        table = st.read("impact_table")
        groups = st.read("estimates")
        bal = st.read("balance")
        weights = st.read("weights")
        chain = st.read("weight_chain") if st.has("weight_chain") else None
        analyzed = st.stage_done("analyze")
    design, _ = household_design(project)
    flow = response_rates(weights, result="visit_result", group="group")
    first = table["comparison"].iloc[0]
    main = table[table["comparison"] == first].reset_index(drop=True)
    by_group = table[table["comparison"] != first]
    n = int((weights["weight"] > 0).sum())
    notes = [
        f"{n:,} households interviewed of {len(weights):,} sampled; estimates weighted by "
        f"the final weights ({analyzed.detail if analyzed else ''}).",
        f"Migrant households ({', '.join(g for g in cfg.groups if g != cfg.indicators.comparison)}) "
        f"are compared with {cfg.indicators.comparison!r} households of the listing; controls: "
        f"{', '.join(cfg.indicators.controls)}.",
    ]
    path = project.out_dir / "report.html"
    title = f"{cfg.survey.title or cfg.survey.country}: impact of migration on households"
    write_report(path, main, groups=groups, balance=bal if len(bal) else None, flow=flow,
                 design=design, weight_group="group", title=title, notes=notes)
    sections = []
    if chain is not None and len(chain):
        sections.append(("Weight chain: each adjustment step (weighting.weight_chain)",
                         chain[chain["step"] != "_w0"],
                         "Base weights 1/(pi1 pi2), then nonresponse within cells, calibration "
                         "to census totals and trimming, as configured in survey.toml."))
    if len(by_group):
        cols = [c for c in ("comparison", "label", "mean_none", "raw_diff", "adj_diff", "adj_se",
                            "ipw_diff", "ipw_ci_low", "ipw_ci_high", "ipw_p", "n", "stars")
                if c in by_group.columns]
        sections.append(("Each migrant group against the comparison (headline indicators)",
                         by_group[cols], "Emigrant and returnee households compared separately "
                         "with the comparison households: same controls and methods as above."))
    _insert_sections(path, sections)
    counts = {"indicators": int(main["indicator"].nunique()), "charts": _charts(path),
              "bytes": path.stat().st_size}
    seconds = time.perf_counter() - start
    with project.store() as st:
        st.replace_stage("report", {}, counts=counts, seconds=seconds, detail=str(path.name))
    summary = pd.DataFrame({"section": ["sample flow", "weights", "group comparisons",
                                        "impact estimates", "balance"],
                            "rows": [len(flow), len(design.data), len(groups), len(table),
                                     len(bal)]})
    return StageResult("report", counts, seconds, summary, (path,), path.name)


def _insert_sections(path, sections) -> None:
    """Add (heading, table, note) sections before the Methods section of the page."""
    import html

    part = "".join(
        f"<h2>{html.escape(h)}</h2>"
        + frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="",
                        classes="tbl", border=0)
        + f'<p class="note">{html.escape(note)}</p>' for h, frame, note in sections)
    text = path.read_text(encoding="utf-8")
    marker = "<h2>Methods</h2>"
    text = text.replace(marker, part + marker, 1) if marker in text else text + part
    path.write_text(text, encoding="utf-8")


def _charts(path) -> int:
    return path.read_text(encoding="utf-8").count('<div class="chart"')
