"""FDG / 68Ga PET and ADC features of every tracked lesion of one patient folder, at baseline and after each cycle."""

from __future__ import annotations

import logging
from pathlib import Path

from ..features import lesion_features
from ..io import read_ct_series, read_pet_series, read_seg_nrrd, read_volume
from ..registration import register_rigid
from .manifest import read_manifest

log = logging.getLogger(__name__)

# manifest.json "baseline" keys -> lesion_features keyword
_PET_KEYS = {"fdg_pet": "fdg", "ga68_pet": "ga68"}


def baseline_lesion_features(patient_folder: str | Path) -> list[dict]:
    """Per-lesion SUVmax/SUVpeak/SUVmean (FDG, 68Ga) and ADC on the first visit's segmentation.

    The manifest's ``baseline`` block names the PET series folders and the ADC map. A
    modality that brings its own CT (``"ct": folder``) is registered rigidly to the reference
    CT and sampled through that transform; without one it must share the reference frame
    (as the synthetic patient's images do). Returns no rows when the patient has no
    baseline imaging.
    """
    folder = Path(patient_folder)
    manifest = read_manifest(folder)
    baseline = manifest.get("baseline") or {}
    if not baseline:
        log.info("patient %s has no baseline imaging; no lesion features", manifest["patient_id"])
        return []
    reference = min(manifest["sessions"], key=lambda s: s["datetime"])
    return _features(folder, manifest, baseline, reference)


def after_cycle_lesion_features(patient_folder: str | Path) -> list[dict]:
    """Per-lesion PET and ADC features of the imaging after each cycle (manifest ``after_cycle``).

    Each entry names its ``cycle``, the ``session`` whose segmentation (same lesion ids)
    outlines the lesions at that time, and the PET folders / ADC file as in ``baseline``.
    Rows carry ``cycle``; no rows when the patient has no such imaging.
    """
    folder = Path(patient_folder)
    manifest = read_manifest(folder)
    sessions = {s["name"]: s for s in manifest["sessions"]}
    rows = []
    for entry in manifest.get("after_cycle") or []:
        if entry.get("session") not in sessions:
            raise ValueError(f"{folder}/manifest.json: after_cycle entry of cycle {entry.get('cycle')} names "
                             f"session {entry.get('session')!r}; sessions are {sorted(sessions)}")
        imaging = {k: v for k, v in entry.items() if k not in ("cycle", "session")}
        rows += [row | {"cycle": int(entry["cycle"])}
                 for row in _features(folder, manifest, imaging, sessions[entry["session"]])]
    return rows


def _features(folder: Path, manifest: dict, baseline: dict, reference: dict) -> list[dict]:
    segmentation = read_seg_nrrd(folder / reference["segmentation"])
    images, transforms = {}, {}
    reference_ct = None
    for key, entry in baseline.items():
        modality = _PET_KEYS.get(key, "adc" if key == "adc" else None)
        if modality is None:
            continue
        if modality == "adc":
            # Keep the QuantitativeImage: its unit is checked as an ADC unit (a map in HU or Bq/mL is refused).
            images["adc"] = read_volume(folder / entry["file"], units=entry.get("units"))
        else:
            images[modality] = read_pet_series(folder / entry["folder"])
        if entry.get("ct"):
            reference_ct = reference_ct or read_ct_series(folder / reference["ct"])
            moving_ct = read_ct_series(folder / entry["ct"])
            transforms[modality] = register_rigid(reference_ct, moving_ct).transform
    return lesion_features(segmentation, transforms=transforms, patient_id=manifest["patient_id"], **images)
