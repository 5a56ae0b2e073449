"""Analytic lesion phantoms with closed-form diameters, for the ResponseAssess self-test.

Grids are axis-aligned (identity direction, LPS), so voxel (i, j, k) has its centre at
``origin + (i, j, k) * spacing``. A box of n x m voxels in a slice measures exactly
``hypot(n dx, m dy)`` (the diagonal of its cells, see luprrt.response.diameters); its
short axis, the longest chord perpendicular to that diagonal, is ``min(a, b) * d / max(a, b)``
for sides a, b and diagonal d (the chord through the corner next to the shorter side).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

# Voxel centres on an ellipsoid's surface count as inside despite binary round-off of
# ``index * spacing`` (e.g. 15 * 0.8 mm = 12.000000000000002 mm).
_SURFACE_SLACK = 1e-9
AIR_HU = -1000.0


def grid(size_xyz: Sequence[int], spacing_mm: Sequence[float], origin_lps_mm=(0.0, 0.0, 0.0)) -> sitk.Image:
    """An empty UInt8 image: the voxel grid of a phantom."""
    image = sitk.Image([int(n) for n in size_xyz], sitk.sitkUInt8)
    image.SetSpacing([float(s) for s in spacing_mm])
    image.SetOrigin([float(o) for o in origin_lps_mm])
    return image


def voxel_centre_lps(reference: sitk.Image, index_xyz: Sequence[float]) -> np.ndarray:
    """LPS position (mm) of a voxel index of an axis-aligned grid."""
    index = np.asarray(index_xyz, dtype=float)
    return np.asarray(reference.GetOrigin()) + index * np.asarray(reference.GetSpacing())


def box_mask(reference: sitk.Image, first_index_xyz: Sequence[int], size_xyz: Sequence[int]) -> np.ndarray:
    """Boolean (z, y, x) mask of a grid-aligned box of voxels."""
    mask = np.zeros(reference.GetSize()[::-1], dtype=bool)
    (i, j, k), (ni, nj, nk) = first_index_xyz, size_xyz
    mask[k:k + nk, j:j + nj, i:i + ni] = True
    return mask


def box_diagonal_mm(reference: sitk.Image, size_xyz: Sequence[int]) -> float:
    """Exact longest axial diameter of a box of ``size_xyz`` voxels: its in-plane cell diagonal, mm."""
    dx, dy, _ = reference.GetSpacing()
    return float(np.hypot(size_xyz[0] * dx, size_xyz[1] * dy))


def box_short_axis_mm(reference: sitk.Image, size_xyz: Sequence[int]) -> float:
    """Exact short axis of a box: the longest chord perpendicular to its diagonal, mm."""
    dx, dy, _ = reference.GetSpacing()
    a, b = size_xyz[0] * dx, size_xyz[1] * dy
    return float(min(a, b) * np.hypot(a, b) / max(a, b))


def ellipsoid_mask(reference: sitk.Image, centre_lps_mm: Sequence[float], semi_axes_mm: Sequence[float],
                   shift_lps_mm: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Boolean (z, y, x) mask of the voxels whose centres lie in an axis-aligned ellipsoid."""
    axes = _centre_offsets(reference, np.asarray(centre_lps_mm) + np.asarray(shift_lps_mm))
    inside = sum((offset / semi) ** 2 for offset, semi in zip(axes, semi_axes_mm, strict=True))
    return inside <= 1.0 + _SURFACE_SLACK


def phantom_ct(reference: sitk.Image, shift_lps_mm: Sequence[float] = (0.0, 0.0, 0.0),
               lesions: Sequence[tuple[Sequence[float], float]] = ()) -> sitk.Image:
    """A small abdominal CT (HU): body, liver, spine and kidneys, everything moved by ``shift_lps_mm``.

    ``lesions`` are (centre LPS mm, radius mm) spheres of 100 HU in the liver (before the shift).
    The anatomy is asymmetric, so a rigid registration has one answer.
    """
    centre = voxel_centre_lps(reference, (np.asarray(reference.GetSize()) - 1) / 2.0)
    hu = np.full(reference.GetSize()[::-1], AIR_HU, dtype=np.float32)
    structures = [
        ((0.0, 0.0, 0.0), (70.0, 55.0, 45.0), 40.0),       # body (soft tissue)
        ((-25.0, -5.0, 5.0), (35.0, 30.0, 30.0), 60.0),    # liver, on the patient's right (L = -)
        ((0.0, 35.0, 0.0), (10.0, 10.0, 45.0), 700.0),     # spine, posterior
        ((40.0, 25.0, -10.0), (10.0, 12.0, 14.0), 30.0),   # left kidney
        ((15.0, -30.0, -15.0), (12.0, 8.0, 8.0), -800.0),  # bowel gas, anterior
    ]
    for offset, semi_axes, value in structures:
        hu[ellipsoid_mask(reference, centre + offset, semi_axes, shift_lps_mm)] = value
    for lesion_centre, radius in lesions:
        hu[ellipsoid_mask(reference, lesion_centre, (radius,) * 3, shift_lps_mm)] = 100.0
    image = sitk.GetImageFromArray(hu)
    image.CopyInformation(reference)
    return image


def _centre_offsets(reference: sitk.Image, centre_lps_mm: np.ndarray) -> list[np.ndarray]:
    """Per axis (x, y, z): voxel-centre coordinate minus the centre, broadcastable to (z, y, x), mm."""
    size, spacing, origin = reference.GetSize(), reference.GetSpacing(), reference.GetOrigin()
    shapes = ((1, 1, -1), (1, -1, 1), (-1, 1, 1))
    return [(origin[a] + np.arange(size[a]) * spacing[a] - centre_lps_mm[a]).reshape(shapes[a])
            for a in range(3)]
