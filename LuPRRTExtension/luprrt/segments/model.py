"""Tagged segments: how LuPRRT names structures without relying on order or free text.

A :class:`Segmentation` mirrors Slicer's segmentation: one or more label *layers*
(SimpleITK images sharing one geometry) and a list of :class:`Segment` records, each
pointing at a (layer, label value) pair and carrying a DICOM terminology code plus
LuPRRT tags (role, lobe side, route, persistent lesion tracking id). Overlapping
structures (a lesion inside a lobe) live in different layers, as in Slicer.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import SimpleITK as sitk

from ..grid import image_on_grid

ROLES = ("liver", "lobe", "lesion", "non-tumour", "kidney", "spleen", "marrow", "body", "blood")
SIDES = ("right", "left")
ROUTES = ("IA", "IV")


@dataclass(frozen=True)
class Code:
    """A coded concept (DICOM Part 16 / SNOMED CT): scheme designator, value, meaning."""

    scheme: str
    value: str
    meaning: str

    def slicer_string(self) -> str:
        """``scheme^value^meaning`` as in Slicer's terminology entry strings."""
        return f"{self.scheme}^{self.value}^{self.meaning}"


ANATOMICAL_STRUCTURE = Code("SCT", "123037004", "Anatomical Structure")
MORPHOLOGICALLY_ALTERED = Code("SCT", "49755003", "Morphologically Altered Structure")
BODY_SUBSTANCE = Code("SCT", "91720002", "Body Substance")
LIVER = Code("SCT", "10200004", "Liver")

# Segment type codes by role (SNOMED CT concept ids, as listed in DICOM PS3.16). Sides are not
# part of the type: DICOM gives laterality as a modifier (PS3.3 C.8.20.2, Segmented Property
# Type Modifier; values from CID 244 "Laterality"), as Slicer's DICOM terminology does. The
# non-tumour liver is liver parenchyma (SCT 91772007 "Parenchyma") with the liver as its
# anatomic region, which keeps it apart from the whole liver.
TYPE_CODES: dict[str, Code] = {
    "liver": LIVER,
    "lobe": LIVER,
    "non-tumour": Code("SCT", "91772007", "Parenchyma"),
    "lesion": Code("SCT", "52988006", "Lesion"),
    "kidney": Code("SCT", "64033007", "Kidney"),
    "spleen": Code("SCT", "78961009", "Spleen"),
    "marrow": Code("SCT", "14016003", "Bone marrow"),
    "body": Code("SCT", "38266002", "Entire body as a whole"),
    "blood": Code("SCT", "87612001", "Blood"),
}
# DICOM CID 244 "Laterality".
LATERALITY_CODES: dict[str, Code] = {"right": Code("SCT", "24028007", "Right"),
                                     "left": Code("SCT", "7771000", "Left")}
# DICOM CID 11 "Route of Administration": the route of the 177Lu-dotatate that reached a lobe.
ROUTE_CODES: dict[str, Code] = {"IA": Code("SCT", "58100008", "Intra-arterial route"),
                                "IV": Code("SCT", "47625008", "Intravenous route")}
# Roles whose side is a modifier of the type (the structure itself is right or left) and
# roles whose side is a modifier of the anatomic region (the liver lobe holding them).
_SIDE_OF_TYPE = ("lobe", "kidney")
_SIDE_OF_REGION = ("lesion", "non-tumour")


@dataclass(frozen=True)
class SegmentTags:
    """What a segment is, in LuPRRT's own words.

    role : one of :data:`ROLES`
    side : ``"right"``/``"left"`` for lobes, kidneys and lesions (the lobe holding it)
    route : ``"IA"``/``"IV"`` for lobes (and lesions and non-tumour liver of a lobe)
    lesion_id : persistent tracking id; the same lesion keeps it across cycles
    """

    role: str
    side: str | None = None
    route: str | None = None
    lesion_id: str | None = None

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"unknown segment role {self.role!r}; expected one of {ROLES}")
        if self.side is not None and self.side not in SIDES:
            raise ValueError(f"unknown side {self.side!r} for role {self.role!r}; expected one of {SIDES}")
        if self.route is not None and self.route not in ROUTES:
            raise ValueError(f"unknown route {self.route!r} for role {self.role!r}; expected one of {ROUTES}")

    def type_code(self) -> Code:
        """The DICOM/SNOMED code of the segmented structure (without its side)."""
        return TYPE_CODES[self.role]

    def type_modifier(self) -> Code | None:
        """Laterality of a lobe or kidney (DICOM CID 244), None otherwise."""
        return LATERALITY_CODES[self.side] if self.side and self.role in _SIDE_OF_TYPE else None

    def anatomic_region(self) -> Code | None:
        """The organ holding a lesion or non-tumour liver (the liver), None otherwise."""
        return LIVER if self.role in _SIDE_OF_REGION else None

    def anatomic_region_modifier(self) -> Code | None:
        """Side of the liver holding a lesion or non-tumour liver (DICOM CID 244), None otherwise."""
        return LATERALITY_CODES[self.side] if self.side and self.role in _SIDE_OF_REGION else None

    def category_code(self) -> Code:
        """The DICOM segmented property category (CID 7150: anatomical structure, lesion, body substance)."""
        if self.role == "lesion":
            return MORPHOLOGICALLY_ALTERED
        if self.role == "blood":
            return BODY_SUBSTANCE
        return ANATOMICAL_STRUCTURE

    def default_name(self) -> str:
        """A readable segment name from the tags (e.g. ``"right lobe (IA)"``, ``"lesion L03"``)."""
        parts = {
            "lobe": f"{self.side} lobe",
            "lesion": f"lesion {self.lesion_id}",
            "kidney": f"{self.side} kidney" if self.side else "kidneys",
            "non-tumour": f"non-tumour {self.side} lobe" if self.side else "non-tumour liver",
        }
        name = parts.get(self.role, self.role)
        return f"{name} ({self.route})" if self.route and self.role == "lobe" else name


DEFAULT_COLORS = {
    "liver": (0.86, 0.55, 0.47),
    "lobe": (0.72, 0.43, 0.36),
    "lesion": (0.95, 0.85, 0.2),
    "non-tumour": (0.6, 0.35, 0.3),
    "kidney": (0.73, 0.55, 0.35),
    "spleen": (0.62, 0.0, 0.31),
    "marrow": (0.9, 0.9, 0.6),
    "body": (0.96, 0.84, 0.75),
    "blood": (0.85, 0.1, 0.1),
}


@dataclass
class Segment:
    """One structure: where it lives (layer, label value) and what it is (tags)."""

    segment_id: str
    name: str
    tags: SegmentTags
    layer: int
    label_value: int
    color: tuple[float, float, float] = (0.5, 0.5, 0.5)


@dataclass
class Segmentation:
    """Label layers on one grid plus tagged segments (Slicer's data model, headless).

    ``layers`` are integer SimpleITK images with identical geometry.
    """

    layers: list[sitk.Image]
    segments: list[Segment] = field(default_factory=list)

    @classmethod
    def empty_like(cls, reference: sitk.Image) -> Segmentation:
        """An empty segmentation on the grid of ``reference``."""
        return cls(layers=[_empty_layer(reference)])

    @property
    def reference(self) -> sitk.Image:
        """The first layer: carries the grid geometry (origin, spacing, direction, size)."""
        return self.layers[0]

    def copy(self) -> Segmentation:
        """An independent copy (layers and segment records)."""
        return Segmentation([sitk.Image(layer) for layer in self.layers], copy.deepcopy(self.segments))

    def segment(self, segment_id: str) -> Segment:
        """The segment with id ``segment_id`` (KeyError listing the ids present)."""
        for seg in self.segments:
            if seg.segment_id == segment_id:
                return seg
        raise KeyError(f"no segment with id {segment_id!r}; have {[s.segment_id for s in self.segments]}")

    def find(self, role: str | None = None, side: str | None = None, route: str | None = None,
             lesion_id: str | None = None) -> list[Segment]:
        """Segments whose tags match every given value (None = any)."""
        wanted = {"role": role, "side": side, "route": route, "lesion_id": lesion_id}
        return [s for s in self.segments
                if all(v is None or getattr(s.tags, k) == v for k, v in wanted.items())]

    def find_one(self, role: str, side: str | None = None, route: str | None = None,
                 lesion_id: str | None = None) -> Segment:
        """Exactly one matching segment, or a ValueError naming what is missing or ambiguous."""
        found = self.find(role=role, side=side, route=route, lesion_id=lesion_id)
        desc = ", ".join(f"{k}={v}" for k, v in
                         {"role": role, "side": side, "route": route, "lesion_id": lesion_id}.items() if v)
        if not found:
            raise ValueError(f"segmentation has no segment tagged {desc}")
        if len(found) > 1:
            raise ValueError(f"segmentation has {len(found)} segments tagged {desc}: "
                             f"{[s.segment_id for s in found]}")
        return found[0]

    def layer_array(self, layer: int) -> np.ndarray:
        """Label array (z, y, x) of one layer (a view-free copy)."""
        return sitk.GetArrayFromImage(self.layers[layer])

    def mask_array(self, segment_id: str) -> np.ndarray:
        """Boolean mask (z, y, x) of one segment."""
        seg = self.segment(segment_id)
        return sitk.GetArrayViewFromImage(self.layers[seg.layer]) == seg.label_value

    def add_segment(self, mask, tags: SegmentTags, name: str | None = None, segment_id: str | None = None,
                    color: tuple[float, float, float] | None = None) -> Segment:
        """Add a segment from a boolean mask (z, y, x array or SimpleITK image on this grid).

        The segment goes into the first layer where it overlaps nothing, or a new layer.
        """
        mask = _as_mask_array(mask, self.reference)
        if not mask.any():
            raise ValueError(f"segment {name or tags.default_name()!r} is empty")
        segment_id = segment_id or _unique_id(tags, {s.segment_id for s in self.segments})
        if any(s.segment_id == segment_id for s in self.segments):
            raise ValueError(f"segment id {segment_id!r} already exists")
        index = next((k for k, layer in enumerate(self.layers)
                      if not sitk.GetArrayViewFromImage(layer)[mask].any()), None)
        if index is None:
            self.layers.append(_empty_layer(self.reference))
            index = len(self.layers) - 1
        labels = sitk.GetArrayFromImage(self.layers[index])
        used = {s.label_value for s in self.segments if s.layer == index}
        label_value = max(used, default=0) + 1
        if label_value > np.iinfo(labels.dtype).max:
            # Widen the layer (uint8 -> uint16) for its 256th segment, as Slicer does.
            labels = labels.astype(np.promote_types(labels.dtype, np.min_scalar_type(label_value)))
        labels[mask] = label_value
        self.layers[index] = image_on_grid(labels, self.reference)
        seg = Segment(segment_id, name or tags.default_name(), tags, index, label_value,
                      color or DEFAULT_COLORS[tags.role])
        self.segments.append(seg)
        return seg

    def without(self, segment_ids: Iterable[str]) -> Segmentation:
        """A copy without the given segments (their labels cleared); this segmentation is unchanged."""
        drop = set(segment_ids)
        unknown = drop - {seg.segment_id for seg in self.segments}
        if unknown:
            raise ValueError(f"no segments {sorted(unknown)} in the segmentation")
        layers = [sitk.Image(layer) for layer in self.layers]
        for seg in self.segments:
            if seg.segment_id in drop:
                labels = sitk.GetArrayFromImage(layers[seg.layer])
                labels[labels == seg.label_value] = 0
                layers[seg.layer] = image_on_grid(labels, layers[seg.layer])
        return Segmentation(layers, [copy.deepcopy(seg) for seg in self.segments if seg.segment_id not in drop])

    def retag(self, segment_id: str, **changes) -> Segment:
        """Change tags of one segment (e.g. route after the IA side is known)."""
        seg = self.segment(segment_id)
        seg.tags = replace(seg.tags, **changes)
        return seg


def _empty_layer(reference: sitk.Image) -> sitk.Image:
    layer = sitk.Image(reference.GetSize(), sitk.sitkUInt8)
    layer.CopyInformation(reference)
    return layer


def _as_mask_array(mask, reference: sitk.Image) -> np.ndarray:
    if isinstance(mask, sitk.Image):
        differs = [name for name, a, b in (("size", mask.GetSize(), reference.GetSize()),
                                           ("origin", mask.GetOrigin(), reference.GetOrigin()),
                                           ("spacing", mask.GetSpacing(), reference.GetSpacing()),
                                           ("direction", mask.GetDirection(), reference.GetDirection()))
                   if len(a) != len(b) or not np.allclose(a, b, rtol=0.0, atol=1e-4)]
        if differs:
            raise ValueError(f"mask image geometry ({', '.join(differs)}) differs from the segmentation grid "
                             f"(mask size {mask.GetSize()}, spacing {mask.GetSpacing()}; grid size "
                             f"{reference.GetSize()}, spacing {reference.GetSpacing()}); resample it first")
        mask = sitk.GetArrayViewFromImage(mask)
    mask = np.asarray(mask).astype(bool)
    expected = reference.GetSize()[::-1]
    if mask.shape != expected:
        raise ValueError(f"mask shape {mask.shape} differs from the segmentation grid {expected} (z, y, x)")
    return mask


def _unique_id(tags: SegmentTags, taken: set[str]) -> str:
    base = "_".join(p for p in (tags.role, tags.side, tags.lesion_id) if p).replace("-", "")
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    return candidate
