"""Self S-values of Lu-177: soft-tissue spheres (lesions, 1.03 g/mL table) and reference organs.

S-values are in mGy/(MBq s) as tabulated; multiply a time-integrated activity in MBq h by
:data:`GY_PER_MBQ_H_PER_MGY_PER_MBQ_S` (= 3.6) x S to get Gy. Sources of the tables: see
References.

References
----------
Chauvin M, Borys D, Botta F, et al. OpenDose: open-access resource for nuclear medicine dosimetry.
J Nucl Med 2020;61:1514-1519, doi:10.2967/jnumed.119.240366 (organ self S-values of Lu-177 in the
ICRP Publication 110 adult male and female phantoms).
Soft-tissue sphere self S-values of Lu-177, soft tissue of 1.03 g/mL, from the published sphere
models: Andersson M, Johansson L, Eckerman K, Mattsson S. IDAC-Dose 2.1, an internal dosimetry
program for diagnostic nuclear medicine based on the ICRP adult reference voxel phantoms. EJNMMI Res
2017;7:88 (sphere module); Stabin MG, Sparks RB, Crowe E. OLINDA/EXM: the second-generation personal
computer software for internal dose assessment in nuclear medicine. J Nucl Med 2005;46:1023-1027.
ICRP Publication 107 (Eckerman K, Endo A). Nuclear decay data for dosimetric calculations. Ann ICRP
2008;38(3); EJNMMI Phys 2020;7:15, doi:10.1186/s40658-020-00301-2, Table 1 (147.9 keV of electrons
per decay).
"""

from __future__ import annotations

import math

import numpy as np

from ..physics import LU177_ELECTRON_ENERGY_J, SECONDS_PER_HOUR, SOFT_TISSUE_DENSITY_G_PER_ML

# 1 MBq h = 3600 MBq s and 1 Gy = 1000 mGy: dose [Gy] = 3.6 x TIA [MBq h] x S [mGy/(MBq s)].
GY_PER_MBQ_H_PER_MGY_PER_MBQ_S = SECONDS_PER_HOUR / 1000.0

# Soft-tissue sphere self S-values of Lu-177 (published sphere-model tables: IDAC-Dose 2.1 /
# OLINDA sphere module). Radius mm -> S mGy/(MBq s); photons included. The table is for tissue of
# 1.03 g/mL: LuPRRT's transport kernel (point_kernels.sphere_absorbed_energy_kev) reproduces it
# within 0.3 % at 1-30 mm for 1.03 g/mL, and sits 2.5-3.8 % above it for unit density.
SPHERE_RADII_MM = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)
SPHERE_SELF_S_MGY_PER_MBQ_S = (4.54, 0.629, 4.27e-2, 5.46e-3, 6.93e-4, 2.07e-4, 2.65e-5)
SPHERE_TABLE_DENSITY_G_PER_ML = SOFT_TISSUE_DENSITY_G_PER_ML

# Organ self S-values of Lu-177, OpenDose (Chauvin et al. J Nucl Med 2020; ICRP-110 adult male AM /
# adult female AF phantoms): (phantom, organ) -> (S mGy/(MBq s), phantom organ mass g). AM kidney is the right
# kidney, AF kidney the left kidney (the tabulated ones).
ORGAN_SELF_S_VALUES = {
    ("AM", "liver"): (1.3713e-5, 1799.8),
    ("AF", "liver"): (1.7533e-5, 1400.0),
    ("AM", "kidney"): (1.5283e-4, 157.0),
    ("AF", "kidney"): (1.6034e-4, 149.5),
    ("AM", "spleen"): (1.5967e-4, 150.0),
}


def electron_energy_s_mgy_g_per_mbq_s() -> float:
    """S x mass for full local absorption of the electrons, mGy g/(MBq s).

    1 MBq s = 1e6 decays of 2.3696e-14 J (147.9 keV, ICRP-107; EJNMMI Phys 2020 Table 1) =
    2.3696e-8 J; absorbed in 1 g (1e-3 kg) that is 2.3696e-5 Gy, so S x m = 0.023696 mGy g/(MBq s).
    """
    return 1e6 * LU177_ELECTRON_ENERGY_J / 1e-3 * 1e3


def sphere_mass_g(radius_mm, density_g_per_ml: float = SPHERE_TABLE_DENSITY_G_PER_ML) -> np.ndarray:
    """Mass (g) of a sphere of radius ``radius_mm``: 4/3 pi r^3, 1 mL = 1000 mm^3.

    Parameters
    ----------
    radius_mm : float or array_like
        Sphere radius (mm).
    density_g_per_ml : float
        Mass density (g/mL); the sphere table's 1.03 g/mL by default.

    Returns
    -------
    numpy.ndarray
        Mass (g).
    """
    return density_g_per_ml * 4.0 / 3.0 * math.pi * np.asarray(radius_mm, dtype=float) ** 3 / 1000.0


def sphere_self_s_value(mass_g, density_g_per_ml: float = SPHERE_TABLE_DENSITY_G_PER_ML,
                        extrapolate: bool = False) -> np.ndarray:
    """Self S-value (mGy/(MBq s)) of a uniform soft-tissue sphere of the given mass and density.

    Log-log interpolation in mass between the tabulated spheres (1-60 mm radius at 1.03 g/mL,
    0.0043-932 g). Another density ``rho`` is scaled to the table's ``rho_t`` by the density-scaling
    theorem (all interaction lengths scale with 1/rho): a sphere of mass ``m`` at ``rho`` has the
    absorbed fraction of the table sphere of equal ``rho R``, whose mass is ``m' = m (rho/rho_t)^2``;
    so ``S(m, rho) = S_t(m') m'/m``. Below the table the electron escape grows quickly, so it is an
    error. Above the table (``extrapolate=True``) S x m is held at its 60 mm value: electrons are
    fully absorbed there, and holding the photon part constant slightly underestimates S for
    bigger spheres (photon absorption still grows with size; < 3 % of S).

    Parameters
    ----------
    mass_g : float or array_like
        Sphere mass in g (volume in mL x density in g/mL).
    density_g_per_ml : float or array_like
        Tissue density (g/mL); the table's 1.03 by default.
    extrapolate : bool
        Allow masses above the largest tabulated sphere.

    Raises
    ------
    ValueError
        Mass or density not positive, or mass outside the table (naming the mass and the allowed range).
    """
    mass = np.asarray(mass_g, dtype=float)
    density = np.asarray(density_g_per_ml, dtype=float)
    if np.any(~np.isfinite(mass) | (mass <= 0)):
        raise ValueError(f"sphere mass must be positive and finite, got {mass_g} g")
    if np.any(~np.isfinite(density) | (density <= 0)):
        raise ValueError(f"sphere density must be positive and finite, got {density_g_per_ml} g/mL")
    equivalent = mass * (density / SPHERE_TABLE_DENSITY_G_PER_ML) ** 2  # table sphere of equal rho R
    table_mass = sphere_mass_g(SPHERE_RADII_MM)
    table_s = np.asarray(SPHERE_SELF_S_MGY_PER_MBQ_S)
    too_small = equivalent < table_mass[0] * (1 - 1e-12)
    too_large = equivalent > table_mass[-1] * (1 + 1e-12)
    if np.any(too_small) or (np.any(too_large) and not extrapolate):
        bad = np.broadcast_to(mass, equivalent.shape)[too_small | (too_large & (not extrapolate))]
        raise ValueError(f"sphere mass {bad.tolist()} g is outside the S-value table "
                         f"({table_mass[0]:.4g}-{table_mass[-1]:.4g} g, radius {SPHERE_RADII_MM[0]:g}-"
                         f"{SPHERE_RADII_MM[-1]:g} mm at {SPHERE_TABLE_DENSITY_G_PER_ML} g/mL); pass "
                         f"extrapolate=True for larger spheres")
    log_s = np.interp(np.log(np.minimum(equivalent, table_mass[-1])), np.log(table_mass), np.log(table_s))
    # Above the table: S x m held at the largest sphere's value.
    s_table = np.exp(log_s) * np.where(too_large, table_mass[-1] / equivalent, 1.0)
    return s_table * equivalent / mass


def organ_self_s_value(organ: str, phantom: str = "AM", patient_mass_g: float | None = None) -> float:
    """Organ self S-value (mGy/(MBq s)) of the OpenDose phantom, optionally mass-scaled.

    Mass scaling for a patient organ of mass ``m`` (phantom mass ``m0``): the electron part
    ``E_e/m0`` (full local absorption) keeps S x m constant, i.e. scales by ``m0/m``; the
    remaining photon part scales by ``(m0/m)^(2/3)`` (photon absorbed fraction grows with
    the organ's linear size; the MIRD/OLINDA convention, Stabin et al. J Nucl Med
    2005;46:1023). Photons are 1-4 % of these S-values, so the simple ``S m0/m`` rule
    differs by less than 1.5 % for a factor-two mass change.

    Parameters
    ----------
    organ : str
        Organ name: ``"liver"``, ``"kidney"`` or ``"spleen"`` (see :data:`ORGAN_SELF_S_VALUES`).
    phantom : str
        ICRP-110 phantom: ``"AM"`` (adult male) or ``"AF"`` (adult female).
    patient_mass_g : float, optional
        Mass of the patient's organ (g); None keeps the phantom's S-value.

    Returns
    -------
    float
        Self S-value (mGy/(MBq s)).

    Raises
    ------
    ValueError
        Unknown organ/phantom pair (listing the available ones) or non-positive mass.
    """
    key = (phantom, organ)
    if key not in ORGAN_SELF_S_VALUES:
        raise ValueError(f"no OpenDose self S-value for organ {organ!r} in phantom {phantom!r}; "
                         f"available: {sorted(ORGAN_SELF_S_VALUES)}")
    s_phantom, mass_phantom_g = ORGAN_SELF_S_VALUES[key]
    if patient_mass_g is None:
        return s_phantom
    if not (np.isfinite(patient_mass_g) and patient_mass_g > 0):
        raise ValueError(f"patient organ mass must be positive, got {patient_mass_g} g for {organ!r}")
    ratio = mass_phantom_g / patient_mass_g
    electron = electron_energy_s_mgy_g_per_mbq_s() / mass_phantom_g
    photon = max(s_phantom - electron, 0.0)
    return electron * ratio + photon * ratio ** (2.0 / 3.0)


def s_value_dose_gy(tia_mbq_h, s_value_mgy_per_mbq_s) -> np.ndarray:
    """Absorbed dose (Gy) = TIA (MBq h) x S (mGy/(MBq s)) x 3.6.

    Parameters
    ----------
    tia_mbq_h : float or array_like
        Time-integrated activity in the source (MBq h).
    s_value_mgy_per_mbq_s : float or array_like
        S-value source -> target (mGy/(MBq s)).

    Returns
    -------
    numpy.ndarray
        Absorbed dose (Gy), broadcast over the inputs.
    """
    s_value = np.asarray(s_value_mgy_per_mbq_s, dtype=float)
    return np.asarray(tia_mbq_h, dtype=float) * s_value * GY_PER_MBQ_H_PER_MGY_PER_MBQ_S
