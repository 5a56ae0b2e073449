"""Analytic phantoms with closed-form T/N, for LobeQuant's self-test (no blur, no noise).

The SPECT and the segmentation share one grid, every region is uniform, and the
non-tumour margin removes only lesion-adjacent voxels of the same uniform liver, so
every T/N is a ratio of two numbers put into the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from luprrt.segments import Segmentation, SegmentTags

SHAPE_ZYX = (30, 36, 40)
SPACING_XYZ_MM = (4.0, 4.0, 5.0)
VOXEL_ML = 4.0 * 4.0 * 5.0 / 1000.0
ORIGIN_LPS_MM = (-80.0, -70.0, -75.0)
LIVER_BOX_ZYX = (slice(3, 27), slice(4, 32), slice(3, 37))
RIGHT_LOBE_X_STOP = 20  # x index; smaller LPS x is the patient's right
NONTUMOUR_BQ_PER_ML = {"right": 1000.0, "left": 1500.0}
BACKGROUND_BQ_PER_ML = 50.0
# lesion id: (centre z, y, x voxel index, radius in voxels, concentration Bq/mL, lobe side)
LESIONS = {
    "L01": ((10, 12, 9), 2.5, 8000.0, "right"),
    "L02": ((20, 24, 12), 2.0, 6000.0, "right"),
    "L03": ((15, 18, 29), 3.0, 12000.0, "left"),
}


@dataclass
class UniformLobePhantom:
    """Segmentation (liver, lobes, lesions without side tags), SPECT (Bq/mL) and the exact T/N."""

    segmentation: Segmentation
    spect: sitk.Image
    lesion_tn: dict[str, float]
    lobe_tn: dict[str, float]
    lobe_tn_max: dict[str, float]
    lesion_voxels: dict[str, int]


def grid() -> sitk.Image:
    """The phantom grid (float32, LPS)."""
    image = sitk.Image(SHAPE_ZYX[::-1], sitk.sitkFloat32)
    image.SetSpacing(SPACING_XYZ_MM)
    image.SetOrigin(ORIGIN_LPS_MM)
    return image


def ball(centre_zyx, radius_voxels: float) -> np.ndarray:
    z, y, x = np.indices(SHAPE_ZYX)
    centre = np.asarray(centre_zyx)
    return (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius_voxels ** 2


def liver_mask() -> np.ndarray:
    liver = np.zeros(SHAPE_ZYX, dtype=bool)
    liver[LIVER_BOX_ZYX] = True
    return liver


def lobe_masks() -> dict[str, np.ndarray]:
    liver = liver_mask()
    right = liver.copy()
    right[:, :, RIGHT_LOBE_X_STOP:] = False
    return {"right": right, "left": liver & ~right}


def uniform_lobe_phantom(scale: float = 1.0, with_lobes: bool = True) -> UniformLobePhantom:
    """Uniform lobes and spherical lesions on the SPECT grid; ``scale`` multiplies every concentration."""
    segmentation = Segmentation.empty_like(grid())
    segmentation.add_segment(liver_mask(), SegmentTags("liver"))
    lobes = lobe_masks()
    if with_lobes:
        for side, mask in lobes.items():
            segmentation.add_segment(mask, SegmentTags("lobe", side=side))
    values = np.full(SHAPE_ZYX, BACKGROUND_BQ_PER_ML)
    for side, mask in lobes.items():
        values[mask] = NONTUMOUR_BQ_PER_ML[side]
    voxels, lesion_tn = {}, {}
    for lesion_id, (centre, radius, concentration, side) in LESIONS.items():
        mask = ball(centre, radius)
        segmentation.add_segment(mask, SegmentTags("lesion", lesion_id=lesion_id))
        values[mask] = concentration
        voxels[lesion_id] = int(mask.sum())
        lesion_tn[lesion_id] = concentration / NONTUMOUR_BQ_PER_ML[side]
    lobe_tn, lobe_tn_max = {}, {}
    for side in lobes:
        members = [(voxels[i], c) for i, (_, _, c, s) in LESIONS.items() if s == side]
        pooled = sum(n * c for n, c in members) / sum(n for n, _ in members)
        lobe_tn[side] = pooled / NONTUMOUR_BQ_PER_ML[side]
        lobe_tn_max[side] = max(c for _, c in members) / NONTUMOUR_BQ_PER_ML[side]
    spect = sitk.GetImageFromArray((values * scale).astype(np.float32))
    spect.CopyInformation(grid())
    return UniformLobePhantom(segmentation, spect, lesion_tn, lobe_tn, lobe_tn_max, voxels)
