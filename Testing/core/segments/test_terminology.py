"""Slicer terminology entries of tagged segments, and roles read back from entries made elsewhere.

A Slicer terminology entry string is seven fields joined by ``~``: terminology context,
category, type, type modifier, anatomic context, anatomic region, region modifier; each
code is ``scheme^value^meaning`` and an absent code is ``^^`` (Slicer developer guide,
"Segmentations", TerminologyEntry tag). The expected strings below are written out by hand
with the SNOMED CT codes of the structures; ``Testing/slicer/test_terminology.py`` checks
the same strings against Slicer's own serializer.
"""

from __future__ import annotations

import pytest

from luprrt.segments import TAG_KEYS, SegmentTags, role_from_terminology, terminology_entry

CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMIC = "Anatomic codes - DICOM master list"
STRUCTURE = "SCT^123037004^Anatomical Structure"

RIGHT, LEFT = "SCT^24028007^Right", "SCT^7771000^Left"  # DICOM CID 244 laterality
ENTRIES = [
    (SegmentTags("liver"), f"{CONTEXT}~{STRUCTURE}~SCT^10200004^Liver~^^~{ANATOMIC}~^^~^^"),
    (SegmentTags("non-tumour", side="right", route="IA"),
     f"{CONTEXT}~{STRUCTURE}~SCT^91772007^Parenchyma~^^~{ANATOMIC}~SCT^10200004^Liver~{RIGHT}"),
    (SegmentTags("lobe", side="right", route="IA"),
     f"{CONTEXT}~{STRUCTURE}~SCT^10200004^Liver~{RIGHT}~{ANATOMIC}~^^~^^"),
    (SegmentTags("lobe", side="left", route="IV"),
     f"{CONTEXT}~{STRUCTURE}~SCT^10200004^Liver~{LEFT}~{ANATOMIC}~^^~^^"),
    (SegmentTags("lesion", side="left", route="IV", lesion_id="L07"),
     f"{CONTEXT}~SCT^49755003^Morphologically Altered Structure~SCT^52988006^Lesion~^^"
     f"~{ANATOMIC}~SCT^10200004^Liver~{LEFT}"),
    (SegmentTags("kidney"), f"{CONTEXT}~{STRUCTURE}~SCT^64033007^Kidney~^^~{ANATOMIC}~^^~^^"),
    (SegmentTags("kidney", side="right"), f"{CONTEXT}~{STRUCTURE}~SCT^64033007^Kidney~{RIGHT}~{ANATOMIC}~^^~^^"),
    (SegmentTags("kidney", side="left"), f"{CONTEXT}~{STRUCTURE}~SCT^64033007^Kidney~{LEFT}~{ANATOMIC}~^^~^^"),
    (SegmentTags("spleen"), f"{CONTEXT}~{STRUCTURE}~SCT^78961009^Spleen~^^~{ANATOMIC}~^^~^^"),
    (SegmentTags("marrow"), f"{CONTEXT}~{STRUCTURE}~SCT^14016003^Bone marrow~^^~{ANATOMIC}~^^~^^"),
    (SegmentTags("body"), f"{CONTEXT}~{STRUCTURE}~SCT^38266002^Entire body as a whole~^^~{ANATOMIC}~^^~^^"),
    (SegmentTags("blood"), f"{CONTEXT}~SCT^91720002^Body Substance~SCT^87612001^Blood~^^~{ANATOMIC}~^^~^^"),
]


@pytest.mark.parametrize(("tags", "entry"), ENTRIES, ids=lambda v: v.role if isinstance(v, SegmentTags) else "")
def test_entry_string_of_every_role(tags, entry):
    assert terminology_entry(tags) == entry
    fields = entry.split("~")
    assert len(fields) == 7 and all(len(code.split("^")) == 3 for code in fields[1:4] + fields[5:])


@pytest.mark.parametrize(("tags", "entry"), ENTRIES, ids=lambda v: v.role if isinstance(v, SegmentTags) else "")
def test_role_and_side_read_back_from_the_entry(tags, entry):
    # Every role and side has its own codes: lobes and kidneys by a laterality type modifier,
    # lesions and non-tumour liver (liver parenchyma) by the side of the liver holding them.
    assert role_from_terminology(entry) == (tags.role, tags.side)


def test_entries_from_other_terminologies_map_by_type_code():
    # Other tools (Slicer's general-anatomy list, TotalSegmentator) use lateralised kidney concepts.
    general = ("Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical "
               "Structure~SCT^9846003^Right kidney~^^~Anatomic codes - DICOM master list~^^~^^")
    assert role_from_terminology(general) == ("kidney", "right")
    assert role_from_terminology(f"{CONTEXT}~{STRUCTURE}~SCT^39607008^Lung~^^~{ANATOMIC}~^^~^^") is None
    # Short, empty or malformed entries give no role rather than an error.
    assert role_from_terminology(f"{CONTEXT}~{STRUCTURE}~SCT^78961009^Spleen") == ("spleen", None)
    assert role_from_terminology("") is None
    assert role_from_terminology(f"{CONTEXT}~{STRUCTURE}") is None
    assert role_from_terminology(f"{CONTEXT}~{STRUCTURE}~no code here") is None


def test_tag_keys_name_every_segment_tag():
    assert TAG_KEYS == {"LuPRRT.Role": "role", "LuPRRT.Side": "side", "LuPRRT.Route": "route",
                        "LuPRRT.LesionId": "lesion_id"}
    assert set(TAG_KEYS.values()) == set(SegmentTags.__dataclass_fields__)
