"""How the liver is split into right and left lobes: one registry of lobe-split methods.

A :class:`LobeSplit` says which method to use and with which inputs (points in LPS, mm);
:func:`split_lobes` applies it. Every method is a :class:`LobeSplitMethod` in
:data:`LOBE_SPLIT_METHODS`, the one list that the ``luprrt lobequant`` command line, the
LobeQuant Logic and its panel read. Adding a method is one :func:`register_lobe_split_method`
call here (plus, for the panel, the nodes that give its inputs in ``LobeQuantLogic.lobeSplit``).

Methods
-------
plane     a plane through a point with a normal (e.g. a Slicer markups plane)
cantlie   Cantlie's plane through the gallbladder fossa, the middle hepatic vein and the IVC
couinaud  Couinaud segments 1-8 (e.g. TotalSegmentator ``liver_segments``): II-IV left, V-VIII right
vessels   vascular territories: each liver voxel goes to the nearest right or left hepatic artery point

References
----------
Couinaud C. Le foie: etudes anatomiques et chirurgicales. Paris: Masson; 1957.
Cantlie J. On a new arrangement of the right and left lobes of the liver. J Anat Physiol 1898;32:iv-ix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..grid import check_grid_compatibility, same_grid
from ..segments import SIDES, Segmentation, SegmentTags
from .lobes import (
    CAUDATE_OPTIONS,
    lobes_from_couinaud,
    lobes_from_vessel_territories,
    plane_from_cantlie_points,
    split_liver_by_plane,
)


@dataclass(frozen=True)
class LobeSplitMethod:
    """One way of splitting the liver into lobes.

    Attributes
    ----------
    name : str
        Coded identifier (command line, parameter node, provenance); never translated.
    title : str
        Short human name.
    description : str
        One sentence for help texts and tooltips.
    required : tuple of str
        The :class:`LobeSplit` fields this method needs.
    split : callable
        ``split(segmentation, lobe_split) -> Segmentation`` with right and left lobe segments.
    """

    name: str
    title: str
    description: str
    required: tuple[str, ...]
    split: Callable[[Segmentation, LobeSplit], Segmentation]


LOBE_SPLIT_METHODS: dict[str, LobeSplitMethod] = {}


def register_lobe_split_method(method: LobeSplitMethod) -> LobeSplitMethod:
    """Add ``method`` to :data:`LOBE_SPLIT_METHODS` (ValueError if its name is taken)."""
    if method.name in LOBE_SPLIT_METHODS:
        raise ValueError(f"a lobe split method named {method.name!r} is already registered")
    LOBE_SPLIT_METHODS[method.name] = method
    return method


@dataclass(frozen=True)
class LobeSplit:
    """How to split the liver into right and left lobes (all points LPS, mm).

    Build it with :meth:`plane`, :meth:`cantlie`, :meth:`couinaud` or :meth:`vessels`.
    """

    method: str
    point_lps_mm: tuple[float, float, float] | None = None
    normal_lps: tuple[float, float, float] | None = None
    cantlie_points_lps_mm: tuple[tuple[float, float, float], ...] | None = None
    couinaud_labels: sitk.Image | Path | None = None
    caudate: str = "left"
    right_points_lps_mm: tuple[tuple[float, float, float], ...] | None = None
    left_points_lps_mm: tuple[tuple[float, float, float], ...] | None = None

    def __post_init__(self):
        method = LOBE_SPLIT_METHODS.get(self.method)
        if method is None:
            raise ValueError(f"unknown lobe split method {self.method!r}; expected one of "
                             f"{tuple(LOBE_SPLIT_METHODS)}")
        missing = [name for name in method.required if getattr(self, name) is None]
        if missing:
            raise ValueError(f"lobe split {self.method!r} needs {', '.join(missing)}")
        if self.caudate not in CAUDATE_OPTIONS:
            raise ValueError(f"caudate must be one of {CAUDATE_OPTIONS}, got {self.caudate!r}")

    @classmethod
    def plane(cls, point_lps_mm, normal_lps) -> LobeSplit:
        """A plane through ``point_lps_mm`` with normal ``normal_lps`` (its sign does not matter)."""
        return cls("plane", point_lps_mm=_triple(point_lps_mm, "plane point"),
                   normal_lps=_triple(normal_lps, "plane normal"))

    @classmethod
    def cantlie(cls, gallbladder_fossa, middle_hepatic_vein, ivc) -> LobeSplit:
        """Cantlie's plane through the gallbladder fossa, the middle hepatic vein and the IVC."""
        points = tuple(_triple(p, what) for p, what in ((gallbladder_fossa, "gallbladder fossa"),
                                                        (middle_hepatic_vein, "middle hepatic vein"),
                                                        (ivc, "inferior vena cava")))
        return cls("cantlie", cantlie_points_lps_mm=points)

    @classmethod
    def couinaud(cls, labels: sitk.Image | str | Path, caudate: str = "left") -> LobeSplit:
        """Couinaud segments 1-8 (e.g. TotalSegmentator ``liver_segments``): an image or a label file."""
        return cls("couinaud", couinaud_labels=labels if isinstance(labels, sitk.Image) else Path(labels),
                   caudate=caudate)

    @classmethod
    def vessels(cls, right_points_lps_mm, left_points_lps_mm) -> LobeSplit:
        """Vascular territories: nearest of the right or left hepatic artery (centreline) points."""
        return cls("vessels", right_points_lps_mm=_triples(right_points_lps_mm, "right vessel points"),
                   left_points_lps_mm=_triples(left_points_lps_mm, "left vessel points"))

    def describe(self) -> dict:
        """The split as plain JSON values (for provenance)."""
        described: dict = {"method": self.method}
        for name in ("point_lps_mm", "normal_lps", "cantlie_points_lps_mm", "right_points_lps_mm",
                     "left_points_lps_mm"):
            value = getattr(self, name)
            if value is not None:
                described[name] = np.asarray(value, dtype=float).tolist()
        if self.method == "couinaud":
            described["caudate"] = self.caudate
            labels = self.couinaud_labels
            described["couinaud_labels"] = str(labels) if isinstance(labels, Path) else "image"
        return described


def split_lobes(segmentation: Segmentation, split: LobeSplit) -> Segmentation:
    """A copy of ``segmentation`` with right/left lobe segments from ``split`` (old lobes replaced).

    The liver is the segment tagged ``role="liver"``; the method is looked up in
    :data:`LOBE_SPLIT_METHODS`.
    """
    return LOBE_SPLIT_METHODS[split.method].split(segmentation, split)


def _by_plane(segmentation: Segmentation, split: LobeSplit) -> Segmentation:
    return split_liver_by_plane(segmentation, split.point_lps_mm, split.normal_lps)


def _by_cantlie(segmentation: Segmentation, split: LobeSplit) -> Segmentation:
    point, normal = plane_from_cantlie_points(*split.cantlie_points_lps_mm)
    return split_liver_by_plane(segmentation, point, normal)


def _by_vessels(segmentation: Segmentation, split: LobeSplit) -> Segmentation:
    return lobes_from_vessel_territories(segmentation, split.right_points_lps_mm, split.left_points_lps_mm)


def _by_couinaud(segmentation: Segmentation, split: LobeSplit) -> Segmentation:
    """Lobes from Couinaud labels, resampled onto the segmentation's grid (nearest) and kept in the liver."""
    return _lobes_from_couinaud_on(segmentation, _couinaud_image(split.couinaud_labels), split.caudate)


def _triple(value, what: str) -> tuple[float, float, float]:
    point = np.asarray(value, dtype=float).ravel()
    if point.shape != (3,) or not np.isfinite(point).all():
        raise ValueError(f"{what} must be three finite LPS coordinates (mm), got {value!r}")
    return tuple(float(v) for v in point)


def _triples(values, what: str) -> tuple[tuple[float, float, float], ...]:
    points = np.asarray(values, dtype=float)
    if points.ndim == 1 and points.size == 3:
        points = points[None, :]
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0 or not np.isfinite(points).all():
        raise ValueError(f"{what} must be one or more finite LPS points (mm), got {values!r}")
    return tuple(tuple(float(v) for v in p) for p in points)


def _couinaud_image(labels: sitk.Image | Path) -> sitk.Image:
    if isinstance(labels, sitk.Image):
        return labels
    if not labels.is_file():
        raise FileNotFoundError(f"Couinaud label file not found: {labels}")
    image = sitk.ReadImage(str(labels))
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"{labels}: a Couinaud label map must be a 3D scalar image")
    if image.GetPixelID() in (sitk.sitkFloat32, sitk.sitkFloat64):
        values = sitk.GetArrayViewFromImage(image)
        if not np.array_equal(values, np.round(values)):
            raise ValueError(f"{labels}: Couinaud labels must be integers (segments 1-8)")
    return sitk.Cast(image, sitk.sitkUInt8)


def _lobes_from_couinaud_on(segmentation: Segmentation, labels: sitk.Image, caudate: str) -> Segmentation:
    """Couinaud lobes on the segmentation's grid, inside its liver segment when it has one."""
    grid = segmentation.reference
    if not same_grid(labels, grid):
        check_grid_compatibility(labels, grid, what="Couinaud label map")
        labels = sitk.Resample(labels, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                               labels.GetPixelID())
    couinaud = lobes_from_couinaud(labels, caudate)
    livers = segmentation.find(role="liver")
    liver = segmentation.mask_array(livers[0].segment_id) if len(livers) == 1 else None
    result = segmentation.without([s.segment_id for s in segmentation.find(role="lobe")])
    if liver is None:
        result.add_segment(couinaud.mask_array(couinaud.find_one("liver").segment_id), SegmentTags("liver"))
    for side in SIDES:
        lobe = couinaud.mask_array(couinaud.find_one("lobe", side=side).segment_id)
        if liver is not None:
            lobe = lobe & liver
        if not lobe.any():
            raise ValueError(f"the Couinaud segments of the {side} lobe do not overlap the liver segment")
        result.add_segment(lobe, SegmentTags("lobe", side=side))
    return result


for _method in (
    LobeSplitMethod("plane", "Plane", "a plane through a point with a normal (its sign does not matter)",
                    ("point_lps_mm", "normal_lps"), _by_plane),
    LobeSplitMethod("cantlie", "Cantlie's plane",
                    "the plane through the gallbladder fossa, the middle hepatic vein and the IVC",
                    ("cantlie_points_lps_mm",), _by_cantlie),
    LobeSplitMethod("couinaud", "Couinaud segments",
                    "Couinaud segments 1-8 (II-IV left, V-VIII right; the caudate lobe as chosen)",
                    ("couinaud_labels",), _by_couinaud),
    LobeSplitMethod("vessels", "Vessel territories",
                    "each liver voxel goes to the nearest right or left hepatic artery point",
                    ("right_points_lps_mm", "left_points_lps_mm"), _by_vessels),
):
    register_lobe_split_method(_method)
