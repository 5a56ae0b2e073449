"""OSEM-grade synthetic SPECT: a simulated Lu-177 acquisition reconstructed as a clinic does.

The truth (activity concentration and attenuation, on any grid) is projected on a grid twice
as fine as the reconstruction, the projections binned to the camera's pixels, scatter and
Poisson noise added, and the result reconstructed by OSEM with attenuation and collimator-
detector response modelling on the coarse grid: the projector of the simulation and of the
reconstruction differ (no "inverse crime"), and so do their attenuation maps (the truth: the
materials' mu; the reconstruction: a bilinear conversion of the CT, as a site does).

Model (camera parameters in :class:`luprrt.phantom.spect_camera.SpectProtocol`):

* Primary photons: rotate-and-sum projector of pytomography (Polson et al. 2023) with its
  attenuation transform and a depth-dependent Gaussian collimator-detector response.
* Scatter in the 208 keV window: the photons that narrow-beam attenuation removes but
  broad-beam ("build-up") attenuation keeps, i.e. P(mu_broad) - P(mu), mu_broad = 0.80 mu
  (the classic ratio of broad- to narrow-beam mu for a 20 % window, e.g. 0.12 vs 0.15 /cm for
  Tc-99m in water: Zaidi H, Hasegawa B, J Nucl Med 2003;44:291), spread by a Gaussian scatter
  response (FWHM 50 mm) in the projection plane. This gives zero scatter from a source at the
  surface and a scatter-to-primary ratio that grows with depth (about 0.3 at 10 cm of water),
  which is what matters for a realistic OSEM image: a smooth, depth-dependent background that
  the reconstruction must remove. It is why a scatter model was chosen over a fixed fraction.
* Scatter estimate used by the reconstruction: triple-energy-window (Ogawa et al. 1991) from a
  simulated lower scatter window (its own Poisson counts; the upper window holds no counts at
  208 keV, the Lu-177 lines above it being weak), smoothed, as an additive term. Its
  expectation equals the true scatter (the trapezoid assumption holds exactly here), its noise
  is real: the estimate is unbiased but noisy, as TEW is.
* Poisson noise on the photopeak and scatter windows at clinical counts.
* OSEM (pytomography), default 6 iterations x 10 subsets, 4.42 mm voxels, no post-filter.

pytomography can do all of this, but its Gaussian collimator response is a grouped 1D
convolution that runs ~10x slower on a CPU than the same blur written as per-plane matrix
products; :func:`_gaussian_response_transform` is that (a pytomography ``Transform``, pixel-
integrated Gaussian kernels per source-detector distance, exact adjoint).

torch and pytomography (the ``sim`` extra) are imported inside the functions that use them:
``luprrt`` imports without them.

References
----------
Polson LA, Fedrigo R, Li C, et al. PyTomography: a Python library for medical image
reconstruction. SoftwareX 2025;29:102020 (pytomography, PyPI).
Hudson HM, Larkin RS. Accelerated image reconstruction using ordered subsets of projection data.
IEEE Trans Med Imaging 1994;13:601-609 (OSEM).
Dewaraja YK, Frey EC, Sgouros G, et al. MIRD Pamphlet No. 23: Quantitative SPECT for patient-
specific 3-dimensional dosimetry in internal radionuclide therapy. J Nucl Med 2012;53:1310-1325
(calibration factor from a uniform cylinder: total counts / (activity x acquisition time)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from scipy.special import erf

from ..grid import image_on_grid
from ..provenance import ProgressCallback, no_progress
from .imaging import partial_volume_average
from .spect_camera import FWHM_PER_SIGMA, SpectProtocol

# Body outline for the contour orbit: attenuation above this (1/cm) is matter, not air (air 1.5e-4,
# lung 0.035, water 0.135).
_BODY_MU_PER_CM = 0.01
# Source-detector distances of the response kernels are rounded to this (mm): sigma then moves by < 0.02 mm.
_DISTANCE_STEP_MM = 1.0


@dataclass(frozen=True)
class SimulationGrids:
    """The projector (fine) and reconstruction (coarse) grids: same extent, square transverse section."""

    fine: sitk.Image
    recon: sitk.Image
    subdivision: int


def simulation_grids(size_mm, recon_voxel_mm: float = 4.42, subdivision: int = 2,
                     centre_mm=(0.0, 0.0, 0.0)) -> SimulationGrids:
    """Grids covering ``size_mm`` (x, y, z) around ``centre_mm``: recon voxels and ``subdivision``-times finer.

    The transverse section is square (the rotate-and-sum projector rotates it) with an even
    number of reconstruction voxels, so camera pixels of the recon voxel size bin fine pixels
    exactly.
    """
    if subdivision < 1 or recon_voxel_mm <= 0:
        raise ValueError(f"need recon voxels > 0 mm and subdivision >= 1, got {recon_voxel_mm}, {subdivision}")
    n_xy = 2 * math.ceil(max(size_mm[0], size_mm[1]) / recon_voxel_mm / 2)
    n_z = math.ceil(size_mm[2] / recon_voxel_mm)
    grids = []
    for step, scale in ((recon_voxel_mm, 1), (recon_voxel_mm / subdivision, subdivision)):
        size = np.array([n_xy, n_xy, n_z]) * scale
        grid = sitk.Image([int(n) for n in size], sitk.sitkFloat32)
        grid.SetSpacing([float(step)] * 3)
        grid.SetOrigin([float(c - (n - 1) * step / 2.0) for c, n in zip(centre_mm, size, strict=True)])
        grids.append(grid)
    return SimulationGrids(grids[1], grids[0], subdivision)


def _xyz(values_zyx: np.ndarray):
    """A torch tensor in pytomography's [x, y, z] order from a SimpleITK (z, y, x) array."""
    import pytomography
    import torch

    return torch.from_numpy(np.ascontiguousarray(values_zyx.transpose(2, 1, 0))).to(pytomography.dtype)


def _zyx(tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.cpu().numpy().transpose(2, 1, 0))


def _gaussian_response_transform(protocol: SpectProtocol, spacing_mm: float):
    """Depth-dependent Gaussian collimator-detector response as a pytomography object transform.

    In the rotated frame (detector at +x) each plane x of the padded object is blurred along y
    and z by the pixel-integrated Gaussian of the system sigma at that plane's distance from the
    collimator face, as two batched matrix products; the adjoint uses the transposed matrices.
    """
    import torch
    from pytomography.transforms import Transform
    from pytomography.utils import compute_pad_size

    def blur_matrices(sigmas_mm: np.ndarray, n: int) -> torch.Tensor:
        """(len(sigmas), n, n): column j is the pixel-integrated Gaussian centred on pixel j."""
        offset = np.arange(n)[:, None] - np.arange(n)[None, :]
        scale = np.sqrt(2.0) * sigmas_mm[:, None, None] / spacing_mm
        matrix = 0.5 * (erf((offset + 0.5) / scale) - erf((offset - 0.5) / scale))
        return torch.from_numpy(matrix.astype(np.float32))

    class GaussianCollimatorResponse(Transform):
        def configure(self, object_meta, proj_meta) -> None:
            super().configure(object_meta, proj_meta)
            n_x = object_meta.shape[0] + 2 * compute_pad_size(object_meta.shape[0])
            n_y = object_meta.shape[1] + 2 * compute_pad_size(object_meta.shape[1])
            radii_mm = np.asarray(proj_meta.radii, dtype=float) * 10.0
            # Distance of each padded plane from the collimator face, for each view (detector at +x).
            planes = ((n_x - 1) / 2.0 - np.arange(n_x)) * spacing_mm
            distance = np.clip(radii_mm[:, None] + planes[None, :], 0.0, None)
            index = np.round(distance / _DISTANCE_STEP_MM).astype(np.int64)
            used, self.index = np.unique(index, return_inverse=True)
            self.index = torch.from_numpy(self.index.reshape(index.shape))
            sigmas = protocol.system_sigma_mm(used * _DISTANCE_STEP_MM)
            self.blur_y = blur_matrices(sigmas, n_y)
            self.blur_z = blur_matrices(sigmas, object_meta.shape[2])

        def forward(self, object_i, ang_idx):
            # Planes without activity (air around the body, most of the padding) stay zero: skip them.
            active = torch.nonzero(object_i.reshape(object_i.shape[0], -1).any(dim=1)).flatten()
            rows = self.index[int(ang_idx)][active]
            blurred = torch.bmm(torch.bmm(self.blur_y[rows], object_i[active]), self.blur_z[rows].transpose(1, 2))
            out = torch.zeros_like(object_i)
            out[active] = blurred
            return out

        def backward(self, object_i, ang_idx):
            rows = self.index[int(ang_idx)]
            blurred = torch.bmm(self.blur_y[rows].transpose(1, 2), object_i)
            return torch.bmm(blurred, self.blur_z[rows])

    return GaussianCollimatorResponse()


def _attenuation_transforms(mu_xyz, broad_beam_ratio: float | None, cache: bool):
    """Pytomography's attenuation transform, optionally remembering each view's survival map.

    With ``broad_beam_ratio`` the transform multiplies by exp(-ratio tau) - exp(-tau) instead of
    exp(-tau) (tau: attenuation path to the detector): the photons that broad-beam attenuation
    keeps and narrow-beam attenuation removes, i.e. the scatter build-up. OSEM projects every view
    2 x iterations times on the same map, so remembering the survival maps (``cache``) saves the
    rotation and cumulative sum that dominate its time.
    """
    from pytomography.transforms.SPECT import SPECTAttenuationTransform
    from pytomography.utils import pad_object, rev_cumsum, rotate_detector_z

    class Attenuation(SPECTAttenuationTransform):
        def _survival(self, ang_idx):
            key = int(ang_idx)
            if cache and key in self._maps:
                return self._maps[key]
            tau = rev_cumsum(rotate_detector_z(pad_object(self.attenuation_map), self.proj_meta.angles[ang_idx])
                             * self.object_meta.dx)
            survival = (tau.neg().exp() if broad_beam_ratio is None
                        else (tau * -broad_beam_ratio).exp() - tau.neg().exp())
            if cache:
                self._maps[key] = survival
            return survival

        def forward(self, object_i, ang_idx):
            return object_i * self._survival(ang_idx)

        def backward(self, object_i, ang_idx):
            return object_i * self._survival(ang_idx)

    transform = Attenuation(attenuation_map=mu_xyz)
    transform._maps = {}
    return transform


def _system_matrix(mu_per_cm_zyx: np.ndarray, spacing_mm: float, radii_mm: np.ndarray, protocol: SpectProtocol,
                   *, scatter_build_up: bool = False, cache: bool = False):
    """Pytomography SPECT system matrix on one grid: attenuation, then the collimator response.

    ``scatter_build_up``: the broad-minus-narrow-beam transform alone (no collimator response: the
    scatter response that follows is much wider).
    """
    from pytomography.metadata.SPECT import SPECTObjectMeta, SPECTProjMeta
    from pytomography.projectors.SPECT import SPECTSystemMatrix

    nz, ny, nx = mu_per_cm_zyx.shape
    dr_cm = spacing_mm / 10.0
    object_meta = SPECTObjectMeta([dr_cm] * 3, [nx, ny, nz])
    proj_meta = SPECTProjMeta((ny, nz), [dr_cm, dr_cm], view_angles_deg(protocol), radii_mm / 10.0)
    mu = _xyz(mu_per_cm_zyx)
    if scatter_build_up:
        transforms = [_attenuation_transforms(mu, protocol.broad_beam_mu_ratio, cache)]
    else:
        transforms = [_attenuation_transforms(mu, None, cache), _gaussian_response_transform(protocol, spacing_mm)]
    return SPECTSystemMatrix(transforms, [], object_meta, proj_meta)


def view_angles_deg(protocol: SpectProtocol) -> np.ndarray:
    """Equally spaced views over 360 degrees (both heads together, step-and-shoot)."""
    return np.arange(protocol.n_views) * 360.0 / protocol.n_views


def contour_orbit_radii_mm(mu_per_cm: sitk.Image, protocol: SpectProtocol) -> np.ndarray:
    """Collimator-face distance from the rotation axis for each view (mm).

    Body contour: the farthest extent of the body outline (mu > 0.01 /cm, any slice) towards the
    detector, plus the protocol's clearance; circular: the protocol's radius. The outline is
    rotated with pytomography's own detector rotation, so the radii match its projector.
    """
    import torch
    from pytomography.utils import pad_object, rotate_detector_z

    angles = view_angles_deg(protocol)
    if protocol.orbit == "circular":
        return np.full(len(angles), protocol.circular_radius_mm)
    spacing = mu_per_cm.GetSpacing()[0]
    outline = (sitk.GetArrayViewFromImage(mu_per_cm) > _BODY_MU_PER_CM).any(axis=0)  # (y, x)
    if not outline.any():
        raise ValueError("no body in the attenuation map (nothing above 0.01 /cm): cannot fit a contour orbit")
    # Two identical slices: pytomography's rotation squeezes singleton axes away.
    silhouette = pad_object(_xyz(np.stack([outline, outline]).astype(np.float32)))  # [x, y, 2]
    radii = []
    for angle in angles:
        rotated = rotate_detector_z(silhouette, torch.tensor([float(angle)]))
        planes = np.flatnonzero(rotated[:, :, 0].amax(dim=1).numpy() > 0.5)
        extent = (planes.max() + 0.5 - rotated.shape[0] / 2.0) * spacing
        radii.append(extent + protocol.orbit_clearance_mm)
    return np.asarray(radii)


@dataclass
class Acquisition:
    """Projections of one SPECT acquisition (views, r, z) on the camera's pixels (the recon voxel size).

    ``photopeak`` and ``lower_window``: counts (Poisson); ``expected_primary`` and
    ``expected_scatter``: their noise-free photopeak parts.
    """

    photopeak: np.ndarray
    lower_window: np.ndarray
    expected_primary: np.ndarray
    expected_scatter: np.ndarray
    radii_mm: np.ndarray
    protocol: SpectProtocol

    @property
    def total_counts(self) -> int:
        """Counts in the photopeak window over all views."""
        return int(self.photopeak.sum())

    @property
    def scatter_fraction(self) -> float:
        """Expected scatter / all expected counts in the photopeak window."""
        return float(self.expected_scatter.sum() / (self.expected_scatter.sum() + self.expected_primary.sum()))


def _bin(projections, factor: int) -> np.ndarray:
    """Sum ``factor`` x ``factor`` blocks of fine pixels (views, r, z) into camera pixels."""
    p = projections.cpu().numpy() if hasattr(projections, "cpu") else np.asarray(projections)
    v, r, z = p.shape
    return p.reshape(v, r // factor, factor, z // factor, factor).sum(axis=(2, 4))


def expected_projections(concentration: sitk.Image, mu_per_cm: sitk.Image, grids: SimulationGrids,
                         protocol: SpectProtocol, radii_mm: np.ndarray | None = None,
                         progress: ProgressCallback | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise-free photopeak projections (primary, scatter) of a truth, on the camera's pixels.

    Parameters
    ----------
    concentration : SimpleITK.Image
        True activity concentration (Bq/mL) on any axis-aligned grid (e.g. the CT's).
    mu_per_cm : SimpleITK.Image
        True linear attenuation at the photopeak (1/cm) on any axis-aligned grid.
    grids : SimulationGrids
        The truth is averaged onto ``grids.fine`` (exact voxel-box overlaps) and projected there.
    protocol : SpectProtocol
        ``counts_per_mbq_per_view`` sets the count level.
    radii_mm : array, optional
        Orbit radii per view; default from the truth's body outline (:func:`contour_orbit_radii_mm`).

    Returns
    -------
    (primary, scatter, radii_mm)
        Expected counts per camera pixel and view, (views, r, z), and the orbit used.
    """
    import torch

    progress = progress or no_progress
    fine = grids.fine
    voxel_ml = float(np.prod(fine.GetSpacing())) / 1000.0
    activity_mbq = partial_volume_average(concentration, fine) * voxel_ml * 1e-6
    mu = partial_volume_average(mu_per_cm, fine)
    mu_image = image_on_grid(mu.astype(np.float32), fine)
    if radii_mm is None:
        radii_mm = contour_orbit_radii_mm(mu_image, protocol)
    source = _xyz(activity_mbq * protocol.counts_per_mbq_per_view)
    spacing = fine.GetSpacing()[0]
    with torch.no_grad():
        progress(0.0, "projecting the truth")
        primary = _bin(_system_matrix(mu, spacing, radii_mm, protocol).forward(source), grids.subdivision)
        progress(0.8, "projecting the scatter build-up")
        build_up = _bin(_system_matrix(mu, spacing, radii_mm, protocol, scatter_build_up=True).forward(source),
                        grids.subdivision)
    sigma_px = protocol.scatter_response_fwhm_mm / FWHM_PER_SIGMA / grids.recon.GetSpacing()[0]
    scatter = ndimage.gaussian_filter(np.clip(build_up, 0.0, None), sigma=(0.0, sigma_px, sigma_px),
                                      mode="constant", truncate=4.0)
    progress(1.0, "projected")
    return primary, scatter, np.asarray(radii_mm, dtype=float)


def acquire(primary: np.ndarray, scatter: np.ndarray, radii_mm: np.ndarray, protocol: SpectProtocol,
            rng: np.random.Generator) -> Acquisition:
    """Poisson counts in the photopeak window and in the lower (TEW) scatter window."""
    width_peak, width_lower = protocol.tew_window_widths_kev
    # TEW's trapezoid: scatter per keV in the lower window = 2 x its mean over the photopeak window.
    lower_expected = scatter * 2.0 * width_lower / width_peak
    return Acquisition(rng.poisson(primary + scatter).astype(np.float32), rng.poisson(lower_expected)
                       .astype(np.float32), primary.astype(np.float32), scatter.astype(np.float32),
                       np.asarray(radii_mm, dtype=float), protocol)


def tew_scatter_estimate(acquisition: Acquisition) -> np.ndarray:
    """Triple-energy-window scatter estimate in the photopeak window, smoothed in each view."""
    protocol = acquisition.protocol
    width_peak, width_lower = protocol.tew_window_widths_kev
    estimate = acquisition.lower_window / width_lower * width_peak / 2.0  # upper window: no counts
    sigma_px = protocol.tew_smoothing_fwhm_mm / FWHM_PER_SIGMA / protocol.recon_voxel_mm
    return ndimage.gaussian_filter(estimate, sigma=(0.0, sigma_px, sigma_px), mode="nearest")


def reconstruct_osem(acquisition: Acquisition, mu_per_cm: sitk.Image,
                     progress: ProgressCallback | None = None) -> sitk.Image:
    """OSEM with attenuation, collimator-detector response and TEW scatter: an image in counts.

    Parameters
    ----------
    acquisition : Acquisition
    mu_per_cm : SimpleITK.Image
        The reconstruction's attenuation map (1/cm at the photopeak) on the reconstruction grid
        (a site's: from its CT, :func:`luprrt.phantom.hu_to_mu_per_cm`).

    Returns
    -------
    SimpleITK.Image
        float32 counts per voxel over the whole acquisition in air (the OSEM estimate of counts
        per view x number of views), on ``mu_per_cm``'s grid: divide by (calibration factor x
        acquisition time) for MBq.
    """
    import torch
    from pytomography.algorithms import OSEM
    from pytomography.likelihoods import PoissonLogLikelihood

    progress = progress or no_progress
    protocol = acquisition.protocol
    spacing = mu_per_cm.GetSpacing()
    if not np.allclose(spacing, protocol.recon_voxel_mm, rtol=1e-6):
        raise ValueError(f"the reconstruction grid has {spacing} mm voxels, the protocol {protocol.recon_voxel_mm} mm")
    mu = sitk.GetArrayViewFromImage(mu_per_cm).astype(np.float64)
    if acquisition.photopeak.shape[1:] != (mu.shape[1], mu.shape[0]):
        raise ValueError(f"projections {acquisition.photopeak.shape} do not match the grid {mu.shape[::-1]}")
    with torch.no_grad():
        system = _system_matrix(mu, spacing[0], acquisition.radii_mm, protocol, cache=True)
        likelihood = PoissonLogLikelihood(system, torch.from_numpy(acquisition.photopeak),
                                          additive_term=torch.from_numpy(tew_scatter_estimate(acquisition)))
        algorithm = OSEM(likelihood)
        progress(0.0, f"OSEM {protocol.iterations} iterations x {protocol.subsets} subsets")
        estimate = algorithm(n_iters=protocol.iterations, n_subsets=protocol.subsets)
    counts = _zyx(estimate) * protocol.n_views
    if protocol.postfilter_fwhm_mm > 0:
        counts = ndimage.gaussian_filter(counts, protocol.postfilter_fwhm_mm / FWHM_PER_SIGMA / spacing[0])
    progress(1.0, "reconstructed")
    return image_on_grid(counts.astype(np.float32), mu_per_cm)


def calibration_factor_cps_per_mbq(counts: sitk.Image, activity_mbq: float, duration_s: float) -> float:
    """Cylinder calibration factor: total reconstructed counts / (activity x acquisition time), cps/MBq.

    The total is over the whole reconstruction, which encloses the cylinder by more than a few
    FWHM on every side, so the counts spilled out of the cylinder are included (MIRD 23).
    """
    if activity_mbq <= 0 or duration_s <= 0:
        raise ValueError(f"activity ({activity_mbq} MBq) and acquisition time ({duration_s} s) must be positive")
    return float(sitk.GetArrayViewFromImage(counts).sum(dtype=np.float64)) / (activity_mbq * duration_s)


def counts_to_bq_per_ml(counts: sitk.Image, calibration_cps_per_mbq: float, duration_s: float) -> sitk.Image:
    """Counts image -> activity concentration (Bq/mL): counts / (CF x time) MBq per voxel / voxel volume."""
    voxel_ml = float(np.prod(counts.GetSpacing())) / 1000.0
    scale = 1e6 / (calibration_cps_per_mbq * duration_s * voxel_ml)
    return image_on_grid((sitk.GetArrayViewFromImage(counts) * scale).astype(np.float32), counts)


@dataclass
class OsemScan:
    """One simulated acquisition and its OSEM reconstruction (``counts``, see :func:`reconstruct_osem`)."""

    counts: sitk.Image
    acquisition: Acquisition


def simulate_osem_scan(concentration: sitk.Image, mu_true_per_cm: sitk.Image, mu_recon_per_cm: sitk.Image,
                       grids: SimulationGrids, protocol: SpectProtocol, rng: np.random.Generator, *,
                       radii_mm: np.ndarray | None = None,
                       progress: ProgressCallback | None = None) -> OsemScan:
    """Project the truth on the fine grid, add scatter and Poisson noise, reconstruct by OSEM on the coarse grid.

    ``mu_recon_per_cm`` is the reconstruction's attenuation map on ``grids.recon`` (from the CT
    by the bilinear conversion); ``mu_true_per_cm`` the materials' truth on any grid.
    """
    progress = progress or no_progress
    primary, scatter, radii = expected_projections(
        concentration, mu_true_per_cm, grids, protocol, radii_mm,
        progress=lambda f, m: progress(0.5 * f, m))
    acquisition = acquire(primary, scatter, radii, protocol, rng)
    counts = reconstruct_osem(acquisition, mu_recon_per_cm, progress=lambda f, m: progress(0.5 + 0.5 * f, m))
    return OsemScan(counts, acquisition)


def recon_mu_from_ct(ct_hu: sitk.Image, recon_grid: sitk.Image, energy_kev: float) -> sitk.Image:
    """The reconstruction's attenuation map: the CT averaged onto the recon grid, then bilinear HU -> mu."""
    from .attenuation import hu_to_mu_per_cm

    hu = partial_volume_average(ct_hu, recon_grid)
    # Outside the CT's field of view the average counts zero HU (water); it is air there.
    inside = partial_volume_average(image_on_grid(np.ones(sitk.GetArrayViewFromImage(ct_hu).shape, np.float32),
                                                  ct_hu), recon_grid)
    hu = np.where(inside > 0, hu / np.where(inside > 0, inside, 1.0), -1000.0)
    return image_on_grid(hu_to_mu_per_cm(hu, energy_kev).astype(np.float32), recon_grid)


def simulate_cylinder_calibration(grids: SimulationGrids, protocol: SpectProtocol, rng: np.random.Generator,
                                  activity_mbq: float = 1000.0,
                                  progress: ProgressCallback | None = None) -> tuple[float, OsemScan]:
    """Scan the uniform cylinder with ``protocol`` and derive the calibration factor as a site does (cps/MBq)."""
    from .calibration_phantoms import uniform_cylinder_phantom

    truth = uniform_cylinder_phantom(grids.fine, activity_mbq=activity_mbq)
    site = uniform_cylinder_phantom(grids.recon, activity_mbq=activity_mbq)
    scan = simulate_osem_scan(truth.concentration, truth.mu, recon_mu_from_ct(site.ct, grids.recon, protocol.energy_kev),
                              grids, protocol, rng, progress=progress)
    return calibration_factor_cps_per_mbq(scan.counts, activity_mbq, protocol.acquisition_duration_s), scan
