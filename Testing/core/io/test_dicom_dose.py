"""Dose maps as RT Dose and TIA maps as Parametric Maps: geometry, values and bad input.

The maps are anisotropic gradients on a grid whose slice axis runs against the row x column
normal, so the writer must reorder frames; values come back within half the RT Dose grid
scaling step (16-bit storage: max / 65000) and exactly for the float32 Parametric Map.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from luprrt.io import load_series, read_rt_dose, read_tia_map, write_rt_dose, write_tia_map
from luprrt.io.dicom_write import DicomPatient, new_uid, write_ct_series, write_nm_spect

pytest.importorskip("highdicom", reason="highdicom (the `dicom` extra) is not installed")

PATIENT = DicomPatient(patient_id="LUPRRT-DOSE-01")


def gradient(scale: float, flip_slices: bool = False) -> sitk.Image:
    k, j, i = np.meshgrid(np.arange(7), np.arange(9), np.arange(11), indexing="ij")
    image = sitk.GetImageFromArray((scale * (1.0 + 0.5 * i + 2.0 * j + 7.0 * k)).astype(np.float32))
    image.SetSpacing((4.42, 4.0, 3.5))
    image.SetOrigin((-20.3, 11.7, -40.1))
    if flip_slices:
        image.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))
    return image


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dose")
    study, frame = new_uid(), new_uid()
    write_ct_series(gradient(0.0), folder / "ct", patient=PATIENT, study_uid=study, frame_of_reference_uid=frame,
                    acquisition_datetime=datetime(2024, 5, 7, 10, 0))
    write_nm_spect(gradient(1000.0), folder / "spect.dcm", patient=PATIENT, study_uid=study,
                   frame_of_reference_uid=frame, acquisition_datetime=datetime(2024, 5, 7, 10, 0),
                   injection_datetime=datetime(2024, 5, 6, 10, 0), injected_activity_mbq=7400.0)
    ct, _ = load_series(folder / "ct", "CT")
    return ct, pydicom.dcmread(folder / "spect.dcm")


def same_voxels(a: sitk.Image, b: sitk.Image) -> sitk.Image:
    """``b`` resampled onto ``a`` (nearest): equal geometry gives identical voxels."""
    return sitk.Resample(b, a, sitk.Transform(), sitk.sitkNearestNeighbor, -1.0, sitk.sitkFloat64)


@pytest.mark.parametrize("flip", [False, True])
def test_rt_dose_keeps_geometry_and_values_to_half_a_scaling_step(sources, tmp_path, flip):
    _, spect = sources
    dose = gradient(0.01, flip_slices=flip)  # 0.01 .. 0.91 Gy
    path = write_rt_dose(dose, tmp_path / "rtdose.dcm", reference=spect, method="voxel S-value convolution")
    ds = pydicom.dcmread(path)
    assert (ds.Modality, ds.DoseUnits, ds.DoseType, ds.FrameOfReferenceUID) == (
        "RTDOSE", "GY", "PHYSICAL", spect.FrameOfReferenceUID)
    assert ds.DoseComment == "177Lu PRRT; voxel S-value convolution"
    back = read_rt_dose(path)
    values = sitk.GetArrayFromImage(same_voxels(dose, back))
    truth = sitk.GetArrayFromImage(dose).astype(np.float64)
    step = float(ds.DoseGridScaling)
    assert step == pytest.approx(truth.max() / 65000.0, rel=1e-6)
    assert np.abs(values - truth).max() <= step / 2 + 1e-12


def test_tia_parametric_map_is_exact_and_carries_its_unit(sources, tmp_path):
    ct, spect = sources
    tia = gradient(2.5e5, flip_slices=True)  # Bq h/mL
    path = write_tia_map(tia, tmp_path / "tia.dcm", ct=ct, spects=[spect])
    back = read_tia_map(path)
    assert np.array_equal(sitk.GetArrayFromImage(same_voxels(tia, back)), sitk.GetArrayFromImage(tia))
    mapping = pydicom.dcmread(path).SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert mapping.MeasurementUnitsCodeSequence[0].CodeValue == "Bq.h/ml"
    assert mapping.QuantityDefinitionSequence[0].ConceptCodeSequence[0].CodeValue == "TIA"


def test_bad_dose_maps_are_refused(sources, tmp_path):
    _, spect = sources
    negative = gradient(-0.01)
    with pytest.raises(ValueError, match=r"dose map has negative values .* an absorbed dose is >= 0"):
        write_rt_dose(negative, tmp_path / "neg.dcm", reference=spect, method="x")
    with pytest.raises(ValueError, match="no Frame of Reference UID"):
        write_rt_dose(gradient(0.01), tmp_path / "nofor.dcm", reference=pydicom.Dataset(), method="x")
    assert not (tmp_path / "neg.dcm").exists() and not (tmp_path / "nofor.dcm").exists()
