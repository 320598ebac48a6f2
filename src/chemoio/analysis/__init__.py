"""Trial endpoints as plain, vectorised functions on arrays.

* :mod:`chemoio.analysis.recist` - RECIST 1.1 / iRECIST visit responses, BOR, progression,
  duration of response, measurement noise.
* :mod:`chemoio.analysis.survival` - Kaplan-Meier summaries, Cox hazard ratios, log-rank
  tests (lifelines and fast numpy versions), exact response-rate CIs, RMST, replicate
  summaries.
* :mod:`chemoio.analysis.adam` - CDISC ADaM-style ADSL / ADTTE / ADRS tables and writers.

Nothing here depends on the mechanistic model; inputs are numpy arrays.
"""

from chemoio.analysis.adam import (
    add_adsl_vars,
    make_adrs,
    make_adsl,
    make_adtte,
    stack_adtte,
    write_adam,
)
from chemoio.analysis.recist import (
    Response,
    add_measurement_noise,
    best_overall_response,
    best_pct_change,
    classify_visits,
    classify_visits_irecist,
    disease_control,
    duration_of_response,
    objective_response,
    progression_day,
)
from chemoio.analysis.survival import (
    DAYS_PER_MONTH,
    HRResult,
    KMSummary,
    LogrankResult,
    cox_hr,
    cox_hr_fast,
    days_to_months,
    km_summary,
    logrank,
    logrank_fast,
    orr_with_ci,
    probability_of_success,
    proportion_difference_ci,
    rmst,
    rmst_difference,
    summarize_replicates,
)

__all__ = [
    "DAYS_PER_MONTH",
    "HRResult",
    "KMSummary",
    "LogrankResult",
    "Response",
    "add_adsl_vars",
    "add_measurement_noise",
    "best_overall_response",
    "best_pct_change",
    "classify_visits",
    "classify_visits_irecist",
    "cox_hr",
    "cox_hr_fast",
    "days_to_months",
    "disease_control",
    "duration_of_response",
    "km_summary",
    "logrank",
    "logrank_fast",
    "make_adrs",
    "make_adsl",
    "make_adtte",
    "objective_response",
    "orr_with_ci",
    "probability_of_success",
    "progression_day",
    "proportion_difference_ci",
    "rmst",
    "rmst_difference",
    "stack_adtte",
    "summarize_replicates",
    "write_adam",
]
