"""Coverage of LuPRRT's 95 % intervals over simulated noise realisations (issue 10, deliverable 5).

For each realisation of the same patient (same truth, new counting noise) the cycle-1 SPECTs are
quantified with a site calibration, every 95 % interval is compared with the truth, and the share
of intervals holding it is reported with its Wilson 95 % interval, for lesion T/N (lesions >= 20 mm,
24 h), kidney dose, lesion dose (>= 20 mm) and the IA/IV ratio.

The interval budget models counting noise, the calibration factor, the recovery curve and the
segmentation boundary (+-1 voxel, rectangular). So that the check covers what the budget claims, each
realisation also gets delineation errors drawn from that model (:func:`delineation_errors`): every
lesion and kidney outline moves by s ~ U(-1, 1) voxel, the fraction |s| of its one-voxel shell added
(s > 0) or removed (s < 0) as one spatially coherent patch (:func:`partial_boundary_move`), seeded per
realisation. A draw of whole voxels from {-1, 0, +1} (probabilities 1/6, 2/3, 1/6: the same variance)
would not test the interval: the error is either ~0 (inside any interval) or the whole +-1 voxel
range (inside an interval of >= 95 % of the range, outside a narrower one), so coverage comes out
~67 % or 100 % whatever the interval's width. Coverage with the true outlines (noise only) is
reported beside it. The budget's calibration-factor term is realised too: a site's quantitative SPECTs
carry the error of the activity its dose calibrator read for the cylinder, so each realisation's
SPECTs are scaled by 1 + e, e ~ N(0, the calibration's relative SD) (:func:`with_calibration_error`;
T/N ratios do not change, doses do). The recovery-curve and organ-PSF terms are realised only by
realisations with their own phantom scans (below).

Realisations come from

* a folder written by the simulator (what it must provide; nothing here runs torch)::

      <folder>/fixture.json                        as in Testing/data/osem (make_patient arguments,
                                                   scan files, phantom truths, calibration)
      <folder>/realisation_<k>/                    k = 01, 02, ... (at least 20), each with
          patient_cycle1_<h>h_bq_per_ml.nrrd       the fixture's scan files, new noise seed each
          cylinder_counts.nrrd, iec_4to1_bq_per_ml.nrrd, iec_10to1_bq_per_ml.nrrd   (optional: phantom
                                                   scans with their own noise; their site calibration
                                                   then samples the calibration and recovery-curve
                                                   uncertainty; without them the fixture's phantoms serve)

  (``python -m Testing.osem_coverage FOLDER``); or
* the Gaussian world of the unit tests (``python -m Testing.osem_coverage --gaussian 20``): the small
  synthetic patient blurred by 10 mm and given new Poisson noise per realisation, calibrated on the
  simulated IEC phantoms of Testing/gaussian_world.py.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))

from osem_acceptance import fixture, fixture_patient, measure, patient_spects, site_calibration

from luprrt.calibration import coverage_fraction, shift_boundary
from luprrt.phantom import SyntheticPatient
from luprrt.segments import Segmentation
from luprrt.workflows.dose_calibrated import with_moved_structures

log = logging.getLogger(__name__)

# Seeds the simulated delineation errors: [COVERAGE_SEED, realisation number].
COVERAGE_SEED = 20240612
QUANTITIES = ("lesion T/N >= 20 mm, 24 h", "kidney dose", "lesion dose >= 20 mm", "IA/IV ratio")
# Outlines moved in the coverage check (the budget's segmentation term moves these and the spleen).
MOVED_ROLES = ("lesion", "kidney")
# Gaussian SD (voxels) of the random field choosing which part of a shell moves: a delineation error
# is a patch of the outline a few voxels across, not scattered single voxels.
FIELD_SMOOTHING_VOXELS = 2.0


@dataclass
class Coverage:
    """Interval hits per quantity, with and without simulated delineation errors."""

    hits: dict[str, list[bool]] = field(default_factory=lambda: {q: [] for q in QUANTITIES})
    hits_true_outline: dict[str, list[bool]] = field(default_factory=lambda: {q: [] for q in QUANTITIES})
    realisations: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"coverage of the 95 % intervals over {self.realisations} realisations ({self.seconds:.0f} s)",
                 f"{'quantity':32s}{'with delineation errors':>34s}{'true outlines (noise only)':>34s}"]
        for quantity in QUANTITIES:
            cells = []
            for hits in (self.hits[quantity], self.hits_true_outline[quantity]):
                p, low, high = coverage_fraction(hits)
                cells.append(f"{100 * p:.0f} % ({100 * low:.0f}-{100 * high:.0f} %), n = {len(hits)}"
                             if hits else "-")
            lines.append(f"{quantity:32s}{cells[0]:>34s}{cells[1]:>34s}")
        return "\n".join(lines)


def partial_boundary_move(mask: np.ndarray, move_voxels: float, rng: np.random.Generator,
                          smoothing_voxels: float = FIELD_SMOOTHING_VOXELS) -> np.ndarray:
    """The structure ``mask`` (z, y, x) with its outline moved by a fraction of a voxel.

    The one-voxel shell that :func:`luprrt.calibration.shift_boundary` adds (``move_voxels`` > 0) or
    removes (< 0) is ranked by a smooth random field (white noise from ``rng`` Gaussian-smoothed
    over ``smoothing_voxels``), and its lowest round(|move| x shell size) voxels are added or
    removed: a coherent patch of the outline. 0 leaves the mask as it is, +-1 is ``shift_boundary(mask, +-1)``.

    Parameters
    ----------
    mask : numpy.ndarray
        The structure (bool, z, y, x).
    move_voxels : float
        The move in voxels, -1 to 1.
    rng : numpy.random.Generator
        Draws the field (white noise over the shell's bounding box).
    smoothing_voxels : float
        Gaussian SD of the field's smoothing, in voxels.

    Returns
    -------
    numpy.ndarray
        The moved structure (bool).
    """
    if not -1.0 <= move_voxels <= 1.0:
        raise ValueError(f"a partial move is within one voxel, got {move_voxels}")
    mask = np.asarray(mask, dtype=bool)
    moved = mask.copy()
    if move_voxels == 0 or not mask.any():
        return moved
    one_voxel = shift_boundary(mask, 1 if move_voxels > 0 else -1)
    shell = one_voxel & ~mask if move_voxels > 0 else mask & ~one_voxel
    if not shell.any():
        return moved
    margin = math.ceil(3.0 * smoothing_voxels)
    box = tuple(slice(max(s.start - margin, 0), min(s.stop + margin, n))
                for s, n in zip(ndimage.find_objects(shell.astype(np.uint8))[0], mask.shape, strict=True))
    field = ndimage.gaussian_filter(rng.standard_normal(shell[box].shape), smoothing_voxels)
    local = np.argwhere(shell[box])
    count = round(abs(move_voxels) * len(local))
    chosen = local[np.argsort(field[tuple(local.T)], kind="stable")[:count]]
    offset = np.array([s.start for s in box])
    moved[tuple((chosen + offset).T)] = move_voxels > 0
    return moved


def delineation_errors(segmentation: Segmentation, rng: np.random.Generator) -> tuple[Segmentation, dict]:
    """The segmentation with each lesion and kidney outline moved by s ~ U(-1, 1) voxel, and the s by segment id.

    The +-1 voxel rectangular model of the budget's segmentation term, drawn continuously
    (:func:`partial_boundary_move`); the moved outlines share one new layer, where a grown lesion
    meets a grown kidney the lesion keeps the voxel
    (:func:`luprrt.workflows.dose_calibrated.with_moved_structures`).
    """
    shifts = {s.segment_id: float(rng.uniform(-1.0, 1.0)) for s in segmentation.segments
              if s.tags.role in MOVED_ROLES}

    def move(segment_id: str, mask: np.ndarray) -> np.ndarray:
        return partial_boundary_move(mask, shifts[segment_id], rng)

    return with_moved_structures(segmentation, move, roles=MOVED_ROLES), shifts


def _quantity(record: dict) -> str | None:
    """The coverage quantity (:data:`QUANTITIES`) a measurement record counts for, if any."""
    if record["quantity"] == "lesion T/N":
        return QUANTITIES[0] if record["hours_post_injection"] == 24.0 else None
    return {"kidney dose": QUANTITIES[1], "lesion dose": QUANTITIES[2], "IA/IV ratio": QUANTITIES[3]}.get(
        record["quantity"])


def _collect(hits: dict[str, list[bool]], records: list[dict]) -> None:
    for record in records:
        quantity = _quantity(record)
        if quantity is not None:
            hits[quantity].append(bool(record["ci95_low"] <= record["truth"] <= record["ci95_high"]))


def realisation_number(label: str, default: int) -> int:
    """The k of a ``realisation_<k>`` label (seeds its delineation errors), else ``default``."""
    tail = label.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else default


def with_calibration_error(spects: dict[float, sitk.Image], realisation: int, relative_sd: float,
                           seed: int = COVERAGE_SEED) -> tuple[dict[float, sitk.Image], float]:
    """(the SPECTs times 1 + e, 1 + e), e ~ N(0, ``relative_sd``): the realisation's calibration-factor error.

    Seeded [seed, realisation, 1]; the input images are not changed.
    """
    scale = 1.0 + relative_sd * float(np.random.default_rng([seed, realisation, 1]).standard_normal())
    return {hours: image * scale for hours, image in spects.items()}, scale


def run_coverage(patient: SyntheticPatient, realisations: Iterator, seed: int = COVERAGE_SEED,
                 true_outlines: bool = True, dose: bool = True) -> tuple[Coverage, list[dict]]:
    """Coverage over ``realisations`` of (label, SPECTs by hour, site calibration), and every record.

    Records: :attr:`osem_acceptance.Acceptance.records` with ``realisation`` and ``outlines``
    ("moved": with simulated delineation errors, "true") added (the coverage table).
    """
    coverage = Coverage()
    table = []
    started = time.time()
    for k, (label, spects, calibration) in enumerate(realisations):
        rng = np.random.default_rng([seed, realisation_number(label, k)])
        segmentation, shifts = delineation_errors(patient.segmentation, rng)
        spects, scale = with_calibration_error(spects, realisation_number(label, k),
                                               calibration.calibration_relative_sd, seed)
        log.info("%s: outlines moved (voxels) %s; calibration error %+.2f %%", label,
                 {s: round(v, 3) for s, v in shifts.items()}, 100 * (scale - 1))
        passes = [("moved", segmentation, coverage.hits)]
        if true_outlines:
            passes.append(("true", None, coverage.hits_true_outline))
        for outlines, outline_segmentation, hits in passes:
            records = measure(patient, spects, calibration, label, outline_segmentation, dose=dose).records
            _collect(hits, records)
            table += [{"realisation": label, "outlines": outlines} | r for r in records]
        coverage.realisations += 1
        log.warning("%s done (%.0f s)", label, time.time() - started)
    coverage.seconds = time.time() - started
    return coverage, table


TABLE_COLUMNS = ("realisation", "outlines", "quantity", "region", "hours_post_injection", "measured", "ci95_low",
                 "ci95_high", "truth")


def write_table(table: list[dict], path: Path) -> None:
    """The coverage table as CSV (one row per realisation, outline pass and checked number)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, TABLE_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in table:
            writer.writerow({k: (f"{v:.9g}" if isinstance(v, float) else v) for k, v in row.items()})


def read_table(path: Path) -> list[dict]:
    """Rows of :func:`write_table` with numbers as floats."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [{k: (v if k in ("realisation", "outlines", "quantity", "region") else float(v))
                 for k, v in row.items()} for row in csv.DictReader(handle)]


def coverage_from_table(table: list[dict]) -> Coverage:
    """Coverage of a table's rows (realisations counted by name)."""
    coverage = Coverage()
    for outlines, hits in (("moved", coverage.hits), ("true", coverage.hits_true_outline)):
        _collect(hits, [row for row in table if row["outlines"] == outlines])
    coverage.realisations = len({row["realisation"] for row in table})
    return coverage


def bias_summary(table: list[dict]) -> str:
    """Mean error (measured / truth - 1) over the realisations and its spread, per quantity, region and time.

    Of the true-outline rows when the table has them, else of the rows with delineation errors.
    """
    outlines = "true" if any(row["outlines"] == "true" for row in table) else "moved"
    groups: dict = {}
    for row in table:
        if row["outlines"] == outlines:
            hours = row["hours_post_injection"]
            key = (row["quantity"], row["region"], -1.0 if math.isnan(hours) else hours)  # NaN: no time point
            groups.setdefault(key, []).append(row["measured"] / row["truth"] - 1.0)
    lines = [f"{'quantity (' + outlines + ' outlines)':44s}{'mean error':>12s}{'SD':>8s}{'n':>5s}"]
    for (quantity, region, hours), errors in sorted(groups.items()):
        when = "" if hours < 0 else f", {hours:g} h"
        lines.append(f"{quantity + ' ' + region + when:44s}{100 * np.mean(errors):>+11.1f}%"
                     f"{100 * np.std(errors, ddof=1) if len(errors) > 1 else math.nan:>7.1f}%{len(errors):>5d}")
    return "\n".join(lines)


def folder_realisations(folder: Path, work: Path, complete: bool = False) -> tuple[SyntheticPatient, Iterator]:
    """(patient, realisations) of a simulator's folder (layout in the module docstring).

    ``complete``: only the realisations holding every scan of the fixture (e.g. while a run is under way).
    """
    import osem_acceptance

    osem_acceptance.FIXTURE_DIR = folder
    osem_acceptance.fixture.cache_clear()
    folders = sorted(p for p in folder.glob("realisation_*") if p.is_dir())
    if complete:
        folders = [p for p in folders if all((p / scan["file"]).is_file() for scan in fixture(folder)["patient"]["scans"])]
    if not folders:
        raise FileNotFoundError(f"{folder} holds no realisation_<k> folders")
    shared = None

    def generate():
        nonlocal shared
        for sub in folders:
            own = all((sub / entry["file"]).is_file() for entry in fixture(folder)["iec"])
            if own:
                calibration = site_calibration(sub, work / sub.name)
            else:
                shared = shared or site_calibration(folder, work / "shared")
                calibration = shared
            yield sub.name, patient_spects(sub), calibration

    return fixture_patient(folder), generate()


def gaussian_realisations(n: int, seed: int = 31) -> tuple[SyntheticPatient, Iterator]:
    """(patient, realisations) in the Gaussian world: the small patient, new Poisson noise per realisation."""
    from gaussian_world import FWHM_MM
    from gaussian_world import site_calibration as gaussian_calibration

    from luprrt.phantom import make_patient

    patient = make_patient(3, small=True, n_cycles=1, spect_fwhm_mm=FWHM_MM, noise=False, followup_weeks=())
    calibration = gaussian_calibration()
    acquisitions = patient.sessions[0].spect

    def generate():
        for k in range(n):
            rng = np.random.default_rng([seed, k])
            spects = {}
            for acquisition in acquisitions:
                expected = sitk.GetArrayFromImage(acquisition.image).astype(np.float64)
                gain = acquisition.counts_per_bq_per_ml
                image = sitk.GetImageFromArray((rng.poisson(expected * gain) / gain).astype(np.float32))
                image.CopyInformation(acquisition.image)
                spects[acquisition.hours_post_injection] = image
            yield f"gaussian realisation {k + 1:02d}", spects, calibration

    return patient, generate()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", help="simulator folder with realisation_<k> subfolders")
    parser.add_argument("--gaussian", type=int, metavar="N", help="N realisations in the Gaussian world instead")
    parser.add_argument("--noise-only", action="store_true", help="skip the true-outline (noise only) pass")
    parser.add_argument("--no-dose", action="store_true", help="T/N only (no dosimetry), e.g. of the first scans")
    parser.add_argument("--complete", action="store_true", help="only realisations holding every scan")
    parser.add_argument("--table", type=Path, help="write every measured number, interval and truth to this CSV")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    with tempfile.TemporaryDirectory() as work:
        if args.gaussian:
            patient, realisations = gaussian_realisations(args.gaussian)
        elif args.folder:
            patient, realisations = folder_realisations(args.folder, Path(work), args.complete)
        else:
            parser.error("give a folder or --gaussian N")
        coverage, table = run_coverage(patient, realisations, true_outlines=not args.noise_only,
                                       dose=not args.no_dose)
    print(coverage.summary())
    print(bias_summary(table))
    if args.table:
        write_table(table, args.table)


if __name__ == "__main__":
    main()
