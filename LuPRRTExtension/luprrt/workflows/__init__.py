"""End-to-end runs over files on disk, shared by the ``luprrt`` command line and cohort batch.

Each workflow reads its inputs (DICOM, NRRD, .seg.nrrd, CSV), calls the core, and writes its
tables (units in the column names), maps and ``provenance.json`` into an output folder.

Modules
-------
manifest         :func:`read_manifest`: a patient folder's ``manifest.json``, checked field by field
calibrate        :func:`run_calibration`: the site calibration from phantom scans (``luprrt calibrate``);
                 calibrated reading of patient SPECT
lobequant        :func:`run_lobequant`: T/N per lobe and lesion, the IA/IV ratio, organ uptake
dose             :func:`run_patient_dosimetry`: every cycle's TIA, dose, DVH and organ limits
dose_inputs, dose_cycle, dose_regions, dose_tac, dose_calibrated
                 the steps of one dosimetry cycle (inputs, regions, time-activity, dose)
response         :func:`measure_patient`: lesion diameters and tracking over a patient's visits
features         :func:`baseline_lesion_features`, :func:`after_cycle_lesion_features`: FDG/68Ga SUV, ADC per lesion
recist           :func:`run_recist`: RECIST 1.1 and lesion outcome from a measurements CSV
cohort           :func:`run_cohort` (resumable, parallel) and :func:`make_demo_cohort`
cohort_analysis  :func:`analyse_cohort`: the cohort tables, trial analyses and report
cohort_endpoints, cohort_report
                 clinical endpoints from the patients' outputs; the reader's report and patient pages

The names below are loaded on first use, so that a command importing one workflow does not
pay for the others (the cohort analysis needs pandas and statsmodels).
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "CylinderScan": "calibrate",
    "IecScan": "calibrate",
    "load_calibration": "calibrate",
    "run_calibration": "calibrate",
    "LobeQuantInputs": "lobequant",
    "LobeQuantRun": "lobequant",
    "SessionInput": "lobequant",
    "SpectInput": "lobequant",
    "prepare_segmentation": "lobequant",
    "run_lobequant": "lobequant",
    "DosimetryRun": "dose",
    "run_patient_dosimetry": "dose",
    "DosimetryOptions": "dose_cycle",
    "PatientMeasurements": "response",
    "measure_patient": "response",
    "read_manifest": "manifest",
    "after_cycle_lesion_features": "features",
    "baseline_lesion_features": "features",
    "RecistRun": "recist",
    "run_recist": "recist",
    "CohortRun": "cohort",
    "make_demo_cohort": "cohort",
    "run_cohort": "cohort",
    "analyse_cohort": "cohort_analysis",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)


def __dir__() -> list[str]:
    return __all__
