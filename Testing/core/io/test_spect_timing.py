"""A Lu-177 SPECT exported in the PET Image Storage class: voxels brought to the acquisition time."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from luprrt.io import read_image, spect_activity_at_acquisition, write_volume
from luprrt.io.dicom_write import DicomPatient, new_uid, write_pet_series
from luprrt.workflows.calibrate import quantitative_spect

ACQUISITION = datetime(2024, 3, 9, 11, 0, 0)
HOURS_AFTER_INJECTION = 96.0
INJECTION = ACQUISITION - timedelta(hours=HOURS_AFTER_INJECTION)
# Lu-177 half-life 6.647 d = 159.528 h (ICRP Publication 107), typed here, not taken from luprrt.physics.
LU177_HALF_LIFE_S = 159.528 * 3600.0
DECAY_96_H = math.exp(-math.log(2.0) * HOURS_AFTER_INJECTION / 159.528)  # 0.6587


def _concentration() -> sitk.Image:
    values = np.linspace(500.0, 80_000.0, 12 * 10 * 8, dtype=np.float32).reshape(8, 10, 12)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((4.42, 4.42, 4.42))
    image.SetOrigin((-30.0, 12.5, 201.0))
    return image


def _lu177_pet_export(folder, stored: sitk.Image, decay_correction: str) -> None:
    """A PET-stored Lu-177 SPECT as some quantitative SPECT software exports it."""
    paths = write_pet_series(stored, folder, patient=DicomPatient(patient_id="LUPRRT-T02", weight_kg=70.0),
                             study_uid=new_uid(), frame_of_reference_uid=new_uid(), acquisition_datetime=ACQUISITION,
                             injection_datetime=INJECTION, injected_activity_mbq=7400.0, radionuclide="F-18",
                             series_description="Lu-177 SPECT (PET storage)")
    for path in paths:
        ds = pydicom.dcmread(path)
        item = ds.RadiopharmaceuticalInformationSequence[0]
        item.RadionuclideHalfLife = f"{LU177_HALF_LIFE_S:.1f}"
        item.RadionuclideCodeSequence[0].CodeMeaning = "^177^Lutetium"
        item.Radiopharmaceutical = "Lu-177 DOTATATE"
        ds.DecayCorrection = decay_correction
        ds.save_as(path)


def test_spect_decay_corrected_to_injection_is_decayed_back_to_the_scan(tmp_path):
    at_scan = _concentration()
    at_injection = sitk.Cast(at_scan / DECAY_96_H, sitk.sitkFloat32)  # what an ADMIN export stores
    _lu177_pet_export(tmp_path / "spect", at_injection, "ADMIN")
    before = {p.name: p.read_bytes() for p in (tmp_path / "spect").iterdir()}

    spect = quantitative_spect(tmp_path / "spect", None, None)

    assert spect.hours_post_injection == pytest.approx(HOURS_AFTER_INJECTION)
    np.testing.assert_allclose(sitk.GetArrayFromImage(spect.image), sitk.GetArrayFromImage(at_scan), rtol=2e-3)
    assert any("decay corrected to ADMIN" in w for w in spect.warnings)
    assert {p.name: p.read_bytes() for p in (tmp_path / "spect").iterdir()} == before


def test_spect_corrected_to_its_series_start_is_left_as_it_is(tmp_path):
    at_scan = _concentration()
    _lu177_pet_export(tmp_path / "spect", at_scan, "START")

    spect = quantitative_spect(tmp_path / "spect", None, None)

    np.testing.assert_allclose(sitk.GetArrayFromImage(spect.image), sitk.GetArrayFromImage(at_scan), rtol=2e-3)
    assert not any("decay corrected" in w for w in spect.warnings)


def test_a_pet_of_another_radionuclide_is_refused_as_spect(tmp_path):
    write_pet_series(_concentration(), tmp_path / "fdg", patient=DicomPatient(patient_id="P", weight_kg=70.0),
                     study_uid=new_uid(), frame_of_reference_uid=new_uid(), acquisition_datetime=ACQUISITION,
                     injection_datetime=ACQUISITION - timedelta(hours=1), injected_activity_mbq=250.0,
                     radionuclide="F-18")
    with pytest.raises(ValueError, match=r"fdg: a PET image of \^18\^Fluorine \(half-life 1\.83 h\), not a Lu-177 "
                                         r"SPECT; give the quantitative Lu-177 SPECT"):
        quantitative_spect(tmp_path / "fdg", None, None)


def test_admin_correction_without_an_injection_time_is_refused(tmp_path):
    _lu177_pet_export(tmp_path / "spect", _concentration(), "ADMIN")
    spect = read_image(tmp_path / "spect")
    spect.injection_datetime = None
    with pytest.raises(ValueError, match="decay corrected to ADMIN but the injection or acquisition date-time is "
                                         "missing"):
        spect_activity_at_acquisition(spect)


def test_a_volume_is_taken_as_activity_at_acquisition(tmp_path):
    path = write_volume(_concentration(), tmp_path / "spect.nrrd", units="Bq/mL")
    volume = read_image(path)
    assert spect_activity_at_acquisition(volume) is volume
