"""The cohort's clinical endpoints from the patients' outputs: toxicity, per-cycle imaging, response by route, ICC.

Each function reads the per-patient outputs of :func:`luprrt.workflows.cohort.process_patient`
(and the clinical CSVs) into tidy tables and runs the analyses of :mod:`luprrt.cohort`; the
cohort analysis writes their tables and figures and puts them in the report.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

log = logging.getLogger(__name__)

# Marrow dose: the blood-based EANM dose (marrow.csv) where the patient has blood samples; else the voxel
# local-deposition estimate of the imaged marrow segment (the region estimate of a thin structure loses
# most of its activity to partial volume; imaging misses the fast blood phase: a fallback, labelled).
BLOOD_MARROW_METHOD = "blood_based_eanm"
MARROW_DOSE_METHODS = ("voxel_local_deposition", "local_deposition")
LIVER_DOSE_METHOD = "local_deposition"
# Per-cycle imaging parameters and the baseline columns they are compared with.
IMAGING_PARAMETERS = ("fdg_suvmax", "ga68_suvmax", "adc_mean_mm2_per_s")


def _read(path: Path):
    import pandas as pd

    return pd.read_csv(path) if path.is_file() else None


def patient_folder(out_dir: Path, patient_id: str) -> Path | None:
    """The input folder of a processed patient (recorded in its ``done.json``)."""
    done = Path(out_dir) / "patients" / patient_id / "done.json"
    if not done.is_file():
        return None
    folder = json.loads(done.read_text(encoding="utf-8")).get("inputs", {}).get("patient_folder")
    return Path(folder) if folder else None


def administrations(out_dir: Path, patient_ids):
    """Per patient and cycle: administration date, activity (MBq) and route, from the patients' manifests."""
    import pandas as pd

    rows = []
    for patient_id in patient_ids:
        folder = patient_folder(out_dir, patient_id)
        if folder is None or not (folder / "manifest.json").is_file():
            continue
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        rows += [{"patient_id": patient_id, "cycle": int(a["cycle"]),
                  "date": pd.Timestamp(a["datetime"]).normalize(), "activity_mbq": float(a["activity_mbq"]),
                  "ia_side": manifest.get("ia_side")} for a in manifest.get("administrations", [])]
    return pd.DataFrame(rows, columns=["patient_id", "cycle", "date", "activity_mbq", "ia_side"])


def clinical_data(out_dir: Path, patient_ids, study: Path | None = None):
    """Labs and characteristics (validated) of the patients: the study's CSVs, else each manifest's.

    Returns (labs, characteristics) DataFrames, or (None, None) when there are no clinical data.
    """
    import pandas as pd

    from ..clinical import read_characteristics, read_labs

    sources = []
    if study is not None and (Path(study) / "labs.csv").is_file():
        sources.append((Path(study) / "labs.csv", Path(study) / "characteristics.csv"))
    else:
        for patient_id in patient_ids:
            folder = patient_folder(out_dir, patient_id)
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8")) if folder else {}
            clinical = manifest.get("clinical") or {}
            if clinical.get("labs"):
                sources.append((folder / clinical["labs"], folder / clinical["characteristics"]))
    if not sources:
        return None, None
    labs = [row for labs_file, _ in sources for row in read_labs(labs_file)]
    people = [row for _, people_file in sources for row in read_characteristics(people_file)]
    wanted = set(patient_ids)
    labs = pd.DataFrame([r for r in labs if r["patient_id"] in wanted])
    people = pd.DataFrame([r for r in people if r["patient_id"] in wanted])
    return labs, people


def organ_doses(out_dir: Path, patient_ids):
    """Per patient and cycle: kidney dose and BED (cumulative after the cycle), marrow and IA-lobe liver dose (Gy).

    The marrow dose is blood-based where the patient has blood samples (``marrow_dose_method`` says which).
    """
    import pandas as pd

    rows = []
    for patient_id in patient_ids:
        folder = Path(out_dir) / "patients" / patient_id / "dose"
        dose, limits = _read(folder / "dose.csv"), _read(folder / "limits.csv")
        if dose is None or limits is None:
            continue
        blood = _read(folder / "marrow.csv")
        blood = {} if blood is None else dict(zip(blood["cycle"], blood["dose_gy"], strict=True))
        for cycle in sorted(dose["cycle"].unique()):
            row = {"patient_id": patient_id, "cycle": int(cycle)}
            after = limits[limits["after_cycle"] == cycle].set_index("quantity")
            for quantity in ("kidney_dose_gy", "kidney_bed_gy"):
                if quantity in after.index:
                    row[f"cumulative_{quantity}"] = float(after.loc[quantity, "value_gy"])
                    row[quantity] = float(after.loc[quantity, "this_cycle_gy"])
            in_cycle = dose[dose["cycle"] == cycle]
            if cycle in blood:
                row["marrow_dose_gy"], row["marrow_dose_method"] = float(blood[cycle]), BLOOD_MARROW_METHOD
            else:
                marrow = in_cycle[in_cycle["role"] == "marrow"].set_index("method")["dose_gy"]
                method = next((m for m in MARROW_DOSE_METHODS if m in marrow.index), None)
                row["marrow_dose_gy"] = float(marrow[method]) if method else None
                row["marrow_dose_method"] = f"imaging_{method}" if method else None
            liver = in_cycle[(in_cycle["role"] == "non-tumour") & (in_cycle["route"] == "IA")
                             & (in_cycle["method"] == LIVER_DOSE_METHOD)]["dose_gy"]
            row["ia_lobe_liver_dose_gy"] = float(liver.mean()) if len(liver) else None
            rows.append(row)
    return pd.DataFrame(rows)


def after_cycle_imaging(out_dir: Path, patient_ids, lesions):
    """The lesion table with imaging after each cycle and relative changes from baseline (%).

    Adds ``<parameter>_after_cycle`` and ``<parameter>_change_pct`` for FDG SUVmax, 68Ga SUVmax
    and mean ADC on the rows of the cycle the imaging followed.
    """
    import pandas as pd

    frames = []
    for patient_id in patient_ids:
        table = _read(Path(out_dir) / "patients" / patient_id / "after_cycle_features.csv")
        if table is not None:
            keep = ["lesion_id", "cycle", *[p for p in IMAGING_PARAMETERS if p in table]]
            frames.append(table[keep].assign(patient_id=patient_id))
    if not frames:
        return lesions
    after = pd.concat(frames, ignore_index=True)
    after = after.rename(columns={p: f"{p}_after_cycle" for p in IMAGING_PARAMETERS})
    out = lesions.merge(after, on=["patient_id", "lesion_id", "cycle"], how="left")
    for p in IMAGING_PARAMETERS:
        if p in out and f"{p}_after_cycle" in out:
            out[f"{p}_change_pct"] = 100.0 * (out[f"{p}_after_cycle"] / out[p] - 1.0)
    return out


def tn_all_time_points(out_dir: Path, patient_ids):
    """Lesion T/N of every SPECT time point (the replicates of the variance-component analysis)."""
    import pandas as pd

    frames = []
    for patient_id in patient_ids:
        tn = _read(Path(out_dir) / "patients" / patient_id / "lobequant" / "lobequant_tn.csv")
        if tn is not None:
            frames.append(tn[tn["role"] == "lesion"][["cycle", "hours_post_injection", "lesion_id", "route",
                                                       "tn_mean"]].assign(patient_id=patient_id))
    return pd.concat(frames, ignore_index=True) if frames else None


def graded_labs(labs, people, admin):
    """CTCAE v5.0 grades of every lab value (long table)."""
    import pandas as pd

    from ..clinical import grade_labs

    first = admin.groupby("patient_id")["date"].min().dt.date.to_dict()
    records = labs.astype(object).where(labs.notna(), None).to_dict("records")
    graded = grade_labs(records, dict(zip(people["patient_id"], people["sex"], strict=True)), first)
    return pd.DataFrame([asdict(g) for g in graded])


LAB_NAMES = {"creatinine_umol_per_l": "Creatinine increased", "egfr_ml_per_min_1_73m2": "Chronic kidney disease (eGFR)",
             "haemoglobin_g_per_l": "Anemia", "platelets_1e9_per_l": "Platelet count decreased",
             "neutrophils_1e9_per_l": "Neutrophil count decreased",
             "lymphocytes_1e9_per_l": "Lymphocyte count decreased", "alt_u_per_l": "ALT increased",
             "ast_u_per_l": "AST increased", "bilirubin_umol_per_l": "Blood bilirubin increased",
             "albumin_g_per_l": "Hypoalbuminemia"}


def limits_table(out_dir: Path, patient_ids):
    """The dosimetry's organ-limit rows of every patient (kidney dose and BED, marrow dose)."""
    import pandas as pd

    frames = [_read(Path(out_dir) / "patients" / p / "dose" / "limits.csv") for p in patient_ids]
    frames = [f for f in frames if f is not None]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["patient_id", "after_cycle", "quantity", "value_gy", "limit_gy"])


def toxicity_endpoint(out_dir: Path, patient_ids, admin, study, figure_dir: Path, write, overwrite: bool) -> dict:
    """Grades, worst grades, dose-toxicity models, withheld cycles; tables and two figures."""
    import pandas as pd

    from ..cohort import endpoint_figures as ef
    from ..cohort.toxicity import (
        cycle_nadirs,
        egfr_slope_vs_kidney_bed,
        grade_counts,
        log_change_vs_dose,
        stopped_cycles,
        worst_grades,
    )

    labs, people = clinical_data(out_dir, patient_ids, study)
    if labs is None:
        raise ValueError("no clinical data: give the study a labs.csv and characteristics.csv "
                         "(see luprrt.clinical.labs)")
    graded = graded_labs(labs, people, admin)
    per_patient, per_cycle = worst_grades(graded, admin)
    doses = organ_doses(out_dir, patient_ids)
    bed = doses.sort_values("cycle").groupby("patient_id").tail(1)[["patient_id", "cumulative_kidney_bed_gy"]]
    nadirs = {"platelets": cycle_nadirs(labs, admin, "platelets_1e9_per_l"),
              "lymphocytes": cycle_nadirs(labs, admin, "lymphocytes_1e9_per_l")}
    models = [egfr_slope_vs_kidney_bed(labs, bed, admin),
              log_change_vs_dose(nadirs["platelets"], doses, "marrow_dose_gy",
                                 "Platelet nadir: ln(nadir / pre-cycle) per Gy of marrow dose"),
              log_change_vs_dose(nadirs["lymphocytes"], doses, "marrow_dose_gy",
                                 "Lymphocyte nadir: ln(nadir / pre-cycle) per Gy of marrow dose"),
              log_change_vs_dose(cycle_nadirs(labs, admin, "alt_u_per_l", lowest=False), doses,
                                 "ia_lobe_liver_dose_gy", "ALT peak: ln(peak / pre-cycle) per Gy to the IA lobe"),
              log_change_vs_dose(cycle_nadirs(labs, admin, "ast_u_per_l", lowest=False), doses,
                                 "ia_lobe_liver_dose_gy", "AST peak: ln(peak / pre-cycle) per Gy to the IA lobe")]
    risk = dict(zip(people["patient_id"], people["kidney_risk_factors"], strict=True))
    stops = stopped_cycles(graded, admin, limits_table(out_dir, patient_ids), risk)
    counts = grade_counts(per_patient, LAB_NAMES)
    slopes = pd.concat([m.to_frame() for m in models], ignore_index=True)
    for frame, name in ((graded, "labs_graded.csv"), (per_patient, "worst_grade_per_patient.csv"),
                        (per_cycle, "worst_grade_per_cycle.csv"), (doses, "organ_doses.csv"),
                        (slopes, "dose_toxicity.csv"), (stops, "cycles_withheld.csv"), (counts, "worst_grade_counts.csv")):
        write(frame, Path(out_dir) / name)
    figure = ef.toxicity_figure(labs, admin, bed, nadirs, doses, figure_dir / "toxicity.png", overwrite=overwrite)
    grades = ef.grade_figure(per_patient, LAB_NAMES, figure_dir / "toxicity_grades.png", overwrite=overwrite)
    return {"labs": labs, "people": people, "graded": graded, "per_patient": per_patient, "counts": counts,
            "models": models, "stops": stops, "doses": doses, "figure": figure, "grades_figure": grades}


def imaging_change_endpoint(lesions, figure_dir: Path, write, out_dir: Path, overwrite: bool, n_boot: int,
                            seed: int) -> dict:
    """Exploratory: relative change of FDG SUVmax, 68Ga SUVmax and ADC after each cycle as response predictors."""
    import pandas as pd

    from ..cohort import auc_with_patient_bootstrap_ci, gee_logistic
    from ..cohort import endpoint_figures as ef

    changes = [f"{p}_change_pct" for p in IMAGING_PARAMETERS if f"{p}_change_pct" in lesions]
    if not changes:
        raise ValueError("no imaging after the cycles (after_cycle in the patients' manifests)")
    rows, effects = [], []
    for cycle, part in lesions.groupby("cycle"):
        data = part.dropna(subset=[*changes, "responder"])
        if data["responder"].nunique() < 2:
            continue
        for column in changes:
            auc = auc_with_patient_bootstrap_ci(data, column, "responder", n_boot=n_boot, seed=seed)
            rows.append({"cycle": int(cycle), "parameter": column, "auc": auc.auc, "ci_low": auc.ci_low,
                         "ci_high": auc.ci_high, "lower_predicts_response": auc.lower_predicts_response,
                         "n_lesions": auc.n_lesions, "n_patients": auc.n_clusters})
        gee = gee_logistic(data, "responder", changes).to_frame().assign(cycle=int(cycle))
        effects.append(gee)
    if not rows:
        raise ValueError("every lesion has the same response: no predictive analysis possible")
    aucs = pd.DataFrame(rows)
    gee = pd.concat(effects, ignore_index=True)
    write(aucs, Path(out_dir) / "imaging_change_auc.csv")
    write(gee, Path(out_dir) / "imaging_change_gee.csv")
    labels = {"fdg_suvmax_change_pct": "FDG SUVmax change", "ga68_suvmax_change_pct": "68Ga SUVmax change",
              "adc_mean_mm2_per_s_change_pct": "ADC change"}
    figure = ef.auc_by_cycle_figure(aucs, labels, figure_dir / "imaging_change_auc.png", overwrite=overwrite)
    return {"aucs": aucs, "gee": gee, "labels": labels, "figure": figure}


def route_response_endpoint(lesions, course, figure_dir: Path, write, out_dir: Path, overwrite: bool) -> dict:
    """Lesion response IA lobe vs IV lobe, per-lobe RECIST and dose-response with route as covariate."""
    import pandas as pd

    from ..cohort import endpoint_figures as ef
    from ..cohort.route_response import (
        dose_response_by_route,
        lesion_diameter_ratios,
        lobe_response,
        paired_lobe_change,
        route_effect_on_diameter,
    )

    routes = lesions[["patient_id", "lesion_id", "route"]].drop_duplicates()
    ratios = lesion_diameter_ratios(course, routes)
    route = route_effect_on_diameter(ratios)
    last = lesions.sort_values("cycle").groupby(["patient_id", "lesion_id"]).tail(1)
    slope, route_at_dose = dose_response_by_route(ratios, last)
    lobes = lobe_response(course, routes)
    paired = paired_lobe_change(lobes)
    effects = pd.concat([e.to_frame() for e in (route, slope, route_at_dose)], ignore_index=True)
    write(ratios, Path(out_dir) / "lesion_diameter_ratios.csv")
    write(lobes, Path(out_dir) / "lobe_response.csv")
    write(effects, Path(out_dir) / "response_by_route.csv")
    data = ratios.merge(last[["patient_id", "lesion_id", "cumulative_tumour_dose_gy"]], on=["patient_id", "lesion_id"])
    figure = ef.route_response_figure(ratios, figure_dir / "response_by_route.png", overwrite=overwrite)
    dose_figure = ef.dose_response_figure(data, slope.estimate, figure_dir / "dose_response.png", overwrite=overwrite)
    return {"ratios": ratios, "route": route, "slope": slope, "route_at_dose": route_at_dose, "lobes": lobes,
            "paired": paired, "figure": figure, "dose_figure": dose_figure}


def variance_endpoint(out_dir: Path, patient_ids, figure_dir: Path, write, overwrite: bool) -> dict:
    """Variance components and ICCs of log lesion T/N per cycle."""
    from ..cohort import endpoint_figures as ef
    from ..cohort.route_response import tn_variance_components

    tn = tn_all_time_points(out_dir, patient_ids)
    if tn is None or tn.empty:
        raise ValueError("no lesion T/N tables")
    icc = tn_variance_components(tn)
    write(icc, Path(out_dir) / "tn_variance_components.csv")
    return {"icc": icc, "figure": ef.variance_components_figure(icc, figure_dir / "tn_icc.png", overwrite=overwrite)}


def synthetic_truth(out_dir: Path, patient_ids) -> dict:
    """Built-in relations of a synthetic study (from its truth.json files), to print beside the estimates."""
    for patient_id in patient_ids:
        folder = patient_folder(out_dir, patient_id)
        if folder is None or not (folder / "truth.json").is_file():
            return {}
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
        parameters = manifest.get("provenance", {}).get("parameters", {})
        out = {"ia_tn_factor": truth.get("ia_tn_factor")}
        if parameters.get("response_model") == "dose" and "dose_response_model" in truth:
            weeks = 11.0 * (parameters["n_cycles"] - 1) + max(parameters["followup_weeks"])
            out["dose_slope"] = -truth["dose_response_model"]["dose_coefficient_per_week"] * weeks
        if "toxicity_model" in truth:
            out["toxicity"] = truth["toxicity_model"]
            out["organ_doses"] = _true_organ_doses(out_dir, patient_ids)
        return out
    return {}


def _true_organ_doses(out_dir: Path, patient_ids):
    """Per patient and cycle: the synthetic truth's marrow, IA-lobe liver dose and kidney BED (Gy)."""
    import pandas as pd

    rows = []
    for patient_id in patient_ids:
        folder = patient_folder(out_dir, patient_id)
        truth = json.loads((folder / "truth.json").read_text(encoding="utf-8")) if folder else {}
        rows += [{"patient_id": patient_id, "cycle": d["cycle"], "true_marrow_dose_gy": d["marrow_dose_gy"],
                  "true_ia_lobe_liver_dose_gy": d["ia_lobe_liver_dose_gy"], "true_kidney_bed_gy": d["kidney_bed_gy"]}
                 for d in truth.get("organ_doses", [])]
    return pd.DataFrame(rows)


def measured_to_true(doses, true_doses) -> dict[str, float]:
    """Median ratio of the measured to the true organ dose (synthetic studies): marrow, liver, kidney BED."""
    if true_doses is None or true_doses.empty or doses is None or doses.empty:
        return {}
    both = doses.merge(true_doses, on=["patient_id", "cycle"])
    pairs = {"marrow": ("marrow_dose_gy", "true_marrow_dose_gy"),
             "liver": ("ia_lobe_liver_dose_gy", "true_ia_lobe_liver_dose_gy"),
             "kidney_bed": ("kidney_bed_gy", "true_kidney_bed_gy")}
    return {name: float((both[m] / both[t]).median()) for name, (m, t) in pairs.items() if m in both}
