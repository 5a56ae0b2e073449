"""Tagged structures (LuPRRT's segmentation model) and how they are carried onto another grid.

Modules
-------
model    :class:`Segmentation` (label layers on one grid + :class:`Segment` records) and the
         LuPRRT tags (role, lobe side, route, lesion tracking id) with their DICOM codes
terminology  the coded terminology of a segment (Slicer entry strings, DICOM SEG codes) and the
         LuPRRT tag keys, both ways
lesion_ids   fresh persistent lesion tracking ids (never a number used before)
on_grid  nearest-neighbour resampling of a segmentation onto e.g. the SPECT grid, and
         fractional occupancy (share of each coarse voxel inside a CT-drawn segment)

Structures are found by their tags (:meth:`Segmentation.find`), never by order or name.
Reading and writing Slicer's ``.seg.nrrd`` lives in :mod:`luprrt.io`.
"""

from .lesion_ids import new_lesion_ids, next_lesion_ids
from .model import (
    LATERALITY_CODES,
    ROLES,
    ROUTE_CODES,
    ROUTES,
    SIDES,
    TYPE_CODES,
    Code,
    Segment,
    Segmentation,
    SegmentTags,
)
from .on_grid import check_coverage, fraction_inside, segment_occupancy, segment_regions, segmentation_on_grid
from .terminology import TAG_KEYS, role_from_terminology, tags_from_codes, terminology_entry

__all__ = [
    "LATERALITY_CODES",
    "ROLES",
    "ROUTES",
    "ROUTE_CODES",
    "SIDES",
    "TAG_KEYS",
    "TYPE_CODES",
    "Code",
    "Segment",
    "SegmentTags",
    "Segmentation",
    "check_coverage",
    "fraction_inside",
    "new_lesion_ids",
    "next_lesion_ids",
    "role_from_terminology",
    "segment_occupancy",
    "segment_regions",
    "segmentation_on_grid",
    "tags_from_codes",
    "terminology_entry",
]
