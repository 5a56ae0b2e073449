"""Build the committed OSEM SPECT fixture: one patient cycle, the calibration cylinder, the IEC phantom.

``make sim-data`` runs ``python -m luprrt.phantom.osem_fixture --out Testing/data/osem`` (needs the
``sim`` extra). Every scan uses one camera and protocol (:class:`SpectProtocol`): the cylinder
first, whose calibration factor (total counts / activity / time, as a site derives it) turns the
other reconstructions into Bq/mL. The patient's CT and segmentation are not stored: the recorded
``make_patient`` arguments rebuild them without torch.

Files (``out``): ``fixture.json`` (protocol, seeds, calibration, per-scan counts, and the truth of
every object), ``cylinder_counts.nrrd`` (counts), ``iec_<r>to1_bq_per_ml.nrrd`` (r = 4, 10,
20, 40), ``patient_cycle1_<h>h_bq_per_ml.nrrd`` (Bq/mL), all compressed NRRD
with their unit in the header (:func:`luprrt.io.write_volume`).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import timedelta
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..grid import image_on_grid
from ..io import write_volume
from ..provenance import ProgressCallback, no_progress, provenance_record
from . import osem
from .calibration_phantoms import nema_iec_body_phantom, uniform_cylinder_phantom
from .patient import FIELD_OF_VIEW_MM, make_patient, osem_patient_scan, osem_scan_summary
from .spect_camera import SpectProtocol

log = logging.getLogger(__name__)

# Seeds of the committed fixture. They differ from every seed used while building and checking the
# simulator (patient 7, noise 1): the fixture's numbers are not tuned to it.
FIXTURE_PATIENT_SEED = 23
FIXTURE_NOISE_SEED = 20240611
HOURS_POST_INJECTION = (4.0, 24.0, 96.0, 168.0)
CYLINDER_ACTIVITY_MBQ = 1000.0
# IEC background ~ the patient's non-tumour liver at 24 h (~170 kBq/mL in the default patient),
# rounded down: ~0.95 GBq in the phantom at 4:1, ~1.1 GBq at 10:1.
IEC_BACKGROUND_BQ_PER_ML = 100.0e3
# NEMA's 4:1 and 10:1, and 20:1 and 40:1: contrast recovery in OSEM rises with the contrast, and
# 177Lu-dotatate lesions reach T/N of 10-60, so a calibration for them spans those ratios.
IEC_SPHERE_TO_BACKGROUND = (4.0, 10.0, 20.0, 40.0)


def _noise(seed: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(purpose.encode())])


def _scan_job(kind: str, protocol: SpectProtocol, noise_seed: int, value: float, patient_args: dict,
              threads: int) -> tuple[np.ndarray, dict]:
    """One acquisition + reconstruction (a worker process): counts array (z, y, x) and its summary."""
    import torch

    torch.set_num_threads(threads)
    grids = osem.simulation_grids(FIELD_OF_VIEW_MM, protocol.recon_voxel_mm, protocol.projector_subdivision)
    if kind == "cylinder":
        _, scan = osem.simulate_cylinder_calibration(grids, protocol, _noise(noise_seed, "cylinder"), value)
    elif kind == "iec":
        truth = nema_iec_body_phantom(grids.fine, background_bq_per_ml=IEC_BACKGROUND_BQ_PER_ML,
                                      sphere_to_background=value)
        site = nema_iec_body_phantom(grids.recon, background_bq_per_ml=IEC_BACKGROUND_BQ_PER_ML,
                                     sphere_to_background=value)
        scan = osem.simulate_osem_scan(truth.concentration, truth.mu,
                                       osem.recon_mu_from_ct(site.ct, grids.recon, protocol.energy_kev), grids,
                                       protocol, _noise(noise_seed, f"iec {value:g}"))
    else:
        scan = osem_patient_scan(make_patient(**patient_args), 1, value, protocol)
    return sitk.GetArrayFromImage(scan.counts), osem_scan_summary(scan)


def build_osem_fixture(out_dir: str | Path, *, patient_seed: int = FIXTURE_PATIENT_SEED,
                       noise_seed: int = FIXTURE_NOISE_SEED, protocol: SpectProtocol | None = None,
                       hours=HOURS_POST_INJECTION, jobs: int = 2, overwrite: bool = False,
                       progress: ProgressCallback | None = None) -> Path:
    """Simulate and reconstruct every scan of the fixture and write it to ``out_dir`` (see module docstring).

    The seven acquisitions are independent: ``jobs`` worker processes run them side by side, each
    torch on one thread (torch's own threading gains little on these small tensors); the
    patient scans are exactly those of ``make_patient(spect_model="osem")`` (same noise streams).
    """
    progress = progress or no_progress
    protocol = protocol or SpectProtocol()
    out = Path(out_dir)
    targets = [out / "fixture.json", out / "cylinder_counts.nrrd"]
    targets += [out / f"iec_{r:g}to1_bq_per_ml.nrrd" for r in IEC_SPHERE_TO_BACKGROUND]
    targets += [out / f"patient_cycle1_{h:g}h_bq_per_ml.nrrd" for h in hours]
    existing = [p.name for p in targets if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out} already holds {existing}; pass overwrite=True (--overwrite) to rebuild")
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    grids = osem.simulation_grids(FIELD_OF_VIEW_MM, protocol.recon_voxel_mm, protocol.projector_subdivision)
    duration = protocol.acquisition_duration_s
    patient_args = {"seed": patient_seed, "n_cycles": 1, "followup_weeks": [], "hours_post_injection": list(hours)}
    work = [("cylinder", CYLINDER_ACTIVITY_MBQ)] + [("iec", r) for r in IEC_SPHERE_TO_BACKGROUND]
    work += [("patient", float(h)) for h in hours]
    results = {}
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_scan_job, kind, protocol, noise_seed, value, patient_args,
                               1 if jobs > 1 else 2): (kind, value) for kind, value in work}
        for done, future in enumerate(as_completed(futures), start=1):
            results[futures[future]] = future.result()
            progress(done / (len(work) + 1), f"{futures[future][0]} {futures[future][1]:g} done")

    def image(key) -> sitk.Image:
        return image_on_grid(results[key][0], grids.recon)

    cylinder_counts = image(("cylinder", CYLINDER_ACTIVITY_MBQ))
    calibration = osem.calibration_factor_cps_per_mbq(cylinder_counts, CYLINDER_ACTIVITY_MBQ, duration)
    write_volume(cylinder_counts, out / "cylinder_counts.nrrd", "counts", overwrite=overwrite)
    record = {
        "how": "python -m luprrt.phantom.osem_fixture (make sim-data); see README.md",
        "seeds": {"patient_seed": patient_seed, "noise_seed": noise_seed,
                  "noise_streams": "phantoms: numpy default_rng([noise_seed, crc32(purpose)]); patient scans: "
                                   "make_patient's own stream ('osem spect noise', cycle, hour)"},
        "protocol": protocol.as_dict(),
        "grids": {"recon_voxel_mm": protocol.recon_voxel_mm, "recon_size": list(grids.recon.GetSize()),
                  "recon_origin_mm": list(grids.recon.GetOrigin()), "projector_voxel_mm": grids.fine.GetSpacing()[0],
                  "projector_size": list(grids.fine.GetSize())},
        "calibration": {"file": "cylinder_counts.nrrd", "activity_mbq": CYLINDER_ACTIVITY_MBQ,
                        "acquisition_duration_s": duration, "calibration_factor_cps_per_mbq": calibration,
                        "method": "total reconstructed counts / (activity x acquisition duration)"},
        "cylinder": uniform_cylinder_phantom(grids.recon, activity_mbq=CYLINDER_ACTIVITY_MBQ).to_json_dict()
        | {"file": "cylinder_counts.nrrd", "units": "counts", "scan": results[("cylinder", CYLINDER_ACTIVITY_MBQ)][1]},
        "iec": [],
    }
    for ratio in IEC_SPHERE_TO_BACKGROUND:
        name = f"iec_{ratio:g}to1_bq_per_ml.nrrd"
        write_volume(osem.counts_to_bq_per_ml(image(("iec", ratio)), calibration, duration), out / name, "Bq/mL",
                     overwrite=overwrite)
        truth = nema_iec_body_phantom(grids.recon, background_bq_per_ml=IEC_BACKGROUND_BQ_PER_ML,
                                      sphere_to_background=ratio)
        record["iec"].append(truth.to_json_dict() | {"file": name, "units": "Bq/mL",
                                                     "scan": results[("iec", ratio)][1]})
    patient = make_patient(**patient_args)
    administration = patient.administrations[0]
    scans = []
    for h in hours:
        name = f"patient_cycle1_{h:g}h_bq_per_ml.nrrd"
        write_volume(osem.counts_to_bq_per_ml(image(("patient", float(h))), calibration, duration), out / name,
                     "Bq/mL", overwrite=overwrite)
        scans.append({"file": name, "hours_post_injection": float(h),
                      "acquisition_datetime": (administration.datetime + timedelta(hours=float(h))).isoformat()}
                     | results[("patient", float(h))][1])
    record["patient"] = {
        "patient_id": patient.patient_id, "make_patient": patient_args, "ia_side": patient.ia_side,
        "administration": administration.as_dict(), "scans": scans,
        "osem_scans_equal": 'make_patient(**make_patient, spect_model="osem", osem_protocol=protocol, '
                            "osem_calibration_cps_per_mbq=calibration) gives these images",
        "truth": patient.truth.to_json_dict(),
    }
    record["provenance"] = provenance_record(parameters={"elapsed_s": round(time.time() - started, 1),
                                                         "jobs": jobs})
    (out / "fixture.json").write_text(json.dumps(record, indent=1, allow_nan=False))
    progress(1.0, "written")
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m luprrt.phantom.osem_fixture --out DIR [--overwrite]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder (e.g. Testing/data/osem)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an existing fixture")
    parser.add_argument("--jobs", type=int, default=2, help="scans simulated side by side (default 2)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    last = [""]

    def report(fraction: float, message: str) -> None:
        if message != last[0]:  # each step once
            last[0] = message
            log.info("%5.1f %% %s", 100.0 * fraction, message)

    build_osem_fixture(args.out, jobs=args.jobs, overwrite=args.overwrite, progress=report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
