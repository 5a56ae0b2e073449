"""The NEMA IEC body phantom in a SPECT: its six spheres found by registering the known geometry, and their recovery.

Geometry (NEMA NU 2-2012 section 7, IEC 61675-1; :mod:`luprrt.phantom.calibration_phantoms`):
six spheres of inner diameter 10, 13, 17, 22, 28 and 37 mm with centres on a circle of radius
57.2 mm about the phantom axis, 60 degrees apart in order of size, in one transverse plane.
The six centres are therefore a rigid model with six unknowns: where the axis crosses the
sphere plane (3), the ring's rotation about the axis (1) and the axis tilt (2), plus which
way round the sizes go (the phantom may lie either way on the couch).

How the pose is found (no user clicks):

1. the phantom's body and background level: the largest connected region above half the
   background level (the median of the image over the phantom);
2. hot blobs: local maxima of the image smoothed with a 6 mm Gaussian; the two strongest are
   taken as the 37 and 28 mm spheres (neighbours on the ring, 57.2 mm apart);
3. the four poses they allow (ring centre on either side of the pair, sizes either way round)
   are scored, and the best is refined by maximising the activity inside the six true sphere
   volumes over the six pose parameters (Powell's method): for a blur symmetric about each
   sphere that sum is largest when every sphere volume sits on its sphere, and the rigid ring
   also places spheres too faint to see. The activity in a sphere volume centred anywhere is
   the image correlated with the sphere's voxel occupancy (one FFT per size), interpolated.

Then, in each sphere's true volume: the mean (occupancy-weighted) and maximum concentration,
their recovery coefficients (mean and max over the true sphere concentration) and the
contrast recovery of the mean against the measured background (NEMA NU 2 hot-sphere
contrast, :mod:`.recovery`), each with its standard uncertainty from the image noise
(:mod:`.noise`, measured in the phantom's background).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage, optimize, signal

from ..grid import GridGeometry
from ..phantom import (
    IEC_SPHERE_ANGLES_DEG,
    IEC_SPHERE_DIAMETERS_MM,
    IEC_SPHERE_RING_RADIUS_MM,
    sphere_occupancy,
)
from ..provenance import ProgressCallback, no_progress
from .noise import NoiseModel, estimate_noise, linear_trend_residuals

log = logging.getLogger(__name__)

IEC_LUNG_INSERT_RADIUS_MM = 25.5
_BLOB_SMOOTHING_MM = 6.0
_BACKGROUND_EDGE_MARGIN_MM = 15.0  # background voxels this far from walls, spheres and the lung insert
_MIN_PHANTOM_ML = 3000.0  # the IEC body holds ~9.7 L; less than this above half the background is not it
_UNITS_TOLERANCE = 2.0  # measured / stated background outside [1/2, 2]: units or activity wrong
_MIN_LARGEST_CONTRAST = 0.3  # contrast recovery of the 37 mm sphere below this: spheres not found
_FAST_SUPERSAMPLING = 3
_FINAL_SUPERSAMPLING = 10


@dataclass(frozen=True)
class IecPose:
    """Pose of the sphere ring: axis point in the sphere plane (LPS mm), axis, angle, handedness."""

    ring_centre_mm: tuple[float, float, float]
    axis: tuple[float, float, float]
    angle_deg: float  # angle of the smallest sphere from the in-plane axis nearest +x
    handedness: int  # +1 or -1: which way round the sizes increase

    def sphere_centres_mm(self, ring_radius_mm: float = IEC_SPHERE_RING_RADIUS_MM,
                          angles_deg: Sequence[float] = IEC_SPHERE_ANGLES_DEG) -> np.ndarray:
        """(n, 3) LPS centres of the spheres, smallest first."""
        u, v = _plane_basis(np.asarray(self.axis, dtype=float))
        angles = np.radians(self.angle_deg + self.handedness * np.asarray(angles_deg, dtype=float))
        return (np.asarray(self.ring_centre_mm)[None, :]
                + ring_radius_mm * (np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v))

    def as_dict(self) -> dict:
        """Plain JSON."""
        return {"ring_centre_mm": list(self.ring_centre_mm), "axis": list(self.axis),
                "angle_deg": self.angle_deg, "handedness": self.handedness}


@dataclass(frozen=True)
class SphereMeasurement:
    """One sphere: true size and position, measured concentrations and recoveries (with standard uncertainties)."""

    diameter_mm: float
    volume_ml: float
    centre_mm: tuple[float, float, float]
    mean_bq_per_ml: float
    mean_sd_bq_per_ml: float
    max_bq_per_ml: float
    rc_mean: float
    rc_mean_sd: float
    rc_max: float
    rc_max_sd: float
    contrast_recovery: float
    contrast_recovery_sd: float


@dataclass(frozen=True)
class IecMeasurement:
    """The spheres of one IEC phantom scan, its background and noise, and the registered pose.

    ``core_level_bq_per_ml`` and ``core_voxel_sd_bq_per_ml``: mean and voxel SD (linear trend
    removed) in the inner half radius of the largest sphere, a second activity level for the
    level dependence of the noise (:func:`.noise.noise_exponent`).
    """

    sphere_bq_per_ml: float
    background_bq_per_ml: float
    measured_background_bq_per_ml: float
    measured_background_sd_bq_per_ml: float
    spheres: tuple[SphereMeasurement, ...]
    pose: IecPose
    noise: NoiseModel
    grid: GridGeometry
    core_level_bq_per_ml: float
    core_voxel_sd_bq_per_ml: float
    source: str = ""

    @property
    def sphere_to_background(self) -> float:
        """True sphere-to-background concentration ratio."""
        return self.sphere_bq_per_ml / self.background_bq_per_ml

    def rows(self) -> list[dict]:
        """One table row per sphere (columns with units)."""
        return [{"phantom": self.source, "sphere_to_background": self.sphere_to_background,
                 "diameter_mm": s.diameter_mm, "volume_ml": s.volume_ml,
                 "centre_x_mm": s.centre_mm[0], "centre_y_mm": s.centre_mm[1], "centre_z_mm": s.centre_mm[2],
                 "true_sphere_bq_per_ml": self.sphere_bq_per_ml, "true_background_bq_per_ml": self.background_bq_per_ml,
                 "measured_background_bq_per_ml": self.measured_background_bq_per_ml,
                 "mean_bq_per_ml": s.mean_bq_per_ml, "mean_sd_bq_per_ml": s.mean_sd_bq_per_ml,
                 "max_bq_per_ml": s.max_bq_per_ml, "rc_mean": s.rc_mean, "rc_mean_sd": s.rc_mean_sd,
                 "rc_max": s.rc_max, "rc_max_sd": s.rc_max_sd, "contrast_recovery": s.contrast_recovery,
                 "contrast_recovery_sd": s.contrast_recovery_sd}
                for s in self.spheres]


def _plane_basis(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal (u, v) perpendicular to ``axis``, u nearest +x, v = axis x u."""
    axis = axis / np.linalg.norm(axis)
    u = np.array([1.0, 0.0, 0.0]) - axis[0] * axis
    u /= np.linalg.norm(u)
    return u, np.cross(axis, u)


def _axis_from_tilt(tilt_x: float, tilt_y: float) -> np.ndarray:
    axis = np.array([tilt_x, tilt_y, 1.0])
    return axis / np.linalg.norm(axis)


def _pose(parameters: np.ndarray, handedness: int) -> IecPose:
    cx, cy, cz, angle, tilt_x, tilt_y = (float(p) for p in parameters)
    return IecPose((cx, cy, cz), tuple(_axis_from_tilt(tilt_x, tilt_y).tolist()), angle, handedness)


def _sphere_sums(values: np.ndarray, image: sitk.Image, radii: Sequence[float]) -> list[np.ndarray]:
    """Per sphere size: the image correlated with the sphere's voxel occupancy (centred on a voxel).

    Its value at a voxel is the activity inside a true sphere volume centred there; cubic-spline
    interpolation (smooth, so its maximum may lie between voxel centres, unlike a trilinear one)
    gives it at any point, so the registration score costs no occupancy per step. Returned as
    spline coefficients.
    """
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    sums = []
    for radius in radii:
        half = np.ceil((radius + np.linalg.norm(spacing)) / spacing).astype(int)
        kernel_grid = sitk.Image([int(2 * h + 1) for h in half], sitk.sitkUInt8)
        kernel_grid.SetSpacing([float(s) for s in spacing])
        kernel_grid.SetOrigin([float(-h * s) for h, s in zip(half, spacing, strict=True)])
        _, kernel = sphere_occupancy(kernel_grid, (0.0, 0.0, 0.0), radius, _FAST_SUPERSAMPLING)
        sums.append(ndimage.spline_filter(signal.fftconvolve(values, kernel[::-1, ::-1, ::-1], mode="same"),
                                          order=3, mode="nearest"))
    return sums


def _score(sums: list[np.ndarray], image: sitk.Image, centres: np.ndarray) -> float:
    """Activity inside the spheres at ``centres`` (sum over spheres, interpolated)."""
    index = np.array([image.TransformPhysicalPointToContinuousIndex([float(v) for v in c]) for c in centres])
    return float(sum(ndimage.map_coordinates(s, index[k, ::-1, None], order=3, mode="nearest", prefilter=False)[0]
                     for k, s in enumerate(sums)))


def _background_level(smooth: np.ndarray) -> float:
    """The phantom's background level: median over the phantom (voxels above half the level), refined twice.

    It starts from the image's mean, not from its maximum: the spheres hold ~0.5 % of the
    phantom's volume, so the mean is a fraction of the background whatever the spheres' contrast,
    while a fraction of the maximum lands above the background at high sphere-to-background
    ratios (20:1 and more), where the median would then be taken over the spheres alone.
    """
    level = float(smooth.mean())
    if not level > 0:
        raise ValueError("the phantom image is empty (no positive voxel)")
    for _ in range(3):
        level = float(np.median(smooth[smooth > 0.5 * level]))
    return level


def _phantom_body(smooth: np.ndarray, level: float, voxel_ml: float) -> np.ndarray:
    labels, n = ndimage.label(smooth > 0.5 * level)
    if n == 0:
        raise ValueError("no phantom found in the image")
    sizes = np.bincount(labels.ravel())[1:]
    body = labels == (int(np.argmax(sizes)) + 1)
    if body.sum() * voxel_ml < _MIN_PHANTOM_ML:
        raise ValueError(f"the phantom's warm background covers {body.sum() * voxel_ml:.0f} mL; the NEMA IEC "
                         f"body phantom holds ~9700 mL: is this the IEC phantom with a filled background?")
    return body


def _blobs(values: np.ndarray, body: np.ndarray, level: float, spacing_zyx: np.ndarray,
           positions) -> list[tuple[float, np.ndarray]]:
    """(excess over background, LPS position) of hot local maxima inside the phantom, strongest first."""
    smooth = ndimage.gaussian_filter(values, _BLOB_SMOOTHING_MM / spacing_zyx) - level
    size = np.maximum(np.round(20.0 / spacing_zyx).astype(int) | 1, 3)
    peaks = (smooth == ndimage.maximum_filter(smooth, size=size)) & body & (smooth > 0.05 * level)
    index = np.argwhere(peaks)
    strength = smooth[peaks]
    order = np.argsort(strength)[::-1][:6]
    return [(float(strength[k]), positions(index[k])) for k in order]


def _initial_poses(blobs: list[tuple[float, np.ndarray]], radius: float) -> list[tuple[np.ndarray, int]]:
    """Pose hypotheses (parameters, handedness) from pairs of blobs that can be the 37 and 28 mm spheres.

    Two neighbours on the ring are one ring radius apart; the ring centre is then on either side
    of the pair, and for each side one handedness puts the 28 mm sphere on the second blob.
    """
    hypotheses = []
    largest_angle = IEC_SPHERE_ANGLES_DEG[-1]
    for i, (_, first) in enumerate(blobs[:3]):
        for j, (_, second) in enumerate(blobs[:3]):
            chord = float(np.linalg.norm((second - first)[:2]))
            if i == j or abs(chord - radius) > 0.35 * radius:
                continue
            middle = (first + second) / 2.0
            along = (second - first)[:2] / chord
            normal = np.array([-along[1], along[0]])
            height = math.sqrt(max(radius**2 - (chord / 2.0) ** 2, 0.0))
            for side in (1.0, -1.0):
                centre = np.array([*(middle[:2] + side * height * normal), middle[2]])
                angle_first = math.degrees(math.atan2(first[1] - centre[1], first[0] - centre[0]))
                for handedness in (1, -1):
                    parameters = np.array([*centre, angle_first - handedness * largest_angle, 0.0, 0.0])
                    predicted = _pose(parameters, handedness).sphere_centres_mm()
                    if np.linalg.norm(predicted[-2] - second) < 0.35 * radius:
                        hypotheses.append((parameters, handedness))
    return hypotheses


def find_iec_spheres(image: sitk.Image, *, progress: ProgressCallback | None = None) -> tuple[IecPose, np.ndarray,
                                                                                                float]:
    """Register the IEC sphere geometry to a phantom image.

    Parameters
    ----------
    image : SimpleITK.Image
        The reconstructed phantom (any positive scale), axis-aligned grid (identity direction).
    progress : callable(fraction, message), optional

    Returns
    -------
    (pose, body mask (z, y, x), background level in image units)

    Raises
    ------
    ValueError
        Not an axis-aligned grid, no phantom, or no pair of hot spheres found.
    """
    progress = progress or no_progress
    if not np.allclose(image.GetDirection(), np.eye(3).ravel(), atol=1e-6):
        raise ValueError(f"the IEC phantom image must be axis-aligned (identity direction); got "
                         f"{image.GetDirection()}: resample it onto an axial grid first")
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    spacing_zyx = np.asarray(image.GetSpacing()[::-1], dtype=float)
    voxel_ml = float(np.prod(spacing_zyx)) / 1000.0
    smooth = ndimage.gaussian_filter(values, 1.0)
    level = _background_level(smooth)
    body = _phantom_body(smooth, level, voxel_ml)
    progress(0.1, "hot spheres")

    def position(index) -> np.ndarray:
        return np.asarray(image.TransformContinuousIndexToPhysicalPoint([float(i) for i in index[::-1]]))

    blobs = _blobs(values, body, level, spacing_zyx, position)
    radii = [d / 2.0 for d in IEC_SPHERE_DIAMETERS_MM]
    hypotheses = _initial_poses(blobs, IEC_SPHERE_RING_RADIUS_MM)
    if not hypotheses:
        raise ValueError(f"the IEC spheres were not found: no two hot spheres {IEC_SPHERE_RING_RADIUS_MM} mm "
                         f"apart (found {len(blobs)} hot spots); check the sphere filling and that the image "
                         "is the IEC phantom")

    sums = _sphere_sums(values, image, radii)

    def score(parameters, handedness) -> float:
        return _score(sums, image, _pose(parameters, handedness).sphere_centres_mm())

    scored = sorted(((score(p, h), k) for k, (p, h) in enumerate(hypotheses)), reverse=True)
    start, handedness = hypotheses[scored[0][1]]
    progress(0.3, "registering the sphere ring")
    scale = max(abs(score(start, handedness)), 1e-12)
    result = optimize.minimize(lambda p: -score(p, handedness) / scale, start, method="Powell",
                               options={"xtol": 1e-3, "ftol": 1e-7, "maxfev": 2000})
    return _pose(result.x, handedness), body, level


def measure_iec_phantom(image: sitk.Image, sphere_bq_per_ml: float, background_bq_per_ml: float, *,
                        source: str = "", progress: ProgressCallback | None = None) -> IecMeasurement:
    """Find the spheres of an IEC phantom SPECT (Bq/mL) and measure their recovery.

    Parameters
    ----------
    image : SimpleITK.Image
        The reconstructed phantom in Bq/mL (apply the site's calibration factor to counts first).
    sphere_bq_per_ml, background_bq_per_ml : float
        True concentrations at the scan time (dose calibrator, decay-corrected).
    source : str
        Name recorded in the rows.
    progress : callable(fraction, message), optional

    Raises
    ------
    ValueError
        Missing or non-positive concentrations, a measured background that disagrees with the
        stated one by more than a factor of 2 (wrong units or activity), no phantom, or
        spheres not found.
    """
    progress = progress or no_progress
    for name, value in (("sphere", sphere_bq_per_ml), ("background", background_bq_per_ml)):
        if value is None or not (math.isfinite(value) and value > 0):
            raise ValueError(f"the IEC {name} activity concentration is missing or not positive ({value}); "
                             "give the dose-calibrator concentrations (Bq/mL) at the scan time")
    if sphere_bq_per_ml <= background_bq_per_ml:
        raise ValueError(f"sphere concentration {sphere_bq_per_ml:g} Bq/mL is not above the background "
                         f"{background_bq_per_ml:g} Bq/mL: recovery needs hot spheres")
    pose, body, level = find_iec_spheres(image, progress=progress)
    if not 1.0 / _UNITS_TOLERANCE <= level / background_bq_per_ml <= _UNITS_TOLERANCE:
        raise ValueError(f"the phantom background in the image is {level:.4g} per mL but {background_bq_per_ml:.4g} "
                         "Bq/mL was stated: wrong image units (the image must be in Bq/mL; counts need the "
                         "calibration factor) or wrong activity/time")
    progress(0.7, "sphere recovery")
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    spacing_zyx = np.asarray(image.GetSpacing()[::-1], dtype=float)
    centres = pose.sphere_centres_mm()
    background = _background_region(image, body, centres, pose)
    noise = estimate_noise(values, background, spacing_zyx)
    measured_background = float(values[background].mean())
    background_sd = noise.sd_of_mean(background.astype(float), measured_background)
    ratio = sphere_bq_per_ml / background_bq_per_ml
    spheres = []
    for diameter, centre in zip(IEC_SPHERE_DIAMETERS_MM, centres, strict=True):
        box, fraction = sphere_occupancy(image, centre, diameter / 2.0, _FINAL_SUPERSAMPLING)
        inside = values[box]
        mean = float(np.sum(fraction * inside) / np.sum(fraction))
        core = fraction > 0.5
        peak = float(inside[core].max() if core.any() else inside[fraction == fraction.max()].max())
        mean_sd = noise.sd_of_mean(fraction, mean)
        contrast = (mean / measured_background - 1.0) / (ratio - 1.0)
        contrast_sd = math.hypot(mean_sd / measured_background,
                                 mean * background_sd / measured_background**2) / (ratio - 1.0)
        spheres.append(SphereMeasurement(
            float(diameter), math.pi * diameter**3 / 6000.0, tuple(float(c) for c in centre), mean, mean_sd, peak,
            mean / sphere_bq_per_ml, mean_sd / sphere_bq_per_ml, peak / sphere_bq_per_ml,
            noise.voxel_sd_at(peak) / sphere_bq_per_ml, contrast, contrast_sd))
    largest = spheres[-1]
    if largest.contrast_recovery < _MIN_LARGEST_CONTRAST:
        raise ValueError(f"the IEC spheres were not found: the {largest.diameter_mm:g} mm sphere's contrast "
                         f"recovery at the registered position is {largest.contrast_recovery:.2f}; check the "
                         "stated concentrations and that the spheres are filled and in the field of view")
    core_level, core_sd = _core_noise(values, image, spheres[-1])
    progress(1.0, "spheres measured")
    log.info("IEC phantom %s: spheres at ring centre %s, background %.4g Bq/mL (stated %.4g), contrast recovery "
             "%s", source, np.round(pose.ring_centre_mm, 1).tolist(), measured_background, background_bq_per_ml,
             [round(s.contrast_recovery, 3) for s in spheres])
    return IecMeasurement(float(sphere_bq_per_ml), float(background_bq_per_ml), measured_background, background_sd,
                          tuple(spheres), pose, noise, GridGeometry.from_image(image), core_level, core_sd, source)


def _core_noise(values: np.ndarray, image: sitk.Image, sphere: SphereMeasurement) -> tuple[float, float]:
    """Mean and voxel SD (linear trend removed) of the voxels within half the radius of a sphere's centre."""
    box, fraction = sphere_occupancy(image, sphere.centre_mm, sphere.diameter_mm / 4.0, 1)
    core = fraction > 0.5
    if core.sum() < 5:
        return math.nan, math.nan
    inside = values[box]
    residual = linear_trend_residuals(inside, core)
    return float(inside[core].mean()), float(np.sqrt(np.sum(residual[core] ** 2) / max(core.sum() - 4, 1)))


def _background_region(image: sitk.Image, body: np.ndarray, centres: np.ndarray, pose: IecPose) -> np.ndarray:
    """Phantom voxels away from its walls, the spheres and the lung insert (uniform true background)."""
    spacing_zyx = np.asarray(image.GetSpacing()[::-1], dtype=float)
    inner = ndimage.distance_transform_edt(body, sampling=spacing_zyx) > _BACKGROUND_EDGE_MARGIN_MM
    shape = body.shape
    z, y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    origin = np.asarray(image.GetOrigin())
    spacing = np.asarray(image.GetSpacing())
    points = np.stack([x, y, z], axis=-1) * spacing + origin
    keep = inner.copy()
    for diameter, centre in zip(IEC_SPHERE_DIAMETERS_MM, centres, strict=True):
        keep &= np.linalg.norm(points - centre, axis=-1) > diameter / 2.0 + _BACKGROUND_EDGE_MARGIN_MM
    axis = np.asarray(pose.axis)
    offset = points - np.asarray(pose.ring_centre_mm)
    radial = np.linalg.norm(offset - (offset @ axis)[..., None] * axis, axis=-1)
    keep &= radial > IEC_LUNG_INSERT_RADIUS_MM + _BACKGROUND_EDGE_MARGIN_MM
    if keep.sum() < 200:
        raise ValueError(f"only {int(keep.sum())} background voxels of the IEC phantom are away from its walls, "
                         "spheres and lung insert: is the whole phantom in the field of view?")
    return keep
