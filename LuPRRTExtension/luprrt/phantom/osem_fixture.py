"""Build the committed OSEM SPECT fixture: one patient cycle, the calibration cylinder, the IEC phantom.

``make sim-data`` runs ``python -m luprrt.phantom.osem_fixture --out Testing/data/osem`` (needs the
``sim`` extra). Every scan uses one camera and protocol (:class:`SpectProtocol`): the cylinder
first, whose calibration factor (total counts / activity / time, as a site derives it) turns the
other reconstructions into Bq/mL. The patient's CT and segmentation are not stored: the recorded
``make_patient`` arguments rebuild them without torch.

Files (``out``): ``fixture.json`` (protocol, seeds, calibration, per-scan counts, and the truth of
every object), ``cylinder_counts.nrrd`` (counts), ``iec_4to1_bq_per_ml.nrrd`` and
``iec_10to1_bq_per_ml.nrrd``, ``patient_cycle1_<h>h_bq_per_ml.nrrd`` (Bq/mL), all compressed NRRD
with their unit in the header (:func:`luprrt.io.write_volume`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from ..io import write_volume
from ..provenance import ProgressCallback, no_progress, provenance_record
from . import osem
from .calibration_phantoms import nema_iec_body_phantom, uniform_cylinder_phantom
from .patient import FIELD_OF_VIEW_MM, make_patient
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
IEC_SPHERE_TO_BACKGROUND = (4.0, 10.0)


def _noise(seed: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(purpose.encode())])


def _scan_summary(scan: osem.OsemScan) -> dict:
    acquisition = scan.acquisition
    return {"total_counts": acquisition.total_counts, "scatter_fraction": acquisition.scatter_fraction,
            "lower_window_counts": int(acquisition.lower_window.sum()),
            "orbit_radius_mm": [float(acquisition.radii_mm.min()), float(acquisition.radii_mm.max())]}


def build_osem_fixture(out_dir: str | Path, *, patient_seed: int = FIXTURE_PATIENT_SEED,
                       noise_seed: int = FIXTURE_NOISE_SEED, protocol: SpectProtocol | None = None,
                       hours=HOURS_POST_INJECTION, overwrite: bool = False,
                       progress: ProgressCallback | None = None) -> Path:
    """Simulate and reconstruct every scan of the fixture and write it to ``out_dir`` (see module docstring)."""
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

    progress(0.0, "cylinder")
    calibration, cylinder = osem.simulate_cylinder_calibration(
        grids, protocol, _noise(noise_seed, "cylinder"), CYLINDER_ACTIVITY_MBQ,
        progress=lambda f, m: progress(0.1 * f, f"cylinder: {m}"))
    write_volume(cylinder.counts, out / "cylinder_counts.nrrd", "counts", overwrite=overwrite)
    record = {
        "how": "python -m luprrt.phantom.osem_fixture (make sim-data); see README.md",
        "seeds": {"patient_seed": patient_seed, "noise_seed": noise_seed,
                  "noise_streams": "numpy default_rng([noise_seed, crc32(purpose)]); patient scans: "
                                   "make_patient's own stream ('osem spect noise', cycle, hour)"},
        "protocol": protocol.as_dict(),
        "grids": {"recon_voxel_mm": protocol.recon_voxel_mm, "recon_size": list(grids.recon.GetSize()),
                  "recon_origin_mm": list(grids.recon.GetOrigin()), "projector_voxel_mm": grids.fine.GetSpacing()[0],
                  "projector_size": list(grids.fine.GetSize())},
        "calibration": {"file": "cylinder_counts.nrrd", "activity_mbq": CYLINDER_ACTIVITY_MBQ,
                        "acquisition_duration_s": duration, "calibration_factor_cps_per_mbq": calibration,
                        "method": "total reconstructed counts / (activity x acquisition duration)"},
    }
    record["cylinder"] = (uniform_cylinder_phantom(grids.recon, activity_mbq=CYLINDER_ACTIVITY_MBQ).to_json_dict()
                          | {"file": "cylinder_counts.nrrd", "units": "counts", "scan": _scan_summary(cylinder)})

    record["iec"] = []
    for k, ratio in enumerate(IEC_SPHERE_TO_BACKGROUND):
        progress(0.1 + 0.1 * k, f"IEC phantom {ratio:g}:1")
        truth = nema_iec_body_phantom(grids.fine, background_bq_per_ml=IEC_BACKGROUND_BQ_PER_ML,
                                      sphere_to_background=ratio)
        site = nema_iec_body_phantom(grids.recon, background_bq_per_ml=IEC_BACKGROUND_BQ_PER_ML,
                                     sphere_to_background=ratio)
        scan = osem.simulate_osem_scan(truth.concentration, truth.mu,
                                       osem.recon_mu_from_ct(site.ct, grids.recon, protocol.energy_kev), grids,
                                       protocol, _noise(noise_seed, f"iec {ratio:g}"))
        name = f"iec_{ratio:g}to1_bq_per_ml.nrrd"
        write_volume(osem.counts_to_bq_per_ml(scan.counts, calibration, duration), out / name, "Bq/mL",
                     overwrite=overwrite)
        record["iec"].append(truth.to_json_dict() | {"file": name, "units": "Bq/mL", "scan": _scan_summary(scan)})

    progress(0.3, "patient")
    patient_args = {"seed": patient_seed, "n_cycles": 1, "followup_weeks": [], "hours_post_injection": list(hours)}
    patient = make_patient(**patient_args, spect_model="osem", osem_protocol=protocol,
                           osem_calibration_cps_per_mbq=calibration,
                           progress=lambda f, m: progress(0.3 + 0.7 * f, f"patient: {m}"))
    scans = []
    for acq, summary in zip(patient.session("cycle1").spect, patient.parameters["osem_scans"], strict=True):
        name = f"patient_cycle1_{acq.hours_post_injection:g}h_bq_per_ml.nrrd"
        write_volume(acq.image, out / name, "Bq/mL", overwrite=overwrite)
        scans.append({"file": name, "hours_post_injection": acq.hours_post_injection,
                      "acquisition_datetime": acq.acquisition_datetime.isoformat()} | summary)
    record["patient"] = {
        "patient_id": patient.patient_id, "make_patient": patient_args, "ia_side": patient.ia_side,
        "administration": patient.administrations[0].as_dict(), "scans": scans,
        "truth": patient.truth.to_json_dict(),
    }
    record["provenance"] = provenance_record(parameters={"elapsed_s": round(time.time() - started, 1)})
    (out / "fixture.json").write_text(json.dumps(record, indent=1, allow_nan=False))
    progress(1.0, "written")
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m luprrt.phantom.osem_fixture --out DIR [--overwrite]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder (e.g. Testing/data/osem)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an existing fixture")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    last = [""]

    def report(fraction: float, message: str) -> None:
        if message != last[0]:  # each step once
            last[0] = message
            log.info("%5.1f %% %s", 100.0 * fraction, message)

    build_osem_fixture(args.out, overwrite=args.overwrite, progress=report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
