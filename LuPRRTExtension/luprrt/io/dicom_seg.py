"""DICOM Segmentation (SEG) objects: a tagged segmentation written with highdicom, and read back.

Written (:func:`write_dicom_seg`): one BINARY SEG per imaging visit on the grid of the CT it
was drawn on, referencing that CT series and its frame of reference. Every segment carries
the codes of :mod:`luprrt.segments` (the same as in ``.seg.nrrd`` files):

* Segmented Property Category and Type (SNOMED CT), laterality of lobes and kidneys as a
  Segmented Property Type Modifier (DICOM CID 244), the administration route that reached a
  lobe (IA/IV, DICOM CID 11: SCT 58100008 / 47625008) as a second type modifier;
* lesions and non-tumour liver: Anatomic Region = Liver with the side of the liver as its
  Anatomic Region Modifier;
* Tracking ID (the lesion id, or the segment id for organs) and Tracking UID from
  :func:`tracking_uid`, identical at every visit and cycle of a patient.

Read (:func:`read_dicom_seg`): any SEG (LuPRRT's own or another tool's, e.g. an AI model's
or dcmqi's) becomes a :class:`luprrt.segments.Segmentation` whose roles come from the codes;
segments with codes LuPRRT does not know take their role from ``roles`` or raise a one-line
error naming the segment. A SEG on another frame of reference than the CT is refused.

References
----------
DICOM PS3.3 A.51 (Segmentation IOD) and C.8.20 (Segmentation Image Module); PS3.16 CID 7150,
7151 (segmentation property categories and types), CID 244 (laterality), CID 11 (route of
administration); PS3.5 B.2 (UUID-derived UIDs, ISO/IEC 9834-8).
Bridge et al., "Highdicom: a Python library for standardized encoding of image annotations
and machine learning model outputs in pathology and radiology", J Digit Imaging
2022;35:1719-1737 (the library used here).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from .. import __version__
from ..grid import same_grid
from ..segments import ROUTE_CODES, Segmentation, SegmentTags, tags_from_codes
from ._dicom_out import atomic_dicom_write, checked_output_file, load_series, volume_images

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
# Namespace of LuPRRT tracking UIDs (a fixed random UUID): the version-5 UUID of
# "<patient id>/<tracking id>" in it, written as a UUID-derived UID "2.25.<integer>".
TRACKING_NAMESPACE = uuid.UUID("299c4012-dc9e-49ec-986b-e8340bb75ced")
MANUFACTURER = "LuPRRT"


def tracking_uid(patient_id: str, tracking_id: str) -> str:
    """The Tracking UID of a lesion or organ of a patient: the same at every visit and cycle.

    ``2.25.`` + the integer value of ``uuid5(TRACKING_NAMESPACE, f"{patient_id}/{tracking_id}")``
    (a UUID-derived UID, DICOM PS3.5 B.2): deterministic, so SEG and SR objects written at
    different cycles (or by different runs) give a lesion the same UID without a registry.
    """
    if not patient_id or not tracking_id:
        raise ValueError(f"a tracking UID needs a patient id and a tracking id, got {patient_id!r} and "
                         f"{tracking_id!r}")
    return f"2.25.{uuid.uuid5(TRACKING_NAMESPACE, f'{patient_id}/{tracking_id}').int}"


def tracking_id(tags: SegmentTags, segment_id: str) -> str:
    """Human-readable tracking identifier: the lesion id, or the segment id of an organ."""
    return tags.lesion_id or segment_id


def write_dicom_seg(segmentation: Segmentation, ct: str | Path | Sequence[pydicom.Dataset], path: str | Path, *,
                    series_description: str = "LuPRRT segmentation", series_number: int = 300,
                    algorithm_type: str = "SEMIAUTOMATIC", overwrite: bool = False) -> Path:
    """Write ``segmentation`` as a BINARY DICOM SEG referencing the CT it was drawn on.

    Parameters
    ----------
    segmentation : Segmentation
        Tagged segments on the CT grid (the grid of every layer must equal the CT's).
    ct : folder of the CT series, or its datasets
        Source images: patient, study and frame of reference are taken from them.
    path : output file; refused if it exists unless ``overwrite``
    algorithm_type : ``"MANUAL"``, ``"SEMIAUTOMATIC"`` or ``"AUTOMATIC"`` (DICOM Segment Algorithm Type)

    Returns
    -------
    Path
    """
    import highdicom as hd

    path = checked_output_file(path, overwrite)
    if not segmentation.segments:
        raise ValueError("the segmentation has no segments; nothing to write as DICOM SEG")
    datasets, ct_image = load_series(ct, "CT")
    if not same_grid(segmentation.reference, ct_image):
        raise ValueError(f"the segmentation grid (size {segmentation.reference.GetSize()}, spacing "
                         f"{segmentation.reference.GetSpacing()}) differs from the CT's (size {ct_image.GetSize()}, "
                         f"spacing {ct_image.GetSpacing()}); a DICOM SEG is written on the CT it was drawn on")
    patient_id = str(datasets[0].PatientID)
    masks = np.stack([segmentation.mask_array(s.segment_id) for s in segmentation.segments], axis=-1)
    descriptions = [_segment_description(hd, number, segment, patient_id, algorithm_type)
                    for number, segment in enumerate(segmentation.segments, start=1)]
    seg = hd.seg.Segmentation(
        source_images=datasets, pixel_array=masks.astype(np.uint8), segmentation_type="BINARY",
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=series_number,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER,
        manufacturer_model_name="LuPRRT", software_versions=__version__, device_serial_number="none",
        content_description=series_description[:64], content_label="LUPRRT_SEG")
    seg.SeriesDescription = series_description
    atomic_dicom_write(seg, path)
    return path


def _segment_description(hd, number: int, segment, patient_id: str, algorithm_type: str):
    tags = segment.tags
    coded = _coded_concept(hd)
    ident = tracking_id(tags, segment.segment_id)
    region = tags.anatomic_region()
    description = hd.seg.SegmentDescription(
        segment_number=number, segment_label=segment.name[:64],
        segmented_property_category=coded(tags.category_code()),
        segmented_property_type=coded(tags.type_code()),
        algorithm_type=algorithm_type,
        algorithm_identification=None if algorithm_type == "MANUAL" else hd.AlgorithmIdentificationSequence(
            name="LuPRRT", version=__version__, family=hd.sr.CodedConcept("123109", "DCM", "Manual Processing")),
        tracking_id=ident, tracking_uid=tracking_uid(patient_id, ident),
        anatomic_regions=[coded(region)] if region else None,
        display_color=hd.color.CIELabColor.from_rgb(*(round(255 * c) for c in segment.color)))
    modifiers = [code for code in (tags.type_modifier(), _route_code(tags)) if code is not None]
    if modifiers:
        description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
            coded(code) for code in modifiers]
    region_modifier = tags.anatomic_region_modifier()
    if region_modifier is not None:
        description.AnatomicRegionSequence[0].AnatomicRegionModifierSequence = [coded(region_modifier)]
    return description


def _route_code(tags: SegmentTags):
    return ROUTE_CODES[tags.route] if tags.route else None


def _coded_concept(hd):
    return lambda code: hd.sr.CodedConcept(code.value, code.scheme, code.meaning)


def read_dicom_seg(path: str | Path, *, reference: sitk.Image | None = None,
                   frame_of_reference_uid: str | None = None,
                   roles: Mapping[int | str, SegmentTags] | None = None) -> Segmentation:
    """Read a DICOM SEG (LuPRRT's or another tool's) as a tagged :class:`Segmentation`.

    Parameters
    ----------
    path : the SEG file
    reference : SimpleITK.Image, optional
        Grid to put the segments on (the CT); default the SEG's own frame geometry.
    frame_of_reference_uid : str, optional
        Frame of reference of that CT: a SEG on another one is refused.
    roles : {segment number or label: SegmentTags}, optional
        Tags of segments whose codes do not name a LuPRRT role (they raise otherwise).

    Returns
    -------
    Segmentation
    """
    import highdicom as hd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DICOM SEG not found: {path}")
    try:
        dataset = pydicom.dcmread(path)
    except pydicom.errors.InvalidDicomError as error:
        raise ValueError(f"{path}: not a DICOM file ({error})") from error
    if dataset.get("SOPClassUID") != SEG_STORAGE:
        raise ValueError(f"{path}: not a DICOM Segmentation (SOP class {dataset.get('SOPClassUID')}); "
                         "give a SEG object")
    seg_frame = dataset.get("FrameOfReferenceUID")
    if frame_of_reference_uid is not None and seg_frame != frame_of_reference_uid:
        raise ValueError(f"{path}: the SEG is on frame of reference {seg_frame}, the CT on "
                         f"{frame_of_reference_uid}: it was drawn on another scan; give the CT it references")
    seg = hd.seg.Segmentation.from_dataset(dataset, copy=False)
    numbers = [int(item.SegmentNumber) for item in dataset.SegmentSequence]
    volume = seg.get_volume(segment_numbers=numbers, combine_segments=False, dtype=np.uint8)
    frames = volume_images(volume)
    roles = dict(roles or {})
    result = Segmentation.empty_like(reference if reference is not None else frames[0])
    for index, item in enumerate(dataset.SegmentSequence):
        mask = frames[index]
        if reference is not None and not same_grid(mask, reference):
            mask = sitk.Resample(mask, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, mask.GetPixelID())
        label = str(item.get("SegmentLabel", f"segment {item.SegmentNumber}"))
        tags = _segment_tags(item, roles, path)
        array = sitk.GetArrayViewFromImage(mask) > 0
        if not array.any():
            raise ValueError(f"{path}: segment {item.SegmentNumber} ({label!r}) is empty on the CT grid")
        result.add_segment(array, tags, name=label, color=_rgb(hd, item))
    return result


def _segment_tags(item, roles: Mapping[int | str, SegmentTags], path: Path) -> SegmentTags:
    number = int(item.SegmentNumber)
    label = str(item.get("SegmentLabel", ""))
    given = roles.get(number, roles.get(label))
    if given is not None:
        return given
    type_item = item.SegmentedPropertyTypeCodeSequence[0]
    modifiers = [m.CodeValue for m in type_item.get("SegmentedPropertyTypeModifierCodeSequence", [])]
    region_modifier = None
    for region in item.get("AnatomicRegionSequence", []):
        for modifier in region.get("AnatomicRegionModifierSequence", []):
            region_modifier = modifier.CodeValue
    found = tags_from_codes(str(type_item.CodeValue), modifiers, region_modifier)
    if found is None:
        raise ValueError(f"{path}: segment {number} ({label!r}) has type {type_item.CodeMeaning!r} "
                         f"({type_item.CodingSchemeDesignator} {type_item.CodeValue}), which is no LuPRRT role; "
                         f"give its role (segment {number} = liver, lobe, lesion, kidney, spleen, marrow, ...)")
    role, side, route = found
    lesion_id = None
    if role == "lesion":
        lesion_id = str(item.get("TrackingID", "") or f"S{number:02d}")
    return SegmentTags(role, side=side, route=route, lesion_id=lesion_id)


def _rgb(hd, item) -> tuple[float, float, float] | None:
    lab = item.get("RecommendedDisplayCIELabValue")
    if lab is None:
        return None
    rgb = hd.color.CIELabColor.from_dicom_value([int(v) for v in lab]).to_rgb(clip=True)
    return tuple(float(c) / 255.0 for c in rgb)


def read_segmentation_file(path: str | Path, ct: str | Path | None = None, *,
                           roles: Mapping[int | str, SegmentTags] | None = None) -> Segmentation:
    """A tagged segmentation from a ``.seg.nrrd`` or a DICOM SEG file.

    A DICOM SEG is put on the grid of ``ct`` (a DICOM series folder) and must share its frame
    of reference; ``roles`` names segments whose codes are no LuPRRT role.
    """
    from .seg_nrrd import read_seg_nrrd

    path = Path(path)
    if path.name.endswith(".seg.nrrd"):
        return read_seg_nrrd(path)
    if ct is not None and Path(ct).is_dir():
        datasets, grid = load_series(ct, "CT")
        return read_dicom_seg(path, reference=grid, frame_of_reference_uid=str(datasets[0].FrameOfReferenceUID),
                              roles=roles)
    return read_dicom_seg(path, roles=roles)
