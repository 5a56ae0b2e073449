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


def photon_radial_kev_per_mm(x_mm, density_g_per_ml: float = 1.0) -> np.ndarray:
    """Photon energy deposited per decay in the shell at ``x_mm`` (keV/mm), lines >= 1 keV."""
    x = np.asarray(x_mm, dtype=float) * density_g_per_ml
    energy, photons_per_decay = _photon_lines()
    mu, mu_en = water_coefficients_per_mm(energy)
    mu_x = x[..., None] * mu
    buildup = 1.0 + (mu / mu_en - 1.0) * mu_x
    return density_g_per_ml * ((photons_per_decay * energy * mu_en) * buildup * np.exp(-mu_x)).sum(axis=-1)


def electron_deposition(include_discrete: bool = True) -> RadialDeposition:
    """Radial electron deposition per decay in unit-density water (beta, plus conversion and Auger)."""
    return lu177_electron_deposition(include_discrete)


def sphere_reduction_factor(x_mm, radius_mm: float) -> np.ndarray:
    """Berger's geometric reduction factor of a uniform sphere (MIRD Pamphlet 7)."""
    ratio = np.asarray(x_mm, dtype=float) / radius_mm
    return np.where(ratio <= 2.0, 1.0 - 0.75 * ratio + ratio**3 / 16.0, 0.0)


def sphere_absorbed_energy_kev(radius_mm: float, density_g_per_ml: float = 1.0) -> float:
    """Energy (keV per decay) kept in a uniform soft-tissue sphere (electrons and photons)."""
    deposition = electron_deposition()
    centres = 0.5 * (deposition.edges_mm[1:] + deposition.edges_mm[:-1]) / density_g_per_ml
    electrons = float(deposition.energy_kev @ sphere_reduction_factor(centres, radius_mm))
    x = np.linspace(0.0, 2.0 * radius_mm, 20001)
    photons = np.trapezoid(photon_radial_kev_per_mm(x, density_g_per_ml) * sphere_reduction_factor(x, radius_mm), x)
    return electrons + float(photons) + local_photon_kev()
