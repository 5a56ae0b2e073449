"""LobeQuant end to end: T/N of the intra-arterial (IA) lobe versus the intravenous (IV) lobe, per cycle.

The primary endpoint of the IA-vs-IV study (LUTIA; Ebbers et al., EJNMMI 2024) is the
tumour-to-non-tumour activity-concentration ratio (T/N) on post-treatment SPECT/CT in
the lobe whose hepatic artery received 177Lu-dotatate versus the other lobe, after
cycle 1; cycles 2-4, kidney and extrahepatic uptake are secondary endpoints.
:func:`run_lobequant` does the whole analysis of one patient from files:

1. read each visit's CT (DICOM folder or NRRD/NIfTI, HU) and tagged segmentation
   (``.seg.nrrd``, or a DICOM SEG with LuPRRT-known codes on the CT's frame of reference), and every SPECT (DICOM NM or NRRD/NIfTI, Bq/mL) with its cycle,
   hours after injection and administered activity;
2. split the liver into lobes when the segmentation has none, or when a split is
   asked for (:class:`LobeSplit`: a plane, Cantlie's three landmarks, Couinaud
   segments or vessel points; the liver segment is found by its tag);
3. tag the lobes IA/IV from the injected side (:func:`luprrt.liver.lobes.assign_routes`)
   and give each lesion the side and route of the lobe holding most of it
   (:func:`luprrt.liver.lesions.assign_lesions_to_lobes`);
4. T/N per lobe, per lesion and the IA/IV ratio for every SPECT, all regions of a
   grid built once and reduced with one vectorised pass per SPECT
   (:func:`luprrt.liver.tn.tumour_to_nontumour`), and organ uptake in MBq and in percent of
   the administered activity decayed to the scan time (:func:`luprrt.liver.uptake.uptake_rows`);
5. write ``lobequant_tn.csv``, ``lobequant_ia_iv_ratio.csv``, the trial endpoint
   (``lobequant_trial_endpoint.csv``, ``lobequant_trial_ia_iv_ratio.csv``: up to three target
   lesions > 3 cm per lobe, :mod:`luprrt.liver.targets`), ``lobequant_uptake.csv`` and
   ``provenance.json`` (input SHA-256 hashes, parameters, software version).

With a site calibration (``calibration``) counts SPECTs are converted with its factor and every
T/N row carries the recovery-corrected value with its 95 % interval next to the measured one.

Inputs are either a patient folder with a ``manifest.json`` (the layout written by
:func:`luprrt.phantom.write_patient`: every cycle's CT, segmentation and SPECTs) or
explicit files (:meth:`LobeQuantInputs.from_files`). Points are LPS (DICOM patient
coordinates) in mm.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..calibration import DEFAULT_MARGIN_FWHM, SiteCalibration
from ..errors import fix, option, or_fix
from ..grid import LPS_TO_RAS, check_grid_compatibility
from ..io import (
    VOLUME_SUFFIXES,
    check_activity_image,
    check_one_patient,
    read_image,
    read_patient_id,
    read_segmentation_file,
)
from ..liver import (
    OCCUPANCY_MODES,
    TRIAL_MIN_DIAMETER_MM,
    TRIAL_TARGETS_PER_LOBE,
    CycleSpect,
    LobeSplit,
    TNResult,
    assign_lesions_to_lobes,
    assign_routes,
    split_lobes,
    tumour_to_nontumour,
    uptake_rows,
)
from ..outputs import StagedOutputs
from ..provenance import ProgressCallback, inputs_sha256, no_progress, provenance_record
from ..segments import SIDES, Segmentation, SegmentTags, check_coverage
from ..tables import write_rows_csv
from .calibrate import load_calibration, quantitative_spect
from .manifest import read_manifest

log = logging.getLogger(__name__)

TN_FILE = "lobequant_tn.csv"
RATIO_FILE = "lobequant_ia_iv_ratio.csv"
TRIAL_FILE = "lobequant_trial_endpoint.csv"
TRIAL_RATIO_FILE = "lobequant_trial_ia_iv_ratio.csv"
UPTAKE_FILE = "lobequant_uptake.csv"
PROVENANCE_FILE = "provenance.json"


@dataclass(frozen=True)
class SpectInput:
    """One SPECT file of a cycle.

    ``hours_post_injection`` and ``administered_activity_mbq`` default to the file's
    DICOM (or LuPRRT NRRD) header; ``units`` is for NRRD/NIfTI files that do not record
    their voxel unit (the values must be an activity concentration: Bq/mL, kBq/mL, MBq/mL).
    """

    path: Path
    cycle: int
    hours_post_injection: float | None = None
    administered_activity_mbq: float | None = None
    units: str | None = None


@dataclass(frozen=True)
class SessionInput:
    """One visit: a CT, its tagged segmentation and the SPECTs analysed with that segmentation.

    ``segment_roles`` gives the tags of DICOM SEG segments (by number or label) whose codes
    name no LuPRRT role.
    """

    segmentation: Path
    spects: tuple[SpectInput, ...]
    ct: Path | None = None
    name: str = ""
    segment_roles: Mapping[int | str, SegmentTags] | None = None


@dataclass(frozen=True)
class LobeQuantInputs:
    """Everything :func:`run_lobequant` reads, as file paths.

    ``ia_side`` is the injected side the inputs themselves record (a patient
    manifest's administrations), or None.
    """

    sessions: tuple[SessionInput, ...]
    patient_id: str | None = None
    ia_side: str | None = None
    manifest: Path | None = None

    @classmethod
    def from_files(cls, ct: str | Path | None, segmentation: str | Path, spects: Sequence[SpectInput],
                   segment_roles: Mapping[int | str, SegmentTags] | None = None) -> LobeQuantInputs:
        """One CT and segmentation for every SPECT (all on one frame of reference)."""
        if not spects:
            raise ValueError("no SPECT given: at least one cycle's SPECT is needed")
        return cls((SessionInput(Path(segmentation), tuple(spects), None if ct is None else Path(ct),
                                 "session1", segment_roles),))

    @classmethod
    def from_patient_folder(cls, folder: str | Path) -> LobeQuantInputs:
        """Every treatment cycle of a patient folder with a ``manifest.json`` (phantom layout)."""
        folder = Path(folder)
        manifest_path = folder / "manifest.json"
        if folder.is_dir() and not manifest_path.is_file():
            raise FileNotFoundError(f"{folder} has no manifest.json; give the CT, segmentation and SPECTs "
                                    "as files instead")
        manifest = read_manifest(folder)
        try:
            administrations = manifest.get("administrations", [])
            activity = {int(a["cycle"]): float(a["activity_mbq"]) for a in administrations}
            sides = {a.get("side") for a in administrations if a.get("route") == "IA"}
            sessions = []
            for visit in manifest["sessions"]:
                if not visit.get("spect"):
                    continue  # follow-up visits: no SPECT, nothing for T/N
                cycle = int(visit["cycle"])
                spects = tuple(SpectInput(folder / s["file"], cycle, float(s["hours_post_injection"]),
                                          activity.get(cycle)) for s in visit["spect"])
                sessions.append(SessionInput(folder / visit["segmentation"], spects, folder / visit["ct"],
                                             visit.get("name", f"cycle{cycle}")))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{manifest_path}: not a LuPRRT patient manifest ({type(error).__name__}: "
                             f"{error})") from error
        if not sessions:
            raise ValueError(f"{manifest_path} lists no SPECT of any treatment cycle")
        if len(sides) > 1:
            raise ValueError(f"{manifest_path}: administrations into both hepatic arteries {sorted(sides)}; "
                             "the IA-vs-IV design injects one side in every cycle")
        ia_side = sides.pop() if sides else manifest.get("ia_side")
        return cls(tuple(sessions), manifest.get("patient_id"), ia_side, manifest_path)

    def files(self) -> list[Path]:
        """Every input file or folder (for provenance)."""
        paths = [self.manifest] if self.manifest else []
        for session in self.sessions:
            paths += [p for p in (session.ct, session.segmentation) if p is not None]
            paths += [spect.path for spect in session.spects]
        return paths


@dataclass
class LobeQuantRun:
    """What :func:`run_lobequant` computed (and wrote to ``files``, if an output folder was given)."""

    tn: TNResult
    uptake_rows: list[dict]
    ia_side: str
    segmentations: dict[str, Segmentation]
    parameters: dict
    files: list[Path] = field(default_factory=list)

    @property
    def tn_rows(self) -> list[dict]:
        """One T/N row per region and SPECT (see :data:`luprrt.liver.TN_COLUMNS`)."""
        return self.tn.rows

    @property
    def ratio_rows(self) -> list[dict]:
        """One IA/IV ratio row per SPECT (see :data:`luprrt.liver.RATIO_COLUMNS`)."""
        return self.tn.ratio_rows


def prepare_segmentation(segmentation: Segmentation, ia_side: str | None,
                         split: LobeSplit | None = None) -> Segmentation:
    """Lobes (from ``split`` when given, else the segmentation's own), IA/IV routes and lesion sides.

    Raises ValueError when ``ia_side`` is missing, when the segmentation has no lobes
    and no split is given, or when a lesion lies outside the liver.
    """
    if ia_side is None:
        raise ValueError("the IA side is missing: give the side of the hepatic artery that received "
                         f"177Lu-dotatate (right or left){or_fix('ia_side', repr('right'))}")
    if not segmentation.find(role="lesion"):
        raise ValueError("the segmentation has no lesion segment (role=lesion): T/N compares lesions with "
                         "non-tumour liver; tag the lesions (LuPRRT role 'lesion') in the segmentation")
    if split is not None:
        segmentation = split_lobes(segmentation, split)
    elif not segmentation.find(role="lobe"):
        raise ValueError("the segmentation has no lobe segments (role=lobe); give a lobe split"
                         f"{' with ' + option('lobe_method') if option('lobe_method') else ''}: a plane, "
                         "Cantlie's landmarks, Couinaud segments or vessel points")
    prepared = assign_lesions_to_lobes(assign_routes(segmentation, ia_side))
    for side in SIDES:
        if not prepared.find(role="lesion", side=side):
            log.warning("the %s lobe holds no lesion: its T/N and the IA/IV ratio are not defined (NaN)", side)
    return prepared


def run_lobequant(inputs: LobeQuantInputs | str | Path, *, ia_side: str | None = None,
                  lobe_method: LobeSplit | None = None, margin_mm: float | None = None,
                  occupancy: str = "nearest", supersampling: int = 5, uptake: bool = True,
                  calibration: SiteCalibration | str | Path | None = None, margin_fwhm: float = DEFAULT_MARGIN_FWHM,
                  boundary_uncertainty: bool = True, target_lesions: int = TRIAL_TARGETS_PER_LOBE,
                  target_min_diameter_mm: float = TRIAL_MIN_DIAMETER_MM,
                  out_dir: str | Path | None = None, overwrite: bool = False,
                  progress: ProgressCallback | None = None) -> LobeQuantRun:
    """T/N per lobe and lesion, IA/IV ratio and organ uptake of one patient, for every cycle.

    Parameters
    ----------
    inputs : LobeQuantInputs, or a patient folder holding ``manifest.json``
    ia_side : {"right", "left"}, optional
        Lobe whose hepatic artery received the injection; default the side the inputs
        record (a manifest). A missing side, or one that contradicts the manifest, is
        an error.
    lobe_method : LobeSplit, optional
        How to split the liver; default: the segmentation's own lobe segments.
    margin_mm : float, optional
        Non-tumour safety margin around lesions (mm); default one SPECT voxel.
    occupancy : {"nearest", "fractional"}
        How CT-defined segments reach the SPECT grid (:func:`luprrt.liver.tn.build_lobe_regions`).
    supersampling : int
        Sub-voxels per axis for fractional occupancy.
    uptake : bool
        Also measure kidney, liver, lobe and extrahepatic uptake (needs kidney segments
        and every cycle's administered activity).
    calibration : SiteCalibration or path, optional
        A site calibration (JSON, or a recovery table CSV): counts SPECTs are converted with its
        factor, and the T/N rows gain recovery-corrected values with 95 % intervals
        (:mod:`luprrt.liver.tn_corrected`); the non-tumour margin then defaults to ``margin_fwhm``
        x its effective FWHM (at least 10 mm).
    margin_fwhm : float
        Spill-in margin in effective FWHM (with a calibration).
    boundary_uncertainty : bool
        Include the segmentation-boundary uncertainty in the intervals (with a calibration).
    target_lesions, target_min_diameter_mm
        The trial endpoint (:mod:`luprrt.liver.targets`): up to this many target lesions per
        lobe with a longest axial diameter above this (mm), largest first.
    out_dir : path, optional
        Where the CSV tables and ``provenance.json`` go; None writes nothing.
    overwrite : bool
        Replace existing output files (refused otherwise, before anything is written).
    progress : callable(fraction, message), optional

    Returns
    -------
    LobeQuantRun
    """
    progress = progress or no_progress
    if not isinstance(inputs, LobeQuantInputs):
        inputs = LobeQuantInputs.from_patient_folder(inputs)
    if occupancy not in OCCUPANCY_MODES:
        raise ValueError(f"unknown occupancy {occupancy!r}; expected one of {OCCUPANCY_MODES}")
    if margin_mm is not None and not (math.isfinite(margin_mm) and margin_mm >= 0):
        raise ValueError(f"non-tumour margin must be a finite number >= 0 mm, got {margin_mm}")
    ia_side = _ia_side(ia_side, inputs)
    calibration = load_calibration(calibration)
    outputs = None
    if out_dir is not None:
        input_files = inputs.files()
        if lobe_method is not None and isinstance(lobe_method.couinaud_labels, Path):
            input_files.append(lobe_method.couinaud_labels)
        names = [TN_FILE, RATIO_FILE, TRIAL_FILE, TRIAL_RATIO_FILE, *([UPTAKE_FILE] if uptake else []),
                 PROVENANCE_FILE]
        outputs = StagedOutputs(out_dir, names, overwrite=overwrite, inputs=input_files)

    cycles: list[CycleSpect] = []
    segmentations: dict[str, Segmentation] = {}
    spect_record = []
    n_spects = sum(len(s.spects) for s in inputs.sessions)
    done = 0
    for session in inputs.sessions:
        progress(0.6 * done / n_spects, f"segmentation of {session.name or session.segmentation.name}")
        segmentation = _session_segmentation(session, ia_side, lobe_method)
        segmentations[session.name or str(session.segmentation)] = segmentation
        for spect in session.spects:
            progress(0.6 * done / n_spects, f"SPECT of cycle {spect.cycle}")
            cycle, record = _cycle_spect(spect, segmentation, session.segmentation, calibration)
            cycles.append(cycle)
            spect_record.append(record)
            done += 1
    check_one_patient([*((str(s.ct), read_patient_id(s.ct)) for s in inputs.sessions if s.ct is not None),
                       *((record["file"], record["dicom_patient_id"]) for record in spect_record)])
    _check_cycles(cycles)

    def stage(start: float, span: float):
        return lambda fraction, message: progress(start + span * fraction, message)

    tn = tumour_to_nontumour(cycles, margin_mm=margin_mm, occupancy=occupancy, supersampling=supersampling,
                             calibration=calibration, margin_fwhm=margin_fwhm,
                             boundary_uncertainty=boundary_uncertainty, target_lesions=target_lesions,
                             target_min_diameter_mm=target_min_diameter_mm, progress=stage(0.6, 0.25))
    uptake_table = []
    if uptake:
        missing = [c.cycle for c in cycles if c.administered_activity_mbq is None]
        if missing:
            raise ValueError(f"administered activity unknown for cycles {sorted(set(missing))} (no "
                             "RadionuclideTotalDose in the SPECT header): "
                             f"{fix('injected_activity_mbq', '7400.0') or 'give it'}{or_fix('uptake', 'False')}")
        uptake_table = uptake_rows(cycles, progress=stage(0.85, 0.1))

    parameters = {"ia_side": ia_side, "lobe_split": lobe_method.describe() if lobe_method else "segmentation",
                  "margin_mm": tn.parameters.get("margin_mm", margin_mm),
                  "margin_rule": tn.parameters.get("margin_rule"), "occupancy": tn.parameters.get("occupancy"),
                  "supersampling": supersampling, "uptake": uptake, "patient_id": inputs.patient_id,
                  "calibration": calibration.label if calibration is not None else None,
                  "trial_definition": tn.parameters.get("trial_definition"), "spects": spect_record}
    run = LobeQuantRun(tn, uptake_table, ia_side, segmentations, parameters)
    if outputs is not None:
        extra_inputs = [Path(calibration.source)] if calibration is not None and Path(calibration.source).is_file() \
            else []
        run.files = _write_outputs(run, inputs, lobe_method, outputs, extra_inputs)
    progress(1.0, "done")
    ratios = ", ".join(f"cycle {r['cycle']} {r['hours_post_injection']:g} h: {r['tn_mean_ia_over_iv']:.3g}"
                       for r in tn.ratio_rows)
    log.info("LobeQuant %s: IA side %s, %d SPECTs, IA/IV lobe T/N %s", inputs.patient_id or "", ia_side,
             len(cycles), ratios)
    return run


def parse_spect_argument(text: str, what: str = "SPECT") -> tuple[int, float | None, Path]:
    """``"CYCLE:PATH"`` or ``"CYCLE@HOURS:PATH"`` -> (cycle, hours after injection or None, path).

    ``what`` names the option in errors.
    """
    head, separator, path = text.partition(":")
    cycle_text, _, hours_text = head.partition("@")
    try:
        cycle, hours = int(cycle_text), (float(hours_text) if hours_text else None)
    except ValueError:
        cycle, hours = None, None
    if not separator or not path or cycle is None:
        raise ValueError(f"{what} {text!r}: expected CYCLE:PATH or CYCLE@HOURS:PATH (e.g. 1:spect.dcm, "
                         "1@24:spect.nrrd)")
    return cycle, hours, Path(path)


def parse_segment_roles(items: Sequence[str] | None) -> dict[int, SegmentTags]:
    """``["N=ROLE[:SIDE]", ...]`` -> {DICOM SEG segment number: tags} for segments without LuPRRT codes."""
    roles = {}
    for text in items or ():
        number, _, tag = text.partition("=")
        role, _, side = tag.partition(":")
        try:
            roles[int(number)] = SegmentTags(role.strip(), side=side.strip() or None)
        except ValueError as error:
            raise ValueError(f"--segment-role {text!r}: expected N=ROLE[:SIDE], e.g. 3=lesion or 2=lobe:right "
                             f"({error})") from None
    return roles


def parse_cycle_values(items: Sequence[str] | None, what: str) -> list[tuple[int, float]]:
    """``["CYCLE:VALUE", ...]`` -> [(cycle, value), ...]; ``what`` names the option in errors."""
    values = []
    for text in items or ():
        cycle, _, value = text.partition(":")
        try:
            values.append((int(cycle), float(value)))
        except ValueError:
            raise ValueError(f"{what} {text!r}: expected CYCLE:VALUE (e.g. 1:7400)") from None
    return values


def parse_points(text: str, what: str, ras: bool = False) -> list[tuple[float, float, float]]:
    """``"x,y,z[;x,y,z...]"`` (mm) -> LPS points; RAS input (Slicer) has x and y negated."""
    points = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        try:
            x, y, z = (float(v) for v in part.split(","))
        except ValueError:
            raise ValueError(f"{what} {text!r}: expected x,y,z in mm (several points separated by ';')"
                             ) from None
        points.append(tuple(float(v) for v in LPS_TO_RAS * (x, y, z)) if ras else (x, y, z))
    if not points:
        raise ValueError(f"{what}: no point given")
    return points


def lobe_split_from_options(*, plane: str | None = None, cantlie: str | None = None,
                            couinaud: str | Path | None = None, caudate: str = "left",
                            right_vessels: str | None = None, left_vessels: str | None = None,
                            ras: bool = False) -> LobeSplit | None:
    """The :class:`LobeSplit` of text options (as the command line gives them), or None for none.

    ``plane`` is ``"x,y,z:nx,ny,nz"``; ``cantlie`` three points ``"x,y,z;x,y,z;x,y,z"``
    (gallbladder fossa; middle hepatic vein; IVC); vessels ``"x,y,z[;x,y,z...]"``.
    """
    chosen = [name for name, value in (("plane", plane), ("cantlie", cantlie), ("couinaud", couinaud),
                                       ("vessels", right_vessels or left_vessels)) if value]
    if len(chosen) > 1:
        raise ValueError(f"give one lobe split, not {' and '.join(chosen)}")
    if plane:
        point, separator, normal = plane.partition(":")
        if not separator:
            raise ValueError(f"plane {plane!r}: expected x,y,z:nx,ny,nz (a point and the normal)")
        (point,) = parse_points(point, "plane point", ras)
        (normal,) = parse_points(normal, "plane normal", ras)
        return LobeSplit.plane(point, normal)
    if cantlie:
        points = parse_points(cantlie, "Cantlie landmarks", ras)
        if len(points) != 3:
            raise ValueError(f"Cantlie's plane needs 3 points (gallbladder fossa; middle hepatic vein; "
                             f"inferior vena cava), got {len(points)}")
        return LobeSplit.cantlie(*points)
    if couinaud:
        return LobeSplit.couinaud(couinaud, caudate)
    if right_vessels or left_vessels:
        if not (right_vessels and left_vessels):
            raise ValueError("vessel territories need points of both the right and the left hepatic artery")
        return LobeSplit.vessels(parse_points(right_vessels, "right vessel points", ras),
                                 parse_points(left_vessels, "left vessel points", ras))
    return None


def _ia_side(ia_side: str | None, inputs: LobeQuantInputs) -> str:
    recorded = inputs.ia_side
    if ia_side is None and recorded is None:
        raise ValueError("the IA side is missing: give the side of the hepatic artery that received "
                         f"177Lu-dotatate (right or left){or_fix('ia_side', repr('right'))}")
    if ia_side is not None and ia_side not in SIDES:
        raise ValueError(f"IA side must be one of {SIDES}, got {ia_side!r}")
    if ia_side is not None and recorded is not None and ia_side != recorded:
        raise ValueError(f"IA side {ia_side!r} contradicts {inputs.manifest or 'the inputs'}, which records "
                         f"injections into the {recorded} hepatic artery")
    return ia_side or recorded


def _session_segmentation(session: SessionInput, ia_side: str, split: LobeSplit | None) -> Segmentation:
    if not session.segmentation.is_file():
        raise FileNotFoundError(f"segmentation file not found: {session.segmentation}")
    segmentation = read_segmentation_file(session.segmentation, session.ct, roles=session.segment_roles)
    if session.ct is not None:
        if not session.ct.exists():
            raise FileNotFoundError(f"CT not found: {session.ct}")
        ct = read_image(session.ct, units="HU").image  # its own errors name the CT
        try:
            check_grid_compatibility(segmentation.reference, ct, what="segmentation")
        except ValueError as error:
            raise ValueError(f"{session.segmentation} does not fit the CT {session.ct}: {error}") from None
    try:
        return prepare_segmentation(segmentation, ia_side, split)
    except ValueError as error:
        raise ValueError(f"{session.segmentation}: {error}") from error


def _cycle_spect(spect: SpectInput, segmentation: Segmentation, segmentation_path: Path,
                 calibration: SiteCalibration | None = None) -> tuple[CycleSpect, dict]:
    if not spect.path.exists():
        raise FileNotFoundError(f"SPECT of cycle {spect.cycle} not found: {spect.path}")
    options = {} if spect.administered_activity_mbq is None else {
        "injected_activity_mbq": spect.administered_activity_mbq}
    if spect.path.name.lower().endswith(VOLUME_SUFFIXES):
        options = {}
    image = quantitative_spect(spect.path, spect.units, calibration, **options)
    if image.units != "Bq/mL":
        raise ValueError(f"{spect.path}: SPECT voxel values are in {image.units}, not Bq/mL; T/N and uptake "
                         "need a quantitative SPECT (activity concentration)")
    warnings = [*image.warnings, *check_activity_image(image.image, str(spect.path))]
    hours = spect.hours_post_injection
    if hours is None:
        hours = image.hours_post_injection  # raises naming the file when the header lacks the times
    elif image.acquisition_datetime and image.injection_datetime and \
            abs(image.hours_post_injection - hours) > 0.05:
        log.warning("%s: %g h after injection given, the header says %.2f h; using %g h", spect.path, hours,
                    image.hours_post_injection, hours)
    activity = spect.administered_activity_mbq
    if activity is None:
        activity = image.injected_activity_mbq
    try:
        check_grid_compatibility(segmentation.reference, image.image,
                                 what=f"segmentation {segmentation_path}")
    except ValueError as error:
        raise ValueError(f"{spect.path}: geometry mismatch: {error}") from error
    warnings += check_coverage(segmentation, image.image, ("liver", "lobe", "lesion"),
                               segmentation_name=f"segmentation {segmentation_path}",
                               image_name=f"SPECT {spect.path}")
    record = {"cycle": spect.cycle, "hours_post_injection": float(hours), "file": str(spect.path),
              "administered_activity_mbq": activity, "dicom_patient_id": image.patient_id, "warnings": warnings}
    return CycleSpect(spect.cycle, float(hours), image.image, segmentation, activity), record


def _check_cycles(cycles: list[CycleSpect]) -> None:
    seen = {}
    for cycle in cycles:
        key = (cycle.cycle, round(cycle.hours_post_injection, 3))
        if key in seen:
            raise ValueError(f"two SPECTs of cycle {cycle.cycle} at {cycle.hours_post_injection:g} h; "
                             "each cycle and time point is measured once")
        seen[key] = cycle
        if cycle.cycle < 1:
            raise ValueError(f"cycle numbers start at 1, got {cycle.cycle}")


def _write_outputs(run: LobeQuantRun, inputs: LobeQuantInputs, split: LobeSplit | None,
                   outputs: StagedOutputs, extra_inputs: list[Path]) -> list[Path]:
    with outputs:
        written = [TN_FILE]
        write_rows_csv(run.tn_rows, outputs.path(TN_FILE))
        if run.ratio_rows:
            write_rows_csv(run.ratio_rows, outputs.path(RATIO_FILE))
            written.append(RATIO_FILE)
        if run.tn.trial_rows:
            write_rows_csv(run.tn.trial_rows, outputs.path(TRIAL_FILE))
            written.append(TRIAL_FILE)
        if run.tn.trial_ratio_rows:
            write_rows_csv(run.tn.trial_ratio_rows, outputs.path(TRIAL_RATIO_FILE))
            written.append(TRIAL_RATIO_FILE)
        if run.uptake_rows:
            write_rows_csv(run.uptake_rows, outputs.path(UPTAKE_FILE))
            written.append(UPTAKE_FILE)
        files = inputs.files() + extra_inputs
        if split is not None and isinstance(split.couinaud_labels, Path):
            files.append(split.couinaud_labels)
        record = provenance_record(inputs_sha256(files), run.parameters)
        record["outputs"] = written
        outputs.path(PROVENANCE_FILE).write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
        return outputs.commit()
