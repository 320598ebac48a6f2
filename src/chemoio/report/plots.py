"""Figures for virtual-trial results, as plain functions on arrays.

Every function takes numpy arrays (or things numpy can turn into arrays) and returns a
:class:`matplotlib.figure.Figure`. Figures are built directly from ``Figure`` objects, never
through ``pyplot``, so no GUI backend is needed, no global figure registry fills up, and the
caller's matplotlib backend is left alone. Save with :func:`save_figure` or embed in an
HTML page with :class:`chemoio.report.Report`.

Colours come from the Okabe-Ito palette, which stays distinguishable under the common forms
of colour-vision deficiency. Figures that a person reads as a result (Kaplan-Meier, waterfall,
forest, swimmer, spider) carry a small footer saying they are research output.

Nothing here depends on the model: the functions only see arrays.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.lines import Line2D
from matplotlib.offsetbox import AnchoredText
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator
from numpy.typing import ArrayLike, NDArray

from chemoio.errors import ChemoioInputError

__all__ = [
    "BOR_COLORS",
    "DAYS_PER_MONTH",
    "FOOTER_TEXT",
    "PALETTE",
    "band_plot",
    "forest_plot",
    "kaplan_meier",
    "km_plot",
    "numbers_at_risk",
    "save_figure",
    "spider_plot",
    "swimmer_plot",
    "waterfall_plot",
]

#: Okabe-Ito colour-blind-safe palette (blue, orange, bluish green, vermillion, reddish
#: purple, sky blue, yellow, black), ordered so the first colours contrast most.
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
)

#: Colours for RECIST best overall response categories.
BOR_COLORS: dict[str, str] = {
    "CR": "#0072B2",
    "PR": "#56B4E9",
    "SD": "#E69F00",
    "PD": "#D55E00",
    "NE": "#999999",
}

#: Footer printed on figures that a person reads as a result.
FOOTER_TEXT = "chemoio \u2014 research output, not medical advice"

#: Mean length of a month in days (365.25 / 12).
DAYS_PER_MONTH = 365.25 / 12.0

_DAYS_PER_WEEK = 7.0
_FOOTER_HEIGHT_IN = 0.24
_GREY = "#555555"
_LIGHT_GREY = "#BBBBBB"
_Z95 = 1.959963984540054


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _new_figure(width: float, height: float, footer: bool) -> Figure:
    """A constrained-layout figure; with ``footer`` a strip at the bottom is kept free."""
    fig = Figure(figsize=(width, height), layout="constrained")
    if footer:
        frac = _FOOTER_HEIGHT_IN / height
        engine = fig.get_layout_engine()
        if isinstance(engine, ConstrainedLayoutEngine):
            engine.set(rect=(0.0, frac, 1.0, 1.0 - frac))
        fig.text(
            0.995,
            0.006,
            FOOTER_TEXT,
            ha="right",
            va="bottom",
            fontsize=7,
            color="#777777",
            gid="chemoio-footer",
        )
    return fig


def _style_axes(ax: Axes, grid_axis: Literal["x", "y", "both"] | None = "y") -> None:
    """Light, uncluttered look: no top/right spines, faint grid."""
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    if grid_axis:
        ax.grid(True, axis=grid_axis, color="#E5E5E5", linewidth=0.8, zorder=0)
        ax.set_axisbelow(True)


def _as_1d(values: ArrayLike, name: str, dtype: Any = float) -> NDArray[Any]:
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim != 1:
        raise ChemoioInputError(name, f"expected a 1-D array, got shape {arr.shape}")
    return arr


def _as_2d(values: ArrayLike, name: str, n_cols: int) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != n_cols:
        raise ChemoioInputError(
            name, f"expected shape (n_patients, {n_cols}) to match the time points, got {arr.shape}"
        )
    return arr


def _subset(n: int, k: int | None, rng_seed: int) -> NDArray[np.intp]:
    """Indices of a deterministic random subset of size ``k`` (all if ``k`` is None or >= n)."""
    if k is None or k >= n:
        return np.arange(n)
    if k < 0:
        raise ChemoioInputError("max", f"must be >= 0, got {k}")
    rng = np.random.default_rng(rng_seed)
    return np.sort(rng.choice(n, size=k, replace=False))


def _group_colors(labels: Sequence[str]) -> dict[str, str]:
    return {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(labels)}


def _unique_in_order(values: Sequence[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for v in values:
        seen.setdefault(str(v), None)
    return list(seen)


def _fmt_num(x: float) -> str:
    if not np.isfinite(x):
        return "NR" if x == np.inf else "n/a"
    return f"{x:.1f}" if abs(x) < 100 else f"{x:.0f}"


# --------------------------------------------------------------------------------------
# spider plot
# --------------------------------------------------------------------------------------


def spider_plot(
    days: ArrayLike,
    pct_change: ArrayLike,
    max_lines: int | None = 200,
    rng_seed: int = 0,
    arm_labels: ArrayLike | None = None,
    *,
    title: str | None = None,
    y_cap: float = 200.0,
    footer: bool = True,
) -> Figure:
    """Change in tumour size (sum of longest diameters) from baseline over time.

    Parameters
    ----------
    days:
        Assessment times in days since baseline, shape ``(v,)``; shown in weeks.
    pct_change:
        Percent change of SLD from baseline, shape ``(n, v)``. NaN marks a missing
        assessment (the line has a gap there; e.g. after death or drop-out).
    max_lines:
        At most this many patients are drawn, chosen as a random subset that depends only on
        ``rng_seed``. ``None`` draws every patient.
    arm_labels:
        Optional arm of each patient, shape ``(n,)``; lines are then coloured by arm.
    title:
        Axes title.
    y_cap:
        Upper limit of the y-axis in percent; lines above it are clipped at the frame.
    footer:
        Print the research-output footer.

    Returns
    -------
    Figure
        One line per drawn patient (``gid="spider-line"``), dashed reference lines at
        +20 % and -30 % (RECIST progression and partial-response thresholds).
    """
    t = _as_1d(days, "days")
    y = _as_2d(pct_change, "pct_change", t.size)
    n = y.shape[0]
    arms: NDArray[Any] | None = None
    if arm_labels is not None:
        arms = np.asarray(arm_labels, dtype=object)
        if arms.shape != (n,):
            raise ChemoioInputError("arm_labels", f"expected shape ({n},), got {arms.shape}")

    idx = _subset(n, max_lines, rng_seed)
    weeks = t / _DAYS_PER_WEEK

    fig = _new_figure(7.5, 4.8, footer)
    ax = fig.add_subplot()
    _style_axes(ax)

    alpha = float(np.clip(12.0 / max(len(idx), 1) ** 0.75, 0.18, 0.9))
    if arms is None:
        colors = {"all": PALETTE[0]}
        groups = np.array(["all"] * n, dtype=object)
    else:
        colors = _group_colors(_unique_in_order(arms.tolist()))
        groups = np.array([str(a) for a in arms], dtype=object)

    for i in idx:
        ax.plot(
            weeks,
            y[i],
            color=colors[groups[i]],
            alpha=alpha,
            linewidth=1.0,
            marker="o" if len(idx) <= 30 else None,
            markersize=2.5,
            gid="spider-line",
        )

    ax.axhline(0.0, color=_GREY, linewidth=0.8, zorder=1)
    for level, text in ((20.0, "+20 % (progression)"), (-30.0, "\u221230 % (partial response)")):
        ax.axhline(level, color="black", linestyle="--", linewidth=1.0, zorder=3, gid="spider-ref")
        ax.annotate(
            text,
            xy=(1.0, level),
            xycoords=("axes fraction", "data"),
            xytext=(-3, 3),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=8,
            color="black",
        )

    finite = y[idx][np.isfinite(y[idx])]
    top = float(np.max(finite)) if finite.size else 40.0
    ax.set_ylim(-105.0, min(max(top * 1.05, 40.0), y_cap))
    if weeks.size:
        ax.set_xlim(min(0.0, float(np.nanmin(weeks))), float(np.nanmax(weeks)) * 1.02 + 1e-9)
    ax.set_xlabel("Time since baseline (weeks)")
    ax.set_ylabel("Change in SLD from baseline (%)")
    if title:
        ax.set_title(title)

    if arms is not None:
        handles = [Line2D([], [], color=c, linewidth=2, label=a) for a, c in colors.items()]
        ax.legend(handles=handles, loc="upper left", frameon=False, fontsize=9)
    note = f"{len(idx)} of {n} patients shown" if len(idx) < n else f"{n} patients"
    ax.text(0.99, 0.02, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
            color=_GREY)
    return fig


# --------------------------------------------------------------------------------------
# band plot
# --------------------------------------------------------------------------------------


def band_plot(
    days: ArrayLike,
    series: Mapping[str, ArrayLike],
    ylog: bool = False,
    ylabel: str | Mapping[str, str] = "Level (model units)",
    *,
    title: str | None = None,
    ncols: int | None = None,
    time_unit: str = "weeks",
    footer: bool = True,
) -> Figure:
    """Median and 90 % band (5th-95th percentile) across patients, one panel per series.

    Used for immune and drug states over time (effector T cells, Tregs, PD-L1, antigen
    signal, ...). Percentiles ignore NaN (patients no longer followed).

    Parameters
    ----------
    days:
        Time points in days, shape ``(v,)``.
    series:
        Panel title -> values of shape ``(n, v)``.
    ylog:
        Log-scaled y-axes (non-positive values are not drawn on a log axis).
    ylabel:
        One y-axis label for all panels, or a mapping panel title -> label with units.
    title:
        Figure title.
    ncols:
        Panels per row; default 2 for four panels, else up to 3.
    time_unit:
        ``"days"``, ``"weeks"`` or ``"months"`` for the x-axis.
    footer:
        Print the research-output footer.

    Returns
    -------
    Figure
        One axes per series; each holds a median line (``gid="band-median"``) and a filled
        band (``gid="band-90"``).
    """
    t = _as_1d(days, "days")
    if not series:
        raise ChemoioInputError("series", "needs at least one entry")
    scale = {"days": 1.0, "weeks": _DAYS_PER_WEEK, "months": DAYS_PER_MONTH}
    if time_unit not in scale:
        raise ChemoioInputError("time_unit", f"must be one of {sorted(scale)}, got {time_unit!r}")
    x = t / scale[time_unit]

    k = len(series)
    if ncols is None:
        ncols = 2 if k == 4 else 3
    nc = max(1, min(ncols, k))
    nr = math.ceil(k / nc)
    fig = _new_figure(3.4 * nc + 0.6, 2.6 * nr + (0.5 if title else 0.2), footer)
    axes = fig.subplots(nr, nc, squeeze=False, sharex=True)

    for j, (name, values) in enumerate(series.items()):
        ax = axes[j // nc][j % nc]
        _style_axes(ax)
        y = _as_2d(values, f"series[{name!r}]", t.size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            lo, med, hi = np.nanpercentile(y, [5.0, 50.0, 95.0], axis=0)
        if ylog:
            lo, med, hi = (np.where(a > 0, a, np.nan) for a in (lo, med, hi))
        color = PALETTE[j % len(PALETTE)]
        ax.fill_between(x, lo, hi, color=color, alpha=0.25, linewidth=0, gid="band-90",
                        label="5th\u201395th percentile")
        ax.plot(x, med, color=color, linewidth=1.8, gid="band-median", label="median")
        ax.set_title(str(name), fontsize=10)
        if ylog:
            ax.set_yscale("log")
        label = ylabel.get(str(name), "") if isinstance(ylabel, Mapping) else ylabel
        ax.set_ylabel(label, fontsize=9)
        ax.tick_params(labelsize=8)
        if j // nc == nr - 1 or j + nc >= k:
            ax.set_xlabel(f"Time ({time_unit})", fontsize=9)
            ax.xaxis.set_tick_params(labelbottom=True)
        if j == 0:
            ax.legend(loc="best", frameon=False, fontsize=7)
    for j in range(k, nr * nc):
        axes[j // nc][j % nc].remove()
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------------------
# Kaplan-Meier
# --------------------------------------------------------------------------------------


def kaplan_meier(
    time: ArrayLike, event: ArrayLike, alpha: float = 0.05
) -> dict[str, NDArray[np.float64]]:
    """Product-limit (Kaplan-Meier) estimate with a log(-log) Greenwood confidence interval.

    Parameters
    ----------
    time:
        Follow-up time of each subject, shape ``(n,)``, non-negative.
    event:
        True where the subject had the event at ``time``, False where censored.
    alpha:
        1 - confidence level of the interval (0.05 gives a 95 % interval).

    Returns
    -------
    dict
        ``time`` (0 followed by the distinct event times), ``survival`` (right-continuous
        step values, ``survival[i]`` holds on ``[time[i], time[i+1])``), ``lower`` and
        ``upper`` (pointwise confidence bounds), ``at_risk`` and ``events`` at each time.
    """
    t = _as_1d(time, "time")
    e = _as_1d(event, "event", dtype=bool)
    if t.shape != e.shape:
        raise ChemoioInputError("event", f"shape {e.shape} does not match time {t.shape}")
    if np.any(~np.isfinite(t)) or np.any(t < 0):
        raise ChemoioInputError("time", "must be finite and non-negative")
    if not 0.0 < alpha < 1.0:
        raise ChemoioInputError("alpha", f"must lie in (0, 1), got {alpha}")

    from statistics import NormalDist

    z = NormalDist().inv_cdf(1.0 - alpha / 2.0)
    ts = np.unique(t[e])
    t_sorted = np.sort(t)
    at_risk = (t.size - np.searchsorted(t_sorted, ts, side="left")).astype(float)
    deaths = np.array([np.count_nonzero(e & (t == u)) for u in ts], dtype=float)

    surv = np.cumprod(1.0 - deaths / at_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        gw = np.cumsum(deaths / (at_risk * (at_risk - deaths)))
        log_s = np.log(surv)
        se = np.sqrt(gw) / np.abs(log_s)
        # S = exp(-exp(theta)) decreases in theta, so theta's upper bound gives S's lower one
        lower = surv ** np.exp(z * se)
        upper = surv ** np.exp(-z * se)
    # S == 0 (last subject died) or S == 1: the interval collapses onto the estimate.
    degenerate = ~np.isfinite(se) | (surv <= 0.0)
    lower = np.where(degenerate, surv, lower)
    upper = np.where(degenerate, np.where(surv <= 0.0, 0.0, surv), upper)

    return {
        "time": np.concatenate([[0.0], ts]),
        "survival": np.concatenate([[1.0], surv]),
        "lower": np.concatenate([[1.0], lower]),
        "upper": np.concatenate([[1.0], upper]),
        "at_risk": np.concatenate([[float(t.size)], at_risk]),
        "events": np.concatenate([[0.0], deaths]),
    }


def numbers_at_risk(time: ArrayLike, at: ArrayLike) -> NDArray[np.int64]:
    """Subjects still under observation (follow-up time >= ``at``) at each time in ``at``."""
    t = np.sort(_as_1d(time, "time"))
    q = np.atleast_1d(np.asarray(at, dtype=float))
    return (t.size - np.searchsorted(t, q, side="left")).astype(np.int64)


def _median_survival(km: Mapping[str, NDArray[np.float64]]) -> float:
    below = np.nonzero(km["survival"] <= 0.5)[0]
    return float(km["time"][below[0]]) if below.size else float("inf")


def _step_value(km: Mapping[str, NDArray[np.float64]], at: NDArray[np.float64]) -> NDArray[Any]:
    pos = np.searchsorted(km["time"], at, side="right") - 1
    return km["survival"][np.clip(pos, 0, None)]


def km_plot(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]],
    at_risk_times: ArrayLike | None = None,
    xlabel: str = "Months",
    ylabel: str = "Overall survival",
    annotate: Mapping[str, Any] | str | None = None,
    *,
    title: str | None = None,
    ci: bool = True,
    footer: bool = True,
) -> Figure:
    """Kaplan-Meier curves with censor ticks, 95 % bands and a numbers-at-risk table.

    Parameters
    ----------
    curves:
        Label -> ``(time, event)``: follow-up time of each subject (in the unit of
        ``xlabel``, months by default) and a boolean event indicator (False = censored).
    at_risk_times:
        Times for the numbers-at-risk table and the x ticks; default every 6 units from 0 to
        the longest follow-up.
    xlabel, ylabel:
        Axis labels.
    annotate:
        Optional text box in the upper right: a string, or a mapping whose items are printed
        one per line as ``key: value`` (e.g. ``{"HR": "0.56 (0.45\u20130.70)"}``).
    title:
        Axes title.
    ci:
        Draw the pointwise 95 % confidence band.
    footer:
        Print the research-output footer.

    Returns
    -------
    Figure
        Main axes (``label="km"``) with one step line per curve (``gid="km-step"``) and the
        table axes (``label="at_risk"``) whose texts carry ``gid="atrisk|<label>|<time>"``.
    """
    if not curves:
        raise ChemoioInputError("curves", "needs at least one (time, event) pair")
    data: dict[str, tuple[NDArray[np.float64], NDArray[np.bool_]]] = {}
    for label, pair in curves.items():
        try:
            raw_t, raw_e = pair
        except (TypeError, ValueError):
            raise ChemoioInputError(f"curves[{label!r}]", "expected a (time, event) pair") from None
        t = _as_1d(raw_t, f"curves[{label!r}].time")
        e = _as_1d(raw_e, f"curves[{label!r}].event", dtype=bool)
        if t.shape != e.shape:
            raise ChemoioInputError(f"curves[{label!r}]", "time and event differ in length")
        data[str(label)] = (t, e)

    t_max = max((float(t.max()) if t.size else 0.0) for t, _ in data.values())
    if at_risk_times is None:
        ticks = np.arange(0.0, t_max + 1e-9, 6.0)
    else:
        ticks = np.sort(_as_1d(at_risk_times, "at_risk_times"))
    x_hi = max(t_max, float(ticks.max()) if ticks.size else 0.0) * 1.03 + 1e-9

    n_curves = len(data)
    table_h = 0.30 * n_curves + 0.45
    height = 3.9 + table_h + (0.3 if title else 0.0)
    fig = _new_figure(7.5, height, footer)
    gs = fig.add_gridspec(2, 1, height_ratios=[3.9, table_h])
    ax = fig.add_subplot(gs[0], label="km")
    tab = fig.add_subplot(gs[1], sharex=ax, label="at_risk")
    _style_axes(ax, grid_axis="both")

    colors = _group_colors(list(data))
    handles: list[Any] = []
    for label, (t, e) in data.items():
        color = colors[label]
        km = kaplan_meier(t, e)
        # extend the last step to the end of follow-up so censored tails stay visible
        end = float(t.max()) if t.size else 0.0
        xs = np.append(km["time"], max(end, km["time"][-1]))
        ys = np.append(km["survival"], km["survival"][-1])
        if ci:
            ax.fill_between(
                xs,
                np.append(km["lower"], km["lower"][-1]),
                np.append(km["upper"], km["upper"][-1]),
                step="post",
                color=color,
                alpha=0.15,
                linewidth=0,
                gid="km-ci",
            )
        ax.step(xs, ys, where="post", color=color, linewidth=1.8, gid="km-step")
        cens = np.sort(t[~e])
        if cens.size:
            ax.plot(
                cens,
                _step_value(km, cens),
                linestyle="none",
                marker="|",
                markersize=7,
                markeredgewidth=1.2,
                color=color,
                gid="km-censor",
            )
        med = _median_survival(km)
        handles.append(
            Line2D([], [], color=color, linewidth=2,
                   label=f"{label} (n={t.size}; median {_fmt_num(med)})")
        )

    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0.0, x_hi)
    ax.xaxis.set_major_locator(FixedLocator(ticks.tolist()))
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel)
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}" if -1e-9 <= v <= 1 + 1e-9 else "")
    if title:
        fig.suptitle(title)
    if ci:
        handles.append(Patch(facecolor="#999999", alpha=0.3, label="95 % CI"))
    handles.append(Line2D([], [], color="#444444", linestyle="none", marker="|",
                          markersize=7, label="censored"))
    # legend and annotation sit above the frame so they never hide a curve
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.01), frameon=False,
              fontsize=8.5, borderaxespad=0.0, ncols=2 if len(handles) > 4 else 1)

    if annotate:
        if isinstance(annotate, str):
            text = annotate
        else:
            text = "\n".join(
                f"{k}: {_fmt_ann(v)}" if str(k) else _fmt_ann(v) for k, v in annotate.items()
            )
        box = AnchoredText(text, loc="lower right", bbox_to_anchor=(1.0, 1.01),
                           bbox_transform=ax.transAxes, borderpad=0.0, frameon=True,
                           prop={"fontsize": 9})
        box.patch.set_boxstyle("round,pad=0.3")
        box.patch.set_edgecolor(_LIGHT_GREY)
        box.set_gid("km-annotation")
        ax.add_artist(box)

    # numbers-at-risk table: one row per curve, numbers centred under the x ticks
    tab.set_ylim(n_curves - 0.5, -0.7)
    for s in tab.spines.values():
        s.set_visible(False)
    tab.tick_params(axis="x", which="both", bottom=False, labelbottom=False)
    tab.tick_params(axis="y", which="both", left=False, pad=18)
    tab.yaxis.set_major_locator(FixedLocator(list(range(n_curves))))
    tab.set_yticklabels(list(data), fontsize=8.5)
    for tick_label, label in zip(tab.get_yticklabels(), data):
        tick_label.set_color(colors[label])
    tab.text(0.0, 1.0, "Number at risk", transform=tab.transAxes, ha="left", va="top",
             fontsize=8.5, fontweight="bold")
    for row, (label, (t, _)) in enumerate(data.items()):
        counts = numbers_at_risk(t, ticks)
        for when, count in zip(ticks, counts):
            tab.text(float(when), row, str(int(count)), ha="center", va="center", fontsize=8.5,
                     color=colors[label], gid=f"atrisk|{label}|{when:g}")
    return fig


def _fmt_ann(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.3g}"
    return str(value)


# --------------------------------------------------------------------------------------
# waterfall
# --------------------------------------------------------------------------------------


def waterfall_plot(
    best_pct_change: ArrayLike,
    bor_labels: ArrayLike | None = None,
    *,
    title: str | None = None,
    cap: float = 100.0,
    footer: bool = True,
) -> Figure:
    """Best percent change in tumour size per patient, sorted, bars coloured by response.

    Parameters
    ----------
    best_pct_change:
        Best (most negative) change in SLD from baseline per patient, in percent, shape
        ``(n,)``. NaN (no post-baseline assessment) is left out and counted in a note.
    bor_labels:
        Best overall response per patient: ``'CR'``, ``'PR'``, ``'SD'``, ``'PD'`` or
        ``'NE'``. Without it all bars share one colour.
    title:
        Axes title.
    cap:
        Bars above ``cap`` percent are drawn at ``cap`` and marked with a triangle.
    footer:
        Print the research-output footer.

    Returns
    -------
    Figure
        One bar per patient in the first bar container, heights in decreasing order.
    """
    y = _as_1d(best_pct_change, "best_pct_change")
    labels: NDArray[Any] | None = None
    if bor_labels is not None:
        labels = np.array([str(v).upper() for v in np.asarray(bor_labels, dtype=object)])
        if labels.shape != y.shape:
            raise ChemoioInputError("bor_labels", f"expected shape {y.shape}, got {labels.shape}")
        unknown = sorted(set(labels.tolist()) - set(BOR_COLORS))
        if unknown:
            raise ChemoioInputError(
                "bor_labels", f"unknown categories {unknown}", hint=f"use {list(BOR_COLORS)}"
            )

    keep = np.isfinite(y)
    n_missing = int(np.count_nonzero(~keep))
    order = np.argsort(-y[keep], kind="stable")
    vals = y[keep][order]
    shown = np.minimum(vals, cap)
    cats = labels[keep][order] if labels is not None else None

    fig = _new_figure(8.0, 4.6, footer)
    ax = fig.add_subplot()
    _style_axes(ax)
    x = np.arange(vals.size)
    colors = [BOR_COLORS[c] for c in cats] if cats is not None else PALETTE[0]
    ax.bar(x, shown, width=0.85 if vals.size < 200 else 1.0, color=colors, linewidth=0,
           gid="waterfall-bars")
    capped = vals > cap
    if np.any(capped):
        ax.plot(x[capped], np.full(int(capped.sum()), cap), linestyle="none", marker="^",
                markersize=4, color="black", gid="waterfall-capped")

    ax.axhline(0.0, color=_GREY, linewidth=0.8)
    # growing tumours are on the left, shrinking ones on the right: label where bars are not
    for level, text, side in ((20.0, "+20 %", 1.0), (-30.0, "\u221230 %", 0.0)):
        ax.axhline(level, color="black", linestyle="--", linewidth=1.0, gid="waterfall-ref")
        ax.annotate(text, xy=(side, level), xycoords=("axes fraction", "data"),
                    xytext=(-3 if side else 3, -3), textcoords="offset points",
                    ha="right" if side else "left", va="top", fontsize=8)
    ax.set_ylim(-105.0, cap + 12.0)
    ax.set_xlim(-1.0, max(vals.size, 1))
    ax.xaxis.set_major_locator(NullLocator())
    ax.set_xlabel(f"Patients, sorted by best response (n = {vals.size})")
    ax.set_ylabel("Best change in SLD from baseline (%)")
    if title:
        ax.set_title(title)

    handles: list[Any] = []
    if cats is not None:
        for cat, color in BOR_COLORS.items():
            count = int(np.count_nonzero(cats == cat))
            if count:
                handles.append(Patch(facecolor=color, label=f"{cat} (n={count})"))
    if np.any(capped):
        handles.append(Line2D([], [], linestyle="none", marker="^", color="black",
                              label=f"> {cap:g} % (capped)"))
    if handles:
        ax.legend(handles=handles, loc="upper right", frameon=False, fontsize=8.5,
                  ncols=min(len(handles), 3))
    if n_missing:
        ax.text(0.01, 0.02, f"{n_missing} patient(s) without a post-baseline assessment not shown",
                transform=ax.transAxes, fontsize=8, color=_GREY)
    return fig


# --------------------------------------------------------------------------------------
# swimmer
# --------------------------------------------------------------------------------------

_MARKER_STYLES: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("resp",), {"marker": "o", "color": "#009E73", "markersize": 6}),
    (("prog",), {"marker": "D", "color": "#D55E00", "markersize": 5}),
    (("death", "died", "dead"), {"marker": "X", "color": "#000000", "markersize": 7}),
    (("censor", "ongoing", "alive"), {"marker": ">", "color": "#777777", "markersize": 6}),
)
_FALLBACK_MARKERS = ("s", "P", "*", "v", "h")


def _marker_style(name: str, k: int) -> dict[str, Any]:
    low = name.lower()
    for keys, style in _MARKER_STYLES:
        if any(key in low for key in keys):
            return dict(style)
    return {"marker": _FALLBACK_MARKERS[k % len(_FALLBACK_MARKERS)],
            "color": PALETTE[(k + 4) % len(PALETTE)], "markersize": 6}


def swimmer_plot(
    start_day: ArrayLike,
    end_day: ArrayLike,
    event_markers: Mapping[str, ArrayLike] | None = None,
    arm: ArrayLike | None = None,
    max_patients: int | None = 50,
    *,
    title: str | None = None,
    rng_seed: int = 0,
    patient_ids: ArrayLike | None = None,
    footer: bool = True,
) -> Figure:
    """One horizontal bar per patient from start to end of treatment/follow-up, in months.

    Parameters
    ----------
    start_day, end_day:
        Start and end of each patient's bar in days, shape ``(n,)``.
    event_markers:
        Event name -> day of that event per patient (NaN = no such event). Names containing
        "response", "progression", "death" or "censor" get fixed, distinct markers; other
        names get further markers.
    arm:
        Optional arm of each patient; bars are coloured by arm.
    max_patients:
        At most this many patients are drawn (deterministic random subset from
        ``rng_seed``), longest bar at the top. ``None`` draws all.
    title:
        Axes title.
    rng_seed:
        Seed of the subset choice.
    patient_ids:
        Optional labels for the y-axis; default is the patient's row index.
    footer:
        Print the research-output footer.

    Returns
    -------
    Figure
        Bars in the first bar container (``gid="swimmer-bars"``), one marker line per event
        type (``gid="swimmer-marker|<name>"``).
    """
    s = _as_1d(start_day, "start_day")
    e = _as_1d(end_day, "end_day")
    if s.shape != e.shape:
        raise ChemoioInputError("end_day", f"shape {e.shape} does not match start_day {s.shape}")
    n = s.size
    markers: dict[str, NDArray[np.float64]] = {}
    for name, vals in (event_markers or {}).items():
        arr = _as_1d(vals, f"event_markers[{name!r}]")
        if arr.shape != (n,):
            raise ChemoioInputError(f"event_markers[{name!r}]", f"expected shape ({n},)")
        markers[str(name)] = arr
    arms: NDArray[Any] | None = None
    if arm is not None:
        arms = np.array([str(a) for a in np.asarray(arm, dtype=object)], dtype=object)
        if arms.shape != (n,):
            raise ChemoioInputError("arm", f"expected shape ({n},), got {arms.shape}")
    ids = (np.array([str(p) for p in np.asarray(patient_ids, dtype=object)], dtype=object)
           if patient_ids is not None else np.array([str(i) for i in range(n)], dtype=object))
    if ids.shape != (n,):
        raise ChemoioInputError("patient_ids", f"expected shape ({n},), got {ids.shape}")

    idx = _subset(n, max_patients, rng_seed)
    dur = np.nan_to_num(e[idx] - s[idx], nan=0.0)
    idx = idx[np.argsort(dur, kind="stable")]  # shortest first -> bottom; longest on top
    k = idx.size
    start_m = s[idx] / DAYS_PER_MONTH
    width_m = np.clip(np.nan_to_num(e[idx] - s[idx], nan=0.0), 0.0, None) / DAYS_PER_MONTH

    height = min(max(2.6, 0.17 * k + 1.6), 14.0)
    fig = _new_figure(7.5, height, footer)
    ax = fig.add_subplot()
    _style_axes(ax, grid_axis="x")
    rows = np.arange(k)
    if arms is None:
        bar_colors: Any = "#A6C8E0"
        arm_colors: dict[str, str] = {}
    else:
        arm_colors = {a: PALETTE[i % len(PALETTE)] for i, a in
                      enumerate(_unique_in_order(arms.tolist()))}
        bar_colors = [_lighten(arm_colors[a]) for a in arms[idx]]
    ax.barh(rows, width_m, left=start_m, height=0.7, color=bar_colors, linewidth=0,
            gid="swimmer-bars")

    handles: list[Any] = [Patch(facecolor=_lighten(c), label=a) for a, c in arm_colors.items()]
    for j, (name, day) in enumerate(markers.items()):
        d = day[idx] / DAYS_PER_MONTH
        ok = np.isfinite(d)
        style = _marker_style(name, j)
        ax.plot(d[ok], rows[ok], linestyle="none", markeredgewidth=0.6,
                markeredgecolor="white", gid=f"swimmer-marker|{name}", zorder=3, **style)
        handles.append(Line2D([], [], linestyle="none", label=name, **style))

    ax.set_ylim(-0.7, k - 0.3)
    if k <= 60:
        ax.yaxis.set_major_locator(FixedLocator(list(rows)))
        ax.set_yticklabels(list(ids[idx]), fontsize=7 if k > 25 else 8)
    else:
        ax.yaxis.set_major_locator(NullLocator())
        ax.yaxis.set_major_formatter(NullFormatter())
    ax.tick_params(axis="y", length=0)
    ax.set_xlim(left=min(0.0, float(np.nanmin(start_m)) if k else 0.0))
    ax.set_xlabel("Time since start of treatment (months)")
    ax.set_ylabel("Patient" + (f" ({k} of {n} shown)" if k < n else ""))
    if title:
        ax.set_title(title)
    if handles:
        ax.legend(handles=handles, loc="lower right", frameon=True, framealpha=0.9,
                  edgecolor=_LIGHT_GREY, fontsize=8)
    return fig


def _lighten(hex_color: str, amount: float = 0.45) -> str:
    """Blend a colour towards white so markers on top of bars stay visible."""
    h = hex_color.lstrip("#")
    rgb = [int(h[i : i + 2], 16) for i in (0, 2, 4)]
    mixed = [round(c + (255 - c) * amount) for c in rgb]
    return "#" + "".join(f"{c:02X}" for c in mixed)


# --------------------------------------------------------------------------------------
# forest
# --------------------------------------------------------------------------------------


def forest_plot(
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str | None = None,
    xlabel: str = "Hazard ratio (95 % CI, log scale)",
    favours: tuple[str, str] | None = ("experimental", "control"),
    footer: bool = True,
) -> Figure:
    """Hazard ratios with confidence intervals per subgroup, optionally beside published ones.

    Parameters
    ----------
    rows:
        One mapping per subgroup with keys ``label``, ``hr``, ``low``, ``high`` and optional
        ``n`` (subgroup size, printed after the label) and ``published`` (a
        ``(hr, low, high)`` triple reported by the real trial).
    title:
        Axes title.
    xlabel:
        Label of the x-axis.
    favours:
        Texts under the axis for HR < 1 and HR > 1 (``None`` for none).
    footer:
        Print the research-output footer.

    Returns
    -------
    Figure
        Main axes (``label="forest"``, log x) with the simulated points in one line
        (``gid="forest-simulated"``, one marker per row) and the published points in
        another (``gid="forest-published"``, one marker per row that has them); a text
        column (``label="forest-values"``) lists the numbers.
    """
    if not rows:
        raise ChemoioInputError("rows", "needs at least one subgroup")
    parsed: list[dict[str, Any]] = []
    for i, r in enumerate(rows):
        try:
            item: dict[str, Any] = {
                "label": str(r["label"]),
                "hr": float(r["hr"]),
                "low": float(r["low"]),
                "high": float(r["high"]),
                "n": r.get("n"),
                "published": None,
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise ChemoioInputError(f"rows[{i}]", f"needs label, hr, low, high ({exc})") from None
        pub = r.get("published")
        if pub is not None:
            try:
                p_hr, p_lo, p_hi = (float(v) for v in pub)
            except (TypeError, ValueError):
                raise ChemoioInputError(
                    f"rows[{i}].published", "expected (hr, low, high)"
                ) from None
            item["published"] = (p_hr, p_lo, p_hi)
        for key in ("hr", "low", "high"):
            if np.isfinite(item[key]) and item[key] <= 0:
                raise ChemoioInputError(f"rows[{i}].{key}", "hazard ratios must be > 0")
        parsed.append(item)

    k = len(parsed)
    any_pub = any(p["published"] is not None for p in parsed)
    offset = 0.17 if any_pub else 0.0
    height = max(2.4, 0.42 * k * (1.35 if any_pub else 1.0) + 1.5)
    fig = _new_figure(8.5, height, footer)
    gs = fig.add_gridspec(1, 2, width_ratios=[2.6, 1.35 if any_pub else 1.0], wspace=0.02)
    ax = fig.add_subplot(gs[0], label="forest")
    col = fig.add_subplot(gs[1], sharey=ax, label="forest-values")
    _style_axes(ax, grid_axis=None)

    ypos = np.arange(k, dtype=float)

    def _errs(vals: list[tuple[float, float, float]]) -> NDArray[np.float64]:
        arr = np.array(vals, dtype=float).reshape(-1, 3)
        return np.vstack([arr[:, 0] - arr[:, 1], arr[:, 2] - arr[:, 0]])

    sim_vals = [(p["hr"], p["low"], p["high"]) for p in parsed]
    sim_arr = np.array(sim_vals)
    container = ax.errorbar(
        sim_arr[:, 0], ypos - offset, xerr=_errs(sim_vals), fmt="s", color=PALETTE[0],
        markersize=6, capsize=2.5, elinewidth=1.4, label="simulated", zorder=3,
    )
    container.lines[0].set_gid("forest-simulated")
    all_x = list(sim_arr[:, 1:].ravel())
    pub_rows = [i for i, p in enumerate(parsed) if p["published"] is not None]
    if pub_rows:
        pub_vals = [parsed[i]["published"] for i in pub_rows]
        pub_arr = np.array(pub_vals)
        container_p = ax.errorbar(
            pub_arr[:, 0], ypos[pub_rows] + offset, xerr=_errs(pub_vals), fmt="D",
            color=PALETTE[1], markersize=5.5, capsize=2.5, elinewidth=1.4, label="published",
            zorder=3,
        )
        container_p.lines[0].set_gid("forest-published")
        all_x += list(pub_arr[:, 1:].ravel())

    ax.axvline(1.0, color="black", linewidth=1.0, zorder=1, gid="forest-null")
    ax.set_xscale("log")
    finite = np.array([v for v in all_x if np.isfinite(v) and v > 0] or [0.5, 2.0])
    lo = min(float(finite.min()), 0.9) / 1.15
    hi = max(float(finite.max()), 1.1) * 1.15
    ax.set_xlim(lo, hi)
    nice = np.array(
        [0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 10, 20, 50, 100]
    )
    ticks = nice[(nice >= lo) & (nice <= hi)]
    ax.xaxis.set_major_locator(FixedLocator(ticks.tolist()))
    ax.xaxis.set_major_formatter(lambda v, _pos: f"{v:g}")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.grid(True, axis="x", color="#EEEEEE", linewidth=0.8, zorder=0)
    ax.set_xlabel(xlabel)
    ax.set_ylim(k - 0.5, -0.5 - (0.6 if favours else 0.0))
    ax.spines["left"].set_visible(False)
    ax.tick_params(axis="y", length=0)
    ax.yaxis.set_major_locator(FixedLocator(list(ypos)))
    ax.set_yticklabels(
        [p["label"] + (f"  (n={p['n']})" if p["n"] is not None else "") for p in parsed],
        fontsize=9,
    )
    if favours:
        ax.text(0.98, -0.5 - 0.3, f"\u2190 favours {favours[0]}", ha="right", va="center",
                fontsize=8, color=_GREY, transform=ax.transData)
        ax.text(1.02, -0.5 - 0.3, f"favours {favours[1]} \u2192", ha="left", va="center",
                fontsize=8, color=_GREY, transform=ax.transData)
    if title:
        fig.suptitle(title)
    if pub_rows:
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8.5,
                  ncols=2, borderaxespad=0.2)

    # values column
    col.set_xlim(0, 1)
    col.axis("off")
    head_y = -0.5 - (0.6 if favours else 0.0) + 0.15
    col.text(0.02, head_y, "HR (95 % CI)", ha="left", va="top", fontsize=8.5,
             fontweight="bold")
    for i, p in enumerate(parsed):
        col.text(0.02, ypos[i] - offset, _fmt_ci(p["hr"], p["low"], p["high"]),
                 ha="left", va="center", fontsize=8.5, color=PALETTE[0])
        if p["published"] is not None:
            col.text(0.02, ypos[i] + offset, _fmt_ci(*p["published"]) + " pub.",
                     ha="left", va="center", fontsize=8.5, color="#9A6A00")
    return fig


def _fmt_ci(hr: float, low: float, high: float) -> str:
    if not np.isfinite(hr):
        return "n/a"
    return f"{hr:.2f} ({low:.2f}\u2013{high:.2f})"


# --------------------------------------------------------------------------------------
# saving
# --------------------------------------------------------------------------------------


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix, e.g. .png, .pdf, .svg).

    Parent folders are created. Returns the path written.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, facecolor="white")
    return out
