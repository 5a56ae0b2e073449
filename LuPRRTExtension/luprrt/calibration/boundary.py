"""Segmentation-boundary uncertainty: a structure's outline moved outwards or inwards by whole voxels.

The EANM uncertainty guidance (Gear et al., Eur J Nucl Med Mol Imaging 2018;45:2456-2474) asks
for the effect of the delineation on every quantity; LuPRRT takes the boundary as uncertain by
+-1 voxel of the segmentation's own grid and evaluates each quantity with the outline moved by
one voxel both ways. The +-1 voxel are bounds, so the standard uncertainty is the half-range
over sqrt(3) (rectangular distribution, JCGM 100:2008 (GUM) section 4.3.7):
:data:`BOUNDARY_RECTANGULAR_FACTOR`; the 95 % interval of a result whose uncertainty this term
dominates is 95 % of the range, not 1.96 u (:func:`.uncertainty.coverage_half_width_95`).

Moving by k voxels is a threshold of the distance in voxel units (each axis counted in its own
voxels, as a k-voxel dilation or erosion with a face-connected ball is): voxels within k
outside the structure join it (k > 0), those within |k| inside leave it (k < 0).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

BOUNDARY_RECTANGULAR_FACTOR = 1.0 / math.sqrt(3.0)


def shift_boundary(mask: np.ndarray, voxels: float) -> np.ndarray:
    """The structure ``mask`` (z, y, x) with its outline moved outwards by ``voxels`` (< 0: inwards).

    Works inside the structure's bounding box grown by the move; a structure eroded away
    keeps its voxel nearest the centre of mass (a delineation does not vanish).
    """
    mask = np.asarray(mask, dtype=bool)
    if voxels == 0 or not mask.any():
        return mask.copy()
    grow = math.ceil(abs(voxels)) + 1
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    box = tuple(slice(max(s.start - grow, 0), min(s.stop + grow, n)) for s, n in zip(box, mask.shape, strict=True))
    local = mask[box]
    limit = abs(voxels) * (1 + 1e-9)
    if voxels > 0:
        moved = ndimage.distance_transform_edt(~local) <= limit
    else:
        moved = ndimage.distance_transform_edt(local) > limit
        if not moved.any():
            centre = np.asarray(ndimage.center_of_mass(local))
            inside = np.argwhere(local)
            moved[tuple(inside[np.argmin(np.linalg.norm(inside - centre, axis=1))])] = True
    result = np.zeros_like(mask)
    result[box] = moved
    return result
