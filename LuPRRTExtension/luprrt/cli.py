"""luprrt: the LuPRRT analyses from the command line, one sub-command per module.

Every sub-command shows a progress bar (on a terminal), writes tables whose columns carry
units, and refuses to overwrite existing outputs unless --overwrite is given.

One error path serves every sub-command (:func:`main`): a sub-command's run function
raises :class:`ValueError` or :class:`OSError` (or is interrupted) with a message that
names the input and the fix; main closes the progress bar, prints exactly one line
``luprrt COMMAND: error: ...`` on stderr and returns exit status 2. Options in messages are
spelled as on this command line (:func:`luprrt.errors.option`, words from
:data:`OPTION_WORDS` and a sub-command's ``option_words`` default). Warnings are held
back until the command ends and shown only when it succeeds (all of them with -v). A bug
(any other exception) prints one line asking for a report, exit status 1; -v shows the
traceback.
"""

from __future__ import annotations

import argparse
import errno
import logging
import math
import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from . import __version__
from .errors import option_words

# How the command line spells the options that core messages name (luprrt.errors.option).
OPTION_WORDS = {"overwrite": "--overwrite", "out_dir": "--out", "out_file": "--out"}
# Exit statuses: 2 for anything the user can fix (bad input, permissions, full disk, Ctrl-C), 1 for a bug.
EXIT_USER_ERROR = 2
EXIT_BUG = 1


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}; see {self.prog} --help\n")


@contextmanager
def progress_bar(description: str):
    """A tqdm bar exposed as a :data:`luprrt.provenance.ProgressCallback` (fraction, message).

    Shown on a terminal only (a log file gets no carriage-return frames); an error clears
    it, so that the error line stands alone.
    """
    from tqdm import tqdm

    bar = tqdm(total=1000, desc=description, unit="‰", leave=True, file=sys.stderr, disable=None,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")

    def update(fraction: float, message: str) -> None:
        bar.update(max(0, round(1000 * fraction) - bar.n))
        bar.set_postfix_str(message[:60], refresh=True)

    try:
        yield update
    except BaseException:
        bar.leave = False
        raise
    finally:
        bar.close()


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


def _float_in(low: float, high: float = math.inf, *, low_open: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
            bounds = f"{'above' if low_open else 'at least'} {low:g}" + (f" and at most {high:g}"
                                                                       if math.isfinite(high) else "")
            raise argparse.ArgumentTypeError(f"must be a finite number {bounds}, got {text}")
        return value
    return parse


def _int_in(low: int, high: int) -> Callable[[str], int]:
    at_least = _int_at_least(low)

    def parse(text: str) -> int:
        value = at_least(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value
    return parse


positive_int = _int_at_least(1)
non_negative_int = _int_at_least(0)
non_negative_float = _float_in(0.0)
positive_float = _float_in(0.0, low_open=True)


def _recist(args) -> None:
    from .response.outcome import OutcomeThresholds
    from .response.recist import RecistCriteria
    from .workflows.recist import run_recist

    criteria = RecistCriteria(too_small_to_measure_mm=args.too_small_mm,
                              confirmation_interval_days=args.confirmation_days,
                              require_confirmation=not args.no_confirmation,
                              min_sd_duration_days=args.min_sd_days,
                              assessment_window_days=args.assessment_window_days)
    thresholds = OutcomeThresholds(args.response_pct, args.progression_pct)
    with progress_bar("RECIST 1.1") as progress:
        run = run_recist(args.measurements, args.out, criteria=criteria, thresholds=thresholds,
                         figures=not args.no_figures, overwrite=args.overwrite, progress=progress)
    for path in run.files:
        print(path)


def _add_recist(commands, common) -> None:
    parser = commands.add_parser(
        "recist", parents=[common], help="RECIST 1.1 per time point and lesion outcome from a measurements CSV",
        description="Columns: patient_id, lesion_id, organ, is_lymph_node, date (YYYY-MM-DD), "
                    "longest_diameter_mm, short_axis_mm (a lymph node needs only its short axis), "
                    "lesion_type (target/non_target/new), non_target_status (present/absent/progression/"
                    "not_evaluated); luprrt measure writes such a table from segmentations, and a sample "
                    "ships as luprrt/data/sample_measurements.csv. Writes recist_time_points.csv, "
                    "recist_best_response.csv, lesion_outcomes.csv, spider.png, waterfall.png and "
                    "provenance.json; patients whose rows break a rule are listed in recist_problems.csv "
                    "(the others are assessed) and the command then exits with status 2.")
    parser.add_argument("measurements", type=Path, help="measurements CSV")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--too-small-mm", type=positive_float, default=5.0, help="diameter of a too-small-to-measure lesion (mm)")
    parser.add_argument("--confirmation-days", type=non_negative_int, default=28, help="minimum interval confirming CR/PR (days)")
    parser.add_argument("--no-confirmation", action="store_true", help="best response without confirmation")
    parser.add_argument("--min-sd-days", type=non_negative_int, default=42, help="minimum SD duration from baseline (days)")
    parser.add_argument("--assessment-window-days", type=non_negative_int, default=14,
                        help="scans within this many days of an assessment's first scan form one assessment "
                             "(default 14; 0 = one assessment per date)")
    parser.add_argument("--response-pct", type=_float_in(-100.0, 0.0), default=-30.0, help="lesion response threshold (%% change)")
    parser.add_argument("--progression-pct", type=positive_float, default=20.0, help="lesion progression threshold (%% change)")
    parser.add_argument("--no-figures", action="store_true", help="skip spider and waterfall PNGs")
    parser.set_defaults(run=_recist, option_words={"too_small_to_measure_mm": "--too-small-mm MM"})


def _cycle_list(text: str) -> list[int]:
    try:
        cycles = [int(part) for part in text.split(",")]
    except ValueError:
        cycles = []
    if not cycles or min(cycles) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated cycle numbers such as 1,2; got {text!r}")
    return cycles


def _dose(args) -> None:
    from .workflows.calibrate import load_calibration
    from .workflows.dose import run_patient_dosimetry
    from .workflows.dose_cycle import DosimetryOptions

    options = DosimetryOptions(tac_model=args.tac_model, population_uptake_rate_per_h=args.uptake_rate_per_h,
                               population_uptake_rate_sd_per_h=args.uptake_rate_sd_per_h, pvc_fwhm_mm=args.pvc_fwhm_mm,
                               risk_factors=args.risk_factors, next_activity_gbq=args.next_activity_gbq,
                               site_calibration=load_calibration(args.calibration), margin_fwhm=args.margin_fwhm,
                               boundary_uncertainty=not args.no_boundary_uncertainty, hematocrit=args.hematocrit)
    with progress_bar("dosimetry") as progress:
        run = run_patient_dosimetry(args.patient, args.out, cycles=args.cycles, options=options,
                                    registration=args.registration, voxel_dose=not args.no_voxel_dose,
                                    overwrite=args.overwrite, blood_samples=_blood_samples_argument(args.blood_samples),
                                    progress=progress)
    for row in run.limits_rows:
        if row["flag"] and row["after_cycle"] == run.cycles[-1].cycle:
            print(f"luprrt dose: {run.patient_id}: {row['flag']}", file=sys.stderr)
    for path in run.files:
        print(path)


def _blood_samples_argument(values: list[str] | None):
    """``--blood-samples`` values: one FILE (a cycle column or one cycle), or CYCLE:FILE per cycle."""
    if not values:
        return None
    pairs = [value.split(":", 1) for value in values]
    if len(values) == 1 and not (len(pairs[0]) == 2 and pairs[0][0].isdigit()):
        return Path(values[0])
    if not all(len(p) == 2 and p[0].isdigit() for p in pairs):
        raise ValueError(f"--blood-samples: give one FILE, or CYCLE:FILE for each cycle (e.g. 1:cycle1_blood.csv); "
                         f"got {values}")
    return {int(cycle): Path(path) for cycle, path in pairs}


def _add_dose(commands, common) -> None:
    from .dosimetry.tac_models import TAC_MODEL_DESCRIPTIONS, TAC_MODELS

    parser = commands.add_parser(
        "dose", parents=[common],
        help="per-cycle and cumulative lesion and organ dosimetry of a patient folder",
        description="Reads a patient folder (manifest.json: cycles with CT, tagged .seg.nrrd and "
                    "quantitative SPECT in Bq/mL at one or more times). Writes dose.csv (dose per cycle, "
                    "region and method), tac.csv, limits.csv (kidney dose and BED, marrow dose, projected "
                    "after a further cycle), registration.csv, tia_cycle<k>.nrrd (Bq h/mL), "
                    "dose_cycle<k>.nrrd (Gy) and provenance.json.")
    parser.add_argument("patient", type=Path, help="patient folder holding manifest.json")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--registration", choices=("none", "rigid", "deformable"), default="rigid",
                        help="how a scan with its own CT is aligned to the cycle's CT (default rigid)")
    parser.add_argument("--no-voxel-dose", action="store_true",
                        help="skip the voxel S-value (FFT convolution) dose map")
    parser.add_argument("--cycles", type=_cycle_list, default=None,
                        help="cycles to process, e.g. 1,2 (default all)")
    parser.add_argument("--pvc-fwhm-mm", type=positive_float, default=None,
                        help="SPECT resolution FWHM (mm) for partial-volume correction of region activities "
                             "(with --calibration: default the calibration's effective FWHM)")
    _add_calibration_options(parser)
    parser.add_argument("--tac-model", choices=TAC_MODELS, default="auto",
                        help="time-activity model (default auto): "
                             + "; ".join(f"{name}: {text}" for name, text in TAC_MODEL_DESCRIPTIONS.items()))
    parser.add_argument("--uptake-rate-per-h", type=positive_float, default=None,
                        help="population uptake rate constant (1/h) of --tac-model biexp_fixed_uptake / biexp_prior, "
                             "e.g. the median of fully sampled patients' bi-exponential fits")
    parser.add_argument("--uptake-rate-sd-per-h", type=positive_float, default=None,
                        help="SD (1/h) of the Gaussian prior on the uptake rate (--tac-model biexp_prior)")
    parser.add_argument("--risk-factors", action="store_true",
                        help="kidney risk factors present: BED limit 28 Gy instead of 40 Gy")
    parser.add_argument("--next-activity-gbq", type=non_negative_float, default=7.4,
                        help="activity of the projected next cycle (GBq, default 7.4)")
    parser.add_argument("--blood-samples", action="append", metavar="FILE|CYCLE:FILE", default=None,
                        help="blood samples CSV for the blood-based red-marrow dose (EANM 2010): columns time_h, "
                             "blood_activity_concentration_kBq_per_mL, optional cycle and "
                             "urine_cumulative_excreted_percent; one file with a cycle column, or CYCLE:FILE "
                             "repeated (default: the files the manifest names per cycle)")
    parser.add_argument("--hematocrit", type=_float_in(0.0, 1.0, low_open=True), default=None,
                        help="haematocrit (0-1): red-marrow-to-blood ratio 0.19 / (1 - HCT) instead of 1 (peptides)")
    parser.set_defaults(run=_dose, option_words={"cycles": "--cycles 1,2", "registration": "--registration",
                                                  "blood_samples": "--blood-samples FILE",
                                                  "population_uptake_rate_per_h": "--uptake-rate-per-h RATE",
                                                  "population_uptake_rate_sd_per_h": "--uptake-rate-sd-per-h SD"})


def _lobequant(args) -> None:
    from .workflows.lobequant import (
        LobeQuantInputs,
        SpectInput,
        lobe_split_from_options,
        parse_cycle_values,
        parse_segment_roles,
        parse_spect_argument,
        run_lobequant,
    )

    explicit = {"--ct": args.ct, "--seg": args.seg, "--spect": args.spect}
    if args.patient is not None:
        given = [flag for flag, value in explicit.items() if value]
        if given:
            raise ValueError(f"give a patient folder or {', '.join(explicit)}, not both ({args.patient} and "
                             f"{', '.join(given)} given)")
        inputs = LobeQuantInputs.from_patient_folder(args.patient)
    else:
        missing = [flag for flag, value in explicit.items() if not value]
        if missing:
            raise ValueError(f"give a patient folder, or all of {', '.join(explicit)} "
                             f"(missing {', '.join(missing)})")
        activity = dict(parse_cycle_values(args.administered_mbq, "--administered-mbq"))
        spects = [SpectInput(path, cycle, hours, activity.get(cycle), args.spect_units)
                  for cycle, hours, path in (parse_spect_argument(text, "--spect") for text in args.spect)]
        inputs = LobeQuantInputs.from_files(args.ct, args.seg, spects, parse_segment_roles(args.segment_role))
    split = lobe_split_from_options(plane=args.plane, cantlie=args.cantlie, couinaud=args.couinaud,
                                    caudate=args.caudate, right_vessels=args.right_vessels,
                                    left_vessels=args.left_vessels, ras=args.ras)
    with progress_bar("LobeQuant T/N") as progress:
        run = run_lobequant(inputs, ia_side=args.ia_side, lobe_method=split, margin_mm=args.margin_mm,
                            occupancy="fractional" if args.fractional else "nearest",
                            supersampling=args.supersampling, uptake=not args.no_uptake,
                            calibration=args.calibration, margin_fwhm=args.margin_fwhm,
                            boundary_uncertainty=not args.no_boundary_uncertainty,
                            target_lesions=args.target_lesions, target_min_diameter_mm=args.target_min_diameter_mm,
                            out_dir=args.out, overwrite=args.overwrite, progress=progress)
    for path in run.files:
        print(path)


def _add_lobequant(commands, common) -> None:
    from .liver import CAUDATE_OPTIONS, LOBE_SPLIT_METHODS

    split = {name: f"lobe split '{name}': {method.description}" for name, method in LOBE_SPLIT_METHODS.items()}
    parser = commands.add_parser(
        "lobequant", parents=[common],
        help="T/N of the IA lobe versus the IV lobe per cycle and lesion, organ uptake",
        description="Tumour-to-non-tumour activity-concentration ratio (T/N) per lobe and lesion on every "
                    "SPECT, the IA/IV lobe T/N ratio per cycle (primary endpoint of the IA-vs-IV study) and "
                    "kidney, liver, lobe and extrahepatic uptake (MBq, % of the administered activity "
                    "decayed to the scan). Inputs: a patient folder with manifest.json, or --ct, --seg and --spect. "
                    "Without lobe segments, split the liver with --plane, --cantlie, --couinaud or "
                    "--right-vessels and --left-vessels. Points are LPS mm (DICOM), or RAS (Slicer) with "
                    "--ras. Writes lobequant_tn.csv, lobequant_ia_iv_ratio.csv, the trial endpoint "
                    "(lobequant_trial_endpoint.csv, lobequant_trial_ia_iv_ratio.csv: up to 3 target lesions "
                    "> 30 mm per lobe, Ebbers et al. EJNMMI 2024), lobequant_uptake.csv and provenance.json. "
                    "With --calibration every T/N also comes recovery-corrected with its 95 % interval.")
    parser.add_argument("patient", type=Path, nargs="?", help="patient folder holding manifest.json")
    parser.add_argument("--ct", type=Path, help="CT: DICOM folder or NRRD/NIfTI (HU)")
    parser.add_argument("--seg", type=Path, help="segmentation with the liver and lesions: tagged .seg.nrrd, or a "
                                                 "DICOM SEG (roles from its codes) on the CT")
    parser.add_argument("--segment-role", action="append", metavar="N=ROLE[:SIDE]",
                        help="role of DICOM SEG segment N when its codes name none (e.g. 3=lesion, 2=lobe:right)")
    parser.add_argument("--spect", action="append", metavar="CYCLE[@HOURS]:PATH",
                        help="quantitative SPECT (DICOM NM or NRRD/NIfTI in Bq/mL) of a cycle, hours after "
                             "injection from its header unless given; repeat for every SPECT")
    parser.add_argument("--spect-units", help="voxel unit of NRRD/NIfTI SPECTs that do not record one "
                                              "(Bq/mL, kBq/mL or MBq/mL)")
    parser.add_argument("--administered-mbq", action="append", metavar="CYCLE:MBQ",
                        help="administered activity of a cycle (MBq) when the SPECT header lacks it")
    parser.add_argument("--ia-side", choices=("right", "left"),
                        help="hepatic artery that received the injection (default: the manifest's)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--margin-mm", type=non_negative_float,
                        help="non-tumour margin around lesions (mm; default one SPECT voxel, or with --calibration "
                             "--margin-fwhm x its effective FWHM, at least 10 mm)")
    _add_calibration_options(parser)
    parser.add_argument("--target-lesions", type=positive_int, default=3,
                        help="trial endpoint: target lesions per lobe, largest first (default 3)")
    parser.add_argument("--target-min-diameter-mm", type=non_negative_float, default=30.0,
                        help="trial endpoint: longest axial diameter a target lesion exceeds (mm, default 30)")
    parser.add_argument("--fractional", action="store_true",
                        help="fractional occupancy of SPECT voxels by lesions and lobes (supersampling)")
    parser.add_argument("--supersampling", type=positive_int, default=5, help="sub-voxels per axis with --fractional")
    parser.add_argument("--no-uptake", action="store_true", help="skip the organ uptake table")
    parser.add_argument("--plane", metavar="X,Y,Z:NX,NY,NZ", help=f"{split['plane']} (point:normal)")
    parser.add_argument("--cantlie", metavar="X,Y,Z;X,Y,Z;X,Y,Z", help=f"{split['cantlie']} (in that order)")
    parser.add_argument("--couinaud", type=Path,
                        help=f"{split['couinaud']}: a label map (e.g. TotalSegmentator liver_segments)")
    parser.add_argument("--caudate", choices=CAUDATE_OPTIONS, default="left",
                        help="lobe given the caudate lobe (segment I) with --couinaud")
    parser.add_argument("--right-vessels", metavar="X,Y,Z[;X,Y,Z]",
                        help=f"{split['vessels']}: the right hepatic artery points")
    parser.add_argument("--left-vessels", metavar="X,Y,Z[;X,Y,Z]", help="left hepatic artery points")
    parser.add_argument("--ras", action="store_true", help="points are RAS (Slicer) instead of LPS (DICOM)")
    parser.set_defaults(run=_lobequant, option_words={
        "injected_activity_mbq": "--administered-mbq CYCLE:MBQ", "units": "--spect-units UNIT",
        "ia_side": "--ia-side right|left", "margin_mm": "--margin-mm MM", "uptake": "--no-uptake",
        "hours_post_injection": "--spect CYCLE@HOURS:PATH", "lobe_method": "--plane, --cantlie, --couinaud or "
        "--right-vessels with --left-vessels"})


def _cohort(args) -> None:
    from .workflows.cohort import cohort_status, run_cohort

    if args.status:
        for line in cohort_status(args.out, args.study).lines():
            print(line)
        return
    if args.study is None:
        raise ValueError("give the study folder (STUDY), or --status to see what a run into --out has done")
    options = _cohort_run_options(args)
    with progress_bar("cohort") as progress:
        run = run_cohort(args.study, args.out, jobs=args.jobs, resume=not args.no_resume,
                         overwrite=args.overwrite, options=options, progress=progress)
    print(f"processed {len(run.processed)} patients, skipped {len(run.skipped)} already done"
          + ("; the cohort analysis was up to date" if run.analysis_up_to_date else ""))
    _print_report(run.report, args)


def _print_report(report: Path, args) -> None:
    """Print the report's path (and write its PDF next to it with ``--pdf``)."""
    print(report)
    if args.pdf:
        from .cohort.browser import print_pdf

        print(print_pdf(report, report.with_suffix(".pdf"), overwrite=args.overwrite))


def _cohort_run_options(args) -> dict:
    """Per-patient options of a cohort run (plain values: they travel to worker processes).

    The calibration and the trial-endpoint settings are recorded only when given (not the defaults), so a
    default run records the same options however it was started.
    """
    from .liver import TRIAL_MIN_DIAMETER_MM, TRIAL_TARGETS_PER_LOBE

    options = {"occupancy": "nearest" if args.nearest else "fractional", "voxel_dose": not args.no_voxel_dose,
               "pvc_fwhm_mm": args.pvc_fwhm_mm}
    if args.calibration:
        options["calibration"] = str(args.calibration.resolve())
    if (args.target_lesions, args.target_min_diameter_mm) != (TRIAL_TARGETS_PER_LOBE, TRIAL_MIN_DIAMETER_MM):
        options |= {"target_lesions": args.target_lesions, "target_min_diameter_mm": args.target_min_diameter_mm}
    return options




def _add_cohort_options(parser) -> None:
    from .liver import TRIAL_MIN_DIAMETER_MM, TRIAL_TARGETS_PER_LOBE

    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--jobs", type=positive_int, default=2, help="parallel patient processes (default 2)")
    parser.add_argument("--no-resume", action="store_true", help="redo patients that finished before")
    parser.add_argument("--nearest", action="store_true",
                        help="nearest-neighbour regions on the SPECT grid (default fractional occupancy)")
    parser.add_argument("--no-voxel-dose", action="store_true", help="skip the voxel S-value dose maps")
    parser.add_argument("--pvc-fwhm-mm", type=float, default=None,
                        help="SPECT resolution FWHM (mm) for partial-volume correction of region activities")
    parser.add_argument("--pdf", action="store_true",
                        help="also print the report to report.pdf with headless Chromium (Debian package chromium)")
    parser.add_argument("--calibration", type=Path,
                        help="site calibration (luprrt calibrate JSON, or a volume_ml,rc recovery table CSV): "
                             "recovery-corrected T/N and dose with 95 %% intervals")
    parser.add_argument("--target-lesions", type=positive_int, default=TRIAL_TARGETS_PER_LOBE,
                        help="primary endpoint: target lesions per lobe, largest first (default 3)")
    parser.add_argument("--target-min-diameter-mm", type=non_negative_float, default=TRIAL_MIN_DIAMETER_MM,
                        help="primary endpoint: longest axial diameter a target lesion exceeds (mm, default 30)")


def _add_calibration_options(parser) -> None:
    parser.add_argument("--calibration", type=Path,
                        help="site calibration (luprrt calibrate JSON, or a volume_ml,rc recovery table CSV): "
                             "counts SPECT converted with its factor; recovery-corrected values with 95 %% "
                             "intervals")
    parser.add_argument("--margin-fwhm", type=positive_float, default=2.0,
                        help="with --calibration: non-tumour margin in effective FWHM (default 2, at least 10 mm)")
    parser.add_argument("--no-boundary-uncertainty", action="store_true",
                        help="with --calibration: leave the segmentation-boundary (+-1 voxel) term out of the "
                             "intervals (faster)")


def _calibrate(args) -> None:
    from .calibration import SiteInfo
    from .workflows.calibrate import CylinderScan, IecScan, run_calibration

    cylinder = None
    if args.cylinder is not None:
        if args.cylinder_activity_mbq is None:
            raise ValueError("the cylinder's activity is missing: give --cylinder-activity-mbq (dose calibrator, MBq)")
        cylinder = CylinderScan(args.cylinder, args.cylinder_activity_mbq, _datetime(args.cylinder_activity_time),
                                args.cylinder_units, args.frame_duration_s, args.activity_sd_percent)
    concentrations = args.iec_concentrations or []
    if len(concentrations) != len(args.iec or []):
        raise ValueError(f"give one --iec-concentrations SPHERE,BACKGROUND (Bq/mL) per --iec image: "
                         f"{len(args.iec or [])} images, {len(concentrations)} concentration pairs")
    iec = [IecScan(path, sphere, background, _datetime(args.iec_reference_time), args.iec_units)
           for path, (sphere, background) in zip(args.iec or [], concentrations, strict=True)]
    info = SiteInfo(site=args.site, camera=args.camera, collimator=args.collimator,
                    energy_window=args.energy_window, reconstruction=args.reconstruction,
                    resolution_recovery=args.resolution_recovery, date=args.date or "",
                    performed_by=args.performed_by, notes=args.notes)
    with progress_bar("site calibration") as progress:
        calibration, files = run_calibration(args.out, info=info, cylinder=cylinder, iec=iec,
                                             recovery_table=args.recovery_table,
                                             acquisition_datetime=_datetime(args.acquisition_time),
                                             overwrite=args.overwrite, progress=progress)
    if calibration.cps_per_mbq is not None:
        print(f"calibration factor {calibration.cps_per_mbq:.5g} cps/MBq "
              f"(relative SD {calibration.cps_per_mbq_relative_sd:.3f})")
    if calibration.effective_fwhm_mm is not None:
        print(f"effective resolution {calibration.effective_fwhm_mm:.2f} +- {calibration.effective_fwhm_sd_mm:.2f} mm FWHM")
    for path in files:
        print(path)


def _datetime(text: str | None):
    from datetime import datetime

    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date-time; use ISO 8601, e.g. 2024-05-06T09:30") from None


def _concentration_pair(text: str) -> tuple[float, float]:
    try:
        sphere, background = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SPHERE,BACKGROUND in Bq/mL (e.g. 160000,40000), got {text!r}") \
            from None
    return sphere, background


def _yes_no(text: str) -> bool:
    if text.lower() in ("yes", "true", "1"):
        return True
    if text.lower() in ("no", "false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")


def _add_calibrate(commands, common) -> None:
    parser = commands.add_parser(
        "calibrate", parents=[common], help="site calibration from a uniform cylinder and IEC phantom SPECTs",
        description="Calibration factor (cps/MBq, or the scale of vendor Bq/mL images) from a uniform cylinder of "
                    "known activity; recovery coefficients (mean, max, contrast) of the six spheres of NEMA IEC body "
                    "phantom scans, found automatically by registering the phantom's known geometry, fitted "
                    "recovery curves RC(V) = a/(1+(b/V)^c) and the effective resolution (FWHM) reproducing them. "
                    "Writes site_calibration.json (versioned; camera, collimator, reconstruction, date, who), "
                    "calibration_spheres.csv and calibration_recovery_curves.csv. Images: DICOM NM (counts or "
                    "Bq/mL) or NRRD/NIfTI with units.")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--cylinder", type=Path, help="uniform-cylinder SPECT")
    parser.add_argument("--cylinder-activity-mbq", type=positive_float, help="cylinder activity (dose calibrator, MBq)")
    parser.add_argument("--cylinder-activity-time", help="when the activity was measured (ISO date-time; default "
                                                         "at the scan)")
    parser.add_argument("--cylinder-units", help="voxel unit of a NRRD/NIfTI cylinder (counts or Bq/mL)")
    parser.add_argument("--frame-duration-s", type=positive_float,
                        help="seconds per projection view of a counts cylinder (DICOM: from the header)")
    parser.add_argument("--activity-sd-percent", type=non_negative_float, default=2.5,
                        help="standard uncertainty of the dose calibrator (%%, default 2.5)")
    parser.add_argument("--iec", type=Path, action="append", help="IEC body phantom SPECT; repeat per ratio")
    parser.add_argument("--iec-concentrations", type=_concentration_pair, action="append",
                        metavar="SPHERE,BACKGROUND", help="true sphere and background Bq/mL, one per --iec")
    parser.add_argument("--iec-reference-time", help="when the IEC concentrations hold (ISO; default at the scan)")
    parser.add_argument("--iec-units", help="voxel unit of NRRD/NIfTI IEC images (Bq/mL)")
    parser.add_argument("--acquisition-time", help="scan start of the phantoms when their files lack it (ISO)")
    parser.add_argument("--recovery-table", type=Path,
                        help="recovery measured elsewhere: CSV with volume_ml, rc [, rc_sd, sphere_to_background, "
                             "quantity]")
    parser.add_argument("--site", default="", help="site name")
    parser.add_argument("--camera", default="", help="camera model")
    parser.add_argument("--collimator", default="", help="collimator (e.g. MEGP)")
    parser.add_argument("--energy-window", default="", help="energy window(s), e.g. 208 keV 20%%")
    parser.add_argument("--reconstruction", default="", help="reconstruction protocol (algorithm, iterations, "
                                                             "subsets, corrections, filter, voxel size)")
    parser.add_argument("--resolution-recovery", type=_yes_no, default=None, metavar="yes|no",
                        help="whether the reconstruction models the collimator response")
    parser.add_argument("--date", help="calibration date (ISO; default today)")
    parser.add_argument("--performed-by", default="", help="who measured it")
    parser.add_argument("--notes", default="", help="free text")
    parser.set_defaults(run=_calibrate)


def _add_cohort(commands, common) -> None:
    parser = commands.add_parser(
        "cohort", parents=[common], help="run every patient of a study and write the cohort report",
        description="STUDY holds patient folders (each with manifest.json) or a manifest.csv with columns "
                    "patient_id, folder, ia_side. Every patient goes through lobequant, dose and response "
                    "in worker processes (resumable: finished patients are skipped, a failed patient does not "
                    "stop the others); then lesion_table.csv, the IA-vs-IV, uptake, dose and predictive "
                    "analyses, figures and report.html are written. One run at a time per --out (a lock "
                    "file names its PID); Ctrl-C keeps the finished patients.")
    parser.add_argument("study", type=Path, nargs="?", help="study folder (with --status: default the one "
                                                            "the last run recorded)")
    parser.add_argument("--status", action="store_true",
                        help="print which patients are done, pending or failed and whether the analysis is "
                             "up to date, then exit")
    _add_cohort_options(parser)
    parser.set_defaults(run=_cohort, option_words={"resume": "--no-resume"})


def _phantom(args) -> None:
    from .outputs import StagedFolder
    from .phantom import make_patient, write_patient

    out = args.out
    if out.is_file():
        raise NotADirectoryError(f"--out {out} is a file; give a folder for the synthetic patient")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise FileExistsError(f"--out {out} holds other files; give a new or empty folder for the synthetic patient")
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()  # an empty folder is the same as none; the staged patient takes its place
    with StagedFolder(out, overwrite=args.overwrite) as staged, progress_bar("synthetic patient") as progress:
        patient = make_patient(args.seed, ia_side=args.ia_side, n_cycles=args.cycles, small=args.small,
                               progress=lambda f, m: progress(0.8 * f, m))
        write_patient(patient, staged.path, progress=lambda f, m: progress(0.8 + 0.2 * f, m))
        folder = staged.commit()
    print(f"patient {patient.patient_id} ({args.cycles} cycles, IA side {args.ia_side}): {folder}")


def _add_phantom(commands, common) -> None:
    parser = commands.add_parser(
        "phantom", parents=[common], help="write one synthetic patient with a known truth",
        description="Writes a synthetic 177Lu-DOTATATE patient folder: for every cycle a DICOM CT, the "
                    "quantitative SPECTs (DICOM NM, Bq/mL) at 4, 24, 96 and 168 h and a tagged segmentation "
                    "(seg.nrrd), follow-up CTs and segmentations, baseline FDG and 68Ga PET and an ADC map, "
                    "manifest.json and truth.json. It is the input of luprrt lobequant, dose and measure.")
    parser.add_argument("--out", type=Path, required=True, help="new (or empty) folder for the patient")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="same seed, same patient (default 0)")
    parser.add_argument("--cycles", type=_int_in(1, 8), default=4, help="treatment cycles, 1-8 (default 4)")
    parser.add_argument("--ia-side", choices=("right", "left"), default="right",
                        help="hepatic artery of the intra-arterial injections (default right)")
    parser.add_argument("--small", action="store_true",
                        help="4 x 4 x 5 mm CT voxels: a test patient in seconds (default 2 x 2 x 2.5 mm)")
    parser.set_defaults(run=_phantom)


def _measure(args) -> None:
    from .outputs import StagedFile
    from .tables import write_rows_csv
    from .workflows.response import Visit, measure_patient, measure_segmentations

    sources = args.inputs
    if len(sources) == 1 and sources[0].is_dir():
        if args.patient_id:
            raise ValueError("--patient-id is for segmentation files; a patient folder names its patient")
        inputs = [sources[0]]
        measure = partial(measure_patient, sources[0])
    else:
        visits = [_visit_argument(str(text), Visit) for text in sources]
        inputs = [v.segmentation for v in visits]
        measure = partial(measure_segmentations, args.patient_id or "P1", visits)
    with StagedFile(args.out, overwrite=args.overwrite, inputs=inputs) as staged, \
            progress_bar("lesion diameters") as progress:
        measured = measure(match_distance_mm=args.match_distance_mm, progress=progress)
        write_rows_csv(measured.measurements, staged.path)
        path = staged.commit()
    print(path)


def _visit_argument(text: str, visit_type):
    from datetime import date

    day, separator, path = text.partition(":")
    try:
        when = date.fromisoformat(day)
    except ValueError:
        when = None
    if not separator or when is None or not path:
        raise ValueError(f"{text!r}: give a patient folder, or segmentations as DATE:PATH (e.g. "
                         "2024-01-08:baseline.seg.nrrd), one per visit")
    return visit_type(Path(path).name, when, Path(path))


def _add_measure(commands, common) -> None:
    parser = commands.add_parser(
        "measure", parents=[common], help="lesion diameters over visits -> the RECIST measurements CSV",
        description="Tracks every lesion across a patient's visits (follow-up lesions take the baseline ids; "
                    "unmatched ones are new, missing ones disappeared) and measures its longest axial "
                    "diameter and short axis. Input: a patient folder (manifest.json, as luprrt phantom "
                    "writes), or one tagged segmentation per visit as DATE:PATH. Writes the measurements CSV "
                    "that luprrt recist reads (target lesions chosen at baseline by RECIST 1.1).")
    parser.add_argument("inputs", type=Path, nargs="+", metavar="PATIENT|DATE:SEGMENTATION",
                        help="patient folder, or segmentations (.seg.nrrd) as DATE:PATH, one per visit")
    parser.add_argument("--out", type=Path, required=True, help="measurements CSV to write")
    parser.add_argument("--patient-id", help="patient id written for segmentation files (default P1)")
    parser.add_argument("--match-distance-mm", type=positive_float, default=20.0,
                        help="largest centroid distance of a lesion matched across visits (mm, default 20)")
    parser.set_defaults(run=_measure)


def _export_dicom(args) -> None:
    from .workflows.export_dicom import run_export_dicom

    with progress_bar("export DICOM") as progress:
        run = run_export_dicom(args.results, args.out, patient_folder=args.patient, send=args.send,
                               calling_aet=args.aet, called_aet=args.called_aet,
                               olinda_template=args.olinda_template, overwrite=args.overwrite, progress=progress)
    for path in run.all_files():
        print(path)
    if args.send:
        print(f"sent {len(run.sent_sop_instance_uids)} objects to {args.called_aet}@{args.send}", file=sys.stderr)


def _add_export_dicom(commands, common) -> None:
    parser = commands.add_parser(
        "export-dicom", parents=[common],
        help="write a patient's results as DICOM SEG, TID 1500 SR, RT Dose and TIA maps (optionally send them)",
        description="PATIENT_RESULTS is one patient's results folder (as luprrt cohort writes it: lobequant/, "
                    "dose/, measurements.csv, done.json). Per imaging visit OUT/<visit>/ gets seg.dcm (DICOM SEG on "
                    "the visit's CT), sr.dcm (TID 1500 measurement report: T/N, activity, TIA, dose, diameters, "
                    "RECIST role, IA/IV ratio, cumulative kidney and marrow dose and BED), and per cycle rtdose.dcm "
                    "(Gy), tia.dcm (Parametric Map, Bq h/mL), mirdcalc_tia.csv and, with --olinda-template, "
                    "olinda.cas. Lesions keep one tracking UID across visits. Import OUT into Slicer's DICOM "
                    "database, or send it to a PACS with --send.")
    parser.add_argument("results", type=Path, metavar="PATIENT_RESULTS", help="a patient's results folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--patient", type=Path, help="patient folder (default: the one in PATIENT_RESULTS/done.json)")
    parser.add_argument("--send", metavar="HOST:PORT", help="C-STORE the DICOM files to this PACS")
    parser.add_argument("--aet", default="LUPRRT", help="calling AE title for --send (default LUPRRT)")
    parser.add_argument("--called-aet", default="ANY-SCP", help="called AE title of the PACS (default ANY-SCP)")
    parser.add_argument("--olinda-template", type=Path,
                        help="OLINDA/EXM 2 case file saved with your phantom; its kinetic block is filled per cycle")
    parser.set_defaults(run=_export_dicom)


def _demo(args) -> None:
    from .workflows.cohort import make_demo_cohort, run_cohort

    study = args.out / "study"
    with progress_bar("synthetic study") as progress:
        make_demo_cohort(study, args.patients, seed=args.seed, ia_tn_factor=args.ia_tn_factor,
                         overwrite=args.overwrite, progress=progress)
    options = _cohort_run_options(args)
    with progress_bar("cohort") as progress:
        run = run_cohort(study, args.out / "results", jobs=args.jobs, resume=not args.no_resume,
                         overwrite=args.overwrite, options=options, progress=progress)
    _print_report(run.report, args)


def _add_demo(commands, common) -> None:
    parser = commands.add_parser(
        "demo", parents=[common], help="generate a synthetic study with a known IA effect and analyse it",
        description="Writes OUT/study (synthetic patients: DICOM CT and SPECT, seg.nrrd, baseline PET/ADC, "
                    "truth) and runs luprrt cohort on it into OUT/results (report.html).")
    parser.add_argument("--patients", type=positive_int, default=10, help="number of synthetic patients (default 10)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the first patient (default 0)")
    parser.add_argument("--ia-tn-factor", type=positive_float, default=1.3,
                        help="true IA/IV lesion T/N factor built into the study (default 1.3)")
    _add_cohort_options(parser)
    # The synthetic SPECT's resolution is known (12 mm FWHM): the demo corrects partial volume with it.
    parser.set_defaults(run=_demo, pvc_fwhm_mm=12.0)


SUBCOMMANDS: list[Callable] = [_add_lobequant, _add_dose, _add_recist, _add_measure, _add_phantom, _add_calibrate,
                               _add_cohort,
                               _add_export_dicom, _add_demo]


def build_parser() -> argparse.ArgumentParser:
    """The ``luprrt`` argument parser with one sub-command per analysis."""
    parser = _Parser(prog="luprrt", description="The LuPRRT analyses from the command line, one sub-command "
                                                "per module.")
    parser.add_argument("--version", action="version", version=f"luprrt {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step; show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _Parser(add_help=False)
    common.add_argument("--overwrite", action="store_true", help="replace existing output files")
    for add in SUBCOMMANDS:
        add(commands, common)
    return parser


class _HeldWarnings(logging.Handler):
    """Holds log records while a command runs: shown after success, dropped (and counted) after an error."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def main(argv: list[str] | None = None) -> int:
    """Run the ``luprrt`` command line; returns the process exit status (0 ok, 2 user error, 1 bug)."""
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        print("luprrt: error: interrupted before the command started; nothing was written", file=sys.stderr)
        return EXIT_USER_ERROR
    root = logging.getLogger()
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    held = None if args.verbose else _HeldWarnings()
    handler = stream if args.verbose else held
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO if args.verbose else logging.WARNING)
    words = {**OPTION_WORDS, **getattr(args, "option_words", {})}
    try:
        with option_words(words):
            args.run(args)
    except BaseException as error:  # the one place that turns failures into exit statuses
        status, message = describe_failure(error, args)
        if status is None:
            raise
        if args.verbose and status == EXIT_BUG:
            logging.getLogger(__name__).exception("luprrt %s failed", args.command)
        hidden = len(held.records) if held is not None else 0
        if hidden:
            message += f" ({hidden} warning{'s' if hidden > 1 else ''} before it: -v shows them)"
        print(f"luprrt {args.command}: error: {message}", file=sys.stderr)
        return status
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)
    if held is not None:
        for record in held.records:
            stream.handle(record)
    return 0


def describe_failure(error: BaseException, args: argparse.Namespace) -> tuple[int | None, str]:
    """Exit status and one-line message for a failed sub-command (status None: not ours to handle)."""
    if isinstance(error, (SystemExit, GeneratorExit)):
        return None, ""
    if isinstance(error, KeyboardInterrupt):
        text = str(error) or ("interrupted; no output was written (earlier outputs are unchanged): run the "
                              "command again")
        return EXIT_USER_ERROR, _one_line(text)
    if isinstance(error, OSError) and error.errno is not None:
        return EXIT_USER_ERROR, _one_line(_describe_os_error(error, args))
    if isinstance(error, (ValueError, OSError)):
        return EXIT_USER_ERROR, _one_line(str(error) or type(error).__name__)
    return EXIT_BUG, _one_line(f"internal error {type(error).__name__}: {error}; please report it with the "
                               "command line (run again with -v for the traceback)")


def _describe_os_error(error: OSError, args: argparse.Namespace) -> str:
    """An operating-system error in the user's words: which file, what went wrong, what to do."""
    path = error.filename or ""
    out = getattr(args, "out", None)
    writing = out is not None and _is_output(path, Path(out))
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"disk full while writing {path}; free space or choose another --out (earlier outputs "
                "are unchanged)")
    if error.errno == errno.EFBIG:
        return (f"file too large while writing {path} (file-size limit reached); raise the limit or choose "
                "another --out (earlier outputs are unchanged)")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        if writing:
            return f"cannot write {path}: permission denied; choose a writable --out"
        return f"cannot read {path}: permission denied; make it readable or give another input"
    if error.errno == errno.ENOENT:
        return f"not found: {path}; check the path"
    if error.errno == errno.EISDIR:
        return f"{path} is a folder where a file is expected; give a file"
    if error.errno == errno.ENOTDIR:
        return f"{path} is a file where a folder is expected; give a folder"
    reason = error.strerror or os.strerror(error.errno)
    if writing:
        return f"cannot write {path}: {reason}; free space, check permissions or choose another --out"
    return f"{path}: {reason}" if path else reason


def _is_output(path: str, out: Path) -> bool:
    """True when ``path`` is the output (file or folder), inside it, its staging copy, or a folder above it."""
    if not path:
        return False
    try:
        target, out = Path(path).resolve(), out.resolve()
    except (OSError, RuntimeError):
        return False
    staging = f".{out.name}.luprrt-partial-"
    return (target == out or out in target.parents or target in out.parents
            or any(part.startswith(staging) for part in target.parts))


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
