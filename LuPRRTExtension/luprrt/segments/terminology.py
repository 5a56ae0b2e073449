"""How a tagged segment is written as a Slicer terminology entry, and read back from one.

Slicer stores a segment's meaning as a terminology entry string (category, type and
anatomic region as ``scheme^value^meaning`` triplets, joined by ``~``); LuPRRT adds its
own tags (role, side, route, lesion id) as ``LuPRRT.*`` key/value pairs. Both the
``.seg.nrrd`` files and Slicer's segmentation nodes carry these, so the mapping lives
here, once.
"""

from __future__ import annotations

from .model import TYPE_CODES, SegmentTags

_TERMINOLOGY_CONTEXT = "Segmentation category and type - DICOM master list"
_ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"
_LIVER_REGION = "SCT^10200004^Liver"
# LuPRRT tag keys inside SegmentN_Tags (name: SegmentTags attribute).
TAG_KEYS = {"LuPRRT.Role": "role", "LuPRRT.Side": "side", "LuPRRT.Route": "route",
             "LuPRRT.LesionId": "lesion_id"}


def terminology_entry(tags: SegmentTags) -> str:
    """Slicer terminology entry string for a segment (category, type, anatomic region)."""
    region = _LIVER_REGION if tags.role == "lesion" else "^^"
    return "~".join([_TERMINOLOGY_CONTEXT, tags.category_code().slicer_string(),
                     tags.type_code().slicer_string(), "^^", _ANATOMIC_CONTEXT, region, "^^"])


def role_from_terminology(entry: str) -> tuple[str, str | None] | None:
    """Map a terminology type code to (role, side) for segments made outside LuPRRT."""
    fields = entry.split("~")
    if len(fields) < 3:
        return None
    code_value = fields[2].split("^")[1] if "^" in fields[2] else ""
    for (role, side), code in TYPE_CODES.items():
        if code.value == code_value and role != "non-tumour":
            return role, side
    return None
