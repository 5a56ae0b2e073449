"""Files in and out: DICOM (CT, NM SPECT, PET), volumes with units, Slicer segmentations.

Modules
-------
checks       refuse activity images that cannot be quantified (NaN, all zero, offset)
dicom        read CT, NM (SPECT in Bq/mL, or counts with a calibration) and PET series, with
             the vendor traps of real files handled and timing tags checked
dicom_write  write synthetic CT, NM and PET series as real DICOM (the sample patient)
volumes      NRRD / NIfTI volumes whose units travel in the header (Bq/mL, Gy, Bq h/mL, HU)
seg_nrrd     Slicer's ``.seg.nrrd`` with DICOM terminology and the LuPRRT tags

Every reader returns geometry-aware SimpleITK images; a :class:`QuantitativeImage` adds
the units and the timing (acquisition, injection, activity) that quantification needs.
"""

from .checks import check_activity_image
from .dicom import read_ct_series, read_image, read_nm_spect, read_pet_series
from .dicom_write import (
    PET_RADIONUCLIDES,
    DicomPatient,
    new_uid,
    write_ct_series,
    write_nm_spect,
    write_pet_series,
)
from .seg_nrrd import read_seg_nrrd, write_seg_nrrd
from .volumes import (
    UNITS,
    UNITS_KEY,
    VOLUME_SUFFIXES,
    PetInfo,
    QuantitativeImage,
    canonical_units,
    read_volume,
    write_volume,
)

__all__ = [
    "PET_RADIONUCLIDES",
    "UNITS",
    "UNITS_KEY",
    "VOLUME_SUFFIXES",
    "DicomPatient",
    "PetInfo",
    "QuantitativeImage",
    "canonical_units",
    "check_activity_image",
    "new_uid",
    "read_ct_series",
    "read_image",
    "read_nm_spect",
    "read_pet_series",
    "read_seg_nrrd",
    "read_volume",
    "write_ct_series",
    "write_nm_spect",
    "write_pet_series",
    "write_seg_nrrd",
    "write_volume",
]
