"""Tests of the outputs: the HTML report in headless Chromium, the Excel workbook,
CSV and Stata files (analysis.report, analysis.export).

The report test opens the page in Debian's ``chromium`` (``.ci/run`` installs it) with
no network, takes a screenshot and checks that it is not blank (pixel variance of the
decoded PNG), that no console error or uncaught exception came from the page
(``--enable-logging=stderr --v=0``), and, from the DOM after scripts ran
(``--dump-dom``), that every chart div holds a drawn plotly graph.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.export import AREA_SHEETS, HEADERS, write_csv, write_excel, write_stata
from analysis.impact import impact_fit
from analysis.impact_table import group_estimates, impact_table
from analysis.indicators import prepare
from analysis.report import response_rates, write_report
from survey.errors import SurveyWarning
from tests.analysis.test_indicators import simulated_survey

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
INDS = ["remittances_received", "rem_amount_year", "rem_channel_bank", "spend_edu",
        "enrol_6_17", "spend_health", "insured_person", "female_head", "women_say_health"]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    design, tables = simulated_survey(n=480, seed=11, eas=36)
    data = prepare(design, tables)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SurveyWarning)
        table = impact_table(data, INDS)
        fit = impact_fit(data.household, "spend_edu", "migration_group",
                         ["head_age", "head_female", "hh_size", "urban", "region"],
                         treated=["emigrant", "returnee"], control="none")
    groups = group_estimates(data, INDS)
    out = tmp_path_factory.mktemp("report")
    full = tables["household"]  # all visits, for the sample flow
    return {"data": data, "table": table, "groups": groups, "balance": fit.balance,
            "flow": response_rates(full), "dir": out}


# -- PNG decoding (no imaging library needed) -----------------------------------------------

def _png_pixels(path: Path) -> np.ndarray:
    """Decode an 8-bit, non-interlaced RGB/RGBA PNG into (height, width, channels)."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, head = 8, [], None
    while pos < len(raw):
        (length,) = struct.unpack(">I", raw[pos:pos + 4])
        kind, body = raw[pos + 4:pos + 8], raw[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, color, _, _, interlace = head
    assert depth == 8 and color in (2, 6) and interlace == 0
    ch = 3 if color == 2 else 4
    data = zlib.decompress(b"".join(idat))
    stride = width * ch
    out = np.zeros((height, stride), dtype=np.int64)
    prev = np.zeros(stride, dtype=np.int64)
    for y in range(height):
        f = data[y * (stride + 1)]
        row = np.frombuffer(data, np.uint8, stride, y * (stride + 1) + 1).astype(np.int64)
        if f == 0:
            cur = row
        elif f == 1:  # Sub: a running sum per channel, modulo 256
            cur = np.cumsum(row.reshape(width, ch), axis=0).ravel() % 256
        elif f == 2:
            cur = (row + prev) % 256
        else:
            cur = [0] * stride
            r, p = row.tolist(), prev.tolist()
            for i in range(stride):
                a = cur[i - ch] if i >= ch else 0
                b = p[i]
                c = p[i - ch] if i >= ch else 0
                if f == 3:
                    pred = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                cur[i] = (r[i] + pred) % 256
            cur = np.array(cur, dtype=np.int64)
        out[y] = cur
        prev = cur
    return out.reshape(height, width, ch)


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0"]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=120)


def _page_errors(stderr: str, url: str) -> list[str]:
    lines = [ln for ln in stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    return [ln for ln in lines if "Uncaught" in ln or "ERROR:CONSOLE" in ln
            or (url in ln and "error" in ln.lower())]


def test_report_opens_in_headless_chromium(outputs, tmp_path):
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (.ci/run installs it)"
    o = outputs
    path = write_report(o["dir"] / "report.html", o["table"], groups=o["groups"],
                        balance=o["balance"], flow=o["flow"], design=o["data"].household,
                        notes=["Synthetic data for the test suite."])
    page = path.read_text(encoding="utf-8")
    # works offline: plotly.js inline, no script fetched from anywhere
    assert "<script src=" not in page and 'src="http' not in page
    assert "plotly.js v" in page[:20000] or "Plotly" in page[:200000]
    n_charts = page.count('<div class="chart"')
    assert n_charts >= 6
    url = path.resolve().as_uri()
    shot = tmp_path / "shot.png"
    run = _chromium([f"--screenshot={shot}", "--window-size=1200,3000",
                     "--force-device-scale-factor=0.25", url], tmp_path / "p1")
    assert shot.exists(), run.stderr[-2000:]
    px = _png_pixels(shot)
    assert px.shape[0] >= 700 and px.shape[1] >= 290
    assert px[..., :3].astype(float).var() > 100.0  # not blank
    # not one colour: charts put blues, reds and greens on the page
    colours = np.unique(px[..., :3].reshape(-1, 3) // 32, axis=0)
    assert len(colours) > 20
    dom = _chromium(["--dump-dom", "--virtual-time-budget=20000", url], tmp_path / "p2")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert html.count("js-plotly-plot") >= n_charts  # every chart div got a plotly graph
    assert html.count('class="main-svg"') >= n_charts
    errors = _page_errors(run.stderr + dom.stderr, url)
    assert not errors, errors


def test_forest_plot_draws_the_tables_intervals(outputs):
    """The forest plot's error bars are the impact table's interval columns for every
    method (the t intervals whose p-values give the stars), on its scale."""
    from analysis.report import _forest_fig

    t = outputs["table"]
    nat = t[(t.domain == "national") & (t.kind == "share")]
    fig = _forest_fig(t, "share")
    traces = {tr.name: tr for tr in fig.data}
    assert set(traces) == {"raw difference (95% CI)", "adjusted (95% CI)", "IPW (95% CI)"}
    for key, name in (("raw", "raw difference"), ("adj", "adjusted"), ("ipw", "IPW")):
        tr = traces[f"{name} (95% CI)"]
        np.testing.assert_allclose(tr.x, 100 * nat[f"{key}_diff"], rtol=1e-12)
        np.testing.assert_allclose(np.asarray(tr.x) - np.asarray(tr.error_x.arrayminus),
                                   100 * nat[f"{key}_ci_low"], rtol=1e-12)
        np.testing.assert_allclose(np.asarray(tr.x) + np.asarray(tr.error_x.array),
                                   100 * nat[f"{key}_ci_high"], rtol=1e-12)
        np.testing.assert_allclose(tr.customdata, nat[f"{key}_p"], rtol=1e-12)
        # a bar crossing 0 is a p-value of 0.05 or more, and no stars when it is the
        # starred method
        crosses = (nat[f"{key}_ci_low"] <= 0) & (nat[f"{key}_ci_high"] >= 0)
        assert (crosses == (nat[f"{key}_p"] >= 0.05)).all()
    starred = nat[nat.stars_of == "ipw"]
    assert len(starred) == len(nat)
    assert ((starred.stars.isin(["**", "***"])) ==
            ((starred.ipw_ci_low > 0) | (starred.ipw_ci_high < 0))).all()
    # amounts: percent of the non-migrant mean
    am = t[(t.domain == "national") & (t.kind != "share")]
    tr = next(tr for tr in _forest_fig(t, "mean", 0.9).data if tr.name == "IPW (90% CI)")
    np.testing.assert_allclose(np.asarray(tr.x) + np.asarray(tr.error_x.array),
                               100 * am.ipw_ci_high / am.mean_none.abs(), rtol=1e-12)


def test_console_error_check_catches_errors(tmp_path):
    """The console check sees a page's uncaught exception (so a clean run means something)."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>throw new Error('boom')</script></body></html>")
    run = _chromium(["--dump-dom", "--virtual-time-budget=2000", bad.as_uri()], tmp_path / "p")
    assert _page_errors(run.stderr, bad.as_uri())


def test_response_rates():
    df = pd.DataFrame({"visit_result": ["completed", "refused", "vacant", "completed", None],
                       "group": ["none", "none", "none", "emigrant", "emigrant"]})
    r = response_rates(df).set_index("group")
    assert r.loc["all", "sampled"] == 5 and r.loc["all", "ineligible"] == 1
    assert r.loc["none", "response_rate"] == pytest.approx(1 / 2)
    assert r.loc["emigrant", "response_rate"] == pytest.approx(1 / 2)


def test_excel_workbook(outputs):
    import openpyxl

    o = outputs
    path = write_excel(o["table"], o["dir"] / "impact.xlsx", groups=o["groups"],
                       indicators=o["data"].indicators, balance=o["balance"])
    wb = openpyxl.load_workbook(path)
    areas = [AREA_SHEETS[a] for a in dict.fromkeys(o["table"]["area"])]
    assert wb.sheetnames == [*areas, "Group estimates", "Balance", "Notes"]
    ws = wb["Education"]
    header = [c.value for c in ws[2]]
    assert header[:4] == ["Indicator", "Definition", "Domain", "Domain value"]
    for h in ("Non-migrant", "Emigrant", "Returnee", "Raw difference", "SE (raw)", "p (raw)",
              "Adjusted difference", "IPW effect", "SE (IPW)", "95% CI low (IPW)",
              "Common support n", "Unweighted n", "Sig.", "Notes"):
        assert h in header, h
    names = [ws.cell(row=r, column=1).value for r in range(3, ws.max_row + 1)]
    assert names == list(o["table"].loc[o["table"].area == "education", "indicator"])
    col = header.index("IPW effect") + 1
    exp = o["table"].set_index("indicator").loc["spend_edu", "ipw_diff"]
    got = ws.cell(row=3 + names.index("spend_edu"), column=col).value
    assert got == pytest.approx(exp, rel=1e-12)
    notes = [r[0].value for r in wb["Notes"].iter_rows()]
    assert "IPW effect" in notes and "enrol_6_17" in notes


def test_csv_and_stata(outputs):
    import pyreadstat

    o = outputs
    t = o["table"]
    c = pd.read_csv(write_csv(t, o["dir"] / "impact.csv"))
    assert list(c.columns) == list(t.columns)
    np.testing.assert_allclose(c["ipw_diff"], t["ipw_diff"], rtol=1e-12)
    df, meta = pyreadstat.read_dta(str(write_stata(t, o["dir"] / "impact.dta")))
    assert list(df.columns) == list(t.columns)  # already valid Stata names
    assert dict(zip(meta.column_names, meta.column_labels))["ipw_diff"] == HEADERS["ipw_diff"]
    np.testing.assert_allclose(df["ipw_diff"], t["ipw_diff"], rtol=1e-12)
    assert list(df["indicator"]) == list(t["indicator"])
