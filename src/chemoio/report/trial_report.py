"""Outputs of a virtual trial: comparison table, CDISC ADaM tables, plots, HTML report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from chemoio.analysis import adam
from chemoio.analysis.survival import DAYS_PER_MONTH
from chemoio.report.html import Report
from chemoio.report.plots import forest_plot, km_plot, save_figure, spider_plot, swimmer_plot, waterfall_plot
from chemoio.trial.runner import TrialResult
from chemoio.trial.summary import comparison_table, primary_calls


def adam_tables(result: TrialResult) -> dict[str, pd.DataFrame]:
    """ADSL, ADTTE (OS, PFS) and ADRS for every replicate (REPLIC column)."""
    p = result.patients
    study = result.spec.trial_id or result.spec.name
    ids = p["subject"].to_numpy()
    rep = p["replicate"].to_numpy()
    arm_labels = {a.name: a.label for a in result.spec.arms}
    cov_cols = {c: p[c].to_numpy() for c in ("age", "sex", "ecog", "weight_kg", "bsa_m2", "gfr_mL_min",
                                             "pdl1_tps", "pdl1_cps", "pdl1_ic") if c in p}
    cov_cols["tmb"] = p["tmb_mut_per_mb"].to_numpy()
    cov_cols["replicate"] = rep
    # neutropenia and dose modifications (chemoio.toxicity), when simulated
    for col, name in _ADSL_TOXICITY.items():
        if col in p:
            cov_cols[name] = p[col].to_numpy()
    adsl = adam.make_adsl(study, ids, p["arm"].map(arm_labels).to_numpy(), p["arm"].to_numpy(), cov_cols)
    adtte = adam.stack_adtte([
        adam.make_adtte(study, ids, "OS", p["os_day"], p["os_event"], replicate=rep),
        adam.make_adtte(study, ids, "PFS", p["pfs_day"], p["pfs_event"], replicate=rep),
    ])
    bor_codes = np.array([_code(b) for b in p["bor"]], dtype=np.int8)
    adrs = adam.make_adrs(study, ids, result.visit_day, result.visit_codes, bor_codes, replicate=rep)
    return {"adsl": adsl, "adtte": adam.add_adsl_vars(adtte, adsl), "adrs": adrs}


#: ADSL variables for the toxicity columns of ``TrialResult.patients`` (docs/endpoints.md).
_ADSL_TOXICITY = {
    "anc_baseline": "ANCBL",      # baseline ANC, 10^9/L
    "anc_nadir": "ANCNADIR",      # lowest ANC on treatment, 10^9/L
    "anc_grade": "NEUTGR",        # worst CTCAE grade of neutrophil count decreased (0-4)
    "n_dose_delays": "NDLY",      # cycles postponed
    "dose_delay_days": "DLYDUR",  # days of postponement in all
    "n_cycles_omitted": "NOMIT",  # cycles whose chemotherapy was omitted
    "n_dose_reductions": "NDRED",  # dose reductions
}


def safety_table(result: TrialResult) -> pd.DataFrame:
    """Per arm (all randomised): grade >= 3 and grade 4 neutropenia, patients with a dose
    delay, median over replicates with the 2.5-97.5 % interval; mean delays, omitted cycles
    and dose reductions per patient (all replicates). Empty without toxicity columns."""
    p = result.patients
    if "anc_grade" not in p:
        return pd.DataFrame()
    st = result.arm_stats
    label = {a.name: a.label for a in result.spec.arms}
    rows = []
    for arm in result.spec.arm_names:
        g = p[p.arm == arm]
        if g.empty:
            continue
        row = {"arm": label.get(arm, arm)}
        for key, title in (("neutropenia_g3plus_percent", "grade >= 3 neutropenia (%)"),
                           ("neutropenia_g4_percent", "grade 4 neutropenia (%)"),
                           ("dose_delay_percent", "patients with a delay (%)")):
            v = st[(st.arm == arm) & (st.subgroup == "ITT") & (st.statistic == key)].value.to_numpy(dtype=float)
            row[title] = (f"{np.median(v):.1f} ({np.quantile(v, 0.025):.1f}-{np.quantile(v, 0.975):.1f})"
                          if v.size else "-")
        row["median nadir ANC (10^9/L)"] = round(float(np.nanmedian(g.anc_nadir)), 2)
        row["delays per patient"] = round(float(g.n_dose_delays.mean()), 3)
        row["omitted cycles per patient"] = round(float(g.n_cycles_omitted.mean()), 3)
        row["dose reductions per patient"] = round(float(g.n_dose_reductions.mean()), 3)
        rows.append(row)
    return pd.DataFrame(rows)


def _code(label: str) -> int:
    from chemoio.analysis.recist import Response

    return int(Response[label])


def _fmt(x: float, nd: int = 2) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def summary_text_table(result: TrialResult) -> pd.DataFrame:
    """The printed table: endpoint | simulated median (95 % interval) | published (CI) | inside."""
    t = comparison_table(result)
    rows = []
    for _, r in t.iterrows():
        pub = _fmt(r.published) + (f" ({_fmt(r.pub_low)}-{_fmt(r.pub_high)})" if np.isfinite(r.pub_low) else "")
        trial_ci = f"{_fmt(r.sim_ci_low, 1)}-{_fmt(r.sim_ci_high, 1)}" if np.isfinite(r.sim_ci_low) else "-"
        rows.append({
            "arm / comparison": r.what, "subgroup": r.subgroup, "endpoint": r.endpoint,
            "simulated": f"{_fmt(r.sim_median)} ({_fmt(r.sim_low)}-{_fmt(r.sim_high)})",
            "single-trial 95% CI": trial_ci, "published": pub, "inside": r.inside,
        })
    return pd.DataFrame(rows, columns=["arm / comparison", "subgroup", "endpoint", "simulated",
                                       "single-trial 95% CI", "published", "inside"])


def write_trial_outputs(result: TrialResult, out_dir: str | Path) -> dict[str, Path]:
    """Write the comparison table (CSV), per-replicate statistics, ADaM tables (Parquet +
    CSV), PNG plots and the self-contained HTML report. Returns the main paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = result.spec
    table = comparison_table(result)
    table.to_csv(out / "comparison.csv", index=False)
    calls = primary_calls(result)
    calls.to_csv(out / "primary_endpoints.csv", index=False)
    result.arm_stats.to_parquet(out / "arm_stats.parquet", index=False)
    result.comparison_stats.to_parquet(out / "comparison_stats.parquet", index=False)
    adam.write_adam(adam_tables(result), out / "adam")

    p = result.patients
    r0 = p[p.replicate == 0]
    figs: dict[str, object] = {}
    arm_label = {a.name: a.label for a in spec.arms}
    cs = result.comparison_stats
    for ep, day_col, ev_col, ylabel in (("OS", "os_day", "os_event", "Overall survival"),
                                        ("PFS", "pfs_day", "pfs_event", "Progression-free survival")):
        curves = {arm_label[a]: (g[day_col].to_numpy() / DAYS_PER_MONTH, g[ev_col].to_numpy())
                  for a, g in r0.groupby("arm", sort=False)}
        ann = None
        sel = cs[(cs.replicate == 0) & (cs.endpoint == ep) & (cs.subgroup == "ITT")]
        if len(sel):
            s = sel.iloc[0]
            ann = f"HR {s.hr:.2f} ({s.ci_low:.2f}-{s.ci_high:.2f}), log-rank p {s.p:.3g}"
        figs[f"km_{ep.lower()}"] = km_plot(curves, ylabel=ylabel, annotate=ann,
                                           title=f"{spec.trial_id}: {ep} (replicate 1 of {result.settings['replicates']})")
    figs["waterfall"] = waterfall_plot(r0["best_pct_change"].to_numpy(), r0["bor"].to_numpy(),
                                       title="Best change in SLD (replicate 1)")
    base = result.sld[:, :1]
    pct = 100.0 * (result.sld / base - 1.0)
    keep = result.grid_day[None, :] <= r0["os_day"].to_numpy()[:, None]
    figs["spider"] = spider_plot(result.grid_day, np.where(keep, pct, np.nan),
                                 arm_labels=r0["arm"].map(arm_label).to_numpy(),
                                 title="SLD change from baseline (replicate 1)")
    figs["swimmer"] = swimmer_plot(
        np.zeros(len(r0)), r0["os_day"].to_numpy(),
        {"progression": r0["progression_day"].to_numpy(),
         "death": np.where(r0["os_event"], r0["os_day"], np.nan),
         "censored": np.where(~r0["os_event"], r0["os_day"], np.nan)},
        arm=r0["arm"].map(arm_label).to_numpy(), title="Follow-up per patient (replicate 1)")
    forest_rows = _forest_rows(result)
    if forest_rows:
        figs["forest"] = forest_plot(forest_rows, title="Hazard ratios: simulated (median, 95% interval of replicates) vs published")
    paths = {}
    for name, fig in figs.items():
        paths[name] = save_figure(fig, out / f"{name}.png")

    rep = Report(title=f"chemoio virtual trial: {spec.title}")
    rep.add_key_values({
        "trial": spec.trial_id, "spec": spec.name, "tumour type": spec.population.tumor,
        "replicates": result.settings["replicates"], "patients per trial": result.settings["n_per_trial"],
        "seed": result.settings["seed"], "parameter set": result.settings["parameters"],
        "solver failures": result.solver_failures, "run time (s)": round(result.wall_s, 1),
    }, caption="Run")
    rep.add_heading("Simulated vs published", 2)
    rep.add_paragraph("Simulated values are the median and 95 % interval over replicate trials. "
                      "'Inside' means the simulated median lies in the published 95 % CI (or, "
                      "without a published CI, the published value lies in the simulated interval). "
                      "'Single-trial 95% CI' is the interval one trial would report, median over "
                      "replicates: exact Clopper-Pearson for an ORR, Newcombe for an ORR difference. "
                      f"Response criteria: {result.spec.response_criteria}.")
    rep.add_table(summary_text_table(result), highlight_column="inside")
    safety = safety_table(result)
    if len(safety):
        rep.add_heading("Neutropenia and dose modifications", 2)
        rep.add_paragraph("Friberg neutrophil model driven by each patient's chemotherapy exposure; "
                          "CTCAE grades of neutrophil count decreased (grade 3: ANC < 1.0, grade 4: "
                          "< 0.5 x 10^9/L) over the cycles given before progression, death or "
                          "censoring. Percentages: median (95 % interval) over replicates.")
        rep.add_table(safety)
    if len(calls):
        rep.add_heading("Primary endpoints", 2)
        rep.add_table(calls, highlight_column="agrees")
    for name in ("km_os", "km_pfs", "forest", "waterfall", "spider", "swimmer"):
        if name in paths:
            rep.add_figure(paths[name], caption=name.replace("_", " "))
    for note in getattr(spec, "notes", []) or []:
        rep.add_paragraph(f"Note: {note}")
    paths["report"] = rep.write(out / "report.html")
    paths["comparison"] = out / "comparison.csv"
    return paths


def _forest_rows(result: TrialResult) -> list[dict]:
    cs = result.comparison_stats
    rows = []
    published = {}
    pub = result.spec.published
    if pub is not None:
        for c in pub.comparisons or []:
            key = (c.experimental, c.control, c.endpoint, c.subgroup or "ITT")
            if c.hr.ci is not None:
                published[key] = (c.hr.value, c.hr.ci[0], c.hr.ci[1])
    for (e, c, ep, sg), g in cs.groupby(["experimental", "control", "endpoint", "subgroup"], sort=False):
        hr = g.hr.to_numpy()
        rows.append({
            "label": f"{ep} {sg}: {e} vs {c}", "hr": float(np.median(hr)),
            "low": float(np.quantile(hr, 0.025)), "high": float(np.quantile(hr, 0.975)),
            "published": published.get((e, c, ep, sg)),
        })
    return rows
