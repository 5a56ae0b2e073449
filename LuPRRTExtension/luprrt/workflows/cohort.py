"""Batch over a whole study: every patient through LobeQuant, LesionDosimetry and ResponseAssess.

A study is a folder of patient folders (each with ``manifest.json``, the layout written by
:func:`luprrt.phantom.write_patient`), or a ``manifest.csv`` listing them
(``patient_id, folder, ia_side``). Each patient's results go to ``OUT/patients/<id>/``
and end with ``done.json``: a re-run skips finished patients (resumable), and patients run
in parallel processes. The cohort tables, figures and HTML report are then made by
:mod:`luprrt.workflows.cohort_analysis`.
"""

from __future__ import annotations

import csv
import json
import logging
import multiprocessing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from ..provenance import ProgressCallback, no_progress, provenance_record
from ..segments import SIDES
from .response import read_manifest

log = logging.getLogger(__name__)

DONE_MARKER = "done.json"


@dataclass(frozen=True)
class PatientEntry:
    """One patient of a study: id, folder and the hepatic artery side of the IA injection."""

    patient_id: str
    folder: Path
    ia_side: str


def discover_patients(study: str | Path) -> list[PatientEntry]:
    """The patients of a study folder (``manifest.csv`` if present, else sub-folders with manifest.json)."""
    study = Path(study)
    if not study.is_dir():
        raise NotADirectoryError(f"study folder not found: {study}")
    listing = study / "manifest.csv"
    if listing.is_file():
        entries = _entries_from_csv(listing)
    else:
        entries = []
        for folder in sorted(p for p in study.iterdir() if (p / "manifest.json").is_file()):
            manifest = read_manifest(folder)
            entries.append(PatientEntry(manifest["patient_id"], folder, manifest.get("ia_side", "")))
    if not entries:
        raise ValueError(f"no patients in {study}: expected manifest.csv or patient folders with manifest.json")
    for entry in entries:
        if entry.ia_side not in SIDES:
            raise ValueError(f"patient {entry.patient_id}: IA side {entry.ia_side!r} must be one of {SIDES} "
                             "(set ia_side in manifest.csv or the patient's manifest.json)")
    duplicated = sorted(pid for pid, n in Counter(e.patient_id for e in entries).items() if n > 1)
    if duplicated:
        raise ValueError(f"patient ids listed more than once in {study}: {duplicated}")
    return entries


def _entries_from_csv(listing: Path) -> list[PatientEntry]:
    with open(listing, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"patient_id", "folder", "ia_side"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{listing}: missing column(s) {sorted(missing)}")
        entries = []
        for line, row in enumerate(reader, start=2):
            folder = (listing.parent / row["folder"]).resolve()
            if not (folder / "manifest.json").is_file():
                raise FileNotFoundError(f"{listing} line {line}: no manifest.json in {folder}")
            entries.append(PatientEntry(row["patient_id"], folder, row["ia_side"].strip().lower()))
    return entries


def patient_output(out_dir: Path, entry: PatientEntry) -> Path:
    """The output folder of one patient inside a cohort run."""
    return Path(out_dir) / "patients" / entry.patient_id


def is_done(out_dir: Path, entry: PatientEntry) -> bool:
    """True when the patient's analysis finished in an earlier run (its done marker exists)."""
    return (patient_output(out_dir, entry) / DONE_MARKER).is_file()


def process_patient(entry: PatientEntry, out_dir: str | Path, options: dict | None = None) -> Path:
    """Run one patient through the three analyses; returns its output folder.

    Writes ``lobequant/``, ``dose/``, ``measurements.csv``, ``tracking_events.csv``,
    ``lesion_features.csv`` and, last, ``done.json`` (so an interrupted patient is redone).
    """
    from ..liver import TRIAL_MIN_DIAMETER_MM, TRIAL_TARGETS_PER_LOBE
    from ..tables import write_rows_csv
    from .calibrate import load_calibration
    from .dose import run_patient_dosimetry
    from .dose_cycle import DosimetryOptions
    from .features import baseline_lesion_features
    from .lobequant import run_lobequant
    from .response import measure_patient

    options = dict(options or {})
    target = patient_output(Path(out_dir), entry)
    target.mkdir(parents=True, exist_ok=True)
    calibration = load_calibration(options.get("calibration"))
    run_lobequant(entry.folder, ia_side=entry.ia_side, out_dir=target / "lobequant", overwrite=True,
                  occupancy=options.get("occupancy", "fractional"), calibration=calibration,
                  target_lesions=options.get("target_lesions", TRIAL_TARGETS_PER_LOBE),
                  target_min_diameter_mm=options.get("target_min_diameter_mm", TRIAL_MIN_DIAMETER_MM))
    run_patient_dosimetry(entry.folder, out_dir=target / "dose", overwrite=True,
                          voxel_dose=options.get("voxel_dose", True),
                          options=DosimetryOptions(site_calibration=calibration))
    measured = measure_patient(entry.folder)
    write_rows_csv(measured.measurements, target / "measurements.csv", overwrite=True)
    if measured.tracking_events:
        write_rows_csv(measured.tracking_events, target / "tracking_events.csv", overwrite=True)
    features = baseline_lesion_features(entry.folder)
    if features:
        write_rows_csv(features, target / "lesion_features.csv", overwrite=True)
    record = provenance_record({"patient_folder": str(entry.folder)}, {"ia_side": entry.ia_side, **options})
    (target / DONE_MARKER).write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    return target


@dataclass
class CohortRun:
    """What a cohort run did: patients processed now, skipped (already done) and the outputs."""

    processed: list[str]
    skipped: list[str]
    out_dir: Path
    report: Path | None = None


def run_cohort(study: str | Path, out_dir: str | Path, *, jobs: int = 2, resume: bool = True,
               overwrite: bool = False, options: dict | None = None, analyse: bool = True,
               progress: ProgressCallback | None = None) -> CohortRun:
    """Process every patient of ``study`` into ``out_dir`` and write the cohort analysis.

    Parameters
    ----------
    jobs : parallel worker processes (1 = in this process)
    resume : skip patients whose ``done.json`` exists
    overwrite : allow replacing the cohort tables, figures and report of an earlier run, and (with
        ``resume=False``) the outputs of patients that finished before
    options : per-patient options (``occupancy``, ``voxel_dose``, ``calibration``: a site-calibration
        file, ``target_lesions`` and ``target_min_diameter_mm``: the trial endpoint's targets)
    """
    progress = progress or no_progress
    out_dir = Path(out_dir)
    entries = discover_patients(study)
    pending = [e for e in entries if not (resume and is_done(out_dir, e))]
    skipped = [e.patient_id for e in entries if e not in pending]
    finished = [e.patient_id for e in pending if is_done(out_dir, e)]
    if finished and not overwrite:
        raise FileExistsError(f"{out_dir}: patients {finished} finished in an earlier run and would be redone "
                              "(resume=False); pass overwrite=True to replace their outputs")
    if skipped:
        log.info("resuming: %d patients already done (%s)", len(skipped), ", ".join(skipped))
    out_dir.mkdir(parents=True, exist_ok=True)
    share = 0.85 if analyse else 1.0
    done = 0
    progress(0.0, f"{len(pending)} patients to process, {len(skipped)} done before")
    if jobs > 1 and len(pending) > 1:
        # spawn: workers start clean (no inherited threads from numba / BLAS / SimpleITK).
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {pool.submit(process_patient, e, out_dir, options): e for e in pending}
            for future in as_completed(futures):
                _raise_with_patient(future, futures[future])
                done += 1
                progress(share * done / len(pending), f"patient {futures[future].patient_id} done")
    else:
        for entry in pending:
            process_patient(entry, out_dir, options)
            done += 1
            progress(share * done / len(pending), f"patient {entry.patient_id} done")
    run = CohortRun([e.patient_id for e in pending], skipped, out_dir)
    if analyse:
        from .cohort_analysis import analyse_cohort

        run.report = analyse_cohort(out_dir, [e.patient_id for e in entries], overwrite=overwrite,
                                    progress=lambda f, m: progress(share + (1 - share) * f, m))
    progress(1.0, "cohort done")
    return run


def _raise_with_patient(future, entry: PatientEntry) -> None:
    error = future.exception()
    if error is not None:
        raise type(error)(f"patient {entry.patient_id} ({entry.folder}): {error}") from error


def make_demo_cohort(folder: str | Path, n_patients: int = 8, *, seed: int = 0, ia_tn_factor: float = 1.3,
                     small: bool = True, overwrite: bool = False,
                     progress: ProgressCallback | None = None) -> list[PatientEntry]:
    """Write a synthetic study with a known IA effect: patients alternate right/left IA side.

    Each patient is :func:`luprrt.phantom.make_patient` with seed ``seed + k``; the study's
    ``manifest.csv`` lists them. Returns the entries.
    """
    from ..phantom import make_patient, write_patient

    progress = progress or no_progress
    folder = Path(folder)
    listing = folder / "manifest.csv"
    if listing.exists() and not overwrite:
        raise FileExistsError(f"{listing} exists; pass overwrite=True to regenerate the demo study")
    entries = []
    for k in range(n_patients):
        progress(k / n_patients, f"synthetic patient {k + 1} of {n_patients}")
        side = SIDES[k % 2]
        patient = make_patient(seed + k, ia_side=side, ia_tn_factor=ia_tn_factor, small=small)
        patient_folder = folder / f"patient_{k + 1:02d}"
        write_patient(patient, patient_folder, overwrite=overwrite)
        entries.append(PatientEntry(patient.patient_id, patient_folder, side))
    with open(listing, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["patient_id", "folder", "ia_side"])
        writer.writerows([e.patient_id, e.folder.relative_to(folder).as_posix(), e.ia_side] for e in entries)
    progress(1.0, f"{n_patients} synthetic patients written")
    return entries
