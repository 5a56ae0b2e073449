"""``luprrt export-dicom`` on one synthetic patient's four cycles, checked by independent tools.

One small patient (4 x 4 x 5 mm CT, three lesions, SPECT at 24, 96 and 168 h of each of four
cycles) goes through LobeQuant, dosimetry and response, then through ``luprrt export-dicom``
(sent to a local Orthanc when it is installed). The objects are then checked by tools that
share no code with LuPRRT:

* dciodvfy (dicom3tools): no errors in any object;
* dcmqi (the converters of Slicer's QuantitativeReporting): the SEG's segments voxel-identical
  to the source segmentation, the SR's numbers equal to highdicom's reading of it and to the
  result tables (to the 16-character decimal string dcmqi reads);
* highdicom: the SR's numbers equal to the result tables exactly (it reads the stored float64);
* a SEG made by dcmqi's itkimage2segimage from label maps and a JSON, as another tool would
  write it, gives LobeQuant exactly the T/N of the ``.seg.nrrd`` route;
* Orthanc (Debian package, 127.0.0.1 only, temporary storage): every object sent with C-STORE
  comes back by C-FIND and C-GET with every value equal.

Tools that are missing make their test skip with a named reason (``make system-deps``
installs dicom3tools and Orthanc on Debian; dcmqi comes with the ``test`` extra).
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from luprrt import cli
from luprrt.io import (
    read_dicom_seg,
    read_measurement_report,
    read_rt_dose,
    read_seg_nrrd,
    read_tia_map,
    read_volume,
)
from luprrt.io.dicom_seg import TRACKING_NAMESPACE
from luprrt.phantom import make_patient, write_patient
from luprrt.tables import read_rows_csv, write_rows_csv
from luprrt.workflows.dose import run_patient_dosimetry
from luprrt.workflows.export_dicom import with_nontumour
from luprrt.workflows.lobequant import LobeQuantInputs, SessionInput, run_lobequant
from luprrt.workflows.response import measure_patient

pytest.importorskip("highdicom", reason="highdicom (the `dicom` extra) is not installed")

CYCLES = ("cycle1", "cycle2", "cycle3", "cycle4")
ORTHANC_AET = "ORTHANC"
CALLING_AET = "LUPRRT"
# dcmqi reads the SR's decimal strings (DS, at most 16 characters): >= 14 significant digits.
DS_REL_TOL = 1e-13


def _tool(name: str) -> str | None:
    """A dcmqi or dicom3tools executable that runs here, or None."""
    local = Path(sys.executable).parent / name
    path = str(local) if local.exists() else shutil.which(name)
    if path is None:
        return None
    try:
        subprocess.run([path, "--version"], capture_output=True, timeout=60, check=False)
    except OSError:
        return None
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Orthanc:
    """A throw-away Orthanc on 127.0.0.1: temporary storage, only LUPRRT@127.0.0.1 may store/find/get."""

    def __init__(self, folder: Path):
        (folder / "db").mkdir(parents=True)
        self.port = _free_port()
        config = {
            "Name": "luprrt-test", "StorageDirectory": str(folder / "db"), "IndexDirectory": str(folder / "db"),
            "DicomAet": ORTHANC_AET, "DicomPort": self.port, "HttpServerEnabled": False,
            "RemoteAccessAllowed": False, "DicomCheckModalityHost": True, "DicomAlwaysAllowStore": False,
            "DicomAlwaysAllowFind": False, "DicomAlwaysAllowGet": False, "DicomAlwaysAllowEcho": True,
            "DicomModalities": {"luprrt": [CALLING_AET, "127.0.0.1", _free_port()]},
            "Plugins": [], "StorageCompression": False,
        }
        (folder / "orthanc.json").write_text(json.dumps(config))
        self.log = open(folder / "orthanc.log", "w")
        self.process = subprocess.Popen(["Orthanc", str(folder / "orthanc.json")], stdout=self.log,
                                        stderr=subprocess.STDOUT)
        self._wait_until_listening(30.0)

    def _wait_until_listening(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with status {self.process.returncode}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError("Orthanc did not listen within 30 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Patient folder, results, export folder and the Orthanc it was sent to (or None)."""
    root = tmp_path_factory.mktemp("export")
    patient = make_patient(7, small=True, noise=False, n_cycles=4, hours_post_injection=(24.0, 96.0, 168.0),
                           lesion_diameters_mm={"right": [30.0, 16.0], "left": [24.0]}, followup_weeks=())
    folder, results = write_patient(patient, root / "patient"), root / "results"
    # The three analyses of `luprrt cohort` for one patient (without its baseline PET features).
    run_lobequant(folder, out_dir=results / "lobequant", occupancy="nearest")
    run_patient_dosimetry(folder, out_dir=results / "dose", voxel_dose=False)
    write_rows_csv(measure_patient(folder).measurements, results / "measurements.csv")
    orthanc = Orthanc(root / "orthanc") if shutil.which("Orthanc") else None
    args = ["export-dicom", str(results), "--out", str(root / "dicom"), "--patient", str(folder)]
    if orthanc is not None:
        args += ["--send", f"127.0.0.1:{orthanc.port}", "--aet", CALLING_AET, "--called-aet", ORTHANC_AET]
    try:
        assert cli.main(args) == 0
        reports = {visit: read_measurement_report(root / "dicom" / visit / "sr.dcm") for visit in CYCLES}
        yield {"patient": folder, "results": results, "out": root / "dicom", "orthanc": orthanc,
               "patient_id": patient.patient_id, "reports": reports}
    finally:
        if orthanc is not None:
            orthanc.stop()


def _objects(out: Path) -> list[Path]:
    return sorted(out.glob("*/*.dcm"))


def test_every_visit_has_its_objects(exported):
    out = exported["out"]
    for visit in CYCLES:
        names = sorted(p.name for p in (out / visit).iterdir())
        assert names == ["mirdcalc_tia.csv", "rtdose.dcm", "seg.dcm", "sr.dcm", "tia.dcm"], visit


def test_every_object_passes_dciodvfy_without_errors(exported):
    dciodvfy = shutil.which("dciodvfy")
    if dciodvfy is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed; `make system-deps` installs it")
    for path in _objects(exported["out"]):
        report = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, timeout=120)
        errors = [line for line in (report.stdout + report.stderr).splitlines() if line.startswith("Error")]
        assert not errors, f"{path}: {errors}"
        assert report.returncode == 0, f"{path}: dciodvfy exit {report.returncode}"


def test_dcmqi_and_highdicom_read_the_seg_back_voxel_identical(exported, tmp_path):
    segimage2itkimage = _tool("segimage2itkimage")
    if segimage2itkimage is None:
        pytest.skip("dcmqi's segimage2itkimage does not run here (PyPI package dcmqi)")
    patient = exported["patient"]
    manifest = json.loads((patient / "manifest.json").read_text())
    for visit in manifest["sessions"]:
        source = with_nontumour(read_seg_nrrd(patient / visit["segmentation"]))
        seg_path = exported["out"] / visit["name"] / "seg.dcm"
        highdicom_read = read_dicom_seg(seg_path, reference=source.reference)
        target = tmp_path / visit["name"]
        target.mkdir()
        subprocess.run([segimage2itkimage, "--inputDICOM", str(seg_path), "--outputDirectory", str(target),
                        "-t", "nrrd"], check=True, capture_output=True, timeout=300)
        for number, segment in enumerate(source.segments, start=1):
            truth = source.mask_array(segment.segment_id)
            dcmqi = sitk.Resample(sitk.ReadImage(str(target / f"{number}.nrrd")), source.reference,
                                  sitk.Transform(), sitk.sitkNearestNeighbor, 0)
            assert np.array_equal(sitk.GetArrayViewFromImage(dcmqi) != 0, truth), (visit["name"], segment.segment_id)
            assert np.array_equal(highdicom_read.mask_array(highdicom_read.segments[number - 1].segment_id), truth)
            assert highdicom_read.segments[number - 1].tags == segment.tags


def _table_values(results: Path, cycle: int) -> dict[tuple, float]:
    """Independent expectation: the numbers of the result tables, keyed as the SR labels them."""
    expected = {}
    for row in read_rows_csv(results / "lobequant" / "lobequant_tn.csv"):
        if int(row["cycle"]) == cycle and row["role"] == "lesion":
            for key in ("mean_bq_per_ml", "max_bq_per_ml", "tn_mean", "tn_max"):
                expected[(row["lesion_id"], key, f"{float(row['hours_post_injection']):g} h after administration",
                          None)] = float(row[key])
    for row in read_rows_csv(results / "dose" / "dose.csv"):
        if int(row["cycle"]) == cycle and row["role"] == "lesion" and row["method"] == "local_deposition":
            for key in ("tia_mbq_h", "dose_gy"):
                expected[(row["lesion_id"], key, None, "LOCALDEP")] = float(row[key])
    for row in read_rows_csv(results / "lobequant" / "lobequant_ia_iv_ratio.csv"):
        if int(row["cycle"]) == cycle:
            expected[("IA/IV lobe T/N", "tn_mean_ia_over_iv",
                      f"{float(row['hours_post_injection']):g} h after administration", None)] = float(
                row["tn_mean_ia_over_iv"])
    for row in read_rows_csv(results / "dose" / "limits.csv"):
        if int(row["after_cycle"]) == cycle and row["quantity"] == "kidney_bed_gy":
            expected[("kidneys, cumulative", "bed_gy", None, "ORGANSV")] = float(row["value_gy"])
    visit = f"cycle{cycle}"
    for row in read_rows_csv(results / "measurements.csv"):
        if row["visit"] == visit:
            expected[(row["lesion_id"], "longest_diameter_mm", None, None)] = float(row["longest_diameter_mm"])
    return expected


def test_sr_numbers_equal_the_tables_and_dcmqi_reads_the_same(exported, tmp_path):
    tid1500reader = _tool("tid1500reader")
    for cycle, visit in enumerate(CYCLES, start=1):
        path = exported["out"] / visit / "sr.dcm"
        records, _ = exported["reports"][visit]
        got = {(r.tracking_id, r.quantity, r.time_point, r.group_method): r.value for r in records
               if r.method != "RCCORR"}
        expected = _table_values(exported["results"], cycle)
        assert len(expected) > 40
        for key, value in expected.items():
            assert got[key] == value, (visit, key)  # highdicom: the stored float64, exactly
        if tid1500reader is None:
            continue
        out = tmp_path / f"{visit}.json"
        subprocess.run([tid1500reader, "--inputDICOM", str(path), "--outputMetadata", str(out)], check=True,
                       capture_output=True, timeout=300)
        dcmqi_groups = json.loads(out.read_text())["Measurements"]
        dcmqi_values = [float(item["value"]) for group in dcmqi_groups for item in group["measurementItems"]]
        assert len(dcmqi_values) == len(records)
        for value, record in zip(dcmqi_values, records, strict=True):
            assert math.isclose(value, record.value, rel_tol=DS_REL_TOL, abs_tol=0.0), (visit, record)
        if visit == "cycle1":  # highdicom's own reading of what it wrote: every value, same order
            assert _highdicom_values(path) == [(r.tracking_uid, r.value) for r in records]
    if tid1500reader is None:
        pytest.skip("dcmqi's tid1500reader does not run here (PyPI package dcmqi); highdicom checks passed")


def _highdicom_values(path: Path) -> list[tuple[str, float]]:
    import highdicom as hd

    report = hd.sr.srread(path).content
    groups = [*report.get_volumetric_roi_measurement_groups(), *report.get_image_measurement_groups()]
    return [(str(g.tracking_uid), float(m.value)) for g in groups for m in g.get_measurements()]


def test_lesion_tracking_uids_are_identical_across_the_four_cycles(exported):
    by_cycle = []
    for visit in CYCLES:
        records, roles = exported["reports"][visit]
        by_cycle.append({r.tracking_id: r.tracking_uid for r in records if r.tracking_id.startswith("L")})
        assert set(roles.values()) <= {"target", "non_target", "new"}
    assert set(by_cycle[0]) == {"L01", "L02", "L03"}
    assert all(uids == by_cycle[0] for uids in by_cycle)
    patient_id = exported["patient_id"]
    for lesion_id, uid in by_cycle[0].items():  # independent: the documented UUID-5 derivation
        assert uid == "2.25." + str(uuid.uuid5(TRACKING_NAMESPACE, f"{patient_id}/{lesion_id}").int)
    seg_uids = {item.TrackingID: item.TrackingUID
                for item in pydicom.dcmread(exported["out"] / "cycle3" / "seg.dcm").SegmentSequence}
    assert {k: seg_uids[k] for k in by_cycle[0]} == by_cycle[0]


def test_dose_and_tia_maps_come_back_on_the_spect_grid(exported):
    for cycle, visit in enumerate(CYCLES, start=1):
        dose = read_volume(exported["results"] / "dose" / f"dose_cycle{cycle}.nrrd").image
        rt = pydicom.dcmread(exported["out"] / visit / "rtdose.dcm")
        back = sitk.Resample(read_rt_dose(exported["out"] / visit / "rtdose.dcm"), dose, sitk.Transform(),
                             sitk.sitkNearestNeighbor, -1.0, sitk.sitkFloat64)
        error = np.abs(sitk.GetArrayFromImage(back) - sitk.GetArrayFromImage(dose)).max()
        assert error <= float(rt.DoseGridScaling) / 2 + 1e-9
        spect = pydicom.dcmread(exported["patient"] / f"cycle{cycle}" / "spect_24h" / "spect.dcm",
                                stop_before_pixels=True)
        assert rt.FrameOfReferenceUID == spect.FrameOfReferenceUID
        tia = read_volume(exported["results"] / "dose" / f"tia_cycle{cycle}.nrrd").image
        tia_back = sitk.Resample(read_tia_map(exported["out"] / visit / "tia.dcm"), tia, sitk.Transform(),
                                 sitk.sitkNearestNeighbor, -1.0, sitk.sitkFloat64)
        assert np.array_equal(sitk.GetArrayFromImage(tia_back), sitk.GetArrayFromImage(tia).astype(np.float64))


def test_a_seg_written_by_dcmqi_gives_the_same_tn_as_the_seg_nrrd(exported, tmp_path):
    itkimage2segimage = _tool("itkimage2segimage")
    if itkimage2segimage is None:
        pytest.skip("dcmqi's itkimage2segimage does not run here (PyPI package dcmqi)")
    patient = exported["patient"]
    source = read_seg_nrrd(patient / "segmentation.seg.nrrd")
    organs = np.zeros(source.reference.GetSize()[::-1], np.uint8)
    lesions = np.zeros_like(organs)
    organ_items, lesion_items = [], []

    def code(value, scheme, meaning):
        return {"CodeValue": value, "CodingSchemeDesignator": scheme, "CodeMeaning": meaning}

    anatomy = code("123037004", "SCT", "Anatomical Structure")
    for label, (side, modifier) in enumerate((("right", "24028007"), ("left", "7771000")), start=1):
        organs[source.mask_array(source.find_one("lobe", side=side).segment_id)] = label
        organ_items.append({"labelID": label, "SegmentLabel": f"{side} liver", "SegmentAlgorithmType": "AUTOMATIC",
                            "SegmentAlgorithmName": "another tool", "SegmentedPropertyCategoryCodeSequence": anatomy,
                            "SegmentedPropertyTypeCodeSequence": code("10200004", "SCT", "Liver"),
                            "SegmentedPropertyTypeModifierCodeSequence": code(modifier, "SCT", side.title()),
                            "recommendedDisplayRGBValue": [200, 100, 80]})
    for label, segment in enumerate(source.find(role="lesion"), start=1):
        lesions[source.mask_array(segment.segment_id)] = label
        lesion_items.append({"labelID": label, "SegmentLabel": f"tumour {label}", "SegmentAlgorithmType": "AUTOMATIC",
                             "SegmentAlgorithmName": "another tool", "TrackingIdentifier": segment.tags.lesion_id,
                             "SegmentedPropertyCategoryCodeSequence": code("49755003", "SCT",
                                                                           "Morphologically Altered Structure"),
                             "SegmentedPropertyTypeCodeSequence": code("52988006", "SCT", "Lesion"),
                             "recommendedDisplayRGBValue": [240, 220, 50]})
    images = []
    for name, array in (("organs", organs), ("lesions", lesions)):
        image = sitk.GetImageFromArray(array)
        image.CopyInformation(source.reference)
        sitk.WriteImage(image, str(tmp_path / f"{name}.nrrd"))
        images.append(str(tmp_path / f"{name}.nrrd"))
    meta = {"ContentCreatorName": "Other^Tool", "ClinicalTrialSeriesID": "1", "ClinicalTrialTimePointID": "1",
            "SeriesDescription": "segmentation by another tool", "SeriesNumber": "500", "InstanceNumber": "1",
            "BodyPartExamined": "ABDOMEN", "segmentAttributes": [organ_items, lesion_items]}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    subprocess.run([itkimage2segimage, "--inputImageList", ",".join(images), "--inputDICOMDirectory",
                    str(patient / "ct"), "--inputMetadata", str(tmp_path / "meta.json"), "--outputDICOM",
                    str(tmp_path / "other.dcm")], check=True, capture_output=True, timeout=300)

    spects = LobeQuantInputs.from_patient_folder(patient).sessions[0].spects
    runs = {}
    for name, seg_path in (("seg.nrrd", patient / "segmentation.seg.nrrd"), ("dcmqi SEG", tmp_path / "other.dcm")):
        inputs = LobeQuantInputs((SessionInput(seg_path, spects, patient / "ct", "cycle1"),))
        runs[name] = run_lobequant(inputs, ia_side=exported_ia_side(patient), uptake=False)
    first, second = (sorted(((r["cycle"], r["hours_post_injection"], r["role"], r["side"], r["lesion_id"]),
                             r["volume_ml"], r["tn_mean"], r["tn_max"])
                            for r in run.tn_rows if r["role"] in ("lesion", "tumour")) for run in runs.values())
    assert len(first) == 3 * (3 + 2)  # three SPECTs x (three lesions + two pooled lobes)
    assert first == second


def exported_ia_side(patient: Path) -> str:
    return json.loads((patient / "manifest.json").read_text())["ia_side"]


def test_orthanc_round_trip_returns_every_object_value_for_value(exported):
    orthanc = exported["orthanc"]
    if orthanc is None:
        pytest.skip("Orthanc (Debian package orthanc) is not installed; `make system-deps` installs it")
    from pynetdicom import AE, build_role, evt
    from pynetdicom.sop_class import (
        StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelGet,
    )

    originals = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in _objects(exported["out"])}
    received = {}

    def store(event):
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        received[dataset.SOPInstanceUID] = dataset
        return 0x0000

    ae = AE(ae_title=CALLING_AET)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    classes = sorted({str(ds.SOPClassUID) for ds in originals.values()})
    for sop_class in classes:
        ae.add_requested_context(sop_class)
    roles = [build_role(sop_class, scp_role=True) for sop_class in classes]
    association = ae.associate("127.0.0.1", orthanc.port, ae_title=ORTHANC_AET, ext_neg=roles,
                               evt_handlers=[(evt.EVT_C_STORE, store)])
    assert association.is_established
    try:
        query = pydicom.Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.PatientID = exported["patient_id"]
        query.StudyInstanceUID = ""
        query.SeriesInstanceUID = ""
        query.SOPInstanceUID = ""
        found = []
        studies = {ds.StudyInstanceUID for ds in originals.values()}
        for study in studies:
            query.StudyInstanceUID = study
            found += [identifier for status, identifier in association.send_c_find(
                query, StudyRootQueryRetrieveInformationModelFind) if status and status.Status in (0xFF00, 0xFF01)]
        assert {ds.SOPInstanceUID for ds in found} == set(originals)
        for identifier in found:
            request = pydicom.Dataset()
            request.QueryRetrieveLevel = "IMAGE"
            request.StudyInstanceUID = identifier.StudyInstanceUID
            request.SeriesInstanceUID = identifier.SeriesInstanceUID
            request.SOPInstanceUID = identifier.SOPInstanceUID
            statuses = [status.Status for status, _ in association.send_c_get(
                request, StudyRootQueryRetrieveInformationModelGet) if status]
            assert statuses[-1] == 0x0000
    finally:
        association.release()
    assert set(received) == set(originals)
    for uid, original in originals.items():
        back = received[uid]
        assert back == original, f"{original.Modality} {uid}: values differ after the PACS round trip"


def _error_lines(capsys) -> list[str]:
    """The error lines of a run (stderr also carries the progress bar)."""
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("luprrt ")]


def test_command_line_bad_input_gets_one_line_errors(exported, tmp_path, capsys):
    patient, out = exported["patient"], exported["out"]
    spect2 = patient / "cycle2" / "spect_24h" / "spect.dcm"
    # A SEG drawn on cycle 1's CT given with cycle 2's CT (another frame of reference).
    code = cli.main(["lobequant", "--ct", str(patient / "cycle2" / "ct"), "--seg", str(out / "cycle1" / "seg.dcm"),
                     "--spect", f"2@24:{spect2}", "--ia-side", "right", "--out", str(tmp_path / "tn")])
    error = _error_lines(capsys)
    assert code == 2 and len(error) == 1
    assert "the SEG is on frame of reference" in error[0] and "drawn on another scan" in error[0]
    # A SEG segment whose code names no LuPRRT role: named in the error, or given with --segment-role.
    ds = pydicom.dcmread(out / "cycle1" / "seg.dcm")
    body = next(item for item in ds.SegmentSequence if item.SegmentLabel == "body")
    body.SegmentedPropertyTypeCodeSequence[0].CodeValue = "41216001"
    body.SegmentedPropertyTypeCodeSequence[0].CodeMeaning = "Prostate"
    ds.save_as(tmp_path / "odd.dcm")
    spect1 = patient / "cycle1" / "spect_24h" / "spect.dcm"
    args = ["lobequant", "--ct", str(patient / "ct"), "--seg", str(tmp_path / "odd.dcm"), "--spect",
            f"1@24:{spect1}", "--ia-side", "right", "--no-uptake", "--out", str(tmp_path / "odd")]
    assert cli.main(args) == 2
    error = _error_lines(capsys)
    assert len(error) == 1 and f"segment {body.SegmentNumber} ('body') has type 'Prostate'" in error[0]
    assert cli.main([*args, "--segment-role", f"{body.SegmentNumber}=body"]) == 0
    assert (tmp_path / "odd" / "lobequant_tn.csv").is_file()
    capsys.readouterr()
    # export-dicom: a missing results folder, a malformed --send, an occupied output folder.
    for bad in (["export-dicom", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")],
                ["export-dicom", str(exported["results"]), "--out", str(tmp_path / "y"), "--send", "pacs"],
                ["export-dicom", str(exported["results"]), "--out", str(out), "--patient", str(patient)]):
        assert cli.main(bad) == 2
        error = _error_lines(capsys)
        assert len(error) == 1 and error[0].startswith("luprrt export-dicom: error: "), error
