"""Files in and out: DICOM (CT, NM SPECT, PET), volumes with units, Slicer segmentations.

Modules
-------
checks       refuse activity images that cannot be quantified (NaN, all zero, offset)
dicom        read CT, NM (SPECT in Bq/mL, or counts with a calibration) and PET series, with
             the vendor traps of real files handled and timing tags checked
dicom_write  write synthetic CT, NM and PET series as real DICOM (the sample patient)
volumes      NRRD / NIfTI volumes whose units travel in the header (Bq/mL, Gy, Bq h/mL, HU)
seg_nrrd     Slicer's ``.seg.nrrd`` with DICOM terminology and the LuPRRT tags
dicom_seg    DICOM SEG written with highdicom (LuPRRT codes, tracking UIDs) and read as input
dicom_sr     TID 1500 measurement reports (highdicom), written and read back
dicom_codes  the coded vocabulary of the reports (standard codes, LuPRRT's private scheme)
dicom_dose   dose maps as RT Dose (Gy), TIA maps as Parametric Maps (Bq h/mL)
dicom_net    C-STORE of written objects to a PACS (pynetdicom)
spect_timing a SPECT's voxels as the activity at its acquisition (PET-stored exports, DecayCorrection)

Every reader returns geometry-aware SimpleITK images; a :class:`QuantitativeImage` adds
the units and the timing (acquisition, injection, activity) that quantification needs.
"""

from ._dicom_out import load_series
from .checks import check_activity_image, check_one_patient
from .dicom import read_ct_series, read_image, read_nm_spect, read_patient_id, read_pet_series
from .dicom_codes import DOSE_METHODS, QUANTITIES, RECIST_1_1, RECOVERY_CORRECTED
from .dicom_dose import read_rt_dose, read_tia_map, write_rt_dose, write_tia_map
from .dicom_net import parse_host_port, send_files
from .dicom_seg import read_dicom_seg, read_segmentation_file, tracking_id, tracking_uid, write_dicom_seg
from .dicom_sr import SrGroup, SrMeasurement, SrRecord, read_measurement_report, write_measurement_report
from .dicom_write import (
    PET_RADIONUCLIDES,
    DicomPatient,
    new_uid,
    write_ct_series,
    write_nm_spect,
    write_pet_series,
)
from .seg_nrrd import read_seg_nrrd, write_seg_nrrd
from .spect_timing import spect_activity_at_acquisition
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
    "DOSE_METHODS",
    "PET_RADIONUCLIDES",
    "QUANTITIES",
    "RECIST_1_1",
    "RECOVERY_CORRECTED",
    "UNITS",
    "UNITS_KEY",
    "VOLUME_SUFFIXES",
    "DicomPatient",
    "PetInfo",
    "QuantitativeImage",
    "SrGroup",
    "SrMeasurement",
    "SrRecord",
    "canonical_units",
    "check_activity_image",
    "check_one_patient",
    "load_series",
    "new_uid",
    "parse_host_port",
    "read_ct_series",
    "read_dicom_seg",
    "read_image",
    "read_measurement_report",
    "read_nm_spect",
    "read_patient_id",
    "read_pet_series",
    "read_rt_dose",
    "read_seg_nrrd",
    "read_segmentation_file",
    "read_tia_map",
    "read_volume",
    "send_files",
    "spect_activity_at_acquisition",
    "tracking_id",
    "tracking_uid",
    "write_ct_series",
    "write_dicom_seg",
    "write_measurement_report",
    "write_nm_spect",
    "write_pet_series",
    "write_rt_dose",
    "write_seg_nrrd",
    "write_tia_map",
    "write_volume",
]
