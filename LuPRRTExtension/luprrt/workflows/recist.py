"""RECIST 1.1 and lesion outcome from a measurement table, written as tidy CSV (+ figures)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..outputs import StagedOutputs
from ..provenance import ProgressCallback, file_sha256, no_progress, provenance_record
from ..response.outcome import OutcomeThresholds, lesion_outcomes
from ..response.recist import RecistCriteria, assess_cohort, best_overall_responses, read_measurements_csv
from ..tables import as_rows, write_rows_csv

log = logging.getLogger(__name__)

TABLES = ("recist_time_points.csv", "recist_best_response.csv", "lesion_outcomes.csv")
FIGURES = ("spider.png", "waterfall.png")
PROBLEMS_FILE = "recist_problems.csv"
PROVENANCE_FILE = "provenance.json"
# Patients' problems quoted in the one-line error; all of them are in PROBLEMS_FILE.
_PROBLEMS_SHOWN = 5


@dataclass
class RecistRun:
    """Rows produced by :func:`run_recist` (also written to ``out_dir``).

    ``problems`` maps each patient left out to the reason (empty when every patient was assessed).
    """

    time_point_rows: list[dict]
    best_response_rows: list[dict]
    lesion_outcome_rows: list[dict]
    files: list[Path]
    problems: dict[str, str] = field(default_factory=dict)


def run_recist(measurements_csv: str | Path, out_dir: str | Path, *, criteria: RecistCriteria | None = None,
               thresholds: OutcomeThresholds | None = None, figures: bool = True,
               overwrite: bool = False, progress: ProgressCallback | None = None) -> RecistRun:
    """Assess every patient of ``measurements_csv`` and write the result tables into ``out_dir``.

    Writes ``recist_time_points.csv`` (one row per patient and follow-up assessment),
    ``recist_best_response.csv`` (one row per patient; NE for a patient with a baseline only),
    ``lesion_outcomes.csv`` (per lesion and date: % change of its diameter from baseline and
    its category), ``provenance.json`` and, with ``figures``, ``spider.png`` and
    ``waterfall.png``. Outputs appear together or not at all (:class:`luprrt.outputs.StagedOutputs`).

    A patient whose rows break a rule is left out and reported: the valid patients are
    assessed and written, ``recist_problems.csv`` lists every patient left out and why, and a
    ValueError naming them all is raised at the end.
    """
    criteria = criteria or RecistCriteria()
    thresholds = thresholds or OutcomeThresholds()
    progress = progress or no_progress
    out_dir = Path(out_dir)
    names = [*TABLES, *(FIGURES if figures else ()), PROBLEMS_FILE, PROVENANCE_FILE]
    outputs = StagedOutputs(out_dir, names, overwrite=overwrite, inputs=[measurements_csv])
    problems: dict[str, str] = {}
    measurements = read_measurements_csv(measurements_csv, problems=problems)
    progress(0.1, f"read {len(measurements)} measurements")
    by_patient = assess_cohort(measurements, criteria, problems=problems)
    valid = [row for row in measurements if row.patient_id in by_patient]
    time_points = [tp for responses in by_patient.values() for tp in responses]
    best = best_overall_responses(by_patient, criteria)
    outcomes = lesion_outcomes(valid, thresholds=thresholds, too_small_to_measure_mm=criteria.too_small_to_measure_mm,
                               assessment_window_days=criteria.assessment_window_days)
    progress(0.6, f"assessed {len(by_patient)} patients")
    result = RecistRun(as_rows(time_points), as_rows(best), as_rows(outcomes), [], problems)
    with outputs:
        for name, rows in zip(TABLES, (result.time_point_rows, result.best_response_rows,
                                       result.lesion_outcome_rows), strict=True):
            if rows:
                write_rows_csv(rows, outputs.path(name))
        if problems:
            write_rows_csv([{"patient_id": pid, "problem": text} for pid, text in sorted(problems.items())],
                           outputs.path(PROBLEMS_FILE))
        if figures and result.lesion_outcome_rows and result.best_response_rows:
            _figures(result, outputs)
        record = provenance_record({str(measurements_csv): file_sha256(measurements_csv)},
                                   {"criteria": criteria.__dict__, "thresholds": thresholds.__dict__,
                                    "patients_left_out": sorted(problems)})
        outputs.path(PROVENANCE_FILE).write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
        result.files = outputs.commit()
    progress(1.0, "done")
    log.info("RECIST: %d patients, %d time points -> %s", len(by_patient), len(time_points), out_dir)
    if problems:
        shown = sorted(problems.items())[:_PROBLEMS_SHOWN]
        listing = "; ".join(f"{pid}: {text}" for pid, text in shown)
        if len(problems) > len(shown):
            listing += f"; and {len(problems) - len(shown)} more"
        raise ValueError(f"{len(problems)} of {len(problems) + len(by_patient)} patients not assessed "
                         f"({listing}); the others are written to {out_dir}, the problems to "
                         f"{out_dir / PROBLEMS_FILE}")
    return result


def _figures(result: RecistRun, outputs: StagedOutputs) -> None:
    import pandas as pd

    from ..cohort.figures import spider_plot, waterfall_plot

    outcomes = pd.DataFrame(result.lesion_outcome_rows)
    outcomes["time_since_baseline_h"] = outcomes["days_from_baseline"] * 24.0
    measured = outcomes.dropna(subset=["change_pct"])
    if not measured.empty:
        spider_plot(measured, outputs.path("spider.png"), change="change_pct")
    best = pd.DataFrame(result.best_response_rows).dropna(subset=["best_change_from_baseline_pct"])
    if not best.empty:
        waterfall_plot(best, outputs.path("waterfall.png"), change="best_change_from_baseline_pct")
