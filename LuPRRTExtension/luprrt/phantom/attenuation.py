"""Photon attenuation at the Lu-177 imaging photopeak (208 keV): materials, tissues, and CT-to-mu.

Two roles, kept apart on purpose (a simulation that uses the same map for the camera and for the
reconstruction commits an "inverse crime"):

* the truth: linear attenuation coefficients of known materials, mu = density x mu/rho, with
  mass attenuation coefficients from the NIST X-ray tables (what the photons meet);
* the site's estimate: a bilinear conversion of CT numbers (HU) to mu at 208 keV, as quantitative
  SPECT/CT software does (what the reconstruction uses).

Mass attenuation coefficients (cm2/g, total with coherent scattering) are tabulated at 200 and
300 keV and interpolated log-log to the photopeak; between 60 and 80 keV for the CT's effective
energy. Between 200 and 300 keV Compton scattering carries more than 99 % of the attenuation of
low-Z materials, so mu/rho of a material not in the table is water's scaled by its electron
share Z/A (PMMA, borosilicate glass, polystyrene).

References
----------
Hubbell JH, Seltzer SM. Tables of X-ray mass attenuation coefficients and mass energy-absorption
coefficients. NIST Standard Reference Database 126 (NISTIR 5632), 1995/2004.
ICRU Report 44. Tissue substitutes in radiation dosimetry and measurement, 1989 (densities,
Z/A of the tissues and phantom materials).
Kinahan PE, Townsend DW, Beyer T, Sashin D. Attenuation correction for a combined 3D PET/CT
scanner. Med Phys 1998;25:2046-2053 (bilinear scaling: air-water and water-bone mixtures).
Brown S, Bailey DL, Willowson K, Baldock C. Investigation of the relationship between linear
attenuation coefficients and CT Hounsfield units using radionuclides for SPECT. Appl Radiat Isot
2008;66:1206-1212 (bilinear HU-to-mu for SPECT radionuclides).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from . import anatomy as pa

# Lu-177 imaging photopeak, keV (ICRP-107; see luprrt.physics.LU177_GAMMA_LINES_KEV_YIELD).
LU177_PHOTOPEAK_KEV = 208.366
# Effective photon energy of a 120 kVp CT beam, keV (Kinahan et al. 1998 use ~70 keV).
CT_EFFECTIVE_ENERGY_KEV = 70.0

# NIST X-ray mass attenuation coefficients mu/rho (cm2/g) at (energy keV: value), Hubbell & Seltzer.
_NIST_MU_RHO = {
    "water": {60.0: 0.2059, 80.0: 0.1837, 200.0: 0.1370, 300.0: 0.1186},
    "air": {60.0: 0.1875, 80.0: 0.1662, 200.0: 0.1233, 300.0: 0.1067},
    "adipose": {60.0: 0.1974, 80.0: 0.1800, 200.0: 0.1368, 300.0: 0.1187},  # ICRU-44 adipose tissue
    "soft tissue": {60.0: 0.2048, 80.0: 0.1823, 200.0: 0.1358, 300.0: 0.1176},  # ICRU-44 skeletal muscle
    "lung": {60.0: 0.2053, 80.0: 0.1826, 200.0: 0.1359, 300.0: 0.1177},  # ICRU-44 lung
    "cortical bone": {60.0: 0.3148, 80.0: 0.2229, 200.0: 0.1309, 300.0: 0.1113},  # ICRU-44 cortical bone
}
# Electron share Z/A (mol/g) of water and of phantom materials (NIST material composition data).
_Z_OVER_A = {"water": 0.55508, "pmma": 0.53937, "borosilicate glass": 0.49707, "polystyrene": 0.53768}
# Mass densities, g/mL: ICRU-44; PMMA 1.19; borosilicate (Pyrex) glass 2.23; the NEMA IEC lung
# insert's low-Z foam/beads ~0.3 (NEMA NU 2-2012 section 7.2).
MATERIAL_DENSITY_G_PER_ML = {"water": 1.0, "air": 1.205e-3, "pmma": 1.19, "borosilicate glass": 2.23,
                             "polystyrene": 1.05, "lung insert": 0.30, "cortical bone": 1.92}


def _log_log(table: dict[float, float], energy_kev: float) -> float:
    """mu/rho at ``energy_kev`` by log-log interpolation between the two bracketing table energies."""
    energies = sorted(table)
    for lo, hi in pairwise(energies):
        if lo <= energy_kev <= hi:
            t = np.log(energy_kev / lo) / np.log(hi / lo)
            return float(np.exp(np.log(table[lo]) + t * np.log(table[hi] / table[lo])))
    raise ValueError(f"photon energy {energy_kev} keV is outside the tabulated ranges {energies}; "
                     "use 60-80 keV (CT) or 200-300 keV (Lu-177 photopeak)")


def mass_attenuation_cm2_per_g(material: str, energy_kev: float = LU177_PHOTOPEAK_KEV) -> float:
    """Mass attenuation coefficient mu/rho (cm2/g) of ``material`` at ``energy_kev``.

    Tabulated materials: water, air, adipose, soft tissue, lung, cortical bone. PMMA, borosilicate
    glass, polystyrene and the lung-insert foam: water's value x (Z/A) / (Z/A of water), valid where
    Compton scattering dominates (200-300 keV), refused at CT energies.
    """
    if material in _NIST_MU_RHO:
        return _log_log(_NIST_MU_RHO[material], energy_kev)
    key = "polystyrene" if material == "lung insert" else material
    if key not in _Z_OVER_A:
        raise ValueError(f"unknown material {material!r}; expected one of "
                         f"{sorted(set(_NIST_MU_RHO) | set(_Z_OVER_A) | {'lung insert'})}")
    if energy_kev < 150.0:
        raise ValueError(f"{material}: the Compton (Z/A) scaling holds at 150-300 keV, not at {energy_kev} keV")
    return _log_log(_NIST_MU_RHO["water"], energy_kev) * _Z_OVER_A[key] / _Z_OVER_A["water"]


def linear_attenuation_per_cm(material: str, density_g_per_ml: float | None = None,
                              energy_kev: float = LU177_PHOTOPEAK_KEV) -> float:
    """Linear attenuation coefficient mu (1/cm) = density x mu/rho (default density: the material's)."""
    density = MATERIAL_DENSITY_G_PER_ML[material] if density_g_per_ml is None else density_g_per_ml
    return density * mass_attenuation_cm2_per_g(material, energy_kev)


def relative_electron_density_hu(material: str, density_g_per_ml: float | None = None) -> float:
    """Approximate CT number (HU) of a low-Z phantom material: 1000 (electron density / water's - 1).

    Compton-only approximation of a CT number, used for the synthetic CT of the calibration phantoms
    (PMMA ~ +156 HU, borosilicate glass ~ +1000 HU, lung-insert foam ~ -710 HU).
    """
    density = MATERIAL_DENSITY_G_PER_ML[material] if density_g_per_ml is None else density_g_per_ml
    key = "polystyrene" if material == "lung insert" else material
    if key == "air":
        return -1000.0
    return 1000.0 * (density * _Z_OVER_A[key] / _Z_OVER_A["water"] - 1.0)


def _water_bone_slope_per_hu(energy_kev: float, ct_energy_kev: float) -> float:
    """D mu / d HU (1/cm per HU) of a water + cortical-bone mixture, mu at ``energy_kev``."""
    rho_bone = MATERIAL_DENSITY_G_PER_ML["cortical bone"]
    mu_w_ct = mass_attenuation_cm2_per_g("water", ct_energy_kev)
    mu_b_ct = rho_bone * mass_attenuation_cm2_per_g("cortical bone", ct_energy_kev)
    hu_bone = 1000.0 * (mu_b_ct - mu_w_ct) / mu_w_ct
    mu_w = mass_attenuation_cm2_per_g("water", energy_kev)
    mu_b = rho_bone * mass_attenuation_cm2_per_g("cortical bone", energy_kev)
    return (mu_b - mu_w) / hu_bone


def hu_to_mu_per_cm(hu, energy_kev: float = LU177_PHOTOPEAK_KEV,
                    ct_energy_kev: float = CT_EFFECTIVE_ENERGY_KEV) -> np.ndarray:
    """Bilinear CT-number to linear-attenuation conversion (1/cm) at ``energy_kev``.

    HU <= 0: an air-water mixture, mu = mu_water (1 + HU/1000). HU > 0: a water-cortical bone
    mixture, mu = mu_water + HU x (mu_bone - mu_water) / HU_bone, with HU_bone the CT number of
    cortical bone (1.92 g/mL) at the CT's effective energy (Kinahan et al. 1998; Brown et al. 2008).
    At 208 keV and 70 keV: mu_water = 0.1350 /cm, slope above 0 HU = 7.04e-5 /cm per HU. Values
    below -1000 HU are clipped to air (mu = 0).
    """
    hu = np.asarray(hu, dtype=np.float64)
    mu_w = mass_attenuation_cm2_per_g("water", energy_kev)
    slope = _water_bone_slope_per_hu(energy_kev, ct_energy_kev)
    mu = np.where(hu <= 0.0, mu_w * (1.0 + hu / 1000.0), mu_w + hu * slope)
    return np.clip(mu, 0.0, None)


# Mass density (g/mL) and mu/rho material of each tissue class of the synthetic patient
# (luprrt.phantom.anatomy codes). Densities: ICRU-44 (adipose 0.95, muscle 1.05, inflated lung 0.26,
# liver 1.06, kidney 1.05, spleen 1.06, blood 1.06, cartilage 1.10); CSF 1.01 (ICRP 89); renal sinus
# fat 0.97. The phantom's bone and marrow classes carry CT numbers (350, 150 HU) of partial-volume
# mixtures, not of compact bone: their truth is the water + cortical-bone mixture of that CT number
# (see :func:`tissue_mu_per_cm`).
_TISSUE = {
    pa.AIR: ("air", 1.205e-3), pa.FAT: ("adipose", 0.95), pa.SOFT: ("soft tissue", 1.05),
    pa.LUNG: ("lung", 0.26), pa.BONE: (None, None), pa.MARROW: (None, None), pa.DISC: ("soft tissue", 1.10),
    pa.LIVER: ("soft tissue", 1.06), pa.KIDNEY: ("soft tissue", 1.05), pa.RENAL_SINUS: ("adipose", 0.97),
    pa.SPLEEN: ("soft tissue", 1.06), pa.BLOOD: ("soft tissue", 1.06), pa.CSF: ("water", 1.01),
    pa.LESION: ("soft tissue", 1.05),
}


def _water_bone_mixture_mu(hu: float, energy_kev: float, ct_energy_kev: float) -> float:
    """Mu (1/cm) at ``energy_kev`` of the water + cortical-bone mixture whose CT number is ``hu``."""
    mu_w_ct = mass_attenuation_cm2_per_g("water", ct_energy_kev)
    rho_bone = MATERIAL_DENSITY_G_PER_ML["cortical bone"]
    mu_b_ct = rho_bone * mass_attenuation_cm2_per_g("cortical bone", ct_energy_kev)
    bone_fraction = hu / 1000.0 * mu_w_ct / (mu_b_ct - mu_w_ct)
    mu_w = mass_attenuation_cm2_per_g("water", energy_kev)
    mu_b = rho_bone * mass_attenuation_cm2_per_g("cortical bone", energy_kev)
    return (1.0 - bone_fraction) * mu_w + bone_fraction * mu_b


def tissue_mu_per_cm(energy_kev: float = LU177_PHOTOPEAK_KEV,
                     ct_energy_kev: float = CT_EFFECTIVE_ENERGY_KEV) -> np.ndarray:
    """Truth linear attenuation (1/cm) per tissue class code of the synthetic patient (lookup table).

    Soft tissues, fat, lung and air: ICRU-44 density x their NIST mu/rho. Bone and marrow classes:
    the water + cortical-bone mixture with the class's CT number (anatomy.TISSUE_HU).
    """
    lut = np.zeros(len(pa.TISSUE_NAMES))
    for code, (material, density) in _TISSUE.items():
        if material is None:
            lut[code] = _water_bone_mixture_mu(float(pa.TISSUE_HU[code]), energy_kev, ct_energy_kev)
        else:
            lut[code] = density * mass_attenuation_cm2_per_g(material, energy_kev)
    return lut
