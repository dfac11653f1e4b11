"""A self-contained HTML report of the impact analysis (plotly, works offline).

The page holds plotly.js inline (no network access needed) and these sections: the
sample flow and response rates, weight diagnostics, group comparisons with their
confidence intervals, a forest plot of the impact estimates, and the balance
(standardised differences before and after weighting) of the propensity model.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from survey.design import Design
from survey.errors import EstimationError

__all__ = ["INELIGIBLE", "response_rates", "write_report"]

#: Visit results that mean the unit is not an eligible household (not nonresponse).
INELIGIBLE = ("vacant", "not_found", "destroyed")
_COLORS = {"none": "#1f77b4", "emigrant": "#d62728", "returnee": "#2ca02c", "all": "#7f7f7f",
           "receiving": "#9467bd", "not receiving": "#8c564b"}


def response_rates(households: pd.DataFrame, *, result: str = "visit_result",
                   group: str | None = "group", completed: str = "completed") -> pd.DataFrame:
    """Sample flow and response rates by listing group (and overall).

    Returns one row per group and ``"all"``: ``sampled``, ``ineligible`` (vacant,
    not found, destroyed: :data:`INELIGIBLE`), ``eligible``, ``completed``,
    ``nonresponse`` and ``response_rate = completed / eligible`` (AAPOR RR1-style,
    unweighted).
    """
    if result not in households.columns:
        raise EstimationError("visit result column not found", column=result,
                              hint="pass the imported household table (all visits)")
    res = households[result].astype(object)
    inel = res.isin(INELIGIBLE)
    done = res == completed
    frame = pd.DataFrame({"g": households[group].astype(object) if group else "all",
                          "ineligible": inel.astype(int), "completed": done.astype(int)})
    rows = []
    parts = [("all", frame)]
    if group:
        parts += [(g, f) for g, f in frame.groupby("g", sort=True)]
    for g, f in parts:
        n, i, c = len(f), int(f["ineligible"].sum()), int(f["completed"].sum())
        rows.append({"group": g, "sampled": n, "ineligible": i, "eligible": n - i,
                     "completed": c, "nonresponse": n - i - c,
                     "response_rate": c / (n - i) if n > i else np.nan})
    return pd.DataFrame(rows)


def _fig_html(fig, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def _table_html(frame: pd.DataFrame, digits: int = 3) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.{digits}f}", na_rep="",
                         classes="tbl", border=0)


def _flow_fig(flow: pd.DataFrame):
    import plotly.graph_objects as go

    fig = go.Figure()
    for col, color in (("completed", "#2ca02c"), ("nonresponse", "#ff7f0e"),
                       ("ineligible", "#7f7f7f")):
        fig.add_bar(x=flow["group"].astype(str), y=flow[col], name=col, marker_color=color)
    fig.update_layout(barmode="stack", title="Sample flow by listing group", height=360,
                      yaxis_title="households")
    return fig


def _weights_fig(design: Design, group: str | None):
    import plotly.graph_objects as go

    fig = go.Figure()
    w = design.w
    if group and group in design.data.columns:
        s = design.data[group]
        g = np.where(s.isna().to_numpy(), None, s.astype(object).to_numpy())
        for lev in sorted({x for x in g if x is not None}, key=str):
            fig.add_histogram(x=w[g == lev], name=str(lev), opacity=0.6,
                              marker_color=_COLORS.get(str(lev)))
        fig.update_layout(barmode="overlay")
    else:
        fig.add_histogram(x=w, name="weights")
    fig.update_layout(title="Distribution of the final weights", height=360,
                      xaxis_title="weight", yaxis_title="households")
    return fig


def _groups_fig(groups: pd.DataFrame, area: str):
    import plotly.graph_objects as go

    g = groups[(groups["area"] == area) & (groups["domain"] == "national")
               & (groups["statistic"] == "share")]
    if not len(g):
        return None
    fig = go.Figure()
    for lev, part in g.groupby("group", sort=False):
        fig.add_scatter(x=100 * part["estimate"], y=[part["label"].tolist(), part["group"].tolist()],
                        mode="markers",
                        name=str(lev), marker={"color": _COLORS.get(str(lev)), "size": 9},
                        error_x={"type": "data", "symmetric": False,
                                 "array": 100 * (part["ci_high"] - part["estimate"]),
                                 "arrayminus": 100 * (part["estimate"] - part["ci_low"])})
    fig.update_layout(title=f"{area.capitalize()}: shares by group (95% CI)",
                      xaxis_title="percent", height=max(300, 120 + 22 * len(g)),
                      margin={"l": 360})
    return fig


_FOREST = (("raw", "raw difference", "circle-open"), ("adj", "adjusted", "diamond"),
           ("ipw", "IPW", "square"), ("aipw", "AIPW", "triangle-up"),
           ("psm", "matching", "x"))


def _forest_fig(table: pd.DataFrame, kind: str, level: float = 0.95):
    """Every method's estimate with the interval of the impact table (``<key>_ci_low``,
    ``<key>_ci_high``: the t interval whose p-value gives the stars)."""
    import plotly.graph_objects as go

    t = table[table["domain"] == "national"]
    t = t[t["kind"] == "share"] if kind == "share" else t[t["kind"] != "share"]
    keys = [k for k in _FOREST if f"{k[0]}_diff" in t and t[f"{k[0]}_diff"].notna().any()]
    if not len(t) or not keys:
        return None
    if kind == "share":  # percentage points
        f = pd.Series(100.0, index=t.index)
    else:  # relative to the non-migrant mean, percent
        f = 100.0 / t["mean_none"].abs().replace(0, np.nan)
    fig = go.Figure()
    for key, name, sym in keys:
        x = t[f"{key}_diff"] * f
        kw = {}
        if f"{key}_ci_low" in t:
            kw["error_x"] = {"type": "data", "symmetric": False,
                             "array": (t[f"{key}_ci_high"] - t[f"{key}_diff"]) * f,
                             "arrayminus": (t[f"{key}_diff"] - t[f"{key}_ci_low"]) * f}
            name = f"{name} ({100 * level:g}% CI)"
        if f"{key}_p" in t:
            kw["customdata"] = t[f"{key}_p"].to_numpy(dtype=float)
            kw["hovertemplate"] = "%{y}: %{x:.3g}, p = %{customdata:.3g}"
        fig.add_scatter(x=x, y=t["label"], mode="markers", name=name,
                        marker={"symbol": sym, "size": 9}, **kw)
    fig.add_vline(x=0, line_dash="dash", line_color="#555")
    title = ("Impact on shares (percentage points)" if kind == "share"
             else "Impact on amounts and means (% of the non-migrant mean)")
    fig.update_layout(title=title, height=max(300, 140 + 34 * len(t)), margin={"l": 360})
    return fig


def _balance_fig(balance: pd.DataFrame):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_scatter(x=balance["smd_before"].abs(), y=balance["covariate"], mode="markers",
                    name="before weighting", marker={"symbol": "circle-open", "size": 10})
    if "smd_after" in balance:
        fig.add_scatter(x=balance["smd_after"].abs(), y=balance["covariate"], mode="markers",
                        name="after weighting", marker={"symbol": "circle", "size": 10})
    fig.add_vline(x=0.1, line_dash="dash", line_color="#d62728")
    fig.update_layout(title="Covariate balance: |standardised difference|",
                      height=max(300, 160 + 26 * len(balance)),
                      xaxis_title="|standardised difference|", margin={"l": 200})
    return fig


_CSS = """body{font-family:system-ui,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;color:#222}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}
.tbl{border-collapse:collapse;font-size:.85em}.tbl td,.tbl th{padding:3px 8px;
border-bottom:1px solid #eee;text-align:right}.tbl th{background:#eef2f8}
.note{color:#555;font-size:.9em;max-width:60em}"""


def write_report(path: str | Path, table: pd.DataFrame, *, groups: pd.DataFrame | None = None,
                 balance: pd.DataFrame | None = None, flow: pd.DataFrame | None = None,
                 design: Design | None = None, weight_group: str | None = "migration_group",
                 title: str = "Migration and development: impact report",
                 notes: Sequence[str] = (), level: float = 0.95) -> Path:
    """Write the HTML report; plotly.js is embedded so the file works offline.

    Parameters
    ----------
    path
        ``.html`` file to write.
    table
        The impact table (:func:`analysis.impact_table.impact_table`).
    groups
        Group estimates (:func:`analysis.impact_table.group_estimates`).
    balance
        A balance table (``analysis.impact.impact_fit(...).balance``).
    flow
        Sample flow (:func:`response_rates`).
    design
        The household design, for the weight diagnostics.
    notes
        Paragraphs added under the title (data source, dates).
    level
        The confidence level the table was made with (``impact_table(level=)``),
        for the forest plot's legend; its error bars are the table's interval
        columns, so they agree with its p-values and stars.

    Returns
    -------
    pathlib.Path
        The file written. Every chart is a ``div`` of class ``chart``.
    """
    import plotly.offline as po

    from analysis.export import METHODS_NOTE

    body: list[str] = [f"<h1>{html.escape(title)}</h1>"]
    body += [f'<p class="note">{html.escape(n)}</p>' for n in notes]
    charts: list[tuple[str, object]] = []

    def chart(fig, name: str) -> None:
        if fig is not None:
            div = f"chart-{len(charts) + 1}"
            charts.append((div, fig))
            body.append(f'<div class="chart" data-name="{html.escape(name)}">'
                        f"{_fig_html(fig, div)}</div>")

    if flow is not None:
        body.append("<h2>Sample flow and response rates</h2>")
        body.append(_table_html(flow))
        chart(_flow_fig(flow), "sample flow")
    if design is not None:
        from weighting.diagnostics import diagnostics

        body.append("<h2>Weight diagnostics</h2>")
        by = weight_group if weight_group and weight_group in design.data.columns else None
        body.append(_table_html(diagnostics(design, by=by)))
        chart(_weights_fig(design, by), "weights")
    if groups is not None:
        body.append("<h2>Group comparisons</h2>")
        for area in dict.fromkeys(groups["area"]):
            chart(_groups_fig(groups, area), f"groups {area}")
    body.append("<h2>Impact estimates</h2>")
    chart(_forest_fig(table, "share", level), "forest shares")
    chart(_forest_fig(table, "mean", level), "forest means")
    show = [c for c in ("label", "domain_value", "mean_none", "mean_emigrant", "mean_returnee",
                        "raw_diff", "raw_p", "adj_diff", "adj_p", "ipw_diff", "ipw_ci_low",
                        "ipw_ci_high", "ipw_p", "ipw_support_n", "aipw_diff", "aipw_ci_low",
                        "aipw_ci_high", "aipw_p", "n", "stars", "stars_of", "flag")
            if c in table]
    body.append(_table_html(table[show]))
    if balance is not None:
        body.append("<h2>Balance of the propensity model</h2>")
        chart(_balance_fig(balance), "balance")
        body.append(_table_html(balance))
    body.append("<h2>Methods</h2><dl>")
    body += [f"<dt><b>{html.escape(k)}</b></dt><dd class='note'>{html.escape(v)}</dd>"
             for k, v in METHODS_NOTE]
    body.append("</dl>")
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style>"
            f"<script type='text/javascript'>{po.get_plotlyjs()}</script></head><body>"
            + "\n".join(body) + "</body></html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
