"""Truth for sphere-S-value lesion doses, typed from the published tables (not from luprrt).

Lu-177 self S-values of soft-tissue spheres (1.03 g/mL), photons included, mGy/(MBq s), by radius
(mm): the published sphere-model tables (IDAC-Dose 2.1 sphere module: Andersson et al., EJNMMI Res
2017;7:88; OLINDA/EXM sphere model: Stabin, Sparks & Crowe, J Nucl Med 2005;46:1023-1027).
Between the radii the table is read linearly in log S against log r, which at one density is
log-log in mass, the usual reading of these tables.
"""

from __future__ import annotations

import math

import numpy as np

TABLE_RADIUS_MM = np.array([1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0])
TABLE_S_MGY_PER_MBQ_S = np.array([4.54, 0.629, 4.27e-2, 5.46e-3, 6.93e-4, 2.07e-4, 2.65e-5])
TISSUE_DENSITY_G_PER_ML = 1.03  # the table's soft tissue
GY_PER_MBQ_H_PER_MGY_PER_MBQ_S = 3600.0 / 1000.0  # 3600 s/h, 1000 mGy/Gy



def sphere_volume_ml(radius_mm: float) -> float:
    return 4.0 / 3.0 * math.pi * radius_mm ** 3 / 1000.0


def s_truth(radius_mm: float) -> float:
    """Self S-value (mGy/(MBq s)) of a 1.03 g/mL sphere of this radius."""
    return float(np.exp(np.interp(np.log(radius_mm), np.log(TABLE_RADIUS_MM), np.log(TABLE_S_MGY_PER_MBQ_S))))


def s_truth_for_mass(mass_g: float) -> float:
    """Self S-value (mGy/(MBq s)) of a tissue sphere of this mass (its radius at 1.03 g/mL)."""
    radius_mm = (3.0 * mass_g / TISSUE_DENSITY_G_PER_ML * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    return s_truth(radius_mm)
