"""Virtual-trial benchmark: KEYNOTE-189 (616 patients) x R replicate trials, end to end.

Times the simulation (two passes: full regimen, then treatment stopped at progression
with crossover), RECIST/survival endpoints and per-replicate statistics, and separately
the outputs (ADaM tables, plots, HTML report).

Baseline in the same run: the same trial with each pass solving every patient's state at
diagnosis itself (the search that matches the drawn CD8 T cells and applies the
plausibility bounds, docs/model.md 3), as the runner did before it projected the patients
once and reused the rows (``chemoio.engine.kernel.project_batch``). The two runs must give
identical patient tables; the ratio of their wall times is reported.

Usage: python benchmarks/trial.py [--replicates 100] [--spec keynote189]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from unittest import mock

from chemoio.report.trial_report import write_trial_outputs
from chemoio.trial import load_spec
from chemoio.trial.runner import run_trial


def _timed(spec, replicates):
    t0 = time.perf_counter()
    res = run_trial(spec, replicates=replicates)
    return res, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--spec", default="keynote189")
    args = ap.parse_args()
    spec = load_spec(args.spec)
    run_trial(spec, replicates=1, n_scale=0.05)  # compile / load the kernels
    res, t_sim = _timed(spec, args.replicates)
    # baseline: no projection, so pass 1 and pass 2 each run the full search per patient
    with mock.patch("chemoio.engine.kernel.project_batch", lambda rows: rows):
        base, t_base = _timed(spec, args.replicates)
    same = res.patients.equals(base.patients)
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        write_trial_outputs(res, tmp)
        t_out = time.perf_counter() - t1
    n = len(res.patients)
    print(f"spec                 {args.spec}")
    print(f"virtual patients     {n} ({args.replicates} trials of {res.settings['n_per_trial']})")
    print(f"simulate + endpoints {t_sim:.1f} s ({n / t_sim:,.0f} patients/s)")
    print(f"baseline (state at diagnosis solved in every pass) {t_base:.1f} s "
          f"({n / t_base:,.0f} patients/s); speed-up {t_base / t_sim:.2f}x; identical patients: {same}")
    print(f"outputs (ADaM, plots, report) {t_out:.1f} s")
    print(f"total                {t_sim + t_out:.1f} s")
    print(f"solver failures      {res.solver_failures}")
    if not same:
        raise SystemExit("the projected and the baseline run differ")


if __name__ == "__main__":
    main()
