"""Cohort tables, trial analyses, predictive models, figures and the HTML report.

Reads the per-patient outputs of :func:`luprrt.workflows.cohort.process_patient` and writes
into the cohort output folder: ``lesion_table.csv`` (one row per lesion and cycle),
``patient_table.csv``, the analysis tables, PNG figures, ``report.html`` and, last,
``analysis.json`` (what the analysis was made from). All of them are written into a staging
folder and moved in place together (:class:`luprrt.outputs.StagedOutputs`): an interrupted
analysis leaves the previous one or none, and is simply made again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path

from ..errors import output_exists
from ..outputs import StagedOutputs
from ..provenance import ProgressCallback, no_progress, provenance_record
from ..response.outcome import LesionOutcome, lesion_outcomes
from ..response.recist import assess_patient, best_overall_responses
from ..tables import as_rows

log = logging.getLogger(__name__)

# The LUTIA primary endpoint is lesion T/N on the 24 h post-treatment SPECT/CT (Ebbers et al. 2024).
PRIMARY_HOURS_POST_INJECTION = 24.0
# Lesion dose reported per cycle: unit-density sphere S-values (the method of the lesion tables).
LESION_DOSE_METHOD = "sphere_s_value"
PREDICTORS = ("fdg_suvmax", "ga68_suvmax", "adc_mean_mm2_per_s", "cumulative_tumour_dose_gy")
# Lesion T/N columns carried into the lesion table when present (trial targets; recovery-corrected T/N).
LESION_TN_EXTRA_COLUMNS = ("longest_diameter_mm", "target_lesion", "target_rank", "segmentation_volume_ml",
                           "tn_mean_corrected", "tn_mean_corrected_ci95_low", "tn_mean_corrected_ci95_high",
                           "recovery_extrapolated")
# Lesion dose columns with a site calibration, renamed for the lesion table.
LESION_DOSE_EXTRA_COLUMNS = {"uncorrected_dose_gy": "tumour_dose_uncorrected_gy",
                             "dose_gy_ci95_low": "tumour_dose_ci95_low_gy", "dose_gy_ci95_high": "tumour_dose_ci95_high_gy"}
# Size-matched sensitivity analysis: IA and IV lesions paired when their volumes differ by at most this factor.
SIZE_MATCH_MAX_VOLUME_RATIO = 2.0
RESPONDER_CATEGORY = "response"
ANALYSIS_MARKER = "analysis.json"
# Every file the analysis may write (relative to the cohort output folder), checked before it starts.
ANALYSIS_FILES = ("lesion_table.csv", "patient_table.csv", "primary_ia_iv.csv", "ia_iv_by_cycle.csv",
                  "uptake_by_cycle.csv", "lesion_dose_by_lobe.csv", "lesion_auc.csv", "lesion_gee_effects.csv",
                  "figures/paired_ia_iv.png", "figures/roc.png", "figures/forest.png", "figures/spider.png",
                  "figures/waterfall.png", "report.html", ANALYSIS_MARKER)


def _read(path: Path):
    import pandas as pd

    return pd.read_csv(path) if path.is_file() else None


def lesion_table(out_dir: Path, patient_ids: Sequence[str]):
    """Build the cohort's lesion, patient and lesion-course tables from the patients' outputs.

    One row per lesion and cycle (T/N, dose, baseline features, diameter change, response), one row
    per patient (RECIST), and one row per lesion and follow-up visit (% change of the longest diameter).
    """
    import pandas as pd

    from ..cohort import cumulative_lesion_dose

    frames, patients, courses = [], [], []
    for patient_id in patient_ids:
        folder = Path(out_dir) / "patients" / patient_id
        tn = _read(folder / "lobequant" / "lobequant_tn.csv")
        dose = _read(folder / "dose" / "dose.csv")
        measurements = _read(folder / "measurements.csv")
        if tn is None or dose is None or measurements is None:
            raise FileNotFoundError(f"patient {patient_id}: results missing in {folder}; run the cohort again "
                                    "to redo the patient")
        lesions = tn[(tn["role"] == "lesion") & (tn["hours_post_injection"] == PRIMARY_HOURS_POST_INJECTION)]
        lesions = lesions[["cycle", "lesion_id", "side", "route", "volume_ml", "tn_mean", "tn_max",
                           *[c for c in LESION_TN_EXTRA_COLUMNS if c in lesions]]].assign(patient_id=patient_id)
        lesion_dose = dose[(dose["role"] == "lesion") & (dose["method"] == LESION_DOSE_METHOD)]
        lesion_dose = lesion_dose[["cycle", "lesion_id", "dose_gy",
                                   *[c for c in LESION_DOSE_EXTRA_COLUMNS if c in lesion_dose]]].rename(
            columns={"dose_gy": "tumour_dose_gy", **LESION_DOSE_EXTRA_COLUMNS})
        table = lesions.merge(lesion_dose, on=["cycle", "lesion_id"], how="left")
        features = _read(folder / "lesion_features.csv")
        if features is not None:
            keep = ["lesion_id", *[c for c in ("fdg_suvmax", "fdg_suvpeak", "ga68_suvmax", "ga68_suvpeak",
                                               "adc_mean_mm2_per_s") if c in features]]
            table = table.merge(features[keep], on="lesion_id", how="left")
        course, patient = _response(measurements, patient_id)
        last = course.groupby("lesion_id", as_index=False).tail(1)  # course is ordered by lesion and date
        outcome = last[["lesion_id", "baseline_diameter_mm", "change_pct", "category"]].rename(
            columns={"change_pct": "diameter_change_pct", "category": "lesion_response",
                     "baseline_diameter_mm": "baseline_longest_diameter_mm"})
        table = table.merge(outcome, on="lesion_id", how="left")
        frames.append(table)
        patients.append(patient)
        courses.append(course)
    table = pd.concat(frames, ignore_index=True)
    table = cumulative_lesion_dose(table.dropna(subset=["tumour_dose_gy"]), dose="tumour_dose_gy")
    first = table[table["cycle"] == 1].set_index(["patient_id", "lesion_id"])
    key = table.set_index(["patient_id", "lesion_id"]).index
    table["tn_mean_change_from_cycle1_pct"] = 100.0 * (
        table["tn_mean"].to_numpy() / first["tn_mean"].reindex(key).to_numpy() - 1.0)
    table["responder"] = (table["lesion_response"] == RESPONDER_CATEGORY).astype(int)
    columns = ["patient_id", "lesion_id", "side", "route", "cycle"]
    course = pd.concat(courses, ignore_index=True)
    # Liver lesions are measured by their longest diameter (RECIST: short axis for nodes only).
    course = course.assign(time_since_baseline_h=course["days_from_baseline"] * 24.0,
                           diameter_change_pct=course["change_pct"],
                           baseline_longest_diameter_mm=course["baseline_diameter_mm"],
                           followup_longest_diameter_mm=course["followup_diameter_mm"])
    return table[columns + [c for c in table.columns if c not in columns]], pd.DataFrame(patients), course


def _response(measurements, patient_id: str):
    """Per lesion and follow-up visit: % change of the longest diameter and its category; patient RECIST."""
    import pandas as pd

    rows = _measurement_records(measurements)
    course = pd.DataFrame(as_rows(lesion_outcomes(rows)), columns=[f.name for f in fields(LesionOutcome)])
    time_points = assess_patient(rows)
    (best,) = best_overall_responses({patient_id: time_points})
    patient = {"patient_id": patient_id, "best_overall_response": best.response.value,
               "patient_responder": int(best.response.value in ("CR", "PR")),
               "best_sum_diameters_change_pct": best.best_change_from_baseline_pct,
               "last_overall_response": time_points[-1].overall_response.value if time_points else None}
    return course, patient


def uptake_table(out_dir: Path, patient_ids: Sequence[str]):
    """Per patient and cycle: kidney and extrahepatic uptake, % of administered activity (24 h scan)."""
    import pandas as pd

    frames = []
    for patient_id in patient_ids:
        uptake = _read(Path(out_dir) / "patients" / patient_id / "lobequant" / "lobequant_uptake.csv")
        if uptake is None:
            continue
        uptake = uptake[uptake["hours_post_injection"] == PRIMARY_HOURS_POST_INJECTION]
        wide = uptake.pivot_table(index="cycle", columns="region", values="uptake_percent_of_administered")
        wide.columns = [f"{region.replace(' ', '_')}_uptake_pct" for region in wide.columns]
        frames.append(wide.reset_index().assign(patient_id=patient_id))
    return pd.concat(frames, ignore_index=True) if frames else None


def analyse_cohort(out_dir: str | Path, patient_ids: Sequence[str], *, n_boot: int = 1000, seed: int = 0,
                   overwrite: bool = False, progress: ProgressCallback | None = None,
                   marker: dict | None = None, study: str | Path | None = None, options: dict | None = None,
                   jobs: int = 1) -> Path:
    """Write the cohort tables, analyses, figures, patient pages and ``report.html``; returns the report.

    ``marker`` is stored in ``analysis.json`` (with the parameters), written last. ``study`` is the
    study folder (its ``labs.csv`` and ``characteristics.csv`` give the clinical data; otherwise each
    patient manifest's ``clinical`` entry does); ``options`` are the per-patient options of the run
    (recorded in the provenance); ``jobs`` processes draw the patient pages. Everything is written
    into a staging folder and moved in place together.
    """
    progress = progress or no_progress
    out_dir = Path(out_dir)
    with StagedOutputs(out_dir, ANALYSIS_FILES, overwrite=overwrite) as outputs:
        _analyse(out_dir, outputs, patient_ids, n_boot, seed, progress, marker, study, options, jobs)
        staging = outputs.path(ANALYSIS_MARKER).parent
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            outputs.path(path.relative_to(staging).as_posix())  # figures and pages made along the way
        outputs.commit()
    progress(1.0, "report written")
    return out_dir / "report.html"


def _analyse(out_dir: Path, outputs: StagedOutputs, patient_ids: Sequence[str], n_boot: int, seed: int,
             progress: ProgressCallback, marker: dict | None, study, options: dict | None, jobs: int) -> None:
    """The analysis itself: reads the patients from ``out_dir``, writes into the staging folder."""
    import numpy as np
    import pandas as pd

    from ..cohort import (
        auc_with_patient_bootstrap_ci,
        figures,
        gee_logistic,
        lobe_dose_summary,
        mixed_model_over_cycles,
        paired_ia_iv,
        roc_curve_points,
        uptake_summary_by_cycle,
    )
    from ..cohort import endpoint_figures as ef
    from ..cohort.route_response import trial_primary_endpoint
    from . import cohort_endpoints as ce
    from . import cohort_report as cr

    options = dict(options or {})
    staging = outputs.path(ANALYSIS_MARKER).parent
    figure_dir = outputs.path("figures/paired_ia_iv.png").parent
    overwrite = False  # everything is new in the staging folder
    lesions, patients, course = lesion_table(out_dir, patient_ids)
    lesions = ce.after_cycle_imaging(out_dir, patient_ids, lesions)
    _write_table(lesions, outputs.path("lesion_table.csv"), overwrite)
    _write_table(patients, outputs.path("patient_table.csv"), overwrite)
    admin = ce.administrations(out_dir, patient_ids)
    progress(0.1, "lesion table written")
    results: dict = {}
    notes: list[str] = []
    value = endpoint_value(lesions)  # recovery-corrected T/N when every lesion has it
    analyses = _attempt(lambda: endpoint_analyses(lesions, value)) or []  # [] when no lobe has a target

    def write(frame, path: Path) -> Path:
        return _write_table(frame, outputs.path(Path(path).name), overwrite)

    def attempt(name: str, step: Callable[[], object]) -> None:
        """Run one analysis; a cohort that cannot support it (e.g. one outcome class) gets a note."""
        try:
            results[name] = step()
        except (ValueError, np.linalg.LinAlgError) as error:
            log.warning("%s not computed: %s", name, error)
            notes.append(f"{name}: not computed ({error})")

    def primary():
        """All lesions: the sensitivity analysis beside the trial's definition (the report's second line)."""
        result = paired_ia_iv(lesions, cycle=1, value=value)
        figures.paired_ia_iv_figure(result, figure_dir / "paired_ia_iv.png", overwrite=overwrite)
        for name, analysis, file in analyses:
            if analysis is not None and file != "primary_ia_iv.csv":
                _write_table(analysis.to_frame().assign(analysis=name), outputs.path(file), overwrite)
        if analyses:
            _write_table(endpoint_table(analyses), outputs.path("ia_iv_endpoints.csv"), overwrite)
        return result

    def trial():
        """The trial's primary endpoint: up to 3 target lesions > 30 mm per lobe (Ebbers et al. 2024)."""
        if "target_lesion" in lesions and analyses:
            name, result, file = analyses[0]
        else:
            name, result, file = ("primary (trial definition, baseline diameters)",
                                  trial_primary_endpoint(lesions, value=value), "primary_ia_iv.csv")
        _write_table(result.to_frame().assign(analysis=name), outputs.path(file), overwrite)
        figures.paired_ia_iv_figure(result, figure_dir / "paired_ia_iv_trial_definition.png", overwrite=overwrite)
        return result

    def per_cycle():
        table = pd.concat([paired_ia_iv(lesions, cycle=c, value=value).to_frame()
                           for c in sorted(lesions["cycle"].unique())], ignore_index=True)
        _write_table(table, outputs.path("ia_iv_by_cycle.csv"), overwrite)
        mixed = mixed_model_over_cycles(lesions, value=value)
        _write_table(mixed.to_frame(), outputs.path("ia_iv_mixed_model.csv"), overwrite)
        return {"table": table, "figure": ef.ratio_by_cycle_figure(table, figure_dir / "ia_iv_by_cycle.png",
                                                                   overwrite=overwrite),
                "mixed_note": f"One mixed model over all cycles ({mixed.random_effects}): the IA/IV ratio is "
                              f"the same at every cycle, {_p(mixed.p_value_ratio_constant)}."}

    def uptake():
        table = uptake_table(out_dir, patient_ids)
        if table is None:
            raise ValueError("no uptake tables")
        labels = {"kidneys_uptake_pct": "kidneys", "liver_uptake_pct": "liver",
                  "extrahepatic_uptake_pct": "extrahepatic"}
        columns = [c for c in labels if c in table]
        summary = uptake_summary_by_cycle(table, columns)
        _write_table(summary, outputs.path("uptake_by_cycle.csv"), overwrite)
        return {"summary": summary, "figure": ef.uptake_figure(table, {c: labels[c] for c in columns},
                                                               figure_dir / "uptake.png", overwrite=overwrite)}

    def dose():
        summary = lobe_dose_summary(lesions, dose="tumour_dose_gy")
        _write_table(summary, outputs.path("lesion_dose_by_lobe.csv"), overwrite)
        return {"lesions": lesions, "figure": ef.lesion_dose_figure(lesions, figure_dir / "lesion_dose.png",
                                                                    overwrite=overwrite)}

    def models():
        last_cycle = lesions.sort_values("cycle").groupby(["patient_id", "lesion_id"]).tail(1)
        data = last_cycle.dropna(subset=[p for p in PREDICTORS if p in last_cycle] + ["responder"])
        predictors = [p for p in PREDICTORS if p in data]
        aucs = [auc_with_patient_bootstrap_ci(data, p, "responder", n_boot=n_boot, seed=seed) for p in predictors]
        auc_table = pd.concat([a.to_frame() for a in aucs], ignore_index=True)
        _write_table(auc_table, outputs.path("lesion_auc.csv"), overwrite)
        curves = {p: roc_curve_points(data["responder"], -data[p] if a.lower_predicts_response else data[p])
                  for p, a in zip(predictors, aucs, strict=True)}
        roc = ef.roc_checked(curves, figure_dir / "roc.png", overwrite=overwrite)
        effects = gee_logistic(data, "responder", predictors)
        _write_table(effects.to_frame(), outputs.path("lesion_gee_effects.csv"), overwrite)
        figures.forest_plot(effects, figure_dir / "forest.png", title="GEE, odds ratio per SD", overwrite=overwrite)
        return {"auc": auc_table, "roc": roc, "effects": effects}

    def response():
        spider = lesions.drop_duplicates(["patient_id", "lesion_id"])
        measured = course.dropna(subset=["diameter_change_pct"])
        if not measured.empty:
            figures.spider_plot(measured, figure_dir / "spider.png", change="diameter_change_pct",
                                overwrite=overwrite)
        waterfall = figures.waterfall_plot(patients.dropna(subset=["best_sum_diameters_change_pct"]),
                                           figure_dir / "waterfall.png", overwrite=overwrite)
        counts = patients["best_overall_response"].value_counts().rename_axis("best_overall_response")
        return {"counts": counts.reset_index(name="n_patients"), "waterfall": waterfall,
                "text": f"{int(spider['responder'].sum())} of {len(spider)} lesions responded "
                        "(longest diameter -30 % or less at the last visit)."}

    steps = [("primary", primary), ("trial_primary", trial), ("per_cycle", per_cycle), ("uptake", uptake),
             ("dose", dose), ("models", models), ("response", response),
             ("route_response", lambda: ce.route_response_endpoint(lesions, course, figure_dir, write, out_dir,
                                                                    overwrite)),
             ("toxicity", lambda: ce.toxicity_endpoint(out_dir, patient_ids, admin, study, figure_dir, write,
                                                       overwrite)),
             ("imaging", lambda: ce.imaging_change_endpoint(lesions, figure_dir, write, out_dir, overwrite,
                                                            min(n_boot, 500), seed)),
             ("variance", lambda: ce.variance_endpoint(out_dir, patient_ids, figure_dir, write, overwrite))]
    for k, (name, step) in enumerate(steps):
        attempt(name, step)
        progress(0.1 + 0.6 * (k + 1) / len(steps), name)
    if "primary" not in results:
        raise ValueError(f"the primary endpoint could not be computed: {notes}")
    folders = {p: ce.patient_folder(out_dir, p) for p in patient_ids}
    arguments = [(out_dir, p, folders[p], lesions[lesions["patient_id"] == p], None,
                  _time_points(out_dir / "patients" / p / "measurements.csv"), overwrite, staging)
                 for p in patient_ids]
    pages = []
    if jobs > 1 and len(arguments) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, as the patient batch: workers start clean (no inherited BLAS or matplotlib state).
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for k, page in enumerate(pool.map(cr.patient_page, *zip(*arguments, strict=True))):
                pages.append(page)
                progress(0.7 + 0.25 * (k + 1) / len(arguments), f"page of {page['patient_id']}")
    else:
        for k, argument in enumerate(arguments):
            pages.append(cr.patient_page(*argument))
            progress(0.7 + 0.25 * (k + 1) / len(arguments), f"page of {argument[1]}")
    truth = ce.synthetic_truth(out_dir, patient_ids)
    toxicity = results.get("toxicity") or {}
    parameters = {"patients": list(patient_ids), "n_boot": n_boot, "seed": seed,
                  "primary_hours_post_injection": PRIMARY_HOURS_POST_INJECTION,
                  "lesion_dose_method": LESION_DOSE_METHOD, "endpoint_value": value, **options}
    cr.write_report(
        staging, results, patients_table=patients, people=toxicity.get("people"), admin=admin, truth=truth,
        inputs=cr.collect_inputs(out_dir, patient_ids, {k: v for k, v in folders.items() if v}, study),
        calibration=cr.calibration_lines(out_dir, patient_ids, options), parameters=parameters,
        record=provenance_record(), patient_pages=pages, notes=notes, overwrite=overwrite)
    record = provenance_record({}, parameters)
    outputs.path(ANALYSIS_MARKER).write_text(json.dumps({**record, **(marker or {})}, indent=2, default=str),
                                             encoding="utf-8")


def _p(p: float) -> str:
    from ..cohort.reader_report import format_p

    return format_p(p)


def _time_points(measurements_csv: Path):
    """RECIST 1.1 time points of one patient's measurements (a table), or None."""
    import pandas as pd

    measurements = _read(measurements_csv)
    if measurements is None:
        return None
    return pd.DataFrame(as_rows(assess_patient(_measurement_records(measurements))))


def endpoint_value(lesions) -> str:
    """The T/N column of the analyses: recovery-corrected when every lesion has it, else the measured one."""
    if "tn_mean_corrected" in lesions and lesions["tn_mean_corrected"].notna().all() \
            and (lesions["tn_mean_corrected"] > 0).all():
        return "tn_mean_corrected"
    return "tn_mean"


def endpoint_analyses(lesions, value: str) -> list[tuple[str, object, str]]:
    """(label, paired IA/IV result or None, file) of the primary endpoint and its sensitivity analyses.

    Primary: the trial's definition (target lesions: up to three > 3 cm per lobe, Ebbers et al.
    EJNMMI 2024; the ``target_lesion`` column). Sensitivity: all lesions; size-matched lesions
    (:func:`luprrt.cohort.size_matched_lesions`). A sensitivity analysis that cannot be computed
    (e.g. fewer than two patients with matched lesions) is None and logged.
    """
    from ..cohort import paired_ia_iv, size_matched_lesions

    analyses = []
    if "target_lesion" in lesions:
        targets = lesions[lesions["target_lesion"].astype(str).str.lower().isin(("true", "1"))]
        analyses.append(("primary (trial definition: up to 3 target lesions > 30 mm per lobe)",
                         paired_ia_iv(targets, cycle=1, value=value), "primary_ia_iv.csv"))
        analyses.append(("sensitivity: all lesions", _attempt(lambda: paired_ia_iv(lesions, cycle=1, value=value)),
                         "ia_iv_sensitivity_all_lesions.csv"))
    else:
        analyses.append(("primary: all lesions (no target-lesion column)", paired_ia_iv(lesions, cycle=1, value=value),
                         "primary_ia_iv.csv"))
    matched = size_matched_lesions(lesions, cycle=1, volume="volume_ml", max_volume_ratio=SIZE_MATCH_MAX_VOLUME_RATIO)
    analyses.append((f"sensitivity: size-matched lesions (IA-IV pairs within a volume ratio of "
                     f"{SIZE_MATCH_MAX_VOLUME_RATIO:g})", _attempt(lambda: paired_ia_iv(matched, cycle=1, value=value)),
                     "ia_iv_sensitivity_size_matched.csv"))
    return analyses


def endpoint_table(analyses):
    """One row per analysis: label, patients, lesions, ratio and interval, p-values."""
    import pandas as pd

    frames = [result.to_frame().assign(analysis=name) for name, result, _ in analyses if result is not None]
    table = pd.concat(frames, ignore_index=True)
    return table[["analysis", *[c for c in table.columns if c != "analysis"]]]


def _attempt(step):
    try:
        return step()
    except ValueError as error:
        log.warning("sensitivity analysis not computed: %s", error)
        return None


def _measurement_records(measurements) -> list[dict]:
    """Rows of a measurements.csv as RECIST input: empty cells None, dates as dates."""
    import pandas as pd

    rows = measurements.astype(object).where(measurements.notna(), None).to_dict("records")
    for row in rows:
        row["date"] = pd.Timestamp(row["date"]).date()
    return rows


def _write_table(frame, path: Path, overwrite: bool) -> Path:
    if path.exists() and not overwrite:
        raise output_exists(path)
    frame.to_csv(path, index=False)
    return path
