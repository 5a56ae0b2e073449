"""RECIST 1.1 and lesion outcome from a measurement table, written as tidy CSV (+ figures)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import output_exists
from ..provenance import ProgressCallback, file_sha256, no_progress, provenance_record
from ..response.outcome import OutcomeThresholds, lesion_outcomes
from ..response.recist import RecistCriteria, assess_cohort, best_overall_response, read_measurements_csv
from ..tables import as_rows, write_rows_csv

log = logging.getLogger(__name__)


@dataclass
class RecistRun:
    """Rows produced by :func:`run_recist` (also written to ``out_dir``)."""

    time_point_rows: list[dict]
    best_response_rows: list[dict]
    lesion_outcome_rows: list[dict]
    files: list[Path]


def run_recist(measurements_csv: str | Path, out_dir: str | Path, *, criteria: RecistCriteria | None = None,
               thresholds: OutcomeThresholds | None = None, figures: bool = True,
               overwrite: bool = False, progress: ProgressCallback | None = None) -> RecistRun:
    """Assess every patient of ``measurements_csv`` and write the result tables into ``out_dir``.

    Writes ``recist_time_points.csv`` (one row per patient and follow-up date),
    ``recist_best_response.csv`` (one row per patient), ``lesion_outcomes.csv`` (per lesion
    and date: % change of the longest diameter from baseline and its category),
    ``provenance.json`` and, with ``figures``, ``spider.png`` and ``waterfall.png``.
    """
    criteria = criteria or RecistCriteria()
    thresholds = thresholds or OutcomeThresholds()
    progress = progress or no_progress
    out_dir = Path(out_dir)
    measurements = read_measurements_csv(measurements_csv)
    progress(0.1, f"read {len(measurements)} measurements")
    by_patient = assess_cohort(measurements, criteria)
    time_points = [tp for responses in by_patient.values() for tp in responses]
    best = [best_overall_response(responses, criteria) for responses in by_patient.values() if responses]
    outcomes = lesion_outcomes(measurements, thresholds=thresholds,
                               too_small_to_measure_mm=criteria.too_small_to_measure_mm)
    progress(0.6, f"assessed {len(by_patient)} patients")
    result = RecistRun(as_rows(time_points), as_rows(best), as_rows(outcomes), [])
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in (("recist_time_points.csv", result.time_point_rows),
                       ("recist_best_response.csv", result.best_response_rows),
                       ("lesion_outcomes.csv", result.lesion_outcome_rows)):
        if rows:
            result.files.append(write_rows_csv(rows, out_dir / name, overwrite=overwrite))
    if figures and result.lesion_outcome_rows and result.time_point_rows:
        result.files += _figures(result, out_dir, overwrite)
    record = provenance_record({str(measurements_csv): file_sha256(measurements_csv)},
                               {"criteria": criteria.__dict__, "thresholds": thresholds.__dict__})
    provenance_path = out_dir / "provenance.json"
    if provenance_path.exists() and not overwrite:
        raise output_exists(provenance_path)
    provenance_path.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    result.files.append(provenance_path)
    progress(1.0, "done")
    log.info("RECIST: %d patients, %d time points -> %s", len(by_patient), len(time_points), out_dir)
    return result


def _figures(result: RecistRun, out_dir: Path, overwrite: bool) -> list[Path]:
    import pandas as pd

    from ..cohort.figures import spider_plot, waterfall_plot

    outcomes = pd.DataFrame(result.lesion_outcome_rows)
    outcomes["time_since_baseline_h"] = outcomes["days_from_baseline"] * 24.0
    spider = spider_plot(outcomes.dropna(subset=["change_pct"]), out_dir / "spider.png", change="change_pct",
                         overwrite=overwrite)
    time_points = pd.DataFrame(result.time_point_rows).dropna(subset=["change_from_baseline_pct"])
    best_change = time_points.groupby("patient_id", as_index=False)["change_from_baseline_pct"].min()
    waterfall = waterfall_plot(best_change, out_dir / "waterfall.png", change="change_from_baseline_pct",
                               overwrite=overwrite)
    return [spider, waterfall]
