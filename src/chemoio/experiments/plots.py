"""Figures of the mechanism experiments (matplotlib ``Figure`` objects, no pyplot).

Every figure carries the research-output footer of :mod:`chemoio.report.plots`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from chemoio.report.plots import PALETTE, _new_figure, _style_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from chemoio.experiments.common import ExperimentResult

_TTE = ("os", "pfs", "efs")
_RESP = ("orr", "pcr")


def _tte(df) -> list[str]:
    return [e for e in _TTE if f"hr_{e}" in df.columns]


def _resp(df) -> list[str]:
    return [e for e in _RESP if f"{e}_diff" in df.columns]


def _hr_axis(ax: "Axes", values: np.ndarray) -> None:
    ax.set_xscale("log")
    ax.axvline(1.0, color="#888888", lw=0.9, ls="--", zorder=1)
    v = values[np.isfinite(values) & (values > 0)]
    if v.size:
        lo, hi = max(v.min() / 1.15, 0.05), min(v.max() * 1.15, 20.0)
        lo, hi = min(lo, 0.8), max(hi, 1.25)
        ax.set_xlim(lo, hi)
    ticks = [t for t in (0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0) if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.minorticks_off()


def _errbar(ax: "Axes", x, y, lo, hi, color, horizontal: bool, label: str | None = None, marker="o") -> None:
    x, y, lo, hi = (np.asarray(a, dtype=float) for a in (x, y, lo, hi))
    if horizontal:  # values on x, positions on y
        err = np.vstack([np.clip(x - lo, 0, None), np.clip(hi - x, 0, None)])
        ax.errorbar(x, y, xerr=np.nan_to_num(err), fmt=marker, color=color, ms=5, capsize=2.5, lw=1.2, label=label)
    else:
        err = np.vstack([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)])
        ax.errorbar(x, y, yerr=np.nan_to_num(err), fmt=marker + "-", color=color, ms=5, capsize=2.5, lw=1.2,
                    label=label)


def _hr_and_rate_panels(axes, df, y, tte: list[str], resp: list[str], control_label: str,
                        reference_line: bool = False) -> int:
    """One dot-plot panel per time-to-event endpoint (HR with CI, combination vs chemo) and one
    per response endpoint (both arms' rates joined by a line), one row per table row at ``y``.
    ``reference_line`` marks the first row's HR. Returns the number of panels drawn."""
    k = 0
    for j, ep in enumerate(tte):
        ax = axes[k]
        _style_axes(ax, grid_axis="x")
        _errbar(ax, df[f"hr_{ep}"], y, df[f"hr_{ep}_low"], df[f"hr_{ep}_high"], PALETTE[j], horizontal=True)
        _hr_axis(ax, np.concatenate([df[f"hr_{ep}_low"], df[f"hr_{ep}_high"]]))
        if reference_line:
            ax.axvline(df[f"hr_{ep}"].iloc[0], color="#999999", lw=0.8, ls=":")
        ax.set_title(f"HR {ep.upper()} (combination vs chemo)", fontsize=9.5)
        k += 1
    for ep in resp:
        ax = axes[k]
        _style_axes(ax, grid_axis="x")
        ax.hlines(y, df[f"{ep}_chemo"], df[f"{ep}_combo"], color="#BBBBBB", lw=2.0, zorder=1)
        ax.plot(df[f"{ep}_combo"], y, "o", color=PALETTE[2], ms=6, label="combination", zorder=2)
        ax.plot(df[f"{ep}_chemo"], y, "s", mfc="white", color=PALETTE[2], ms=5.5, label=control_label, zorder=2)
        ax.set_title(f"{'pCR' if ep == 'pcr' else ep.upper()} (%)", fontsize=9.5)
        k += 1
    return k


def icd_figure(res: "ExperimentResult") -> "Figure":
    """Dot plot: one row per agent (highest ICD fraction at the top); HR per endpoint,
    response difference and antigen release per unit of kill."""
    df = res.table
    tte, resp = _tte(df), _resp(df)
    n = len(df)
    panels = len(tte) + len(resp) + 1
    fig = _new_figure(3.0 * panels + 1.6, max(3.2, 0.36 * n + 1.9), footer=True)
    axes = fig.subplots(1, panels, sharey=True)
    axes = np.atleast_1d(axes)
    y = np.arange(n)[::-1]
    labels = [f"{a} ({f:.2f})" for a, f in zip(df.agent, df.icd_fraction, strict=True)]
    k = _hr_and_rate_panels(axes, df, y, tte, resp, "control arm")
    for ax in axes[len(tte):k]:
        ax.legend(frameon=False, fontsize=7.5, loc="lower right")
    ax = axes[k]
    _style_axes(ax, grid_axis="x")
    ax.barh(y, df["antigen_per_kill"], color=PALETTE[4], height=0.6)
    ax.set_title("antigen per unit chemo kill", fontsize=9.5)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(labels, fontsize=8.5)
    axes[0].set_ylabel("backbone (ICD fraction)")
    fig.suptitle(f"{res.trial}: chemotherapy backbone swapped (ICD fraction high to low)", fontsize=11)
    return fig


def sequencing_figure(res: "ExperimentResult") -> "Figure":
    """HR, response and mechanism read-outs against the chemotherapy offset."""
    df = res.table
    tte, resp = _tte(df), _resp(df)
    fig = _new_figure(13.0, 4.0, footer=True)
    axes = fig.subplots(1, 3)
    x = df["offset_days"].to_numpy(dtype=float)
    ax = axes[0]
    _style_axes(ax, grid_axis="y")
    for j, ep in enumerate(tte):
        _errbar(ax, x + (j - (len(tte) - 1) / 2) * 0.8, df[f"hr_{ep}"], df[f"hr_{ep}_low"], df[f"hr_{ep}_high"],
                PALETTE[j], horizontal=False, label=f"HR {ep.upper()}")
    ax.axhline(1.0, color="#888888", lw=0.9, ls="--")
    ax.set_ylabel("hazard ratio, combination vs chemo")
    ax.legend(frameon=False, fontsize=8)
    ax = axes[1]
    _style_axes(ax, grid_axis="y")
    for j, ep in enumerate(resp):
        ax.plot(x, df[f"{ep}_combo"], "o-", color=PALETTE[j], label=f"{ep.upper()} combination")
        ax.plot(x, df[f"{ep}_chemo"], "s--", color=PALETTE[j], alpha=0.6, label=f"{ep.upper()} chemo arm")
    ax.set_ylabel("response rate (%)")
    ax.legend(frameon=False, fontsize=8)
    ax = axes[2]
    _style_axes(ax, grid_axis="y")
    ax.plot(x, df["antigen_fold_combo"], "o-", color=PALETTE[4], label="antigen per cell (fold)")
    ax.plot(x, df["effector_peak_combo"], "s-", color=PALETTE[2], label="effector CD8, peak (fold)")
    ax.set_yscale("log")
    ax.set_ylabel("combination arm, relative to diagnosis")
    ax.legend(frameon=False, fontsize=8)
    for a in axes:
        a.set_xlabel("chemo start minus ICI start (days)\n<- chemo first | ICI first ->")
        a.axvline(0, color="#CCCCCC", lw=0.8)
    fig.suptitle(f"{res.trial}: sequencing of chemotherapy and checkpoint inhibitor", fontsize=11)
    return fig


def biomarker_figure(res: "ExperimentResult") -> "Figure":
    """Forest plot: HR per endpoint by PD-L1 and TMB category, with patients per trial and
    the response difference as text."""
    df = res.table
    tte, resp = _tte(df), _resp(df)
    n = len(df)
    fig = _new_figure(3.6 * max(len(tte), 1) + 4.2, max(3.0, 0.42 * n + 1.8), footer=True)
    axes = np.atleast_1d(fig.subplots(1, len(tte) + 1, sharey=True,
                                      gridspec_kw={"width_ratios": [3] * len(tte) + [1.6]}))
    y = np.arange(n)[::-1].astype(float)
    for j, ep in enumerate(tte):
        ax = axes[j]
        _style_axes(ax, grid_axis=None)
        for fam, marker in (("all", "D"), ("PD-L1", "o"), ("TMB", "s")):
            m = (df.biomarker == fam).to_numpy()
            if m.any():
                _errbar(ax, df[f"hr_{ep}"][m], y[m], df[f"hr_{ep}_low"][m], df[f"hr_{ep}_high"][m],
                        PALETTE[j] if fam != "all" else "#000000", horizontal=True, marker=marker)
        _hr_axis(ax, np.concatenate([df[f"hr_{ep}_low"], df[f"hr_{ep}_high"]]))
        ax.set_title(f"HR {ep.upper()} (combination vs chemo)", fontsize=9.5)
        ax.set_xlabel("<- favours combination | favours chemo ->", fontsize=8)
    col = axes[-1]
    col.axis("off")
    head = "n/trial" + "".join(f"   {e.upper()} diff" for e in resp)
    col.text(0.0, n - 0.35, head, fontsize=8, fontweight="bold", va="bottom")
    for yi, (_, r) in zip(y, df.iterrows(), strict=True):
        txt = f"{r.n_per_trial:6.0f}" + "".join(f"   {r[f'{e}_diff']:+6.1f}" for e in resp)
        col.text(0.0, yi, txt, fontsize=8, va="center", family="monospace")
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(df.category, fontsize=8.5)
    axes[0].set_ylim(-0.7, n - 0.1)
    fig.suptitle(f"{res.trial}: benefit of the combination by biomarker", fontsize=11)
    return fig


def dose_figure(res: "ExperimentResult") -> "Figure":
    """Heatmaps of the HR per endpoint over dose x cycles; lines of response and shrinkage."""
    df = res.table
    tte, resp = _tte(df), _resp(df)
    doses = sorted(df.dose_pct.unique())
    cycles = sorted(df.cycles.unique())
    panels = len(tte) + 2
    fig = _new_figure(3.6 * panels, 3.8, footer=True)
    axes = np.atleast_1d(fig.subplots(1, panels))
    for j, ep in enumerate(tte):
        ax = axes[j]
        grid = np.full((len(cycles), len(doses)), np.nan)
        for _, r in df.iterrows():
            grid[cycles.index(r.cycles), doses.index(r.dose_pct)] = r[f"hr_{ep}"]
        finite = grid[np.isfinite(grid)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.5, 1.0)
        if hi - lo < 0.04:  # a flat grid: keep the colours calm
            lo, hi = lo - 0.02, hi + 0.02
        im = ax.imshow(grid, origin="lower", aspect="auto", cmap="YlGnBu_r", vmin=lo, vmax=hi)
        for a in range(len(cycles)):
            for b in range(len(doses)):
                if np.isfinite(grid[a, b]):
                    dark = (grid[a, b] - lo) / (hi - lo) < 0.45
                    ax.text(b, a, f"{grid[a, b]:.2f}", ha="center", va="center", fontsize=8.5,
                            color="white" if dark else "black")
        ax.set_xticks(range(len(doses)))
        ax.set_xticklabels([f"{d:g}" for d in doses])
        ax.set_yticks(range(len(cycles)))
        ax.set_yticklabels([str(c) for c in cycles])
        ax.set_xlabel("chemo dose (% of trial dose)")
        ax.set_ylabel("induction cycles")
        ax.set_title(f"HR {ep.upper()} (combination vs chemo)", fontsize=9.5)
        fig.colorbar(im, ax=ax, shrink=0.8)
    ax = axes[len(tte)]
    _style_axes(ax)
    for k, c in enumerate(cycles):
        sub = df[df.cycles == c].sort_values("dose_pct")
        for ep in resp:
            ax.plot(sub.dose_pct, sub[f"{ep}_combo"], "o-", color=PALETTE[k], label=f"{c} cycles, combination")
            ax.plot(sub.dose_pct, sub[f"{ep}_chemo"], "s--", color=PALETTE[k], alpha=0.6, label=f"{c} cycles, chemo")
    ax.set_xlabel("chemo dose (% of trial dose)")
    ax.set_ylabel(f"{resp[0].upper() if resp else 'response'} (%)")
    ax.legend(frameon=False, fontsize=7)
    ax = axes[len(tte) + 1]
    _style_axes(ax)
    for k, c in enumerate(cycles):
        sub = df[df.cycles == c].sort_values("dose_pct")
        ax.plot(sub.dose_pct, sub.best_change_chemo, "s--", color=PALETTE[k], label=f"{c} cycles, chemo arm")
        ax.plot(sub.dose_pct, sub.best_change_combo, "o-", color=PALETTE[k], label=f"{c} cycles, combination")
    ax.axhline(-30, color="#888888", lw=0.8, ls=":")
    ax.set_xlabel("chemo dose (% of trial dose)")
    ax.set_ylabel("median best SLD change (%)")
    ax.legend(frameon=False, fontsize=7)
    fig.suptitle(f"{res.trial}: chemotherapy dose and cycles", fontsize=11)
    return fig


def interaction_figure(res: "ExperimentResult") -> "Figure":
    """Kaplan-Meier curves of the control arm, each monotherapy, independent action (same
    patients and uncorrelated) and the combination; response rates as bars."""
    df = res.table
    curves = res.data["curves"]
    ep = res.data["endpoint"]
    rate = "pcr" if "pcr" in df.columns else "orr"
    style = {"control": ("#888888", "-"), "chemo": (PALETTE[0], "-"), "ici": (PALETTE[1], "-"),
             "ia": (PALETTE[3], "--"), "ia_uncorrelated": (PALETTE[3], ":"), "combination": (PALETTE[2], "-")}
    fig = _new_figure(11.0, 4.2, footer=True)
    ax, bx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1.0]})
    _style_axes(ax, grid_axis="both")
    for row in df.itertuples(index=False):
        tj, s = curves[row.condition]
        color, ls = style.get(row.condition, ("#333333", "-"))
        ax.step(tj, 100.0 * s, where="post", color=color, ls=ls, lw=1.6, label=row.label)
    ax.set_xlabel("months from randomisation")
    ax.set_ylabel(f"{ep.upper()}, % event-free")
    ax.set_ylim(0, 102)
    ax.legend(frameon=False, fontsize=8)
    _style_axes(bx, grid_axis="x")
    y = np.arange(len(df))[::-1]
    colors = [style.get(c, ("#333333", "-"))[0] for c in df.condition]
    bx.barh(y, df[rate], color=colors, alpha=0.85)
    bx.set_yticks(y)
    bx.set_yticklabels(df.label, fontsize=8)
    bx.set_xlabel(f"{rate.upper() if rate == 'orr' else 'pCR'} (%)")
    fig.suptitle(f"{res.trial}: the combination against independent action of its parts", fontsize=11)
    return fig


def mechanisms_figure(res: "ExperimentResult") -> "Figure":
    """Dot plot: one row per knock-out (as set at the top); HR per endpoint and the response
    rates of both arms."""
    df = res.table
    tte, resp = _tte(df), _resp(df)
    n = len(df)
    panels = len(tte) + len(resp)
    fig = _new_figure(3.2 * panels + 1.8, max(3.2, 0.36 * n + 1.9), footer=True)
    axes = np.atleast_1d(fig.subplots(1, panels, sharey=True))
    y = np.arange(n)[::-1]
    k = _hr_and_rate_panels(axes, df, y, tte, resp, "chemotherapy arm", reference_line=True)
    for ax in axes[len(tte):k]:
        ax.set_xlim(0, 100)
        ax.legend(frameon=False, fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=2)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(list(df.label), fontsize=8.5)
    axes[0].set_ylabel("chemotherapy's immune effect switched off")
    fig.suptitle(f"{res.trial}: chemotherapy's immune effects knocked out one at a time", fontsize=11)
    return fig
