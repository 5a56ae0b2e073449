"""``luprrt export-dicom``: a patient's results back to the clinic as standard DICOM objects.

:func:`run_export_dicom` reads a patient's results folder (the layout ``luprrt cohort`` writes
per patient: ``lobequant/``, ``dose/``, ``measurements.csv``; any of them may be missing) and
the patient folder they came from (``manifest.json`` with every visit's CT series, tagged
segmentation and SPECTs; found through the results' ``done.json`` unless given), and writes
per imaging visit ``OUT/<visit>/``:

* ``seg.dcm``: DICOM SEG of the visit's segmentation on its CT (lobes with IA/IV route,
  lesions with tracking ids, non-tumour liver of each lobe, kidneys, spleen, marrow, ...);
* ``sr.dcm``: TID 1500 Measurement Report (:mod:`.dicom_report`) referencing that SEG;
* treatment cycles with dosimetry: ``rtdose.dcm`` (RT Dose, Gy) and ``tia.dcm`` (Parametric
  Map, Bq h/mL) in the frame of reference of the cycle's CT and SPECT, ``mirdcalc_tia.csv``
  and, with an OLINDA/EXM case-file template, ``olinda.cas``.

The non-tumour liver in the SEG is each lobe minus every lesion on the CT grid; the T/N
reference additionally leaves out a safety margin on the SPECT grid (see
:mod:`luprrt.liver.tn`). With ``send`` the files are then stored to a PACS by C-STORE.
Importing them into Slicer's DICOM database is the user's next step.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import SimpleITK as sitk

from ..dosimetry import calculator_kinetics, write_mirdcalc_csv, write_olinda_case
from ..io import (
    load_series,
    parse_host_port,
    read_seg_nrrd,
    read_volume,
    send_files,
    write_dicom_seg,
    write_measurement_report,
    write_rt_dose,
    write_tia_map,
)
from ..outputs import StagedOutputs
from ..provenance import ProgressCallback, no_progress
from ..segments import Segmentation, SegmentTags
from ..tables import read_rows_csv
from .dicom_report import visit_groups
from .lobequant import prepare_segmentation

log = logging.getLogger(__name__)

RESULT_TABLES = {"tn": "lobequant/lobequant_tn.csv", "ratio": "lobequant/lobequant_ia_iv_ratio.csv",
                 "uptake": "lobequant/lobequant_uptake.csv", "dose": "dose/dose.csv", "limits": "dose/limits.csv",
                 "measurements": "measurements.csv"}


@dataclass
class DicomExport:
    """What :func:`run_export_dicom` wrote (and sent)."""

    patient_id: str
    out_dir: Path
    files: dict[str, dict[str, Path]] = field(default_factory=dict)
    sent_sop_instance_uids: list[str] = field(default_factory=list)

    def all_files(self) -> list[Path]:
        """Every file written, visit by visit."""
        return [path for visit in self.files.values() for path in visit.values()]


def run_export_dicom(results: str | Path, out_dir: str | Path, *, patient_folder: str | Path | None = None,
                     send: str | None = None, calling_aet: str = "LUPRRT", called_aet: str = "ANY-SCP",
                     olinda_template: str | Path | None = None, overwrite: bool = False,
                     progress: ProgressCallback | None = None) -> DicomExport:
    """Write the DICOM objects of every imaging visit of one patient (see the module notes).

    Parameters
    ----------
    results : a patient's results folder
    out_dir : output folder; files of the same names are replaced only with ``overwrite``
    patient_folder : the patient folder; default the one recorded in ``results/done.json``
    send : ``"HOST:PORT"`` of a PACS to C-STORE the files to, with ``calling_aet``/``called_aet``
    olinda_template : an OLINDA/EXM 2 case file whose kinetic block is filled per cycle
    """
    progress = progress or no_progress
    _require_highdicom()
    results = Path(results)
    if not results.is_dir():
        raise NotADirectoryError(f"results folder not found: {results}")
    destination = parse_host_port(send) if send else None
    folder = _patient_folder(results, patient_folder)
    manifest = _manifest(folder)
    tables = {name: read_rows_csv(results / relative) for name, relative in RESULT_TABLES.items()
              if (results / relative).is_file()}
    if not tables:
        raise ValueError(f"{results}: no LuPRRT result tables ({', '.join(RESULT_TABLES.values())}); give the "
                         "results folder of one patient")
    out_dir = Path(out_dir)
    patient_id = str(manifest["patient_id"])
    ia_side = next((a.get("side") for a in manifest.get("administrations", []) if a.get("route") == "IA"),
                   manifest.get("ia_side"))
    activity = {int(a["cycle"]): float(a["activity_mbq"]) for a in manifest.get("administrations", [])}
    export = DicomExport(patient_id, out_dir)
    visits = manifest["sessions"]
    # Every object of every visit appears together or not at all; an existing file of the same
    # name is replaced only with overwrite, and never when it is one of the inputs.
    with StagedOutputs(out_dir, overwrite=overwrite, inputs=[results, folder, olinda_template]) as outputs:
        staged = {}
        for index, visit in enumerate(visits):
            name = str(visit["name"])
            progress(index / len(visits), f"DICOM objects of {name}")
            staged[name] = _export_visit(folder, results, outputs.staging / name, visit, ia_side, activity,
                                         tables, olinda_template, overwrite=False)
            for path in staged[name].values():
                outputs.path(str(path.relative_to(outputs.staging)))
        staging = outputs.staging
        outputs.commit()
    export.files = {name: {key: out_dir / path.relative_to(staging) for key, path in files.items()}
                    for name, files in staged.items()}
    if destination is not None:
        host, port = destination
        progress(0.9, f"sending to {host}:{port}")
        export.sent_sop_instance_uids = send_files(
            [p for p in export.all_files() if p.suffix == ".dcm"], host, port, calling_aet=calling_aet,
            called_aet=called_aet)
    progress(1.0, "done")
    log.info("export-dicom %s: %d visits, %d files%s", patient_id, len(visits), len(export.all_files()),
             f", sent to {send}" if send else "")
    return export


def _require_highdicom() -> None:
    try:
        import highdicom  # noqa: F401  (the `dicom` extra; in Slicer, ensurePythonRequirements installs it)
    except ImportError:
        raise ValueError("DICOM export needs highdicom: pip install 'luprrt[dicom]' (in Slicer, the Export DICOM "
                         "button installs it)") from None


def _patient_folder(results: Path, given: str | Path | None) -> Path:
    if given is not None:
        folder = Path(given)
    else:
        done = results / "done.json"
        if not done.is_file():
            raise FileNotFoundError(f"{results} has no done.json naming its patient folder; give the patient "
                                    "folder (--patient)")
        folder = Path(json.loads(done.read_text(encoding="utf-8"))["inputs"]["patient_folder"])
    if not (folder / "manifest.json").is_file():
        raise FileNotFoundError(f"patient folder {folder} has no manifest.json")
    return folder


def _manifest(folder: Path) -> dict:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    missing = [key for key in ("patient_id", "sessions") if key not in manifest]
    if missing:
        raise ValueError(f"{folder / 'manifest.json'}: missing {', '.join(missing)}")
    return manifest


def with_nontumour(segmentation: Segmentation) -> Segmentation:
    """A copy with the non-tumour liver of every lobe (lobe minus all lesions) added as segments."""
    result = segmentation.copy()
    lesions = [result.mask_array(s.segment_id) for s in result.find(role="lesion")]
    for lobe in result.find(role="lobe"):
        mask = result.mask_array(lobe.segment_id).copy()
        for lesion in lesions:
            mask &= ~lesion
        if mask.any() and not result.find(role="non-tumour", side=lobe.tags.side):
            result.add_segment(mask, SegmentTags("non-tumour", side=lobe.tags.side, route=lobe.tags.route))
    return result


def _export_visit(folder: Path, results: Path, target: Path, visit: Mapping, ia_side: str | None, activity: Mapping[int, float], tables: Mapping[str, list],
                  olinda_template, overwrite: bool) -> dict[str, Path]:
    name = str(visit["name"])
    cycle = int(visit["cycle"]) if visit.get("cycle") not in (None, "") else None
    segmentation = read_seg_nrrd(folder / visit["segmentation"])
    if ia_side and segmentation.find(role="lobe"):
        segmentation = prepare_segmentation(segmentation, ia_side)
    spects = {float(s["hours_post_injection"]): pydicom.dcmread(folder / s["file"], stop_before_pixels=True)
              for s in visit.get("spect", [])}
    maps = {}
    if cycle is not None and spects:
        for kind, units in (("dose", "Gy"), ("tia", "Bq h/mL")):
            path = results / "dose" / f"{kind}_cycle{cycle}.nrrd"
            if path.is_file():
                maps[kind] = _volume(path, units)
    return export_visit_dicom(segmentation, folder / visit["ct"], target, visit=name, cycle=cycle, spects=spects,
                              tables=tables, dose_map_gy=maps.get("dose"), tia_map_bq_h_per_ml=maps.get("tia"),
                              dose_method=_dose_map_method(results), administered_activity_mbq=activity.get(cycle),
                              olinda_template=olinda_template, overwrite=overwrite)


def export_visit_dicom(segmentation: Segmentation, ct, target: str | Path, *, visit: str, cycle: int | None = None,
                       spects: Mapping[float, pydicom.Dataset] | None = None, tables: Mapping[str, list] | None = None,
                       dose_map_gy: sitk.Image | None = None, tia_map_bq_h_per_ml: sitk.Image | None = None,
                       dose_method: str = "voxel S-value convolution", administered_activity_mbq: float | None = None,
                       olinda_template: str | Path | None = None, overwrite: bool = False) -> dict[str, Path]:
    """The DICOM objects of one visit from data in memory (the module panels call this too).

    Parameters
    ----------
    segmentation : the visit's tagged segmentation on the CT grid (non-tumour liver is added)
    ct : the CT series it was drawn on (a folder, or its datasets)
    target : output folder of the visit
    visit, cycle : visit name (``measurements.csv``'s ``visit``) and treatment cycle (None: follow-up)
    spects : hours after administration -> SPECT dataset (headers suffice), referenced by the numbers
    tables : result rows by name (keys of :data:`RESULT_TABLES`); any may be missing
    dose_map_gy, tia_map_bq_h_per_ml : the cycle's maps (RT Dose, Parametric Map), if any
    administered_activity_mbq : the cycle's activity, for the calculator tables

    Returns
    -------
    dict
        ``seg``, ``sr`` and, when their inputs are given, ``rtdose``, ``tia``, ``mirdcalc``, ``olinda``.
    """
    _require_highdicom()
    target = Path(target)
    spects = dict(spects or {})
    tables = dict(tables or {})
    segmentation = with_nontumour(segmentation)
    ct, _ = load_series(ct, "CT")
    for hours, spect in spects.items():
        if spect.FrameOfReferenceUID != ct[0].FrameOfReferenceUID:
            raise ValueError(f"visit {visit}: the {hours:g} h SPECT is on frame of reference "
                             f"{spect.FrameOfReferenceUID}, the CT on {ct[0].FrameOfReferenceUID}; register it first")
    files = {"seg": write_dicom_seg(segmentation, ct, target / "seg.dcm", overwrite=overwrite,
                                    series_description=f"LuPRRT segmentation {visit}")}
    seg = pydicom.dcmread(files["seg"], stop_before_pixels=True)
    groups = visit_groups(str(ct[0].PatientID), segmentation, cycle=cycle, visit=visit, spects=spects,
                          tn_rows=tables.get("tn", ()), ratio_rows=tables.get("ratio", ()),
                          uptake_rows=tables.get("uptake", ()), dose_rows=tables.get("dose", ()),
                          limit_rows=tables.get("limits", ()), measurement_rows=tables.get("measurements", ()))
    ordered = [spects[h] for h in sorted(spects)]
    files["sr"] = write_measurement_report(groups, target / "sr.dcm", seg=seg, ct=ct, other_evidence=ordered,
                                           overwrite=overwrite, series_description=f"LuPRRT measurements {visit}")
    label = f"cycle {cycle}" if cycle is not None else visit
    if dose_map_gy is not None:
        files["rtdose"] = write_rt_dose(dose_map_gy, target / "rtdose.dcm", reference=(ordered or ct)[0],
                                        method=dose_method, overwrite=overwrite,
                                        series_description=f"LuPRRT absorbed dose {label}")
    if tia_map_bq_h_per_ml is not None:
        files["tia"] = write_tia_map(tia_map_bq_h_per_ml, target / "tia.dcm", ct=ct, spects=ordered,
                                     overwrite=overwrite, series_description=f"LuPRRT time-integrated activity {label}")
    dose_rows = [r for r in tables.get("dose", ()) if cycle is not None and int(r["cycle"]) == cycle]
    if dose_rows and administered_activity_mbq:
        volumes = {s.tags.lesion_id: _volume_ml(segmentation, s.segment_id) for s in segmentation.find(role="lesion")}
        kinetics = calculator_kinetics(dose_rows, cycle, administered_activity_mbq, lesion_volumes_ml=volumes)
        files["mirdcalc"] = write_mirdcalc_csv(kinetics, target / "mirdcalc_tia.csv", overwrite=overwrite)
        if olinda_template is not None:
            files["olinda"] = write_olinda_case(kinetics, olinda_template, target / "olinda.cas", overwrite=overwrite)
    return files


def _dose_map_method(results: Path) -> str:
    """How ``dose_cycle<k>.nrrd`` was computed: voxel S-value convolution unless it was switched off."""
    provenance = results / "dose" / "provenance.json"
    parameters = json.loads(provenance.read_text(encoding="utf-8")).get("parameters", {}) if provenance.is_file() else {}
    return "voxel S-value convolution" if parameters.get("voxel_dose", True) else "local energy deposition"


def _volume(path: Path, units: str):
    image = read_volume(path)
    if image.units != units:
        raise ValueError(f"{path}: voxel unit {image.units!r}, expected {units!r}")
    return image.image


def _volume_ml(segmentation: Segmentation, segment_id: str) -> float:
    import numpy as np

    return float(np.count_nonzero(segmentation.mask_array(segment_id))) * float(
        np.prod(segmentation.reference.GetSpacing())) / 1000.0
