"""The voxel grid: geometry, same-grid checks, physical extent and voxel positions.

Every image in LuPRRT (CT, SPECT, PET, label layers) is a SimpleITK image whose grid
(size, origin, spacing, direction) places it in patient space (LPS, mm). This module
is the one home of what a grid is and of the checks that two grids agree:

* :class:`GridGeometry`: the grid of an image as a small value object;
* :func:`image_on_grid`: a numpy array (z, y, x) as an image on a reference grid;
* :func:`same_grid` / :func:`require_same_grid`: equality within a tolerance, as a test
  or as a ValueError naming what differs;
* :func:`check_grid_compatibility`: whether one grid can be resampled onto another
  (same frame of reference, orientation, overlapping extent);
* :func:`physical_extent` and :func:`voxel_positions_lps`: where the voxels are;
* :func:`covered_by`: which voxels of one grid another image covers (edge-tolerant);
* :data:`LPS_TO_RAS`: the sign flip between DICOM/ITK patient coordinates and Slicer's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

FRAME_OF_REFERENCE_TAG = "0020|0052"  # DICOM Frame of Reference UID (PS3.3 C.7.4.1)
# LPS (DICOM patient coordinates, PS3.3 C.7.6.2.1.1; ITK and the core) <-> RAS (Slicer): x and y change sign.
# Multiplying by this flips a point, a row of points, or (as ``LPS_TO_RAS[:, None]``) a direction matrix.
LPS_TO_RAS = np.array([-1.0, -1.0, 1.0])


def image_on_grid(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    """A SimpleITK image of ``array`` (z, y, x) with the origin, spacing and direction of ``reference``."""
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(reference)
    return image


@dataclass(frozen=True)
class GridGeometry:
    """The geometry of an image grid: size (x, y, z), origin (mm), spacing (mm), direction."""

    size: tuple[int, int, int]
    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    direction: tuple[float, ...]

    @classmethod
    def from_image(cls, image: sitk.Image) -> GridGeometry:
        """The grid of a 3D SimpleITK image (ValueError for any other dimension)."""
        if image.GetDimension() != 3:
            raise ValueError(f"expected a 3D image, got {image.GetDimension()}D")
        return cls(tuple(image.GetSize()), tuple(image.GetOrigin()), tuple(image.GetSpacing()),
                   tuple(image.GetDirection()))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape (z, y, x)."""
        return self.size[::-1]

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL (spacing product in mm^3 / 1000)."""
        return float(np.prod(self.spacing)) / 1000.0

    def matches(self, other: GridGeometry, tolerance: float = 1e-3) -> bool:
        """Same size, and origin/spacing/direction equal within ``tolerance`` (mm, or unitless)."""
        if self == other:  # the usual case (every cycle's SPECT on one grid), without the tolerance tests
            return True
        return (self.size == other.size
                and np.allclose(self.origin, other.origin, rtol=0, atol=tolerance)
                and np.allclose(self.spacing, other.spacing, rtol=0, atol=tolerance)
                and np.allclose(self.direction, other.direction, rtol=0, atol=tolerance))

    def describe(self) -> str:
        """Size, origin (mm) and spacing (mm) as text for error messages."""
        return (f"size {self.size}, origin {tuple(round(v, 3) for v in self.origin)} mm, "
                f"spacing {tuple(round(v, 4) for v in self.spacing)} mm")


def same_grid(a: sitk.Image, b: sitk.Image, tolerance: float = 1e-3) -> bool:
    """True when both images have the same size, origin, spacing and direction (within ``tolerance``)."""
    return GridGeometry.from_image(a).matches(GridGeometry.from_image(b), tolerance)


def require_same_grid(image: sitk.Image, reference: sitk.Image, what: str, reference_name: str,
                      hint: str) -> None:
    """Raise a ValueError naming the first of size, spacing, origin, direction that differs.

    The message reads ``"<what> <attribute> <value> differs from <reference_name> <attribute>
    <value>; <hint>"``.
    """
    checks = {
        "size": (image.GetSize(), reference.GetSize()),
        "spacing": (image.GetSpacing(), reference.GetSpacing()),
        "origin": (image.GetOrigin(), reference.GetOrigin()),
        "direction": (image.GetDirection(), reference.GetDirection()),
    }
    for name, (got, expected) in checks.items():
        if not np.allclose(got, expected, rtol=1e-5, atol=1e-4):
            raise ValueError(f"{what} {name} {got} differs from {reference_name} {name} {expected}; {hint}")


def check_grid_compatibility(moving: sitk.Image, reference: sitk.Image, *, allow_rotation: bool = False,
                             what: str = "segmentation") -> None:
    """Raise ValueError when ``moving`` cannot be resampled meaningfully onto ``reference``.

    Checks: same DICOM frame of reference (when both images carry the tag), same
    orientation (direction cosines within 1e-3, unless ``allow_rotation``), and a
    non-empty overlap of the two grids' physical extents.
    """
    frames = [img.GetMetaData(FRAME_OF_REFERENCE_TAG).strip() if img.HasMetaDataKey(FRAME_OF_REFERENCE_TAG)
              else None for img in (moving, reference)]
    if None not in frames and frames[0] != frames[1]:
        raise ValueError(f"{what} frame of reference {frames[0]!r} differs from the target grid's "
                         f"{frames[1]!r}: the images are not registered to each other")
    if not allow_rotation and not np.allclose(moving.GetDirection(), reference.GetDirection(), atol=1e-3):
        ours, theirs = (np.round(img.GetDirection(), 4).tolist() for img in (moving, reference))
        raise ValueError(f"{what} orientation (direction {ours}) differs from the target grid's ({theirs}); "
                         "pass allow_rotation=True if the rotation is intended")
    low_m, high_m = physical_extent(moving)
    low_r, high_r = physical_extent(reference)
    if np.any(np.minimum(high_m, high_r) <= np.maximum(low_m, low_r)):
        ours, theirs = ([np.round(v, 1).tolist() for v in pair]
                        for pair in ((low_m, high_m), (low_r, high_r)))
        raise ValueError(f"{what} grid (LPS extent {ours[0]} .. {ours[1]} mm) does not overlap the target "
                         f"grid ({theirs[0]} .. {theirs[1]} mm)")


def physical_extent(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned LPS bounding box (mm) of the voxel corners of ``image``."""
    corners = voxel_box_corners(image, np.zeros(3), np.asarray(image.GetSize()) - 1.0)
    return corners.min(axis=0), corners.max(axis=0)


def voxel_positions_lps(grid: sitk.Image, flat_indices: np.ndarray) -> np.ndarray:
    """LPS positions (mm), shape (n, 3), of voxel centres given as flat (z, y, x) indices."""
    z, y, x = np.unravel_index(np.asarray(flat_indices), grid.GetSize()[::-1])
    steps = np.asarray(grid.GetDirection()).reshape(3, 3) * np.asarray(grid.GetSpacing())
    index = np.stack([x, y, z], axis=1).astype(float)
    return np.asarray(grid.GetOrigin()) + index @ steps.T


def covered_by(grid: sitk.Image, image: sitk.Image, transform: sitk.Transform | None = None,
               tolerance_voxels: float = 1e-6) -> np.ndarray:
    """Which voxel centres of ``grid`` (z, y, x boolean array) fall inside the voxels of ``image``.

    A centre is covered when it lies within the outer voxel boundaries of ``image`` (continuous
    index from -0.5 to size - 0.5), after ``transform`` (grid -> image points, as for
    :func:`sitk.Resample`). Centres closer than ``tolerance_voxels`` to a boundary count as
    inside: grids that share planes with the image's edge (common: one scanner's CT and PET)
    would otherwise be decided by the last bit of floating-point rounding, which differs between
    multi-threaded runs.
    """
    shape = grid.GetSize()[::-1]
    points = voxel_positions_lps(grid, np.arange(int(np.prod(shape))))
    if transform is not None:
        displacement = sitk.TransformToDisplacementField(transform, sitk.sitkVectorFloat64, grid.GetSize(),
                                                         grid.GetOrigin(), grid.GetSpacing(), grid.GetDirection())
        points = points + sitk.GetArrayViewFromImage(displacement).reshape(-1, 3)
    steps = np.asarray(image.GetDirection()).reshape(3, 3) * np.asarray(image.GetSpacing())
    index = np.linalg.solve(steps, (points - np.asarray(image.GetOrigin())).T).T
    upper = np.asarray(image.GetSize()) - 0.5 + tolerance_voxels
    inside = np.all((index >= -0.5 - tolerance_voxels) & (index <= upper), axis=1)
    return inside.reshape(shape)


def voxel_box_corners(image: sitk.Image, low_xyz: np.ndarray, high_xyz: np.ndarray) -> np.ndarray:
    """LPS positions (mm) of the 8 outer corners of the voxel index box [low, high] (x, y, z)."""
    corners = []
    for pick in itertools.product((0, 1), repeat=3):
        index = np.where(np.asarray(pick) == 1, np.asarray(high_xyz) + 0.5, np.asarray(low_xyz) - 0.5)
        corners.append(image.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in index)))
    return np.asarray(corners)
