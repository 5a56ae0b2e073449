"""Small helpers for images that share one voxel grid."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def image_on_grid(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    """A SimpleITK image of ``array`` (z, y, x) with the origin, spacing and direction of ``reference``."""
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(reference)
    return image
