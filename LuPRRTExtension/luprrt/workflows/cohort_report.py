"""Assemble the reader's cohort report (first page, Table 1, endpoints, patient pages, provenance)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..cohort.reader_report import Section, Table, format_estimate, format_p, png_data_uri, write_page
from ..provenance import file_sha256

log = logging.getLogger(__name__)


def _median_iqr(values, digits: int = 0) -> str:
    q1, median, q3 = values.quantile([0.25, 0.5, 0.75])
    return f"{median:.{digits}f} ({q1:.{digits}f}-{q3:.{digits}f})"


def _count(n: int, total: int) -> str:
    return f"{n} ({100.0 * n / total:.0f} %)" if total else "0"


def table_one(people, admin) -> Table:
    """Table 1: age, sex, weight, primary site, WHO grade, Ki-67, prior therapies, IA side, activity."""
    n = len(people)
    rows = [["Patients", str(n)],
            ["Age (years), median (IQR)", _median_iqr(people["age_years"])],
            ["Female sex, n (%)", _count(int((people["sex"] == "F").sum()), n)],
            ["Weight (kg), median (IQR)", _median_iqr(people["weight_kg"])]]
    for site, k in people["primary_site"].value_counts().items():
        rows.append([f"Primary site: {site}, n (%)", _count(int(k), n)])
    for grade in ("G1", "G2", "G3"):
        rows.append([f"WHO grade {grade}, n (%)", _count(int((people["grade"] == grade).sum()), n)])
    rows.append(["Ki-67 (%), median (IQR)", _median_iqr(people["ki67_pct"], 1)])
    therapies = people["prior_therapies"].explode().dropna()
    for therapy, k in therapies.value_counts().items():
        rows.append([f"Prior therapy: {therapy}, n (%)", _count(int(k), n)])
    rows.append(["Kidney risk factors, n (%)", _count(int(people["kidney_risk_factors"].sum()), n)])
    if admin is not None and len(admin):
        sides = admin.drop_duplicates("patient_id")["ia_side"]
        rows.append(["IA into the right hepatic artery, n (%)", _count(int((sides == "right").sum()), len(sides))])
        rows.append(["Cycles per patient, median (IQR)", _median_iqr(admin.groupby("patient_id")["cycle"].max())])
        rows.append(["Activity per cycle (GBq), median (IQR)", _median_iqr(admin["activity_mbq"] / 1000.0, 2)])
    return Table(["Characteristic", "Value"], rows, "Baseline characteristics of the patients analysed")


def answer_block(trial, all_lesions, truth: dict) -> tuple[str, Table, str]:
    """The trial's answer in words and numbers, trial definition first and the all-lesion analysis beside it."""
    primary = trial or all_lesions
    direction = "higher" if primary.ratio > 1 else "lower"
    significant = primary.p_value < 0.05
    sentence = (f"After the first cycle, lesion T/N in the intra-arterially treated lobe was {primary.ratio:.2f} times "
                f"that of the intravenously treated lobe (95 % CI {primary.ci_low:.2f}-{primary.ci_high:.2f}), "
                f"{format_p(primary.p_value)}: the IA lobe's lesions took up "
                f"{'significantly ' if significant else ''}{direction} relative activity"
                f"{'' if significant else ', but the difference is not statistically significant'}.")
    rows = []
    for label, attribute in (("Patients analysed", "n_patients"), ("Lesions IA / IV", None),
                             ("Mean T/N, IA lobe", "ia_mean"), ("Mean T/N, IV lobe", "iv_mean"),
                             ("Ratio IA/IV (geometric)", None), ("Patients with higher IA T/N", "share_increased")):
        cells = [label]
        for result in (trial, all_lesions):
            if result is None:
                cells.append("not computed")
            elif attribute is None and label.startswith("Lesions"):
                cells.append(f"{result.n_lesions_ia} / {result.n_lesions_iv}")
            elif attribute is None:
                cells.append(format_estimate(result.ratio, result.ci_low, result.ci_high, result.p_value))
            elif attribute == "share_increased":
                cells.append(f"{100 * result.share_increased:.0f} %")
            elif attribute == "n_patients":
                cells.append(str(result.n_patients))
            else:
                cells.append(f"{getattr(result, attribute):.1f}")
        rows.append(cells)
    definition = ("Primary endpoint by the trial's definition (Ebbers et al., EJNMMI 2024): up to 3 target "
                  "lesions larger than 3 cm per lobe, T/N of the mean uptake on the 24 h SPECT/CT after cycle 1, "
                  "per-patient geometric means, paired t-test on log T/N. The all-lesion analysis uses every "
                  "segmented lesion.")
    if truth.get("ia_tn_factor"):
        definition += f" Synthetic study: built-in IA/IV lesion uptake factor {truth['ia_tn_factor']:g}."
    return sentence, Table(["", "Trial definition (lesions > 3 cm)", "All lesions"], rows), definition


def collect_inputs(out_dir: Path, patient_ids, patient_folders: dict, study: Path | None) -> list[tuple[str, str]]:
    """Every input file of the run (the patients' imaging folders and the clinical CSVs) with its SHA-256."""
    files = []
    for patient_id in patient_ids:
        folder = patient_folders.get(patient_id)
        if folder is not None and folder.is_dir():
            files += sorted(p for p in folder.rglob("*") if p.is_file() and "truth" not in p.relative_to(folder).parts
                            and p.name != "truth.json")
    if study is not None:
        files += [p for p in (Path(study) / "labs.csv", Path(study) / "characteristics.csv",
                              Path(study) / "manifest.csv") if p.is_file()]
    return [(str(p), file_sha256(p)) for p in files]


def calibration_lines(out_dir: Path, patient_ids, options: dict) -> list[str]:
    """How activity was quantified: the SPECT units and calibration read, the corrections applied."""
    lines = ["SPECT voxel values read as activity concentration (Bq/mL) from the DICOM NM series "
             "(Units BQML with its rescale, or counts with the camera calibration factor); the administered "
             "activity and the injection time from each series' radiopharmaceutical information."]
    pvc = options.get("pvc_fwhm_mm")
    lines.append(f"Partial-volume correction of region activities with a {pvc:g} mm FWHM resolution model."
                 if pvc else "No partial-volume correction of region activities.")
    lines.append("Lesion dose: sphere S-values; organ dose: organ S-values; kidney BED: alpha/beta 2.6 Gy, "
                 "repair half-time 2.8 h (Bodei et al. 2008); marrow dose: voxel local deposition in the marrow segment.")
    lines.append("CTCAE v5.0 grades (National Cancer Institute, 2017) from the thresholds shipped with luprrt.")
    return lines


def endpoint_sections(results: dict, truth: dict) -> tuple[list[Section], list[str]]:
    """One section per secondary endpoint, and the one-line headlines for the first page."""
    sections, headlines = [], []
    per_cycle = results.get("per_cycle")
    if per_cycle is not None:
        table = per_cycle["table"]
        rows = [[str(int(r.cycle)), str(int(r.n_patients)),
                 format_estimate(r.ratio_ia_iv, r.ci_low_ratio, r.ci_high_ratio), format_p(r.p_value)]
                for r in table.itertuples()]
        sections.append(Section("ia-iv-by-cycle", "IA vs IV by cycle (T/N after cycles 1-4)",
                                "Lesion T/N of the IA lobe over the IV lobe at 24 h after every cycle "
                                "(paired per-patient geometric means).", png_data_uri(per_cycle["figure"]),
                                "IA/IV lesion T/N ratio per cycle with its 95 % confidence interval",
                                Table(["Cycle", "Patients", "Ratio IA/IV (95 % CI)", "p"], rows),
                                [per_cycle["mixed_note"]], downloads=[("per-cycle ratios", "ia_iv_by_cycle.csv")]))
        last = table.iloc[-1]
        headlines.append(f"T/N ratio IA/IV after cycle {int(last.cycle)}: "
                         f"{format_estimate(last.ratio_ia_iv, last.ci_low_ratio, last.ci_high_ratio, last.p_value)}.")
    response = results.get("route_response")
    if response is not None:
        route, slope, paired = response["route"], response["slope"], response["paired"]
        rows = [["Lesion diameter ratio IA/IV (last visit / baseline)",
                 format_estimate(2.718281828 ** route.estimate, 2.718281828 ** route.ci_low,
                                 2.718281828 ** route.ci_high, route.p_value)],
                ["Per-lobe sum of target diameters, IA minus IV (%)",
                 format_estimate(paired["mean_difference_pct"], paired["ci_low_pct"], paired["ci_high_pct"],
                                 paired["p_value"], 1)],
                ["Diameter change per doubling of cumulative lesion dose (factor)",
                 format_estimate(2.0 ** slope.estimate, 2.0 ** slope.ci_low, 2.0 ** slope.ci_high, slope.p_value)]]
        crosstab = response["lobes"].pivot_table(index="route", columns="response", values="patient_id",
                                                 aggfunc="count", fill_value=0)
        lobe_rows = [[f"{r} lobe", *[str(int(crosstab.loc[r].get(c, 0))) for c in ("CR", "PR", "SD", "PD")]]
                     for r in crosstab.index]
        notes = [f"{route.n_lesions} measurable lesions (>= 10 mm at baseline) of {route.n_patients} patients; "
                 "mixed models with a random intercept per patient."]
        if truth.get("dose_slope") is not None:
            notes.append(f"Synthetic study: built-in slope {truth['dose_slope']:.3f} (diameter x"
                         f"{2.0 ** truth['dose_slope']:.2f} per dose doubling); the estimate "
                         f"{'recovers it within its CI' if slope.ci_low <= truth['dose_slope'] <= slope.ci_high else 'misses it'}.")
        sections.append(Section("response-by-route", "Tumour response by route (IA lobe vs IV lobe)",
                                "Change of each lesion's longest diameter from baseline to the last visit, IA "
                                "lobe against IV lobe of the same patients, and its dependence on the cumulative "
                                "lesion dose with route as a covariate.", png_data_uri(response["figure"]),
                                "Mean change of longest diameter per patient, IV lobe to IA lobe (lines); "
                                "lesions (dots); dashed: -30 % and +20 %",
                                Table(["Comparison", "Estimate (95 % CI), p"], rows), notes[:1],
                                details=[("per-lobe RECIST 1.1 response (patients)",
                                          Table(["Lobe", "CR", "PR", "SD", "PD"], lobe_rows))],
                                downloads=[("lesion diameter ratios", "lesion_diameter_ratios.csv"),
                                           ("per-lobe response", "lobe_response.csv"),
                                           ("model estimates", "response_by_route.csv")]))
        at_dose = response["route_at_dose"]
        sections.append(Section("dose-response", "Dose-response by route",
                                "Change of lesion diameter against the cumulative lesion absorbed dose over all "
                                "cycles, with route and baseline size as covariates.",
                                png_data_uri(response["dose_figure"]),
                                "Lesion diameter change against cumulative dose (log axis), by lobe, with the fit",
                                Table(["Effect", "Estimate (95 % CI), p"],
                                      [["ln(diameter ratio) per ln(cumulative dose)",
                                        format_estimate(slope.estimate, slope.ci_low, slope.ci_high, slope.p_value)],
                                       ["IA vs IV at equal dose (ln ratio)",
                                        format_estimate(at_dose.estimate, at_dose.ci_low, at_dose.ci_high,
                                                        at_dose.p_value)]]),
                                notes[1:], downloads=[("model estimates", "response_by_route.csv")]))
        headlines.append(f"Lesions in the IA lobe ended at {2.718281828 ** route.estimate:.2f} times the diameter "
                         f"ratio of IV-lobe lesions ({format_p(route.p_value)}); each doubling of the cumulative "
                         f"dose multiplied the diameter by {2.0 ** slope.estimate:.2f} "
                         f"(95 % CI {2.0 ** min(slope.ci_low, slope.ci_high):.2f}-"
                         f"{2.0 ** max(slope.ci_low, slope.ci_high):.2f}).")
    toxicity = results.get("toxicity")
    if toxicity is not None:
        rows = [[m.quantity, format_estimate(m.slope, m.ci_low, m.ci_high, m.p_value, 3), m.unit]
                for m in toxicity["models"]]
        counts = toxicity["counts"]
        grade_rows = [[r[0], *[str(v) for v in r[1:]]] for r in counts.itertuples(index=False)]
        stops = toxicity["stops"]
        withheld = stops[stops["withheld_cycle"].notna()]
        notes = [f"{len(withheld)} of {len(stops)} patients reached a threshold that would withhold a cycle"
                 + (": " + "; ".join(f"{r.patient_id} before cycle {int(r.withheld_cycle)} ({r.reason})"
                                     for r in withheld.itertuples()) if len(withheld) else ".")]
        if truth.get("toxicity"):
            from .cohort_endpoints import measured_to_true

            t = truth["toxicity"]
            ratio = measured_to_true(toxicity["doses"], truth.get("organ_doses"))
            notes.append(f"Synthetic study: built-in eGFR slope {t['egfr_slope_per_year_per_gy_bed']:g} per Gy BED, "
                         f"platelets {t['platelet_nadir_log_per_gy']:g} and lymphocytes "
                         f"{t['lymphocyte_nadir_log_per_gy']:g} ln per Gy of true marrow dose, ALT "
                         f"{t['alt_log_per_gy_ia_lobe']:g} and AST {t['ast_log_per_gy_ia_lobe']:g} ln per Gy of "
                         "true IA-lobe dose.")
            if ratio:
                notes.append(f"Measured over true dose (median): marrow {ratio['marrow']:.2f}, IA-lobe liver "
                             f"{ratio['liver']:.2f}, kidney BED {ratio['kidney_bed']:.2f}; per measured Gy the built-in "
                             f"slopes are therefore platelets {t['platelet_nadir_log_per_gy'] / ratio['marrow']:.2f}, "
                             f"lymphocytes {t['lymphocyte_nadir_log_per_gy'] / ratio['marrow']:.2f}, ALT "
                             f"{t['alt_log_per_gy_ia_lobe'] / ratio['liver']:.3f}, AST "
                             f"{t['ast_log_per_gy_ia_lobe'] / ratio['liver']:.3f}, eGFR "
                             f"{t['egfr_slope_per_year_per_gy_bed'] / ratio['kidney_bed']:.2f}.")
        sections.append(Section("toxicity", "Toxicity (CTCAE v5.0) and dose-toxicity",
                                "Laboratory adverse events graded by CTCAE v5.0 (baseline-relative where CTCAE "
                                "says so), and their relation to kidney BED, marrow dose and the IA lobe's liver dose.",
                                png_data_uri(toxicity["figure"]),
                                "Left: eGFR over time, coloured by cumulative kidney BED. Right: platelet and "
                                "lymphocyte nadir against the cycle's red-marrow dose",
                                Table(["Relation", "Estimate (95 % CI), p", "Unit"], rows), notes,
                                details=[("patients by worst grade", Table(["Adverse event", "Grade 0", "Grade 1",
                                                                            "Grade 2", "Grade 3", "Grade 4"],
                                                                           grade_rows))],
                                downloads=[("graded labs", "labs_graded.csv"),
                                           ("worst grade per cycle", "worst_grade_per_cycle.csv"),
                                           ("withheld cycles", "cycles_withheld.csv"),
                                           ("organ doses", "organ_doses.csv")]))
        egfr = toxicity["models"][0]
        worst = counts.set_index("adverse_event")
        high = int(worst[["n_grade_3", "n_grade_4"]].to_numpy().sum())
        headlines.append(f"Toxicity: {high} grade 3-4 laboratory events; the eGFR slope changed by "
                         f"{format_estimate(egfr.slope, egfr.ci_low, egfr.ci_high, egfr.p_value, 2, egfr.unit)} "
                         "of cumulative kidney BED.")
    uptake = results.get("uptake")
    if uptake is not None:
        summary = uptake["summary"]
        rows = []
        for r in summary.itertuples():
            cells = [str(int(r.cycle))]
            for region in ("kidneys", "liver", "extrahepatic"):
                column = f"{region}_uptake_pct"
                mean = getattr(r, f"mean_{column}", None)
                cells.append("n/a" if mean is None else f"{mean:.1f} ± {getattr(r, f'sd_{column}'):.1f}")
            rows.append(cells)
        sections.append(Section("uptake", "Kidney, liver and extrahepatic uptake",
                                "Share of the administered activity in the kidneys, the liver and outside the liver "
                                "on the 24 h SPECT/CT.", png_data_uri(uptake["figure"]),
                                "Uptake per cycle (boxes: median and IQR over patients)",
                                Table(["Cycle", "Kidneys (% IA), mean ± SD", "Liver (% IA), mean ± SD",
                                       "Extrahepatic (% IA), mean ± SD"], rows),
                                downloads=[("uptake by cycle", "uptake_by_cycle.csv")]))
    dose = results.get("dose")
    if dose is not None:
        lesions = dose["lesions"]
        rows = []
        for cycle, part in lesions.groupby("cycle"):
            cells = [str(int(cycle))]
            for route in ("IA", "IV"):
                values = part.loc[part["route"] == route, "tumour_dose_gy"]
                cells.append(_median_iqr(values, 1) if len(values) else "n/a")
            rows.append(cells)
        sections.append(Section("lesion-dose", "Lesion absorbed dose by lobe",
                                "Absorbed dose per lesion and cycle (sphere S-values), IA lobe vs IV lobe.",
                                png_data_uri(dose["figure"]), "Lesion dose per cycle, IA lobe vs IV lobe",
                                Table(["Cycle", "IA lobe (Gy), median (IQR)", "IV lobe (Gy), median (IQR)"], rows),
                                downloads=[("per patient, cycle and lobe", "lesion_dose_by_lobe.csv")]))
    variance = results.get("variance")
    if variance is not None:
        rows = [[str(int(r.cycle)), str(int(r.n_patients)), str(int(r.n_lesions)), f"{r.variance_patient:.3f}",
                 f"{r.variance_lesion:.3f}", f"{r.variance_residual:.3f}", f"{r.icc_patient:.2f}",
                 f"{r.icc_lesion:.2f}"] for r in variance["icc"].itertuples()]
        sections.append(Section("icc", "Intra- and inter-patient differences (variance components, ICC)",
                                "Variance of log lesion T/N split into between-patient, between-lesion (within "
                                "patient) and residual (between the SPECT time points of a lesion) parts, per cycle.",
                                png_data_uri(variance["figure"]), "Shares of the log T/N variance per cycle",
                                Table(["Cycle", "Patients", "Lesions", "Patient variance (ln²)",
                                       "Lesion variance (ln²)", "Residual variance (ln²)", "ICC patient",
                                       "ICC lesion"], rows),
                                ["ICC patient: correlation of two lesions of one patient; ICC lesion: of two "
                                 "time points of one lesion. Mixed model log T/N ~ route + time point, REML."],
                                downloads=[("variance components", "tn_variance_components.csv")]))
        first = variance["icc"].iloc[0]
        headlines.append(f"Between-patient share of the T/N variance at cycle 1: {100 * first.icc_patient:.0f} %; "
                         f"same-lesion correlation {first.icc_lesion:.2f}.")
    models = results.get("models")
    if models is not None:
        rows = [[r.predictor, format_estimate(r.auc, r.ci_low_auc, r.ci_high_auc)]
                for r in models["auc"].itertuples()]
        sections.append(Section("predictors", "Predictors of lesion response (baseline imaging and dose)",
                                "AUC of baseline FDG and 68Ga SUVmax, ADC and cumulative dose for lesion response "
                                "(longest diameter -30 % or less), with a patient bootstrap.",
                                png_data_uri(models["roc"]), "ROC curves of the baseline predictors",
                                Table(["Predictor", "AUC (95 % CI)"], rows),
                                downloads=[("AUC", "lesion_auc.csv"), ("GEE effects", "lesion_gee_effects.csv")]))
    imaging = results.get("imaging")
    if imaging is not None:
        aucs = imaging["aucs"]
        rows = [[str(int(r.cycle)), imaging["labels"].get(r.parameter, r.parameter),
                 format_estimate(r.auc, r.ci_low, r.ci_high)] for r in aucs.itertuples()]
        compact = Table(["After cycle", "Relative change of", "AUC (95 % CI)"], rows)
        gee = imaging["gee"]
        gee_rows = [[str(int(r.cycle)), r.predictor, format_estimate(r.odds_ratio, r.ci_low_or, r.ci_high_or,
                                                                     r.p_value)] for r in gee.itertuples()]
        sections.append(Section("imaging-changes", "Imaging changes after each cycle as response predictors",
                                "Relative change of FDG SUVmax, 68Ga SUVmax and ADC from baseline after each cycle, "
                                "analysed like the baseline values (AUC with patient bootstrap; GEE).",
                                png_data_uri(imaging["figure"]), "AUC of each imaging change per cycle",
                                compact if len(rows) <= 9 else None,
                                ["Exploratory objective: no correction for the many comparisons."],
                                details=([("AUC per cycle and parameter", compact)] if len(rows) > 9 else [])
                                + [("GEE odds ratios per SD of the change", Table(["After cycle", "Predictor",
                                                                                   "Odds ratio (95 % CI), p"],
                                                                                  gee_rows))],
                                downloads=[("AUC", "imaging_change_auc.csv"), ("GEE", "imaging_change_gee.csv")],
                                exploratory=True))
    recist = results.get("response")
    if recist is not None:
        counts = recist["counts"]
        rows = [[str(r.best_overall_response), str(int(r.n_patients))] for r in counts.itertuples()]
        sections.append(Section("recist", "Response (RECIST 1.1, per patient)",
                                "Best overall response per patient and the best change of the sum of target diameters.",
                                png_data_uri(recist["waterfall"]), "Best change of the sum of diameters per patient",
                                Table(["Best overall response", "Patients"], rows), [recist["text"]],
                                downloads=[("patient table", "patient_table.csv"), ("lesion table", "lesion_table.csv")]))
    return sections, headlines


def write_report(out_dir: Path, results: dict, *, patients_table, people, admin, truth: dict, inputs, calibration,
                 parameters: dict, record: dict, patient_pages: list[dict], notes: list[str],
                 overwrite: bool) -> Path:
    """Write ``report.html`` (the pages of the patients are written before, see :func:`patient_page`)."""
    sentence, answer_table, definition = answer_block(results.get("trial_primary"), results["primary"], truth)
    figure = Path(out_dir) / "figures" / ("paired_ia_iv_trial_definition.png" if results.get("trial_primary")
                                          else "paired_ia_iv.png")
    sections, headlines = endpoint_sections(results, truth)
    if notes:
        sections.append(Section("notes", "Notes", "Analyses that could not be computed on this cohort:",
                                notes=notes))
    provenance = dict(record) | {"inputs": inputs, "calibration": calibration,
                                 "parameters": sorted((k, json.dumps(v, default=str)) for k, v in parameters.items())}
    downloads = sorted(p.name for p in Path(out_dir).glob("*.csv"))
    one = table_one(people, admin) if people is not None else Table(["Characteristic", "Value"],
                                                                    [["Patients", str(len(patients_table))]],
                                                                    "no characteristics table given")
    return write_page(Path(out_dir) / "report.html", "report.html.j2", overwrite=overwrite,
                      title="LuPRRT cohort report: intra-arterial vs intravenous 177Lu-DOTATATE",
                      subtitle=f"{len(patients_table)} patients; primary endpoint: lesion T/N IA lobe vs IV lobe "
                               "after cycle 1",
                      answer={"sentence": sentence, "table": answer_table, "definition": definition,
                              "figure": png_data_uri(figure) if figure.is_file() else None},
                      headlines=headlines, table1=one, sections=sections, patients=patient_pages,
                      downloads=[(name, name) for name in downloads], provenance=provenance)


def patient_page(out_dir: Path, patient_id: str, folder: Path | None, lesions, course, time_points,
                 overwrite: bool, write_root: Path | None = None) -> dict:
    """Write ``patients/<id>.html``: CT + SPECT with outlines, TACs with fits, DVHs, lesion table, RECIST.

    The patient's results are read from ``out_dir``; the page and its figures are written under
    ``write_root`` (default ``out_dir``; the cohort analysis gives its staging folder).
    """
    import numpy as np
    import SimpleITK as sitk

    from ..cohort import patient_figures as pf
    from ..io import read_ct_series, read_nm_spect, read_seg_nrrd, read_volume
    from .manifest import read_manifest

    results = Path(out_dir) / "patients" / patient_id
    write_root = Path(write_root or out_dir)
    figure_dir = write_root / "patients" / patient_id / "figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    own = lesions[lesions["patient_id"] == patient_id]
    if folder is not None and (folder / "manifest.json").is_file():
        manifest = read_manifest(folder)
        session = min(manifest["sessions"], key=lambda s: s["datetime"])
        ct = read_ct_series(folder / session["ct"])
        segmentation = read_seg_nrrd(folder / session["segmentation"])
        spect_entry = min(session["spect"], key=lambda e: abs(e["hours_post_injection"] - 24.0))
        spect = read_nm_spect(folder / spect_entry["file"]).image
        outlines, centres = {}, []
        colours = {"IA": "#e74c3c", "IV": "#3498db"}
        for segment in segmentation.find(role="lobe"):
            outlines[f"{segment.tags.side} lobe"] = (segmentation.mask_array(segment.segment_id),
                                                     colours.get(segment.tags.route, "white"))
        sizes = own[own["cycle"] == own["cycle"].min()].set_index("lesion_id")["volume_ml"].to_dict()
        for segment in segmentation.find(role="lesion"):
            mask = segmentation.mask_array(segment.segment_id)
            outlines[segment.tags.lesion_id] = (mask, "#2ecc71")
            index = np.argwhere(mask).mean(axis=0)[::-1]
            centre = ct.TransformContinuousIndexToPhysicalPoint([float(v) for v in index])
            centres.append((sizes.get(segment.tags.lesion_id, float(mask.sum())), segment.tags.lesion_id, centre))
        centres = [(lid, c) for _, lid, c in sorted(centres, reverse=True)]
        if centres:
            path = pf.ct_spect_overlay_figure(ct, spect, outlines, centres, figure_dir / "ct_spect.png",
                                              overwrite=overwrite)
            figures.append({"title": "CT with the 24 h SPECT of cycle 1", "uri": _uri(path),
                            "caption": "Lobe outlines (red: IA lobe, blue: IV lobe) and lesion outlines (green) at "
                                       "the levels of the largest lesions; SPECT in kBq/mL."})
        tac = _csv(results / "dose" / "tac.csv")
        if tac is not None:
            shown = tac[tac["role"].isin(["lesion", "kidney", "non-tumour", "spleen"])]
            path = pf.tac_figure(shown, int(shown["cycle"].min()), figure_dir / "tac.png", overwrite=overwrite)
            figures.append({"title": "Time-activity curves, cycle 1", "uri": _uri(path),
                            "caption": "Measured region activities (points) and the fitted curves used for the "
                                       "time-integrated activity."})
        dose_file = results / "dose" / "dose_cycle1.nrrd"
        if dose_file.is_file():
            dose = read_volume(dose_file).image
            regions = {}
            largest = [lid for lid, _ in centres[:3]]
            lesion_segments = sorted((s for s in segmentation.find(role="lesion") if s.tags.lesion_id in largest),
                                     key=lambda s: largest.index(s.tags.lesion_id))
            for segment in [*lesion_segments, *segmentation.find(role="kidney"), *segmentation.find(role="lobe")]:
                mask = sitk.GetImageFromArray(segmentation.mask_array(segment.segment_id).astype(np.uint8))
                mask.CopyInformation(segmentation.reference)
                on_dose = sitk.GetArrayFromImage(sitk.Resample(mask, dose, sitk.Transform(),
                                                               sitk.sitkNearestNeighbor, 0)) > 0
                name = (segment.tags.lesion_id if segment.tags.role == "lesion"
                        else f"{segment.tags.side} {segment.tags.role} {segment.tags.route or ''}".strip())
                regions[name] = on_dose
            path = pf.dvh_figure(dose, regions, figure_dir / "dvh.png", overwrite=overwrite)
            figures.append({"title": "Dose-volume histograms, cycle 1", "uri": _uri(path),
                            "caption": "Cumulative DVHs of the voxel dose map (kidneys, lobes, largest lesions)."})
    if time_points is not None and len(time_points):
        path = pf.recist_timeline_figure(time_points, figure_dir / "recist.png", overwrite=overwrite)
        figures.append({"title": "RECIST 1.1 timeline", "uri": _uri(path),
                        "caption": "Sum of target diameters per visit with the overall response; dashed: -30 %."})
    last = own.sort_values("cycle").groupby("lesion_id").tail(1).set_index("lesion_id")
    first = own[own["cycle"] == own["cycle"].min()].set_index("lesion_id")
    rows = []
    for lesion_id in first.index:
        rows.append([lesion_id, str(first.loc[lesion_id, "route"]), f"{first.loc[lesion_id, 'volume_ml']:.1f}",
                     _fmt(first.loc[lesion_id].get("baseline_longest_diameter_mm"), 0),
                     _fmt(last.loc[lesion_id].get("diameter_change_pct"), 0), f"{first.loc[lesion_id, 'tn_mean']:.1f}",
                     _fmt(last.loc[lesion_id].get("cumulative_tumour_dose_gy"), 0),
                     str(last.loc[lesion_id].get("lesion_response", "n/a"))])
    lesion_table = Table(["Lesion", "Lobe", "Volume (mL)", "Baseline diameter (mm)", "Diameter change (%)",
                          "T/N cycle 1", "Cumulative dose (Gy)", "Response"], rows)
    recist = None
    if time_points is not None and len(time_points):
        recist = Table(["Date", "Weeks", "Sum of diameters (mm)", "Change from baseline (%)", "Overall response"],
                       [[str(r.date), f"{r.days_from_baseline / 7:.0f}", _fmt(r.sum_of_diameters_mm, 0),
                         _fmt(r.change_from_baseline_pct, 0), str(r.overall_response)]
                        for r in time_points.itertuples()])
    inputs = [(str(p), file_sha256(p)) for p in sorted(folder.rglob("*"))
              if folder is not None and p.is_file() and "truth" not in p.parts and p.name != "truth.json"] \
        if folder is not None else []
    from ..provenance import provenance_record

    record = provenance_record() | {"inputs": inputs, "calibration": [], "parameters": [("patient_id", patient_id)]}
    page = write_page(write_root / "patients" / f"{patient_id}.html", "patient.html.j2", overwrite=overwrite,
                      patient_id=patient_id, subtitle=f"{len(first)} lesions", report_href="../report.html",
                      figures=figures, lesions=lesion_table, recist=recist, provenance=record)
    best = time_points["overall_response"].iloc[-1] if time_points is not None and len(time_points) else "n/a"
    return {"patient_id": patient_id, "href": f"patients/{page.name}", "summary": f"last response {best}"}


def _uri(path: Path) -> str:
    return png_data_uri(path)


def _csv(path: Path):
    import pandas as pd

    return pd.read_csv(path) if path.is_file() else None


def _fmt(value, digits: int) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if number != number else f"{number:.{digits}f}"
