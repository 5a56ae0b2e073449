"""Property-based tests of the DICOM readers (hypothesis): damaged headers end in a read or a clear error.

Starting from valid NM (SPECT), CT and PET files, each example removes a random subset of
the tags the readers use, perturbs values (empty, negative, zero, NaN, huge, text) and swaps
value representations. Whatever happens, the reader must either return an image or raise
ValueError / OSError naming the file (what the command line turns into its one-line error),
never another exception, and the files must be byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataelem import DataElement

from luprrt.io import read_image
from luprrt.io.dicom_write import DicomPatient, new_uid, write_ct_series, write_nm_spect, write_pet_series

ACQUISITION = datetime(2024, 3, 5, 10, 30)
PATIENT = DicomPatient(patient_id="PROP-01", weight_kg=70.0)

# Tags the readers look at (top level, or in the first item of the named sequence).
TOP_TAGS = ["ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing", "SpacingBetweenSlices",
            "SliceThickness", "NumberOfFrames", "SliceVector", "Rows", "Columns", "RescaleSlope", "RescaleIntercept",
            "Units", "ImageType", "AcquisitionDate", "AcquisitionTime", "AcquisitionDateTime", "SeriesDate",
            "SeriesTime", "SeriesInstanceUID", "SOPClassUID", "PatientWeight", "DecayCorrection", "BitsAllocated",
            "PixelRepresentation", "DetectorInformationSequence", "RadiopharmaceuticalInformationSequence",
            "RotationInformationSequence"]
ITEM_TAGS = {"RadiopharmaceuticalInformationSequence": ["RadionuclideTotalDose", "RadionuclideHalfLife",
                                                         "RadiopharmaceuticalStartDateTime",
                                                         "RadiopharmaceuticalStartTime"],
             "DetectorInformationSequence": ["ImagePositionPatient", "ImageOrientationPatient"]}
BAD_VALUES = ["", "-1", "0", "NaN", "1e308", "abc", "2024-13-45", "999999", "\\".join(["1"] * 7), "-0.0"]
# Value representations to force onto an element (its value rewritten as text).
WRONG_VRS = ["LO", "DS", "IS", "SH", "UN", "DA", "TM"]


def _tiny(values_scale: float) -> sitk.Image:
    z, y, x = np.meshgrid(np.arange(4), np.arange(6), np.arange(5), indexing="ij")
    image = sitk.GetImageFromArray((values_scale * (1 + x + 2 * y + 3 * z)).astype(np.float32))
    image.SetSpacing((4.0, 4.0, 5.0))
    image.SetOrigin((-10.0, -12.0, 30.0))
    return image


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("dicom_originals")
    study, frame = new_uid(), new_uid()
    nm = write_nm_spect(_tiny(1000.0), folder / "nm" / "spect.dcm", patient=PATIENT, study_uid=study,
                        frame_of_reference_uid=frame, acquisition_datetime=ACQUISITION,
                        injection_datetime=ACQUISITION - timedelta(hours=24), injected_activity_mbq=7400.0)
    write_ct_series(_tiny(10.0), folder / "ct", patient=PATIENT, study_uid=study, frame_of_reference_uid=frame,
                    acquisition_datetime=ACQUISITION)
    write_pet_series(_tiny(500.0), folder / "pet", patient=PATIENT, study_uid=study, frame_of_reference_uid=frame,
                     acquisition_datetime=ACQUISITION, injection_datetime=ACQUISITION - timedelta(hours=1),
                     injected_activity_mbq=250.0, radionuclide="F-18")
    return {"NM": nm.parent, "CT": folder / "ct", "PT": folder / "pet"}


damage = st.fixed_dictionaries({
    "remove": st.lists(st.sampled_from(TOP_TAGS), max_size=4, unique=True),
    "remove_in_item": st.lists(st.sampled_from([(s, t) for s, tags in ITEM_TAGS.items() for t in tags]),
                               max_size=3, unique=True),
    "perturb": st.lists(st.tuples(st.sampled_from(TOP_TAGS[:22]), st.sampled_from(BAD_VALUES)), max_size=3),
    "perturb_in_item": st.lists(st.tuples(st.sampled_from([(s, t) for s, tags in ITEM_TAGS.items() for t in tags]),
                                          st.sampled_from(BAD_VALUES)), max_size=2),
    "wrong_vr": st.lists(st.tuples(st.sampled_from(TOP_TAGS[:22]), st.sampled_from(WRONG_VRS)), max_size=2),
    "files": st.sampled_from(["first", "all"]),
})


def _set_text(ds: pydicom.Dataset, keyword: str, text: str, vr: str | None = None) -> None:
    """Put raw text into an element (any VR), as a badly written file would hold it."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    element = DataElement(tag, vr or pydicom.datadict.dictionary_VR(tag), text.encode("latin-1"),
                          is_undefined_length=False)
    element.value = text.encode("latin-1") if (vr or "") == "UN" else text
    ds[tag] = element


def _damage(ds: pydicom.Dataset, plan: dict) -> None:
    for keyword in plan["remove"]:
        if keyword in ds:
            delattr(ds, keyword)
    for sequence, keyword in plan["remove_in_item"]:
        items = ds.get(sequence) or []
        if len(items) and keyword in items[0]:
            delattr(items[0], keyword)
    for (sequence, keyword), text in plan["perturb_in_item"]:
        items = ds.get(sequence) or []
        if len(items):
            _set_text(items[0], keyword, text)
    for keyword, text in plan["perturb"]:
        if pydicom.datadict.dictionary_VR(pydicom.datadict.tag_for_keyword(keyword)) != "SQ":
            _set_text(ds, keyword, text)
    for keyword, vr in plan["wrong_vr"]:
        if keyword in ds and pydicom.datadict.dictionary_VR(pydicom.datadict.tag_for_keyword(keyword)) != "SQ":
            value = ds[keyword].value
            text = "\\".join(str(v) for v in value) if isinstance(value, (list, pydicom.multival.MultiValue)) \
                else str(value)
            _set_text(ds, keyword, text, vr)


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("kind", ["NM", "CT", "PT"])
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plan=damage)
def test_damaged_headers_are_read_or_refused_clearly(originals, kind, plan):
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / kind
        shutil.copytree(originals[kind], folder)
        files = sorted(folder.iterdir())
        for path in files[:1] if plan["files"] == "first" else files:
            ds = pydicom.dcmread(path)
            try:
                _damage(ds, plan)
                ds.save_as(path)
            except (ValueError, TypeError, OverflowError, OSError, AttributeError, struct.error):
                return  # pydicom refuses to write this damage: no file, nothing to read
        before = _hashes(folder)
        try:
            image = read_image(folder)
        except (ValueError, OSError) as error:
            message = str(error)
            assert message and "\n" not in message.strip()
            assert str(folder) in message or any(p.name in message for p in files), message
        else:
            assert image.units in ("Bq/mL", "HU")
            # A file whose damage hides it (no SOP class) leaves a shorter, still uniform stack.
            assert image.image.GetSize()[:2] == (5, 6) and image.image.GetSize()[2] in (3, 4)
        assert _hashes(folder) == before
