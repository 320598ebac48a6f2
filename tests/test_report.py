"""Tests of the plotting and HTML report layer (chemoio.report), on small synthetic arrays."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from chemoio.errors import ChemoioInputError
from chemoio.report import (
    BOR_COLORS,
    DISCLAIMER,
    FOOTER_TEXT,
    Report,
    band_plot,
    forest_plot,
    kaplan_meier,
    km_plot,
    numbers_at_risk,
    save_figure,
    spider_plot,
    swimmer_plot,
    waterfall_plot,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Hand-made survival data (months). Curve A: 8 subjects, curve B: 6 subjects, all events.
A_TIME = np.array([2.0, 4.0, 6.0, 6.0, 8.0, 10.0, 12.0, 14.0])
A_EVENT = np.array([1, 0, 1, 1, 0, 1, 0, 0], dtype=bool)
B_TIME = np.array([1.0, 3.0, 5.0, 7.0, 9.0, 11.0])
B_EVENT = np.ones(6, dtype=bool)


def _lines(fig_or_ax, gid: str):
    axes = fig_or_ax.axes if isinstance(fig_or_ax, Figure) else [fig_or_ax]
    return [ln for ax in axes for ln in ax.get_lines() if ln.get_gid() == gid]


def _footer(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.texts if t.get_gid() == "chemoio-footer"]


def _axes_by_label(fig: Figure, label: str):
    found = [ax for ax in fig.axes if ax.get_label() == label]
    assert len(found) == 1, f"expected one axes labelled {label!r}"
    return found[0]


# --------------------------------------------------------------------------------------
# Kaplan-Meier
# --------------------------------------------------------------------------------------


def test_kaplan_meier_matches_hand_calculation():
    km = kaplan_meier(A_TIME, A_EVENT)
    # distinct event times 2, 6, 10; at risk 8, 6, 3; deaths 1, 2, 1
    np.testing.assert_allclose(km["time"], [0.0, 2.0, 6.0, 10.0])
    np.testing.assert_allclose(km["at_risk"], [8, 8, 6, 3])
    np.testing.assert_allclose(km["events"], [0, 1, 2, 1])
    s2 = 7 / 8
    s6 = s2 * (1 - 2 / 6)
    s10 = s6 * (1 - 1 / 3)
    np.testing.assert_allclose(km["survival"], [1.0, s2, s6, s10])
    assert np.all(km["lower"] <= km["survival"] + 1e-12)
    assert np.all(km["upper"] >= km["survival"] - 1e-12)
    # Greenwood log(-log) interval at t = 2 by hand
    var_sum = 1 / (8 * 7)
    se = np.sqrt(var_sum) / abs(np.log(s2))
    np.testing.assert_allclose(km["lower"][1], s2 ** np.exp(1.959963984540054 * se), rtol=1e-9)
    np.testing.assert_allclose(km["upper"][1], s2 ** np.exp(-1.959963984540054 * se), rtol=1e-9)


def test_kaplan_meier_agrees_with_lifelines():
    lifelines = pytest.importorskip("lifelines")
    rng = np.random.default_rng(3)
    t = np.round(rng.exponential(10.0, 80), 1)  # rounding creates ties
    e = rng.random(80) < 0.7
    ours = kaplan_meier(t, e)
    kmf = lifelines.KaplanMeierFitter().fit(t, e)
    at = ours["time"][1:]
    np.testing.assert_allclose(ours["survival"][1:], kmf.survival_function_at_times(at).to_numpy())
    ci = kmf.confidence_interval_survival_function_.loc[at]
    ok = ours["survival"][1:] > 0
    np.testing.assert_allclose(ours["lower"][1:][ok], ci.iloc[:, 0].to_numpy()[ok], rtol=1e-6)
    np.testing.assert_allclose(ours["upper"][1:][ok], ci.iloc[:, 1].to_numpy()[ok], rtol=1e-6)


def test_numbers_at_risk_counts_follow_up_at_least_t():
    np.testing.assert_array_equal(numbers_at_risk(A_TIME, [0, 6, 12, 15]), [8, 6, 2, 0])
    np.testing.assert_array_equal(numbers_at_risk(B_TIME, [0, 6, 12]), [6, 3, 0])


def test_km_plot_steps_censor_ticks_and_at_risk_table():
    fig = km_plot(
        {"Arm A": (A_TIME, A_EVENT), "Arm B": (B_TIME, B_EVENT)},
        annotate={"HR": "0.56 (0.45\u20130.70)"},
        title="OS",
    )
    assert isinstance(fig, Figure)
    ax = _axes_by_label(fig, "km")
    steps = _lines(ax, "km-step")
    assert len(steps) == 2
    assert all(ln.get_drawstyle() == "steps-post" for ln in steps)
    # curve A: step line starts at S=1 and ends at the last follow-up (14 months)
    xa, ya = steps[0].get_data()
    assert xa[0] == 0.0 and ya[0] == 1.0 and xa[-1] == 14.0
    np.testing.assert_allclose(ya[-1], 7 / 8 * 4 / 6 * 2 / 3)
    # censor ticks only for curve A (3 censored subjects: 4, 8, 12 and 14 -> four)
    censor = _lines(ax, "km-censor")
    assert len(censor) == 1
    np.testing.assert_allclose(censor[0].get_xdata(), [4.0, 8.0, 12.0, 14.0])
    np.testing.assert_allclose(censor[0].get_ydata()[0], 7 / 8)
    # 95 % CI bands, one per curve
    assert sum(1 for c in ax.collections if c.get_gid() == "km-ci") == 2

    # numbers at risk: default ticks every 6 months to the longest follow-up -> 0, 6, 12
    table = _axes_by_label(fig, "at_risk")
    cells = {
        t.get_gid(): t.get_text() for t in table.texts if (t.get_gid() or "").startswith("atrisk|")
    }
    assert cells == {
        "atrisk|Arm A|0": "8",
        "atrisk|Arm A|6": "6",
        "atrisk|Arm A|12": "2",
        "atrisk|Arm B|0": "6",
        "atrisk|Arm B|6": "3",
        "atrisk|Arm B|12": "0",
    }
    # table numbers sit exactly under the x ticks of the curves
    np.testing.assert_allclose(ax.get_xticks(), [0.0, 6.0, 12.0])
    assert [lab.get_text() for lab in table.get_yticklabels()] == ["Arm A", "Arm B"]

    annotations = [a for a in ax.artists if a.get_gid() == "km-annotation"]
    assert len(annotations) == 1
    assert annotations[0].txt.get_text() == "HR: 0.56 (0.45\u20130.70)"
    assert _footer(fig) == [FOOTER_TEXT]


def test_km_plot_custom_at_risk_times_and_no_ci():
    fig = km_plot({"A": (A_TIME, A_EVENT)}, at_risk_times=[0, 3, 9], ci=False)
    table = _axes_by_label(fig, "at_risk")
    texts = [t.get_text() for t in table.texts if (t.get_gid() or "").startswith("atrisk|")]
    assert texts == ["8", "7", "3"]
    assert not [c for c in fig.axes[0].collections if c.get_gid() == "km-ci"]


def test_km_plot_rejects_mismatched_arrays():
    with pytest.raises(ChemoioInputError):
        km_plot({"A": (A_TIME, A_EVENT[:-1])})
    with pytest.raises(ChemoioInputError):
        km_plot({})


# --------------------------------------------------------------------------------------
# spider, band
# --------------------------------------------------------------------------------------


def _spider_data(n: int = 60, v: int = 9, seed: int = 0):
    rng = np.random.default_rng(seed)
    days = np.arange(v) * 42.0
    pct = np.cumsum(rng.normal(-3, 12, (n, v)), axis=1)
    pct[:, 0] = 0.0
    pct[::4, 5:] = np.nan  # drop-outs
    return days, pct


def test_spider_plot_respects_max_lines_and_is_deterministic():
    days, pct = _spider_data()
    fig = spider_plot(days, pct, max_lines=15, rng_seed=4)
    lines = _lines(fig, "spider-line")
    assert len(lines) == 15
    again = _lines(spider_plot(days, pct, max_lines=15, rng_seed=4), "spider-line")
    for a, b in zip(lines, again):
        np.testing.assert_array_equal(a.get_ydata(), b.get_ydata())
    # x axis in weeks
    np.testing.assert_allclose(lines[0].get_xdata(), days / 7.0)
    # every drawn line is a row of the input
    rows = {tuple(np.nan_to_num(r, nan=-999.0)) for r in pct}
    assert all(tuple(np.nan_to_num(ln.get_ydata(), nan=-999.0)) in rows for ln in lines)
    # all patients when fewer than max_lines
    assert len(_lines(spider_plot(days, pct[:7], max_lines=200), "spider-line")) == 7
    assert len(_lines(spider_plot(days, pct, max_lines=None), "spider-line")) == 60


def test_spider_plot_reference_lines_arms_and_footer():
    days, pct = _spider_data(n=20)
    arms = np.array(["A", "B"] * 10)
    fig = spider_plot(days, pct, arm_labels=arms, title="SLD")
    refs = sorted(float(ln.get_ydata()[0]) for ln in _lines(fig, "spider-ref"))
    assert refs == [-30.0, 20.0]
    colors = {to_hex(ln.get_color()) for ln in _lines(fig, "spider-line")}
    assert len(colors) == 2
    ax = fig.axes[0]
    assert "weeks" in ax.get_xlabel() and "%" in ax.get_ylabel()
    assert ax.get_title() == "SLD"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A", "B"]
    assert _footer(fig) == [FOOTER_TEXT]
    with pytest.raises(ChemoioInputError):
        spider_plot(days, pct[:, :-1])


def test_band_plot_median_and_band_per_series():
    rng = np.random.default_rng(1)
    days = np.arange(0, 85, 7.0)
    tcells = np.exp(rng.normal(0, 0.5, (200, days.size)))
    tcells[:50, 8:] = np.nan
    series = {"Effector T cells": tcells, "Tregs": rng.gamma(2, 1, (200, days.size)),
              "PD-L1": rng.random((200, days.size))}
    fig = band_plot(days, series, ylog=True, ylabel={"Effector T cells": "cells/uL"},
                    title="Immune states")
    axes = fig.axes
    assert len(axes) == 3
    assert [ax.get_title() for ax in axes] == list(series)
    assert all(ax.get_yscale() == "log" for ax in axes)
    assert axes[0].get_ylabel() == "cells/uL"
    assert fig.get_suptitle() == "Immune states"
    for ax, values in zip(axes, series.values()):
        med = [ln for ln in ax.get_lines() if ln.get_gid() == "band-median"]
        assert len(med) == 1
        np.testing.assert_allclose(med[0].get_ydata(), np.nanmedian(values, axis=0))
        bands = [c for c in ax.collections if c.get_gid() == "band-90"]
        assert len(bands) == 1 and isinstance(bands[0], PolyCollection)
    # four series on a 2 x 2 grid, unused axes removed for five
    assert len(band_plot(days, {str(i): tcells for i in range(5)}).axes) == 5


# --------------------------------------------------------------------------------------
# waterfall, swimmer
# --------------------------------------------------------------------------------------


def test_waterfall_bars_sorted_capped_and_coloured():
    best = np.array([-45.0, 12.0, 250.0, -100.0, np.nan, 30.0, -20.0, 101.0])
    bor = ["PR", "SD", "PD", "CR", "NE", "PD", "SD", "PD"]
    fig = waterfall_plot(best, bor, title="BOR")
    ax = fig.axes[0]
    bars = ax.containers[0].patches
    heights = np.array([b.get_height() for b in bars])
    assert len(bars) == 7  # NaN left out
    assert np.all(np.diff(heights) <= 0)
    np.testing.assert_allclose(heights, [100, 100, 30, 12, -20, -45, -100])
    expected = ["PD", "PD", "PD", "SD", "SD", "PR", "CR"]
    assert [to_hex(b.get_facecolor()).upper() for b in bars] == [BOR_COLORS[c] for c in expected]
    capped = _lines(ax, "waterfall-capped")
    assert len(capped) == 1 and len(capped[0].get_xdata()) == 2
    assert sorted(float(ln.get_ydata()[0]) for ln in _lines(ax, "waterfall-ref")) == [-30.0, 20.0]
    assert _footer(fig) == [FOOTER_TEXT]
    # without labels: still sorted, one colour
    heights2 = [b.get_height() for b in waterfall_plot(best).axes[0].containers[0].patches]
    assert np.all(np.diff(heights2) <= 0)
    with pytest.raises(ChemoioInputError):
        waterfall_plot(best, ["XX"] * best.size)


def test_swimmer_plot_bars_in_months_and_markers():
    n = 80
    rng = np.random.default_rng(2)
    start = np.zeros(n)
    end = rng.uniform(30, 600, n)
    resp = np.where(np.arange(n) % 3 == 0, 60.0, np.nan)
    death = np.where(np.arange(n) % 5 == 0, end, np.nan)
    fig = swimmer_plot(start, end, {"Response": resp, "Death": death},
                       arm=np.where(np.arange(n) % 2 == 0, "A", "B"), max_patients=25)
    ax = fig.axes[0]
    bars = ax.containers[0].patches
    assert len(bars) == 25
    widths = np.array([b.get_width() for b in bars])
    assert np.all(np.diff(widths) >= 0)  # longest bar on top (highest row)
    assert set(np.round(widths * 365.25 / 12, 6)) <= set(np.round(end, 6))
    resp_m = _lines(ax, "swimmer-marker|Response")[0]
    death_m = _lines(ax, "swimmer-marker|Death")[0]
    assert resp_m.get_marker() != death_m.get_marker()
    np.testing.assert_allclose(resp_m.get_xdata(), 60.0 / (365.25 / 12))
    assert "months" in ax.get_xlabel()
    assert "25 of 80" in ax.get_ylabel()
    assert _footer(fig) == [FOOTER_TEXT]
    # fewer patients than the cap: all drawn
    assert len(swimmer_plot(start[:5], end[:5]).axes[0].containers[0].patches) == 5


# --------------------------------------------------------------------------------------
# forest
# --------------------------------------------------------------------------------------


def test_forest_plot_log_axis_and_markers():
    rows = [
        {"label": "All", "hr": 0.56, "low": 0.45, "high": 0.70, "n": 616,
         "published": (0.49, 0.38, 0.64)},
        {"label": "Age < 65", "hr": 0.60, "low": 0.45, "high": 0.80},
        {"label": "Age >= 65", "hr": 0.66, "low": 0.48, "high": 0.92,
         "published": (0.64, 0.43, 0.95)},
    ]
    fig = forest_plot(rows, title="Subgroups")
    ax = _axes_by_label(fig, "forest")
    assert ax.get_xscale() == "log"
    sim = _lines(ax, "forest-simulated")
    pub = _lines(ax, "forest-published")
    assert len(sim) == 1 and len(sim[0].get_xdata()) == 3
    assert len(pub) == 1 and len(pub[0].get_xdata()) == 2
    np.testing.assert_allclose(sim[0].get_xdata(), [0.56, 0.60, 0.66])
    np.testing.assert_allclose(pub[0].get_xdata(), [0.49, 0.64])
    assert to_hex(sim[0].get_color()) != to_hex(pub[0].get_color())
    null = _lines(ax, "forest-null")
    assert len(null) == 1 and np.all(np.asarray(null[0].get_xdata()) == 1.0)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "All  (n=616)" and labels[1] == "Age < 65"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["simulated", "published"]
    values = " ".join(t.get_text() for t in _axes_by_label(fig, "forest-values").texts)
    assert "0.56 (0.45\u20130.70)" in values and "0.49 (0.38\u20130.64)" in values
    assert _footer(fig) == [FOOTER_TEXT]

    # no published values: one marker per row, no published line
    fig2 = forest_plot(rows[1:2])
    assert len(_lines(fig2, "forest-simulated")[0].get_xdata()) == 1
    assert not _lines(fig2, "forest-published")
    with pytest.raises(ChemoioInputError):
        forest_plot([{"label": "bad", "hr": -1, "low": 0.5, "high": 2}])


def test_save_figure_writes_png(tmp_path: Path):
    fig = waterfall_plot([-40.0, 10.0, 30.0])
    out = save_figure(fig, tmp_path / "sub" / "w.png", dpi=60)
    assert out.read_bytes().startswith(PNG_SIGNATURE)


# --------------------------------------------------------------------------------------
# HTML report
# --------------------------------------------------------------------------------------


def test_report_disclaimer_escaping_images_and_write(tmp_path: Path):
    png = tmp_path / "given.png"
    save_figure(waterfall_plot([-40.0, 10.0]), png, dpi=40)
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    rep = Report("Trial <b>X</b>", save_pngs_to="pngs", generated_at=when)
    rep.add_heading("Results & <script>alert(1)</script>", 2)
    rep.add_paragraph("Text with <script>alert('x')</script> inside.\n\nSecond paragraph.")
    rep.add_key_values({"seed": 1, "arm <A>": "pembro", "fraction": 0.123456})
    df = pd.DataFrame({
        "endpoint": ["ORR", "<i>OS</i>"],
        "value": [0.41, 14.2],
        "within CI": [True, False],
    })
    rep.add_table(df, caption="Comparison <table>", highlight_column="within CI")
    rep.add_table([{"a": 1, "b": None}], caption="rows")
    rep.add_figure(km_plot({"A": (A_TIME, A_EVENT)}), caption="KM <fig>")
    rep.add_figure(png, caption="from file")
    path = rep.write(tmp_path / "out" / "report.html")

    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # the notice comes before any content
    body = text.split("<body>", 1)[1]
    assert body.index(DISCLAIMER) < body.index("<h1>")
    assert (
        "Research output of an in-silico model. "
        "Not medical advice; not for decisions about any patient."
    ) in text
    assert "2025-01-02 03:04:05 UTC" in text
    assert re.search(r"chemoio (dev|\d+\.\d+)", text)
    # user text escaped, no script element anywhere
    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "Trial &lt;b&gt;X&lt;/b&gt;" in text
    assert "&lt;i&gt;OS&lt;/i&gt;" in text and "arm &lt;A&gt;" in text
    assert "<p>Second paragraph.</p>" in text
    # highlight column as coloured tick/cross
    assert '<td class="yes" title="yes" aria-label="yes">\u2713</td>' in text
    assert '<td class="no" title="no" aria-label="no">\u2717</td>' in text
    assert "0.1235" in text and "\u2014" in text  # float format and missing value
    # images embedded as data URIs that decode to PNG; nothing loaded from outside
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(uris) == 2
    assert all(base64.b64decode(u).startswith(PNG_SIGNATURE) for u in uris)
    assert base64.b64decode(uris[1]) == png.read_bytes()
    assert not re.search(r'(src|href)="(?!data:)', text)
    assert "<figcaption><b>Figure 1.</b> KM &lt;fig&gt;</figcaption>" in text
    # PNG copies next to the HTML
    saved = sorted((tmp_path / "out" / "pngs").glob("*.png"))
    assert [p.name for p in saved] == ["report_figure01.png", "report_figure02.png"]
    assert saved[1].read_bytes() == png.read_bytes()


def test_report_version_and_bad_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import chemoio

    monkeypatch.setattr(chemoio, "__version__", "9.8.7", raising=False)
    html_text = Report().to_html()
    assert "chemoio 9.8.7" in html_text and DISCLAIMER in html_text
    monkeypatch.delattr(chemoio, "__version__")
    assert "chemoio dev" in Report().to_html()

    rep = Report()
    with pytest.raises(ChemoioInputError):
        rep.add_heading("x", 7)
    with pytest.raises(ChemoioInputError):
        rep.add_table(pd.DataFrame({"a": [1]}), highlight_column="b")
    with pytest.raises(ChemoioInputError):
        rep.add_figure(tmp_path / "missing.png")
    not_png = tmp_path / "x.png"
    not_png.write_text("hello")
    with pytest.raises(ChemoioInputError):
        rep.add_figure(not_png)
    assert len(rep) == 0


def test_plots_need_no_pyplot_or_gui_backend():
    """Figures are built without pyplot, so the caller's backend is never switched."""
    import subprocess
    import sys

    code = (
        "import sys, matplotlib\n"
        "before = matplotlib.rcParams._get_backend_or_none()\n"
        "from chemoio.report import km_plot, Report\n"
        "Report().add_figure(km_plot({'A': ([1.0, 2.0], [True, False])}))\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "assert matplotlib.rcParams._get_backend_or_none() == before\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
