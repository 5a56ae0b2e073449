"""Electron transport in water: Bethe stopping power, CSDA range and a condensed-history dose point kernel.

Energies in keV, lengths in mm, unit-density water (other densities scale lengths by 1/rho).

* Collision stopping power: the Bethe formula for electrons as used by NIST ESTAR (ICRU Report 37,
  1984, eq. 2.16), mean excitation energy of water I = 75 eV (ICRU 37; ESTAR), Z/A = 0.55509. The
  density-effect correction is zero for water below 0.51 MeV (Sternheimer X0 = 0.2400: log10(beta
  gamma) < X0), so it is exactly zero for every Lu-177 electron. Radiative loss (bremsstrahlung,
  < 0.5 % of the stopping power below 0.5 MeV in water, ESTAR) is left out: its photons are a
  0.1 % energy yield and are counted as deposited along the track.
* CSDA range ``R(E) = int dE / S(E)``: 1.77 mm at the 497.8 keV Lu-177 endpoint (ESTAR: 0.1766
  g/cm^2 at 500 keV).
* Elastic scattering: screened Rutherford cross-section with Moliere's screening parameter
  (Moliere, Z Naturforsch 1948; as in Berger, Methods Comput Phys 1963), ``Z(Z+1)`` for the atomic
  electrons; its transport cross-section gives the transport mean free path ``lambda_1(E)``.
* Condensed history (a class-I scheme, Berger 1963): steps of a fixed fractional energy loss along
  the CSDA path; a random hinge per step (Fernandez-Varea et al., Nucl Instrum Meth B 1993) deflects
  the electron so that the mean cosine after a path ``s`` is ``exp(-s / lambda_1)`` (exact for any
  elastic cross-section, Goudsmit & Saunderson 1940), drawn from ``p(mu) ~ exp(kappa mu)``.

No energy straggling: an electron never gets farther from the decay than its CSDA range, so the
Lu-177 electron kernel is exactly zero beyond 1.77 mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from .decay_spectra import lu177_emissions

ELECTRON_REST_ENERGY_KEV = 510.99895  # CODATA 2018
# 2 pi r_e^2 m c^2 N_A = 0.153537 MeV cm^2/mol (ICRU 37); times Z/A (mol/g) gives MeV cm^2/g.
_BETHE_CONSTANT_MEV_CM2_PER_MOL = 0.1535375
WATER_Z_OVER_A = 0.555087  # ICRU 37 (H2O: 10 electrons per 18.0153 g/mol)
WATER_MEAN_EXCITATION_KEV = 0.075  # I = 75 eV, ICRU 37 / NIST ESTAR
WATER_MOLAR_MASS_G = 18.0153
AVOGADRO_PER_MOL = 6.02214076e23  # exact (SI 2019)
FINE_STRUCTURE = 7.2973525693e-3  # CODATA 2018
HBAR_C_KEV_MM = 197.3269804e-12 * 1e3  # hbar c = 197.327 MeV fm = 1.97327e-10 keV mm
ELEMENTARY_CHARGE_SQ_KEV_MM = 1.43996448e-12 * 1e3  # e^2/(4 pi eps0) = 1.44 MeV fm
BOHR_RADIUS_MM = 5.29177210903e-8  # CODATA 2018
# Tracking below this energy ends: its residual CSDA range in water is < 0.1 micrometre.
CUTOFF_ENERGY_KEV = 1.0
# Fractional energy loss per condensed-history step (EGS4's ESTEPE-like control).
STEP_ENERGY_FRACTION = 0.04
# Histories of the Lu-177 kernel and radial tally bin (mm).
KERNEL_HISTORIES = 100_000
TALLY_BIN_MM = 0.005
_SEED = 177


def collision_stopping_power_kev_per_mm(energy_kev) -> np.ndarray:
    """Collision stopping power of unit-density water (keV/mm) for electrons of ``energy_kev``.

    Bethe formula for electrons (ICRU 37 eq. 2.16; density effect zero below 0.51 MeV in water).
    """
    tau = np.asarray(energy_kev, dtype=float) / ELECTRON_REST_ENERGY_KEV
    beta_sq = 1.0 - 1.0 / (1.0 + tau) ** 2
    i_ratio = WATER_MEAN_EXCITATION_KEV / ELECTRON_REST_ENERGY_KEV
    f_minus = 1.0 - beta_sq + (tau**2 / 8.0 - (2.0 * tau + 1.0) * math.log(2.0)) / (tau + 1.0) ** 2
    bracket = np.log(tau**2 * (tau + 2.0) / (2.0 * i_ratio**2)) + f_minus
    mev_cm2_per_g = _BETHE_CONSTANT_MEV_CM2_PER_MOL * WATER_Z_OVER_A / beta_sq * bracket
    return mev_cm2_per_g * 1000.0 / 10.0  # MeV cm^2/g at 1 g/cm^3 -> keV/mm


@dataclass(frozen=True)
class RangeTable:
    """CSDA range of electrons in unit-density water on a log energy grid (keV -> mm)."""

    energy_kev: np.ndarray
    range_mm: np.ndarray

    def range_mm_at(self, energy_kev) -> np.ndarray:
        """CSDA range (mm) at ``energy_kev`` (log-log interpolation)."""
        return np.exp(np.interp(np.log(energy_kev), np.log(self.energy_kev), np.log(self.range_mm)))


@cache
def csda_range_table() -> RangeTable:
    """CSDA ranges from 0.5 keV to 1 MeV by integrating 1/S (collision) in log energy."""
    energy = np.geomspace(0.5, 1000.0, 4001)
    integrand = energy / collision_stopping_power_kev_per_mm(energy)  # dE/S = E dlnE / S
    log_e = np.log(energy)
    cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (integrand[1:] + integrand[:-1]) * np.diff(log_e))])
    # Below 0.5 keV: range ~ E / S(E) (the Bethe formula is not valid there; < 0.02 micrometre).
    start = energy[0] / collision_stopping_power_kev_per_mm(energy[0])
    return RangeTable(energy, cumulative + start)


def csda_range_mm(energy_kev) -> np.ndarray:
    """CSDA range (mm) of electrons in unit-density water."""
    return csda_range_table().range_mm_at(energy_kev)


def transport_mean_free_path_mm(energy_kev) -> np.ndarray:
    """Elastic transport mean free path ``lambda_1`` (mm) of electrons in unit-density water.

    ``1/lambda_1 = sum_atoms n 2 pi Z(Z+1) (e^2/(p v))^2 [ln(1 + 1/eta) - 1/(1 + eta)]``, screened
    Rutherford scattering with Moliere's screening ``eta = (hbar/(2 p a))^2 (1.13 + 3.76 (alpha Z /
    beta)^2)``, ``a = 0.885 a_0 Z^(-1/3)``.
    """
    energy = np.asarray(energy_kev, dtype=float)
    total_kev = energy + ELECTRON_REST_ENERGY_KEV
    pc_kev = np.sqrt(energy * (energy + 2.0 * ELECTRON_REST_ENERGY_KEV))
    beta_sq = (pc_kev / total_kev) ** 2
    pv_kev = pc_kev**2 / total_kev
    molecules_per_mm3 = AVOGADRO_PER_MOL / WATER_MOLAR_MASS_G * 1e-3  # 1 g/cm^3 = 1e-3 g/mm^3
    inverse = np.zeros_like(energy)
    for z, atoms in ((1, 2), (8, 1)):
        screening_radius_mm = 0.885 * BOHR_RADIUS_MM * z ** (-1.0 / 3.0)
        eta = (0.25 * (HBAR_C_KEV_MM / (pc_kev * screening_radius_mm)) ** 2
               * (1.13 + 3.76 * (FINE_STRUCTURE * z) ** 2 / beta_sq))
        sigma_tr = (2.0 * math.pi * z * (z + 1) * (ELEMENTARY_CHARGE_SQ_KEV_MM / pv_kev) ** 2
                    * (np.log1p(1.0 / eta) - 1.0 / (1.0 + eta)))
        inverse += atoms * molecules_per_mm3 * sigma_tr
    return 1.0 / inverse


@dataclass(frozen=True)
class RadialDeposition:
    """Energy deposited per decay in radial shells around a point source (unit-density water).

    Attributes
    ----------
    edges_mm : shell edges (mm), from 0
    energy_kev : energy (keV per decay) deposited in each shell
    """

    edges_mm: np.ndarray
    energy_kev: np.ndarray

    @property
    def max_distance_mm(self) -> float:
        """Outer edge of the last shell that holds energy (mm)."""
        return float(self.edges_mm[np.flatnonzero(self.energy_kev)[-1] + 1])

    def cumulative_kev(self, distance_mm) -> np.ndarray:
        """Energy (keV per decay) deposited within ``distance_mm`` (linear within a shell)."""
        cumulative = np.concatenate([[0.0], np.cumsum(self.energy_kev)])
        return np.interp(distance_mm, self.edges_mm, cumulative)


def _kappa_for_mean_cosine(mean_cosine: np.ndarray) -> np.ndarray:
    """``kappa`` with ``coth(kappa) - 1/kappa = mean_cosine`` (Langevin function inverse, tabulated)."""
    kappa = np.geomspace(1e-4, 1e7, 2001)
    langevin = np.where(kappa < 1e-2, kappa / 3.0, 1.0 / np.tanh(np.minimum(kappa, 700.0)) - 1.0 / kappa)
    return np.interp(mean_cosine, langevin, kappa)


def _deflect(direction: np.ndarray, mean_cosine: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotate unit ``direction`` rows by polar angles with ``p(mu) ~ exp(kappa mu)``, random azimuth.

    The usual direction-cosine update (e.g. EGS4, Nelson et al. SLAC-265 1985), with the special
    case of a direction along z.
    """
    kappa = _kappa_for_mean_cosine(mean_cosine)
    xi = rng.random(kappa.size)
    mu = np.clip(1.0 + np.log(xi + (1.0 - xi) * np.exp(-2.0 * kappa)) / kappa, -1.0, 1.0)
    sin_t = np.sqrt(1.0 - mu**2)
    phi = 2.0 * math.pi * rng.random(kappa.size)
    cos_p, sin_p = np.cos(phi), np.sin(phi)
    u, v, w = direction.T
    rho = np.sqrt(np.maximum(1.0 - w**2, 0.0))
    along_z = rho < 1e-8
    rho = np.where(along_z, 1.0, rho)
    new = np.empty_like(direction)
    new[:, 0] = np.where(along_z, sin_t * cos_p, u * mu + sin_t * (u * w * cos_p - v * sin_p) / rho)
    new[:, 1] = np.where(along_z, sin_t * sin_p, v * mu + sin_t * (v * w * cos_p + u * sin_p) / rho)
    new[:, 2] = np.where(along_z, w * mu, w * mu - rho * sin_t * cos_p)
    return new


@cache
def _transport_mfp_table() -> tuple[np.ndarray, np.ndarray]:
    """``transport_mean_free_path_mm`` on a log grid 0.5 keV - 1 MeV (log-log interpolated in tracking)."""
    energy = np.geomspace(0.5, 1000.0, 2001)
    return np.log(energy), np.log(transport_mean_free_path_mm(energy))


def transport_radial_deposition(energies_kev: np.ndarray, weights_kev: np.ndarray, max_mm: float,
                                bin_mm: float = TALLY_BIN_MM, seed: int = _SEED) -> RadialDeposition:
    """Condensed-history radial deposition of electrons started isotropically at the origin.

    Parameters
    ----------
    energies_kev : initial energies, one per history
    weights_kev : energy per decay each history stands for (keV); its deposits are scaled so that
        the history deposits exactly this energy in total
    max_mm : outer edge of the tally (mm); must cover the largest CSDA range
    """
    rng = np.random.default_rng(seed)
    table = csda_range_table()
    mfp_table = _transport_mfp_table()
    edges = np.arange(0.0, max_mm + bin_mm, bin_mm)
    tally = np.zeros(edges.size - 1)
    energy = np.asarray(energies_kev, dtype=float).copy()
    scale = np.asarray(weights_kev, dtype=float) / energy  # keV per decay per keV deposited
    position = np.zeros((energy.size, 3))
    direction = rng.normal(size=(energy.size, 3))
    direction /= np.linalg.norm(direction, axis=1)[:, None]

    def deposit(where: np.ndarray, kev: np.ndarray) -> None:
        r = np.linalg.norm(where, axis=1)
        index = np.minimum((r / bin_mm).astype(int), tally.size - 1)
        tally[:] += np.bincount(index, kev, minlength=tally.size)

    alive = energy > CUTOFF_ENERGY_KEV
    deposit(position[~alive], energy[~alive] * scale[~alive])
    position, direction, energy, scale = position[alive], direction[alive], energy[alive], scale[alive]
    while energy.size:
        next_energy = energy * (1.0 - STEP_ENERGY_FRACTION)
        step = table.range_mm_at(energy) - table.range_mm_at(next_energy)
        hinge = rng.random(energy.size) * step
        position += hinge[:, None] * direction
        deposit(position, (energy - next_energy) * scale)
        log_mfp = np.interp(np.log(energy) + 0.5 * math.log1p(-STEP_ENERGY_FRACTION), *mfp_table)
        mean_cosine = np.exp(-step / np.exp(log_mfp))
        direction = _deflect(direction, mean_cosine, rng)
        position += (step - hinge)[:, None] * direction
        energy = next_energy
        stop = energy <= CUTOFF_ENERGY_KEV
        if np.any(stop):
            deposit(position[stop], energy[stop] * scale[stop])  # residual range < 0.1 micrometre
            keep = ~stop
            position, direction, energy, scale = position[keep], direction[keep], energy[keep], scale[keep]
    return RadialDeposition(edges, tally)


@cache
def _lu177_tallies(histories: int = KERNEL_HISTORIES) -> tuple[RadialDeposition, RadialDeposition]:
    """Radial deposition per decay of the Lu-177 beta spectrum and of its discrete electrons.

    Histories are shared in proportion to the energy each group carries and drawn within a group in
    proportion to energy (beta: from ``E N(E)``; lines: from ``E y``), so every history carries the
    same energy; fixed seeds make the tallies reproducible.
    """
    emissions = lu177_emissions()
    rng = np.random.default_rng(_SEED + 1)
    beta_kev = emissions.beta_energy_per_decay_kev
    lines = emissions.discrete_electrons_kev_yield
    line_kev = lines[:, 0] * lines[:, 1]
    n_beta = round(histories * beta_kev / (beta_kev + float(line_kev.sum())))
    n_lines = histories - n_beta
    grid = np.linspace(emissions.beta_energy_kev[0], emissions.beta_energy_kev[-1], 20001)
    density = grid * np.interp(grid, emissions.beta_energy_kev, emissions.beta_per_kev)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
    beta_energies = np.interp((np.arange(n_beta) + rng.random(n_beta)) / n_beta, cdf / cdf[-1], grid)
    line_energies = lines[rng.choice(len(lines), size=n_lines, p=line_kev / line_kev.sum()), 0]
    max_mm = float(csda_range_mm(emissions.beta_energy_kev[-1])) + 2 * TALLY_BIN_MM
    beta = transport_radial_deposition(beta_energies, np.full(n_beta, beta_kev / n_beta), max_mm, seed=_SEED)
    discrete = transport_radial_deposition(line_energies, np.full(n_lines, line_kev.sum() / n_lines), max_mm,
                                           seed=_SEED + 2)
    return beta, discrete


def lu177_electron_deposition(include_discrete: bool = True) -> RadialDeposition:
    """Radial energy deposition of the Lu-177 electrons per decay in unit-density water (cached).

    The ICRP-107 beta spectrum (133.3 keV per decay) and, with ``include_discrete``, the conversion
    and Auger electrons (14.6 keV): 147.9 keV per decay.
    """
    beta, discrete = _lu177_tallies()
    if not include_discrete:
        return beta
    return RadialDeposition(beta.edges_mm, beta.energy_kev + discrete.energy_kev)
