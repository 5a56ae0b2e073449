"""TID 1500 measurement reports: written with highdicom, read back value for value; bad input.

The report references a two-segment SEG on a small CT and one NM SPECT; its numbers have
17 significant digits so a value stored as a rounded decimal string would be caught (the
reader returns the 64-bit float highdicom stores next to the decimal string).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from luprrt.io import (
    DOSE_METHODS,
    RECIST_1_1,
    SrGroup,
    SrMeasurement,
    load_series,
    read_measurement_report,
    tracking_uid,
    write_dicom_seg,
    write_measurement_report,
)
from luprrt.io.dicom_write import DicomPatient, new_uid, write_ct_series, write_nm_spect
from luprrt.segments import Code, Segmentation, SegmentTags

hd = pytest.importorskip("highdicom", reason="highdicom (the `dicom` extra) is not installed")

PATIENT = DicomPatient(patient_id="LUPRRT-SR-01")
VALUES = {"volume_ml": 12.693580536123457, "longest_diameter_mm": 34.409301068170512,
          "mean_bq_per_ml": 656156.16985544213, "tn_mean": 7.5205327822551643, "dose_gy": 3.2718563748291736}


@pytest.fixture(scope="module")
def evidence(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sr")
    image = sitk.GetImageFromArray(np.zeros((6, 10, 12), dtype=np.float32))
    image.SetSpacing((4.0, 4.0, 5.0))
    study, frame = new_uid(), new_uid()
    write_ct_series(image, folder / "ct", patient=PATIENT, study_uid=study, frame_of_reference_uid=frame,
                    acquisition_datetime=datetime(2024, 5, 6, 10, 0))
    write_nm_spect(image + 1000.0, folder / "spect.dcm", patient=PATIENT, study_uid=study,
                   frame_of_reference_uid=frame, acquisition_datetime=datetime(2024, 5, 7, 10, 0),
                   injection_datetime=datetime(2024, 5, 6, 10, 0), injected_activity_mbq=7400.0)
    seg = Segmentation.empty_like(image)
    mask = np.zeros((6, 10, 12), dtype=bool)
    mask[1:4, 2:6, 3:7] = True
    seg.add_segment(mask, SegmentTags("lesion", side="right", lesion_id="L01"))
    seg.add_segment(~mask, SegmentTags("liver"))
    write_dicom_seg(seg, folder / "ct", folder / "seg.dcm")
    ct, _ = load_series(folder / "ct", "CT")
    return folder, ct, pydicom.dcmread(folder / "seg.dcm"), pydicom.dcmread(folder / "spect.dcm")


def groups(spect) -> list[SrGroup]:
    uid = tracking_uid(PATIENT.patient_id, "L01")
    return [
        SrGroup("L01", uid, [SrMeasurement("volume_ml", VALUES["volume_ml"]),
                             SrMeasurement("longest_diameter_mm", VALUES["longest_diameter_mm"], method=RECIST_1_1)],
                segment_number=1, finding_type=Code("SCT", "52988006", "Lesion"),
                finding_site=Code("SCT", "10200004", "Liver"), lesion_role="target"),
        SrGroup("L01", uid, [SrMeasurement("mean_bq_per_ml", VALUES["mean_bq_per_ml"], source_image=spect),
                             SrMeasurement("tn_mean", VALUES["tn_mean"], source_image=spect),
                             SrMeasurement("tn_max", float("nan"), source_image=spect)],
                segment_number=1, time_point="24 h after administration"),
        SrGroup("L01", uid, [SrMeasurement("dose_gy", VALUES["dose_gy"])], segment_number=1,
                method=DOSE_METHODS["voxel_s_value"]),
        SrGroup("IA/IV lobe T/N", tracking_uid(PATIENT.patient_id, "IA/IV lobe T/N"),
                [SrMeasurement("tn_mean_ia_over_iv", 1.4660884160582721, source_image=spect)]),
    ]


def test_numbers_come_back_exactly_with_their_context(evidence, tmp_path):
    _, ct, seg, spect = evidence
    path = write_measurement_report(groups(spect), tmp_path / "sr.dcm", seg=seg, ct=ct, other_evidence=[spect])
    records, roles = read_measurement_report(path)
    got = {(r.quantity, r.group_method, r.time_point): r for r in records}
    assert len(records) == 6  # the NaN T/N max is left out, not written as a number
    for key, value in VALUES.items():
        record = next(r for r in records if r.quantity == key)
        assert record.value == value, key  # float64 stored next to the 16-character decimal string
    assert got[("dose_gy", "VSV", None)].segment_number == 1
    assert got[("tn_mean", None, "24 h after administration")].source_sop_instance_uid == spect.SOPInstanceUID
    assert got[("tn_mean_ia_over_iv", None, None)].segment_number is None
    assert roles == {tracking_uid(PATIENT.patient_id, "L01"): "target"}
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert ds.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == "99LUPRRT"
    referenced = {r.ReferencedSOPInstanceUID for s in ds.CurrentRequestedProcedureEvidenceSequence
                  for series in s.ReferencedSeriesSequence for r in series.ReferencedSOPSequence}
    assert referenced == {seg.SOPInstanceUID, spect.SOPInstanceUID}


def iter_num_items(item):
    for child in item.get("ContentSequence", []):
        if child.ValueType == "NUM":
            yield child
        yield from iter_num_items(child)


def test_report_with_a_quantity_luprrt_does_not_know_is_refused(evidence, tmp_path):
    _, ct, seg, spect = evidence
    path = write_measurement_report(groups(spect), tmp_path / "sr.dcm", seg=seg, ct=ct, other_evidence=[spect])
    ds = pydicom.dcmread(path)
    # Rename the first measurement's concept to one LuPRRT never writes (SCT Area).
    first = next(iter_num_items(ds))
    first.ConceptNameCodeSequence[0].CodeValue = "42798000"
    first.ConceptNameCodeSequence[0].CodeMeaning = "Area"
    foreign = tmp_path / "foreign.dcm"
    ds.save_as(foreign)
    with pytest.raises(ValueError, match=r"group 'L01': quantity 'Area' \(SCT 42798000, unit ml\) is not one "
                                         r"LuPRRT reads"):
        read_measurement_report(foreign)


def test_unknown_quantity_key_and_non_sr_files_get_clear_errors(evidence):
    folder, _, _, _ = evidence
    with pytest.raises(ValueError, match="unknown SR quantity 'area_mm2'"):
        SrMeasurement("area_mm2", 1.0)
    with pytest.raises(ValueError, match=r"not a DICOM Structured Report|not a TID 1500"):
        read_measurement_report(folder / "seg.dcm")
