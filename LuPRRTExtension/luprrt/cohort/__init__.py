"""Cohort statistics and reporting for the two LuPRRT studies (optional extra ``luprrt[cohort]``).

Pure functions on tidy tables (pandas DataFrames, one row per lesion and cycle, units in
the column names); no imaging:

* :mod:`luprrt.cohort.trial` - IA lobe vs IV lobe (paired analysis, mixed model over
  cycles), kidney and extrahepatic uptake by cycle, lobe dose and dose-response;
* :mod:`luprrt.cohort.models` - lesion response prediction (AUC with patient bootstrap,
  GEE and mixed logistic models, patient-grouped cross-validation) and the patient-level
  RECIST response model;
* :mod:`luprrt.cohort.figures` - PNG figures (paired plot, forest, ROC, spider, waterfall);
* :mod:`luprrt.cohort.report` - a self-contained HTML report of tables and figures;
* :mod:`luprrt.cohort.toxicity`, :mod:`luprrt.cohort.route_response` - dose-toxicity, response by route,
  dose-response, T/N variance components, the trial-definition primary endpoint;
* :mod:`luprrt.cohort.reader_report`, :mod:`luprrt.cohort.endpoint_figures`, :mod:`luprrt.cohort.patient_figures`,
  :mod:`luprrt.cohort.browser` - the reader's report (Jinja2), its figures, its Chromium check.

pandas, statsmodels and matplotlib are needed only here, never by the rest of ``luprrt``;
install them with ``pip install "luprrt[cohort]"``. statsmodels and matplotlib are imported
inside the functions that use them, so importing this package stays light.
"""

from __future__ import annotations

import importlib.util

_MISSING = [name for name in ("pandas", "statsmodels", "matplotlib")
            if importlib.util.find_spec(name) is None]
if _MISSING:
    raise ImportError(
        f"luprrt.cohort needs {', '.join(_MISSING)}; install the optional extra: pip install 'luprrt[cohort]'"
    )

from .models import (  # noqa: E402 (after the dependency check, on purpose)
    auc_with_patient_bootstrap_ci,
    gee_logistic,
    group_kfold,
    grouped_cv_probabilities,
    mixed_logistic,
    patient_aggregates,
    patient_response_model,
    responder_from_category,
    roc_auc,
    roc_curve_points,
)
from .report import ReportFigure, ReportTable, write_html_report  # noqa: E402
from .trial import (  # noqa: E402
    cumulative_lesion_dose,
    dose_response_spearman,
    lobe_dose_summary,
    mixed_model_over_cycles,
    paired_ia_iv,
    size_matched_lesions,
    uptake_summary_by_cycle,
)

__all__ = [
    "ReportFigure",
    "ReportTable",
    "auc_with_patient_bootstrap_ci",
    "cumulative_lesion_dose",
    "dose_response_spearman",
    "gee_logistic",
    "group_kfold",
    "grouped_cv_probabilities",
    "lobe_dose_summary",
    "mixed_logistic",
    "mixed_model_over_cycles",
    "paired_ia_iv",
    "patient_aggregates",
    "patient_response_model",
    "responder_from_category",
    "roc_auc",
    "roc_curve_points",
    "size_matched_lesions",
    "uptake_summary_by_cycle",
    "write_html_report",
]
