"""DICOM Structured Report, TID 1500 Measurement Report, written and read with highdicom.

One report per imaging visit holds measurement groups (:class:`SrGroup`):

* groups about a segment of the visit's DICOM SEG (TID 1411 Volumetric ROI): its tracking
  identifier and tracking UID (the SEG's, constant across visits), the referenced segment and
  the CT series it was drawn on, finding type and site, an optional group method (the dose
  method) and time point (the SPECT's hours after administration);
* groups about the patient (TID 1501, no region): the IA/IV lobe T/N ratio, cumulative organ
  doses.

Each measurement (:class:`SrMeasurement`) is a quantity of :data:`luprrt.io.dicom_codes.QUANTITIES`
(concept, UCUM unit, derivation) with its value, an optional method (e.g. recovery corrected)
and the image it was measured on (the SPECT). :func:`read_measurement_report` reads a report
back into the same records and refuses quantities LuPRRT does not know with a one-line error.

References
----------
DICOM PS3.16 TID 1500, 1411, 1501, 1502 (time point context), TID 300 (measurement);
PS3.3 A.35.13 (Comprehensive 3D SR IOD).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from .. import __version__
from ..segments import Code
from ._dicom_out import PATIENT_STUDY_KEYS, atomic_dicom_write, checked_output_file
from .dicom_codes import (
    LESION_ROLES,
    NUCLEAR_MEDICINE_PROCEDURE,
    PRIVATE_SCHEME,
    PRIVATE_SCHEME_NAME,
    PRIVATE_SCHEME_VERSION,
    QUANTITIES,
    RECIST_ROLE,
    quantity_of,
)
from .dicom_seg import MANUFACTURER

COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"


@dataclass
class SrMeasurement:
    """One number: a LuPRRT quantity key, its value, an optional method and source image."""

    quantity: str
    value: float
    method: Code | None = None
    source_image: pydicom.Dataset | None = None

    def __post_init__(self):
        if self.quantity not in QUANTITIES:
            raise ValueError(f"unknown SR quantity {self.quantity!r}; expected one of {sorted(QUANTITIES)}")


@dataclass
class SrGroup:
    """A measurement group: one region (a SEG segment) or the whole patient (``segment_number`` None)."""

    tracking_id: str
    tracking_uid: str
    measurements: list[SrMeasurement] = field(default_factory=list)
    segment_number: int | None = None
    finding_type: Code | None = None
    finding_site: Code | None = None
    method: Code | None = None
    time_point: str | None = None
    lesion_role: str | None = None


def write_measurement_report(groups: Sequence[SrGroup], path: str | Path, *, seg: pydicom.Dataset,
                             ct: Sequence[pydicom.Dataset], other_evidence: Sequence[pydicom.Dataset] = (),
                             series_description: str = "LuPRRT measurement report", series_number: int = 301,
                             overwrite: bool = False) -> Path:
    """Write a Comprehensive 3D SR holding a TID 1500 Measurement Report of ``groups``.

    Parameters
    ----------
    groups : measurement groups (non-finite values are left out, not written as numbers)
    seg : the DICOM SEG the region groups reference (its segment numbers)
    ct : the CT series the SEG was drawn on (source of the segmentation)
    other_evidence : further images measured on (the SPECTs), listed as evidence
    """
    import highdicom as hd

    path = checked_output_file(path, overwrite)
    coded = _coded(hd)
    source_series = hd.sr.SourceSeriesForSegmentation(ct[0].SeriesInstanceUID)
    imaging = []
    for group in groups:
        measurements = [_measurement(hd, m) for m in group.measurements if math.isfinite(m.value)]
        qualitative = []
        if group.lesion_role:
            qualitative.append(hd.sr.QualitativeEvaluation(coded(RECIST_ROLE), coded(LESION_ROLES[group.lesion_role])))
        common = {
            "tracking_identifier": hd.sr.TrackingIdentifier(uid=group.tracking_uid, identifier=group.tracking_id),
            "finding_type": coded(group.finding_type) if group.finding_type else None,
            "finding_sites": [hd.sr.FindingSite(coded(group.finding_site))] if group.finding_site else None,
            "method": coded(group.method) if group.method else None,
            "time_point_context": hd.sr.TimePointContext(time_point=group.time_point) if group.time_point else None,
            "measurements": measurements or None,
            "qualitative_evaluations": qualitative or None,
        }
        if group.segment_number is None:
            imaging.append(hd.sr.MeasurementsAndQualitativeEvaluations(**common))
        else:
            reference = hd.sr.ReferencedSegment(seg.SOPClassUID, seg.SOPInstanceUID, group.segment_number,
                                                source_series=source_series)
            imaging.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                referenced_segment=reference, **common))
    observer = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept("121007", "DCM", "Device"),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="LuPRRT", manufacturer_name=MANUFACTURER, model_name=f"LuPRRT {__version__}"))
    report = hd.sr.MeasurementReport(observation_context=hd.sr.ObservationContext(observer_device_context=observer),
                                     procedure_reported=coded(NUCLEAR_MEDICINE_PROCEDURE),
                                     imaging_measurements=imaging)
    document = _document(report, [seg, *other_evidence], series_number, series_description)
    atomic_dicom_write(document, path)
    return path


def _document(report, evidence: Sequence[pydicom.Dataset], series_number: int,
              series_description: str) -> pydicom.Dataset:
    """The Comprehensive 3D SR document around highdicom's TID 1500 content.

    Built here rather than with ``highdicom.sr.Comprehensive3DSR``, which deep-copies and
    re-parses the whole content tree (18 s for a visit's 400 measurements on 2 busy cores).
    Modules: Patient, General Study, SR Document Series, General Equipment, SR Document General
    (evidence: the SEG and SPECTs referenced), SR Document Content, SOP Common (PS3.3 A.35.13).
    """
    from datetime import datetime

    from pydicom.uid import generate_uid

    from ._dicom_out import new_file_dataset

    first = evidence[0]
    ds = new_file_dataset(COMPREHENSIVE_3D_SR)
    for key in PATIENT_STUDY_KEYS:
        setattr(ds, key, first.get(key, ""))
    now = datetime.now()
    ds.Modality = "SR"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    ds.ReferencedPerformedProcedureStepSequence = []
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = "LuPRRT"
    ds.SoftwareVersions = __version__
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = f"{now:%Y%m%d}", f"{now:%H%M%S}"
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.PerformedProcedureCodeSequence = []
    studies: dict[str, dict[str, list]] = {}
    for item in evidence:
        studies.setdefault(item.StudyInstanceUID, {}).setdefault(item.SeriesInstanceUID, []).append(item)
    ds.CurrentRequestedProcedureEvidenceSequence = [_evidence(study, series) for study, series in studies.items()]
    for element in report[0]:
        ds[element.tag] = element
    scheme = pydicom.Dataset()
    scheme.CodingSchemeDesignator = PRIVATE_SCHEME
    scheme.CodingSchemeName = PRIVATE_SCHEME_NAME
    scheme.CodingSchemeVersion = PRIVATE_SCHEME_VERSION
    scheme.CodingSchemeResponsibleOrganization = "LuPRRT developers"
    ds.CodingSchemeIdentificationSequence = [scheme]
    return ds


def _evidence(study_uid: str, series: dict[str, list]) -> pydicom.Dataset:
    study = pydicom.Dataset()
    study.StudyInstanceUID = study_uid
    study.ReferencedSeriesSequence = []
    for series_uid, items in series.items():
        entry = pydicom.Dataset()
        entry.SeriesInstanceUID = series_uid
        entry.ReferencedSOPSequence = []
        for item in items:
            reference = pydicom.Dataset()
            reference.ReferencedSOPClassUID = item.SOPClassUID
            reference.ReferencedSOPInstanceUID = item.SOPInstanceUID
            entry.ReferencedSOPSequence.append(reference)
        study.ReferencedSeriesSequence.append(entry)
    return study


def _coded(hd):
    return lambda code: hd.sr.CodedConcept(code.value, code.scheme, code.meaning)


def _measurement(hd, measurement: SrMeasurement):
    coded = _coded(hd)
    quantity = QUANTITIES[measurement.quantity]
    images = None
    if measurement.source_image is not None:
        images = [hd.sr.SourceImageForMeasurement.from_source_image(measurement.source_image)]
    return hd.sr.Measurement(name=coded(quantity.concept), value=float(measurement.value), unit=coded(quantity.unit),
                             derivation=coded(quantity.derivation) if quantity.derivation else None,
                             method=coded(measurement.method) if measurement.method else None,
                             referenced_images=images)


@dataclass
class SrRecord:
    """One number read back from a report, with the group it belongs to."""

    tracking_id: str
    tracking_uid: str
    segment_number: int | None
    quantity: str
    value: float
    group_method: str | None
    method: str | None
    time_point: str | None
    source_sop_instance_uid: str | None


def read_measurement_report(path: str | Path) -> tuple[list[SrRecord], dict[str, str]]:
    """The numbers of a TID 1500 report as :class:`SrRecord` rows, and the lesion roles by tracking UID.

    The content tree is walked with pydicom (TID 1500 > Imaging Measurements > Measurement
    Group > NUM, with their concept modifiers); values are the stored 64-bit floats where
    present, else the decimal strings. Raises a ValueError naming the group and the code when
    a quantity (concept, unit, derivation) is not one of :data:`~luprrt.io.dicom_codes.QUANTITIES`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DICOM SR not found: {path}")
    try:
        ds = pydicom.dcmread(path)
    except pydicom.errors.InvalidDicomError as error:
        raise ValueError(f"{path}: not a DICOM file ({error})") from error
    if ds.get("Modality") != "SR" or "ContentSequence" not in ds:
        raise ValueError(f"{path}: not a DICOM Structured Report (modality {ds.get('Modality')!r})")
    templates = [str(t.TemplateIdentifier) for t in ds.get("ContentTemplateSequence", [])]
    measurements = [item for item in ds.ContentSequence if _concept(item) == ("126010", "DCM")]
    if templates != ["1500"] or len(measurements) != 1:
        raise ValueError(f"{path}: not a TID 1500 Measurement Report (template {templates or 'none'})")
    records, roles = [], {}
    role_codes = {code.value: role for role, code in LESION_ROLES.items()}
    for group in measurements[0].get("ContentSequence", []):
        if _concept(group) != ("125007", "DCM"):
            continue
        context = _group_context(group)
        for item in group.get("ContentSequence", []):
            if item.ValueType == "CODE" and _concept(item) == (RECIST_ROLE.value, RECIST_ROLE.scheme):
                value = item.ConceptCodeSequence[0].CodeValue
                if value in role_codes:
                    roles[context["uid"]] = role_codes[value]
            if item.ValueType == "NUM" and item.get("MeasuredValueSequence"):
                records.append(_record(item, context, path))
    return records, roles


def _concept(item) -> tuple[str, str] | None:
    names = item.get("ConceptNameCodeSequence")
    return (str(names[0].CodeValue), str(names[0].CodingSchemeDesignator)) if names else None


def _group_context(group) -> dict:
    context = {"id": "", "uid": "", "segment": None, "method": None, "time_point": None}
    for item in group.get("ContentSequence", []):
        concept = _concept(item)
        if concept == ("112039", "DCM"):
            context["id"] = str(item.TextValue)
        elif concept == ("112040", "DCM"):
            context["uid"] = str(item.UID)
        elif concept == ("121191", "DCM"):
            context["segment"] = int(item.ReferencedSOPSequence[0].ReferencedSegmentNumber)
        elif concept == ("370129005", "SCT"):
            context["method"] = str(item.ConceptCodeSequence[0].CodeValue)
        elif concept == ("C2348792", "UMLS"):  # Time Point, TID 1502
            context["time_point"] = str(item.TextValue)
    return context


def _record(item, context: dict, path: Path) -> SrRecord:
    measured = item.MeasuredValueSequence[0]
    name, unit = item.ConceptNameCodeSequence[0], measured.MeasurementUnitsCodeSequence[0]
    derivation = method = source = None
    for modifier in item.get("ContentSequence", []):
        concept = _concept(modifier)
        if concept == ("121401", "DCM"):
            derivation = str(modifier.ConceptCodeSequence[0].CodeValue)
        elif concept == ("370129005", "SCT"):
            method = str(modifier.ConceptCodeSequence[0].CodeValue)
        elif modifier.ValueType == "IMAGE":
            source = str(modifier.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
    quantity = quantity_of(str(name.CodeValue), str(name.CodingSchemeDesignator), str(unit.CodeValue), derivation)
    if quantity is None:
        raise ValueError(f"{path}: group {context['id']!r}: quantity {name.CodeMeaning!r} "
                         f"({name.CodingSchemeDesignator} {name.CodeValue}, unit {unit.CodeValue}) is not one "
                         "LuPRRT reads")
    value = float(measured.FloatingPointValue) if "FloatingPointValue" in measured else float(measured.NumericValue)
    return SrRecord(context["id"], context["uid"], context["segment"], quantity.key, value, context["method"],
                    method, context["time_point"], source)


