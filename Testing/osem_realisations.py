"""Noise realisations of the OSEM fixture, for the coverage of LuPRRT's 95 % intervals (issue 10).

Each realisation is the fixture's acquisition with new counting noise and nothing else: the
noise-free projections of every scan (the patient's cycle-1 SPECTs and, with ``--scans all``, the
two IEC phantoms, ``--scans``) are computed once with the fixture's own protocol, orbit and truth; per
realisation only the Poisson draw (photopeak and lower scatter window) and the OSEM reconstruction
are repeated. The calibration factor stays the fixture's (the cylinder's counting noise is a
0.04 % effect at 7.8 M counts).

Needs the ``sim`` extra (torch, pytomography)::

    nice python -m Testing.osem_realisations OUT --n 20 [--scans patient|iec|all] [--jobs 2]

writes ``OUT/fixture.json`` (a copy of the fixture's), ``OUT/<phantom files>`` (the fixture's,
serving realisations without their own) and ``OUT/realisation_<k>/`` (k = 01..n) holding the
scans in the fixture's file names (float32, compressed NRRD), the layout
``Testing/osem_coverage.py`` reads. The seeds (:data:`REALISATION_SEED`, realisation k, scan)
differ from the fixture's noise seed and every seed used while building the simulator.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import shutil
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))

from osem_acceptance import FIXTURE_DIR, fixture, fixture_patient

from luprrt.grid import image_on_grid
from luprrt.io import write_volume
from luprrt.phantom import osem
from luprrt.phantom.attenuation import tissue_mu_per_cm
from luprrt.phantom.calibration_phantoms import nema_iec_body_phantom
from luprrt.phantom.patient import FIELD_OF_VIEW_MM
from luprrt.phantom.spect_camera import Collimator, SpectProtocol

log = logging.getLogger(__name__)

REALISATION_SEED = 20251207


def fixture_protocol() -> SpectProtocol:
    """The fixture's protocol, rebuilt from ``fixture.json`` (derived entries dropped)."""
    recorded = dict(fixture()["protocol"])
    fields = SpectProtocol.__dataclass_fields__
    kept = {k: (tuple(v) if isinstance(v, list) else v) for k, v in recorded.items() if k in fields}
    kept["collimator"] = Collimator(**kept["collimator"])
    protocol = SpectProtocol(**kept)
    if json.loads(json.dumps(protocol.as_dict())) != recorded:
        raise ValueError("the fixture's protocol cannot be rebuilt from fixture.json (SpectProtocol changed?)")
    return protocol


def _scans(kinds: tuple[str, ...]) -> list[tuple[str, float, str]]:
    """(kind, value, file name) of every scan of ``kinds`` ("patient", "iec") that gets new noise."""
    meta = fixture()
    scans = []
    if "patient" in kinds:
        scans += [("patient", float(s["hours_post_injection"]), s["file"]) for s in meta["patient"]["scans"]]
    if "iec" in kinds:
        scans += [("iec", float(e["parameters"]["sphere_to_background"]), e["file"]) for e in meta["iec"]]
    return scans


def _truth(kind: str, value: float, grids, protocol: SpectProtocol):
    """(true concentration, true mu, reconstruction mu) of one scan, as the fixture's builder made them."""
    if kind == "iec":
        background = fixture()["iec"][0]["parameters"]["background_bq_per_ml"]
        truth = nema_iec_body_phantom(grids.fine, background_bq_per_ml=background, sphere_to_background=value)
        site = nema_iec_body_phantom(grids.recon, background_bq_per_ml=background, sphere_to_background=value)
        return truth.concentration, truth.mu, osem.recon_mu_from_ct(site.ct, grids.recon, protocol.energy_kev)
    patient = fixture_patient()
    session = patient.session("cycle1")
    mu_lut = tissue_mu_per_cm(protocol.energy_kev)
    mu_true = image_on_grid(mu_lut[sitk.GetArrayViewFromImage(session.tissue)].astype(np.float32), session.ct)
    return (patient.truth_concentration(1, value), mu_true,
            osem.recon_mu_from_ct(session.ct, grids.recon, protocol.energy_kev))


def _scan_realisations(kind: str, value: float, name: str, ks: list[int], out: str, threads: int) -> str:
    """Project one scan's truth once, then draw and reconstruct realisations ``ks`` (a worker process)."""
    import torch

    torch.set_num_threads(threads)
    protocol = fixture_protocol()
    grids = osem.simulation_grids(FIELD_OF_VIEW_MM, protocol.recon_voxel_mm, protocol.projector_subdivision)
    concentration, mu_true, mu_recon = _truth(kind, value, grids, protocol)
    primary, scatter, radii = osem.expected_projections(concentration, mu_true, grids, protocol)
    calibration = fixture()["calibration"]["calibration_factor_cps_per_mbq"]
    for k in ks:
        rng = np.random.default_rng([REALISATION_SEED, k, zlib.crc32(name.encode())])
        counts = osem.reconstruct_osem(osem.acquire(primary, scatter, radii, protocol, rng), mu_recon)
        image = osem.counts_to_bq_per_ml(counts, calibration, protocol.acquisition_duration_s)
        folder = Path(out) / f"realisation_{k:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        write_volume(image, folder / name, "Bq/mL", overwrite=True)
    return f"{kind} {value:g}: realisations {ks[0]}-{ks[-1]}"


def build_realisations(out_dir: Path, n: int, *, kinds: tuple[str, ...] = ("patient",), jobs: int = 2,
                       first: int = 1) -> Path:
    """Write realisations ``first``..``first + n - 1`` of every scan to ``out_dir`` (see the module notes)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = fixture()
    shutil.copy2(FIXTURE_DIR / "fixture.json", out / "fixture.json")
    for name in [meta["calibration"]["file"], *(e["file"] for e in meta["iec"])]:
        shutil.copy2(FIXTURE_DIR / name, out / name)
    ks = list(range(first, first + n))
    # One job per scan and half of the realisations: the projections are computed twice per scan,
    # which costs less than an idle core.
    halves = [ks[: len(ks) // 2], ks[len(ks) // 2:]] if jobs > 1 and len(ks) > 1 else [ks]
    work = [(kind, value, name, part) for kind, value, name in _scans(kinds) for part in halves if part]
    started = time.time()
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_scan_realisations, *job, str(out), 1) for job in work]
        for future in as_completed(futures):
            log.info("%s (%.0f s)", future.result(), time.time() - started)
    (out / f"realisations_{'_'.join(kinds)}_{first}.json").write_text(json.dumps(
        {"seed": REALISATION_SEED, "realisations": ks, "scans": [w[2] for w in work],
         "how": "python -m Testing.osem_realisations (fixture's noise-free projections, new Poisson noise, OSEM)"},
        indent=1))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--n", type=int, default=20, help="number of realisations (default 20)")
    parser.add_argument("--first", type=int, default=1, help="number of the first realisation (default 1)")
    parser.add_argument("--scans", choices=("patient", "iec", "all"), default="patient",
                        help="which scans get new noise: the patient's, the IEC phantoms' or all (default patient)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    kinds = ("patient", "iec") if args.scans == "all" else (args.scans,)
    build_realisations(args.out, args.n, kinds=kinds, jobs=args.jobs, first=args.first)


if __name__ == "__main__":
    main()
