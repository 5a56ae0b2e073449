"""How a tagged segment is written as coded terminology, and read back from it.

Slicer stores a segment's meaning as a terminology entry string (category, type, type
modifier, anatomic region and region modifier as ``scheme^value^meaning`` triplets, joined
by ``~``); a DICOM SEG carries the same codes in its Segment Sequence. LuPRRT adds its own
tags (role, side, route, lesion id) as ``LuPRRT.*`` key/value pairs in ``.seg.nrrd`` files
and Slicer nodes. The mapping between codes and tags lives here, once, for all of them.
"""

from __future__ import annotations

from .model import LATERALITY_CODES, ROUTE_CODES, TYPE_CODES, Code, SegmentTags

_TERMINOLOGY_CONTEXT = "Segmentation category and type - DICOM master list"
_ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"
# LuPRRT tag keys inside SegmentN_Tags (name: SegmentTags attribute).
TAG_KEYS = {"LuPRRT.Role": "role", "LuPRRT.Side": "side", "LuPRRT.Route": "route",
            "LuPRRT.LesionId": "lesion_id"}
# Lateralised SNOMED CT kidney types written by other tools (e.g. TotalSegmentator's DICOM SEG).
_LATERALISED_TYPES = {"9846003": ("kidney", "right"), "18639004": ("kidney", "left")}


def terminology_entry(tags: SegmentTags) -> str:
    """Slicer terminology entry string for a segment (category, type, modifier, region, modifier)."""
    def triplet(code: Code | None) -> str:
        return code.slicer_string() if code else "^^"

    return "~".join([_TERMINOLOGY_CONTEXT, tags.category_code().slicer_string(), tags.type_code().slicer_string(),
                     triplet(tags.type_modifier()), _ANATOMIC_CONTEXT, triplet(tags.anatomic_region()),
                     triplet(tags.anatomic_region_modifier())])


def tags_from_codes(type_value: str, modifier_values=(), region_modifier_value: str | None = None
                    ) -> tuple[str, str | None, str | None] | None:
    """(role, side, route) of a segment from its code values, or None for a type LuPRRT does not know.

    Parameters
    ----------
    type_value : SNOMED CT value of the segmented property type
    modifier_values : values of its type modifiers (laterality, administration route)
    region_modifier_value : value of the anatomic region modifier (the side of the liver)
    """
    if type_value in _LATERALISED_TYPES:
        role, side = _LATERALISED_TYPES[type_value]
        return role, side, None
    sides = {code.value: side for side, code in LATERALITY_CODES.items()}
    routes = {code.value: route for route, code in ROUTE_CODES.items()}
    side = next((sides[v] for v in modifier_values if v in sides), None)
    route = next((routes[v] for v in modifier_values if v in routes), None)
    if type_value == TYPE_CODES["liver"].value:
        return ("lobe", side, route) if side else ("liver", None, None)
    for role, code in TYPE_CODES.items():
        if code.value == type_value and role not in ("liver", "lobe"):
            if role in ("lesion", "non-tumour"):
                side = sides.get(region_modifier_value)
            return role, side, route
    return None


def role_from_terminology(entry: str) -> tuple[str, str | None] | None:
    """Map a Slicer terminology entry to (role, side) for segments made outside LuPRRT."""
    fields = entry.split("~")
    if len(fields) < 3:
        return None

    def value(index: int) -> str:
        parts = fields[index].split("^") if len(fields) > index else []
        return parts[1] if len(parts) > 1 else ""

    found = tags_from_codes(value(2), [value(3)], value(6) or None)
    return None if found is None else found[:2]
