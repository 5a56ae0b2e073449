"""A dual-head SPECT camera with a medium-energy collimator and a clinical Lu-177 protocol (parameters only).

What :mod:`luprrt.phantom.osem` simulates and reconstructs with. No torch here: the numbers
are plain data and closed forms, usable (and tested) without the ``sim`` extra.

Collimator-detector response: a Gaussian whose FWHM grows linearly with the source-to-collimator
distance d (geometric resolution of a parallel-hole collimator, Cherry, Sorenson & Phelps,
Physics in Nuclear Medicine, 4th ed., 2012, eq. 14-6),

    R_geo(d) = D (L_eff + b + d) / L_eff,   L_eff = L - 2 / mu_lead(E),

added in quadrature to the intrinsic resolution R_int(E) = R_int(140 keV) sqrt(140.5 / E)
(Anger-camera resolution ~ 1 / sqrt(E)). D hole diameter, L hole length, b distance from the
collimator back face to the crystal's mean interaction depth. Septal penetration and collimator
scatter of the 208 keV photons (a few per cent with a medium-energy collimator) are not modelled.

References
----------
Siemens Symbia / Symbia Intevo system specifications: medium-energy low-penetration (ME) collimator
with hexagonal holes 2.94 mm across flats, septa 1.14 mm, length 40.64 mm; intrinsic spatial resolution
<= 3.8 mm FWHM (UFOV, 140 keV, NEMA NU 1). The same collimator is in the SIMIND collimator database
(Ljungberg M, Strand SE. Comput Methods Programs Biomed 1989;29:257), code SE-ME.
Tran-Gia J, Denis-Bacelar AM, Ferreira KM, et al. A multicentre and multi-national evaluation of the
accuracy of quantitative Lu-177 SPECT/CT imaging performed within the MRTDosimetry project. EJNMMI
Phys 2021;8:55 (doi:10.1186/s40658-021-00397-0), Table 2: medium-energy collimator, 208.4 keV 20 %
photopeak window, scatter windows either side, 128 x 128 matrix, body-contour orbit, 120 views
(60 per head), step-and-shoot.
Ogawa K, Harata Y, Ichihara T, Kubo A, Hashimoto S. A practical method for position-dependent
Compton-scatter correction in single photon emission CT. IEEE Trans Med Imaging 1991;10:408
(triple-energy-window scatter estimate).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .attenuation import LU177_PHOTOPEAK_KEV

# Lead: density 11.35 g/mL; mu/rho from the NIST X-ray tables (Hubbell & Seltzer): 0.9985 cm2/g at
# 200 keV and 0.4031 cm2/g at 300 keV.
_LEAD_DENSITY_G_PER_ML = 11.35
_LEAD_MU_RHO = {200.0: 0.9985, 300.0: 0.4031}
# Tc-99m photon energy at which camera intrinsic resolution is specified, keV.
_INTRINSIC_REFERENCE_KEV = 140.5
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class Collimator:
    """A parallel-hole collimator (lead) and the gap behind it to the crystal's mean interaction depth."""

    name: str
    hole_diameter_mm: float
    septal_thickness_mm: float
    hole_length_mm: float
    image_plane_gap_mm: float

    def effective_length_mm(self, energy_kev: float = LU177_PHOTOPEAK_KEV) -> float:
        """L_eff = L - 2 / mu_lead (mm): the hole length shortened by penetration at the hole ends."""
        if not 150.0 <= energy_kev <= 300.0:
            raise ValueError(f"lead attenuation is tabulated here for 150-300 keV, not {energy_kev} keV")
        t = math.log(energy_kev / 200.0) / math.log(300.0 / 200.0)
        mu_rho = _LEAD_MU_RHO[200.0] * (_LEAD_MU_RHO[300.0] / _LEAD_MU_RHO[200.0]) ** t
        mu_per_mm = _LEAD_DENSITY_G_PER_ML * mu_rho / 10.0
        return self.hole_length_mm - 2.0 / mu_per_mm

    def geometric_fwhm_mm(self, distance_mm, energy_kev: float = LU177_PHOTOPEAK_KEV):
        """Geometric resolution (FWHM, mm) for a source ``distance_mm`` from the collimator face."""
        length = self.effective_length_mm(energy_kev)
        return self.hole_diameter_mm * (length + self.image_plane_gap_mm + distance_mm) / length


# Siemens Symbia medium-energy low-penetration collimator (module references); gap: 9.5 mm NaI(Tl)
# crystal, mean 208 keV interaction depth ~5 mm, plus ~2 mm entrance window and housing.
SIEMENS_ME = Collimator("Siemens Symbia ME (medium-energy low-penetration)", 2.94, 1.14, 40.64, 7.0)


@dataclass(frozen=True)
class SpectProtocol:
    """Camera, acquisition and reconstruction of a quantitative Lu-177 SPECT (defaults: a clinical protocol).

    Energies keV, lengths mm, times s. ``counts_per_mbq_per_view`` is the detected photopeak counts
    per MBq in air per view (collimator-detector sensitivity x time per view); it is set for a
    study so the 24 h patient scan has clinical counts (see :mod:`luprrt.phantom.osem_fixture`).
    """

    collimator: Collimator = SIEMENS_ME
    intrinsic_fwhm_140kev_mm: float = 3.8
    photopeak_window_kev: tuple[float, float] = (187.6, 229.2)  # 208.4 keV +- 10 %
    lower_window_kev: tuple[float, float] = (175.0, 187.6)  # TEW lower scatter window (6 %)
    n_views: int = 120
    n_heads: int = 2
    time_per_view_s: float = 20.0
    orbit: str = "contour"  # body-contour orbit, or "circular"
    orbit_clearance_mm: float = 20.0  # collimator face to the body outline (contour orbit)
    circular_radius_mm: float = 250.0
    recon_voxel_mm: float = 4.42
    projector_subdivision: int = 2  # the truth is projected on voxels recon_voxel_mm / 2
    iterations: int = 6
    subsets: int = 10
    postfilter_fwhm_mm: float = 0.0
    # Scatter in the photopeak window: broad-beam (build-up) attenuation minus narrow-beam attenuation
    # of the same activity, spread by a Gaussian scatter response (see luprrt.phantom.osem).
    broad_beam_mu_ratio: float = 0.80
    scatter_response_fwhm_mm: float = 50.0
    tew_smoothing_fwhm_mm: float = 15.0
    counts_per_mbq_per_view: float = 150.0  # 7.5 cps/MBq per head in air at 20 s per view
    energy_kev: float = LU177_PHOTOPEAK_KEV
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.orbit not in ("contour", "circular"):
            raise ValueError(f"orbit must be 'contour' or 'circular', got {self.orbit!r}")
        if self.n_views % self.n_heads or self.n_views % self.subsets:
            raise ValueError(f"{self.n_views} views must divide among {self.n_heads} heads and "
                             f"{self.subsets} subsets")
        if min(self.iterations, self.subsets, self.projector_subdivision) < 1 or self.recon_voxel_mm <= 0:
            raise ValueError("iterations, subsets and projector subdivision must be >= 1, voxels > 0 mm")

    @property
    def intrinsic_fwhm_mm(self) -> float:
        """Intrinsic resolution at the photopeak (mm): R_int(140 keV) sqrt(140.5 / E)."""
        return self.intrinsic_fwhm_140kev_mm * math.sqrt(_INTRINSIC_REFERENCE_KEV / self.energy_kev)

    def system_fwhm_mm(self, distance_mm):
        """Collimator-detector FWHM (mm) at ``distance_mm`` from the collimator face."""
        geometric = self.collimator.geometric_fwhm_mm(distance_mm, self.energy_kev)
        return (geometric**2 + self.intrinsic_fwhm_mm**2) ** 0.5

    def system_sigma_mm(self, distance_mm):
        """Collimator-detector Gaussian sigma (mm) at ``distance_mm`` from the collimator face."""
        return self.system_fwhm_mm(distance_mm) / FWHM_PER_SIGMA

    @property
    def acquisition_duration_s(self) -> float:
        """Elapsed acquisition time: views per head x time per view."""
        return self.n_views / self.n_heads * self.time_per_view_s

    @property
    def tew_window_widths_kev(self) -> tuple[float, float]:
        """(photopeak, lower scatter window) widths, keV."""
        return (self.photopeak_window_kev[1] - self.photopeak_window_kev[0],
                self.lower_window_kev[1] - self.lower_window_kev[0])

    def as_dict(self) -> dict:
        """Plain JSON of every parameter, with the derived duration and resolutions."""
        out = asdict(self)
        out["acquisition_duration_s"] = self.acquisition_duration_s
        out["intrinsic_fwhm_mm"] = self.intrinsic_fwhm_mm
        out["system_fwhm_at_100_mm"] = float(self.system_fwhm_mm(100.0))
        return out
