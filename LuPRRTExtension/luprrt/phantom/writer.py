"""Write a synthetic patient to disk: DICOM images, seg.nrrd segmentations, NRRD truth maps, JSON.

Layout (all paths relative to the patient folder, listed again in ``manifest.json``)::

    manifest.json                 patient, administrations, visits and their files
    truth.json                    scalar truth (unit-suffixed keys)
    ct/  segmentation.seg.nrrd    cycle-1 CT (DICOM series) and its truth segmentation
    cycle1/spect_24h/spect.dcm    NM SPECT in Bq/mL, one per cycle and hour
    cycle2/ct/ cycle2/segmentation.seg.nrrd ...  later cycles; followup1/ct/ ... follow-up CTs
    baseline/fdg_pet/ baseline/ga68_pet/ (DICOM PET, Bq/mL)  baseline/adc.nrrd (mm2/s)
    after_cycle1/fdg_pet/ after_cycle1/ga68_pet/ after_cycle1/adc.nrrd ...  the same after every cycle
    cycle1/blood_samples.csv      blood samples of each cycle (time_h, blood_activity_concentration_kBq_per_mL)
    clinical/labs.csv clinical/characteristics.csv  laboratory values and baseline characteristics
    truth/couinaud.nrrd  truth/regions_<visit>.nrrd  truth/activity_cycle1_24h.nrrd (Bq/mL)
    truth/tia_cycle1.nrrd (MBq h/mL)
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import SimpleITK as sitk

from ..errors import fix, output_exists
from ..io import (
    PET_RADIONUCLIDES,
    DicomPatient,
    new_uid,
    write_ct_series,
    write_nm_spect,
    write_pet_series,
    write_seg_nrrd,
    write_volume,
)
from ..provenance import ProgressCallback, no_progress, provenance_record
from ..tables import write_rows_csv
from .clinical import TOXICITY_MODEL
from .patient import AFTER_CYCLE_IMAGING_WEEKS, WEEKS_BETWEEN_CYCLES

if TYPE_CHECKING:
    from .patient import SyntheticPatient

# Baseline PET protocol: injected activity (MBq) and uptake time (min), typical adult values
# (EANM procedure guidelines: FDG ~3 MBq/kg, 68Ga-DOTA-peptides 100-200 MBq, ~60 min uptake).
BASELINE_PET = {"fdg_pet": ("FDG", "F-18", 220.0, 60.0), "ga68_pet": ("GA68", "Ga-68", 150.0, 60.0)}


def _label(hours: float) -> str:
    return f"{hours:g}h"


def write_patient(patient: SyntheticPatient, folder: str | Path, overwrite: bool = False,
                  progress: ProgressCallback | None = None) -> Path:
    """Write ``patient`` under ``folder`` (created); returns the folder.

    Raises FileExistsError if ``folder`` holds files and ``overwrite`` is False.
    """
    progress = progress or no_progress
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        raise FileExistsError(f"{folder} is not empty; {fix('overwrite', 'True') or 'choose an empty folder'} to write "
                              "the patient there anyway")
    folder.mkdir(parents=True, exist_ok=True)
    dicom_patient = DicomPatient(patient_id=patient.patient_id)
    n_spect = sum(len(s.spect) for s in patient.sessions)
    total_steps = 2 * len(patient.sessions) + 2 * n_spect + 2 * len(patient.truth.cycles) + 2
    step = 0

    def advance(message: str) -> None:
        nonlocal step
        progress(step / total_steps, message)
        step += 1

    def nrrd(image: sitk.Image, relative: str, units: str | None = None) -> str:
        """Write a truth volume; quantitative ones record their unit for luprrt.io.volumes.read_volume."""
        path = folder / relative
        if path.exists() and not overwrite:
            raise output_exists(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if units is None:
            sitk.WriteImage(image, str(path), True)
        else:
            write_volume(image, path, units, overwrite=overwrite)
        return relative

    visits = []
    for index, session in enumerate(patient.sessions):
        base = "" if index == 0 else f"{session.name}/"
        study_uid, frame_uid = new_uid(), new_uid()
        advance(f"CT of {session.name}")
        # The CT of a cycle is the one acquired with its first SPECT.
        ct_datetime = session.spect[0].acquisition_datetime if session.spect else session.datetime
        write_ct_series(session.ct, folder / f"{base}ct", patient=dicom_patient, study_uid=study_uid,
                        frame_of_reference_uid=frame_uid, acquisition_datetime=ct_datetime,
                        series_description=f"CT {session.name}", overwrite=overwrite)
        advance(f"segmentation of {session.name}")
        write_seg_nrrd(session.segmentation, folder / f"{base}segmentation.seg.nrrd", overwrite=overwrite)
        visit = {"name": session.name, "kind": session.kind, "cycle": session.cycle,
                 "datetime": session.datetime.isoformat(),
                 "weeks_since_first_cycle": session.weeks_since_first_cycle,
                 "ct": f"{base}ct", "ct_acquisition_datetime": ct_datetime.isoformat(),
                 "segmentation": f"{base}segmentation.seg.nrrd",
                 "truth_regions": nrrd(session.region_labels, f"truth/regions_{session.name}.nrrd"),
                 "spect": []}
        if session.kind == "cycle" and session.cycle in patient.blood_samples:
            visit["blood_samples"] = f"cycle{session.cycle}/blood_samples.csv"
            write_rows_csv(patient.blood_samples[session.cycle], folder / visit["blood_samples"], overwrite=overwrite)
        for acq in session.spect:
            advance(f"SPECT cycle {acq.cycle} at {acq.hours_post_injection:g} h")
            administration = patient.administrations[acq.cycle - 1]
            relative = f"cycle{acq.cycle}/spect_{_label(acq.hours_post_injection)}/spect.dcm"
            write_nm_spect(acq.image, folder / relative, patient=dicom_patient, study_uid=study_uid,
                           frame_of_reference_uid=frame_uid, acquisition_datetime=acq.acquisition_datetime,
                           injection_datetime=administration.datetime,
                           injected_activity_mbq=administration.activity_mbq, route=administration.route,
                           series_description=f"SPECT Lu-177 cycle {acq.cycle} "
                                              f"{acq.hours_post_injection:g} h",
                           overwrite=overwrite)
            advance(f"truth activity cycle {acq.cycle} at {acq.hours_post_injection:g} h")
            truth_file = nrrd(patient.truth_concentration(acq.cycle, acq.hours_post_injection),
                              f"truth/activity_cycle{acq.cycle}_{_label(acq.hours_post_injection)}.nrrd", "Bq/mL")
            visit["spect"].append({"hours_post_injection": acq.hours_post_injection,
                                   "acquisition_datetime": acq.acquisition_datetime.isoformat(),
                                   "file": relative, "truth_activity_bq_per_ml": truth_file,
                                   "expected_counts_per_bq_per_ml": acq.counts_per_bq_per_ml})
        visits.append(visit)
    tia_files = {}
    for cycle in patient.truth.cycles:
        advance(f"truth TIA cycle {cycle.cycle}")
        tia_files[str(cycle.cycle)] = nrrd(patient.tia_map(cycle.cycle), f"truth/tia_cycle{cycle.cycle}.nrrd")

    def pet_and_adc(base: str, injections: dict, mri_datetime, label: str, suv_map, adc_map) -> dict:
        """Write FDG and 68Ga PET series (Bq/mL) and the ADC map of one imaging time under ``base``."""
        entries = {}
        weight_g = dicom_patient.weight_kg * 1000.0
        for key, (kind, nuclide, activity_mbq, uptake_min) in BASELINE_PET.items():
            injection = injections[key]
            acquisition = injection + timedelta(minutes=uptake_min)
            # SUV = C / (A_injected decayed to the acquisition / body weight); C in Bq/mL, weight in g.
            decay = math.exp(-math.log(2.0) * uptake_min * 60.0 / PET_RADIONUCLIDES[nuclide]["half_life_s"])
            bq_per_ml = sitk.Cast(suv_map(kind) * (activity_mbq * 1e6 * decay / weight_g), sitk.sitkFloat32)
            write_pet_series(bq_per_ml, folder / base / key, patient=dicom_patient, study_uid=new_uid(),
                             frame_of_reference_uid=new_uid(), acquisition_datetime=acquisition,
                             injection_datetime=injection, injected_activity_mbq=activity_mbq,
                             radionuclide=nuclide,
                             series_description=f"PET {kind} {label}", overwrite=overwrite)
            entries[key] = {"folder": f"{base}/{key}", "injection_datetime": injection.isoformat(),
                            "acquisition_datetime": acquisition.isoformat(),
                            "injected_activity_mbq": activity_mbq}
        entries["adc"] = {"file": nrrd(adc_map(), f"{base}/adc.nrrd", "mm2/s"), "units": "mm2/s",
                          "datetime": mri_datetime.isoformat()}
        return entries

    advance("baseline PET and ADC")
    baseline = pet_and_adc("baseline", patient.truth.baseline_imaging, patient.truth.baseline_imaging["mri"],
                           "baseline", patient.pet_image, patient.adc_image)
    after_cycle = []
    for administration in patient.administrations:
        cycle = administration.cycle
        advance(f"PET and ADC after cycle {cycle}")
        if not any(s.weeks_since_first_cycle > WEEKS_BETWEEN_CYCLES * (cycle - 1) for s in patient.sessions):
            continue  # no later visit whose anatomy the imaging after this cycle would show
        # FDG, 68Ga PET and DW-MRI on three days of the week before the imaging date.
        when = administration.datetime + timedelta(weeks=AFTER_CYCLE_IMAGING_WEEKS)
        injections = {"ga68_pet": when - timedelta(days=3), "fdg_pet": when - timedelta(days=2)}
        entry = pet_and_adc(f"after_cycle{cycle}", injections, when - timedelta(days=1), f"after cycle {cycle}",
                            lambda kind, c=cycle: patient.after_cycle_pet_image(kind, c),
                            lambda c=cycle: patient.after_cycle_adc_image(c))
        after_cycle.append({"cycle": cycle, "session": patient.after_cycle_session(cycle).name, **entry})
    clinical = {}
    if patient.labs:
        write_rows_csv(patient.labs, folder / "clinical" / "labs.csv", overwrite=overwrite)
        write_rows_csv([patient.characteristics], folder / "clinical" / "characteristics.csv", overwrite=overwrite)
        clinical = {"labs": "clinical/labs.csv", "characteristics": "clinical/characteristics.csv"}

    advance("truth and manifest")
    couinaud = nrrd(patient.truth.couinaud, "truth/couinaud.nrrd")
    truth = patient.truth.to_json_dict() | {"patient_id": patient.patient_id, "ia_side": patient.ia_side,
                                            "iv_side": patient.iv_side,
                                            "toxicity_model": dict(TOXICITY_MODEL),
                                            "organ_doses": [dataclasses.asdict(d) for d in patient.organ_doses],
                                            "marrow_blood_based": patient.marrow_doses}
    _write_json(folder / "truth.json", truth, overwrite)
    manifest = {
        "patient_id": patient.patient_id, "seed": patient.seed, "ia_side": patient.ia_side,
        "iv_side": patient.iv_side,
        "administrations": [a.as_dict() | {"session": f"cycle{a.cycle}"} for a in patient.administrations],
        "sessions": visits, "baseline": baseline, "after_cycle": after_cycle, "clinical": clinical,
        "truth": "truth.json", "truth_couinaud": couinaud,
        "truth_tia_mbq_h_per_ml": tia_files,
        "provenance": provenance_record(parameters=patient.parameters),
    }
    _write_json(folder / "manifest.json", manifest, overwrite)
    progress(1.0, "written")
    return folder


def _write_json(path: Path, content: dict, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise output_exists(path)
    path.write_text(json.dumps(content, indent=1, allow_nan=False))
