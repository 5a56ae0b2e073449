"""Radial energy-deposition distributions of Lu-177 around a point source in soft tissue.

A *radial distribution* ``psi(x)`` gives the energy (keV per decay per mm) deposited in a
spherical shell at distance ``x`` (mm) from a point source in an infinite medium, i.e. ``4 pi x^2``
times the dose point kernel. Soft tissue is water-equivalent in composition with mass density
``rho``: every interaction coefficient scales with ``rho`` (the density-scaling theorem), so
``psi_rho(x) = rho psi_1(rho x)``.

* Electrons (beta spectrum, conversion and Auger electrons; 147.9 keV per decay; ICRP-107): the
  condensed-history transport of :mod:`.electron_transport` (Bethe stopping power, CSDA ranges,
  screened-Rutherford multiple scattering). Exactly zero beyond the 1.77 mm CSDA range of the
  497.8 keV endpoint (unit density).
* Photons (all ICRP-107 gamma and X-ray lines, 35.1 keV per decay): for each line of energy ``E``
  and yield ``y``, ``y E mu_en B(mu x) exp(-mu x)`` with the NIST water coefficients
  (:func:`water_coefficients_per_mm`) and the linear energy-absorption buildup factor
  ``B = 1 + (mu/mu_en - 1) mu x``: the one-parameter buildup form whose coefficient is fixed by
  energy conservation in an infinite medium (``int mu_en B exp(-mu x) dx = 1``: every photon's
  energy is absorbed somewhere). Lines below 1 keV (0.03 keV per decay) are absorbed where emitted.

The sphere self absorbed fraction follows from a radial distribution through Berger's geometric
reduction factor (MIRD Pamphlet 7, Berger 1971): a point at distance ``x`` in a random direction
from a random point of a sphere of radius ``R`` lies inside it with probability
``1 - 3x/(4R) + x^3/(16R^3)`` for ``x <= 2R`` (0 beyond).
"""

from __future__ import annotations

import csv
import io
import math
from functools import cache
from importlib import resources

import numpy as np

from .decay_spectra import lu177_emissions
from .electron_transport import RadialDeposition, lu177_electron_deposition

# Photons below this energy (the table's lower end) are absorbed where emitted (range < 3 micrometres).
LOCAL_PHOTON_KEV = 1.0


@cache
def water_photon_coefficients() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NIST (Hubbell & Seltzer, SRD 126, Table 4) water: energy keV, mu/rho and mu_en/rho in cm^2/g."""
    text = resources.files("luprrt").joinpath("data", "water_photon_coefficients_nist.csv").read_text(
        encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO("".join(line for line in text.splitlines(True)
                                                   if not line.startswith("#")))))
    energy, mu, mu_en = (np.array([float(row[key]) for row in rows]) for key in
                         ("energy_kev", "mu_over_rho_cm2_per_g", "mu_en_over_rho_cm2_per_g"))
    return energy, mu, mu_en


def water_coefficients_per_mm(energy_kev) -> tuple[np.ndarray, np.ndarray]:
    """Linear attenuation and energy-absorption coefficients of unit-density water (1/mm).

    Log-log interpolation of the NIST table (1 cm^2/g at 1 g/cm^3 = 0.1 /mm); 1-500 keV. The
    Lu-177 lines lie between absorption edges of H and O (the K edge of O is 0.53 keV).
    """
    energy_table, mu_table, mu_en_table = water_photon_coefficients()
    energy = np.asarray(energy_kev, dtype=float)
    if np.any((energy < energy_table[0]) | (energy > energy_table[-1])):
        raise ValueError(f"photon energy {energy_kev} keV is outside the tabulated "
                         f"{energy_table[0]:g}-{energy_table[-1]:g} keV range")
    log_e, log_table = np.log(energy), np.log(energy_table)
    return (0.1 * np.exp(np.interp(log_e, log_table, np.log(mu_table))),
            0.1 * np.exp(np.interp(log_e, log_table, np.log(mu_en_table))))


def _photon_lines() -> tuple[np.ndarray, np.ndarray]:
    """ICRP-107 photon lines that travel (>= 1 keV): energy keV, yield per decay."""
    lines = lu177_emissions().photons_kev_yield
    travelling = lines[:, 0] >= LOCAL_PHOTON_KEV
    return lines[travelling, 0], lines[travelling, 1]


def local_photon_kev() -> float:
    """Energy per decay of the photon lines below 1 keV, absorbed where emitted (keV)."""
    lines = lu177_emissions().photons_kev_yield
    soft = lines[:, 0] < LOCAL_PHOTON_KEV
    return float(lines[soft, 0] @ lines[soft, 1])


# Klein-Nishina: classical electron radius (CODATA 2018), electrons per gram of water (Z/A = 0.55509).
CLASSICAL_ELECTRON_RADIUS_CM = 2.8179403262e-13
WATER_ELECTRONS_PER_G = 0.555087 * 6.02214076e23
ELECTRON_REST_ENERGY_KEV = 510.99895


def _klein_nishina(energy_kev: float) -> tuple[float, float, float]:
    """Compton scattering on free electrons (Klein-Nishina) in water at ``energy_kev``.

    Returns the mass cross-section (cm^2/g), the mean energy given to the electron (keV) and the
    mean ``E' mu_en(E')`` of the scattered photon (keV/mm at unit density).
    """
    cos_t = np.linspace(-1.0, 1.0, 2001)
    ratio = 1.0 / (1.0 + energy_kev / ELECTRON_REST_ENERGY_KEV * (1.0 - cos_t))  # E'/E
    d_sigma = math.pi * CLASSICAL_ELECTRON_RADIUS_CM**2 * ratio**2 * (ratio + 1.0 / ratio - (1.0 - cos_t**2))
    sigma = float(np.trapezoid(d_sigma, cos_t))
    transferred_kev = energy_kev * float(np.trapezoid(d_sigma * (1.0 - ratio), cos_t)) / sigma
    scattered_kev = np.maximum(energy_kev * ratio, 1.0)
    absorbed = float(np.trapezoid(d_sigma * scattered_kev * water_coefficients_per_mm(scattered_kev)[1], cos_t))
    return sigma * WATER_ELECTRONS_PER_G, transferred_kev, absorbed / sigma


@cache
def buildup_coefficients(energy_kev: float) -> tuple[float, float]:
    """Energy-absorption buildup ``B = 1 + a mu x exp(b mu x)`` of water at ``energy_kev`` (Berger's form).

    * ``a``, the slope at the source, from single scattering: near a point source the once-scattered
      fluence is ``(pi^2 / 4) mu_s x`` times the primary fluence (the 3-D convolution of two inverse
      square laws; scatter taken isotropic), and each scattered photon deposits ``E' mu_en(E')``
      instead of ``E mu_en(E)``. Compton scattering from the Klein-Nishina formula (free electrons),
      coherent scattering (no energy change) the rest of ``mu - tau - sigma_C`` with the
      photoelectric ``tau = mu_en - sigma_C T/E`` (NIST table).
    * ``b`` from energy conservation in an infinite medium: ``int mu_en B exp(-mu x) dx = 1``
      gives ``a / (1 - b)^2 = mu / mu_en - 1``.
    """
    mu, mu_en = (float(v) for v in water_coefficients_per_mm(energy_kev))
    sigma_c_cm2_g, transferred_kev, scattered_absorption = _klein_nishina(energy_kev)
    sigma_c = 0.1 * sigma_c_cm2_g  # 1/mm at unit density
    photoelectric = max(mu_en - sigma_c * transferred_kev / energy_kev, 0.0)
    sigma_c = min(sigma_c, mu - photoelectric)
    coherent = max(mu - photoelectric - sigma_c, 0.0)
    scatter_absorption = (sigma_c * scattered_absorption + coherent * energy_kev * mu_en) / mu
    a = 0.25 * math.pi**2 * scatter_absorption / (energy_kev * mu_en)
    excess = mu / mu_en - 1.0
    a = min(a, excess)  # b >= 0: buildup never grows slower than linearly
    b = 1.0 - math.sqrt(a / excess) if excess > 0 else 0.0
    return a, b


def photon_radial_kev_per_mm(x_mm, density_g_per_ml: float = 1.0) -> np.ndarray:
    """Photon energy deposited per decay in the shell at ``x_mm`` (keV/mm), lines >= 1 keV.

    ``sum y E mu_en B(mu x) exp(-mu x)`` with the buildup of :func:`buildup_coefficients`.

    Parameters
    ----------
    x_mm : float or array_like
        Distance from the decay (mm).
    density_g_per_ml : float
        Density of the water-equivalent medium (g/mL); distances scale with 1/density.

    Returns
    -------
    numpy.ndarray
        Energy deposited per decay per mm of radius (keV/mm).
    """
    x = np.asarray(x_mm, dtype=float) * density_g_per_ml
    total = np.zeros_like(x)
    for energy, photons_per_decay in zip(*_photon_lines(), strict=True):
        mu, mu_en = (float(v) for v in water_coefficients_per_mm(energy))
        a, b = buildup_coefficients(float(energy))
        mu_x = mu * x
        total += photons_per_decay * energy * mu_en * (np.exp(-mu_x) + a * mu_x * np.exp(-(1.0 - b) * mu_x))
    return density_g_per_ml * total


@cache
def _photon_radial_table(density_g_per_ml: float) -> tuple[np.ndarray, np.ndarray]:
    """``photon_radial_kev_per_mm`` on a radial grid: 0.002 mm steps to 10 mm, then 0.5 % steps to 10 m."""
    x = np.concatenate([np.linspace(0.0, 10.0, 5001), np.geomspace(10.0, 10000.0, 1400)[1:]])
    return x, photon_radial_kev_per_mm(x, density_g_per_ml)


def photon_radial_interpolated(x_mm, density_g_per_ml: float = 1.0) -> np.ndarray:
    """:func:`photon_radial_kev_per_mm` linearly interpolated from a cached table (large arrays of distances).

    Relative error < 1e-5 (the distribution varies on the mm scale of the 8 keV X-rays and slower).

    Parameters
    ----------
    x_mm : float or array_like
        Distance from the decay (mm); 0 beyond the table.
    density_g_per_ml : float
        Density of the water-equivalent medium (g/mL).

    Returns
    -------
    numpy.ndarray
        Energy deposited per decay per mm of radius (keV/mm).
    """
    x, psi = _photon_radial_table(float(density_g_per_ml))
    return np.interp(x_mm, x, psi, right=0.0)


def electron_deposition(include_discrete: bool = True) -> RadialDeposition:
    """Radial electron deposition per decay in unit-density water (beta, plus conversion and Auger)."""
    return lu177_electron_deposition(include_discrete)


def sphere_reduction_factor(x_mm, radius_mm: float) -> np.ndarray:
    """Berger's geometric reduction factor of a uniform sphere (MIRD Pamphlet 7).

    Parameters
    ----------
    x_mm : float or array_like
        Distance between emission and absorption points (mm).
    radius_mm : float
        Sphere radius (mm).

    Returns
    -------
    numpy.ndarray
        Probability (0-1) that a point at ``x_mm`` in a random direction from a uniform source point in the
        sphere is inside it: ``1 - 3/4 (x/R) + (x/R)^3/16`` up to ``x = 2R``, 0 beyond.
    """
    ratio = np.asarray(x_mm, dtype=float) / radius_mm
    return np.where(ratio <= 2.0, 1.0 - 0.75 * ratio + ratio**3 / 16.0, 0.0)


def sphere_absorbed_energy_kev(radius_mm: float, density_g_per_ml: float = 1.0) -> float:
    """Energy (keV per decay) kept in a uniform soft-tissue sphere (electrons and photons).

    Parameters
    ----------
    radius_mm : float
        Sphere radius (mm).
    density_g_per_ml : float
        Density of the sphere and the medium (g/mL).

    Returns
    -------
    float
        Energy absorbed in the sphere per decay (keV).
    """
    deposition = electron_deposition()
    centres = 0.5 * (deposition.edges_mm[1:] + deposition.edges_mm[:-1]) / density_g_per_ml
    electrons = float(deposition.energy_kev @ sphere_reduction_factor(centres, radius_mm))
    x = np.linspace(0.0, 2.0 * radius_mm, 20001)
    photons = np.trapezoid(photon_radial_kev_per_mm(x, density_g_per_ml) * sphere_reduction_factor(x, radius_mm), x)
    return electrons + float(photons) + local_photon_kev()
