"""Recovery curves: recovery coefficient versus volume, fitted, evaluated with its uncertainty.

Three recovery quantities of a hot sphere of volume V in a warm background, measured in the
sphere's true volume (Bq/mL; the true sphere and background concentrations are known):

* ``"mean"``: RC = measured mean / true sphere concentration;
* ``"max"``: RC = measured maximum / true sphere concentration (edge overshoot of
  resolution-recovered OSEM can push it above 1);
* ``"contrast"``: the contrast recovery of the mean, CR = (mean / background - 1) /
  (sphere-to-background ratio - 1), with the measured background; the hot-sphere contrast
  of NEMA NU 2-2012 section 7. It does not depend on the image's global scale, and for a
  linear, shift-invariant system it equals the recovery of the same sphere in a cold
  background (spill-out and spill-in from a uniform background cancel), so it carries over
  to a lesion whose background (non-tumour liver) differs from the phantom's. LuPRRT's
  corrections use it.

Each is fitted with the sigmoid RC(V) = a / (1 + (b / V)^c) (a: plateau of large volumes, b:
volume of half the plateau, c: steepness), the form of the EANM uncertainty guidance (Gear
et al., Eur J Nucl Med Mol Imaging 2018;45:2456-2474, doi:10.1007/s00259-018-4136-7,
section "Recovery coefficients"); its standard uncertainty at a volume is J Sigma J^T, with
J the gradient in (a, b, c) and Sigma their covariance (same reference). The sigmoid's plateau
is whatever the spheres allow (a curve whose largest spheres level off fits a plateau below 1),
so towards and above the largest sphere a contrast curve is not the sigmoid: it becomes the
recovery of Gaussian-blurred spheres fitted to the largest spheres (:meth:`RecoveryCurve.__call__`),
which tends to 1 as the surface-to-volume ratio falls.

The effective resolution of a reconstruction is the FWHM of the Gaussian point-spread
function that reproduces the measured contrast recovery of the spheres (:func:`fit_effective_fwhm`),
computed on the image's own voxel grid (voxelisation included), or, for a table of recovery
coefficients without a grid, for continuous spheres (:func:`gaussian_sphere_recovery`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize, special

RECOVERY_MODEL = "a / (1 + (b / V)^c)"
QUANTITIES = ("contrast", "mean", "max")
# Gaussian: FWHM = 2 sqrt(2 ln 2) sigma.
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
_TRUNCATE_SIGMA = 4.0
_PARAMETER_BOUNDS = ((1e-3, 1e-4, 0.05), (5.0, 1e4, 20.0))
_GAUSS_LEGENDRE = np.polynomial.legendre.leggauss(96)
# The large-object part of a contrast curve reproduces this many of its largest spheres (22-37 mm in the IEC
# phantom: sizes where the Gaussian shape holds for OSEM, unlike the 10-13 mm spheres it has not converged for).
LARGE_OBJECT_SPHERES = 3


def recovery_model(volume_ml, a: float, b: float, c: float):
    """RC(V) = a / (1 + (b / V)^c), V in mL (array or scalar)."""
    volume = np.asarray(volume_ml, dtype=float)
    return a / (1.0 + (b / volume) ** c)


def _model_gradient(volume_ml, a: float, b: float, c: float) -> np.ndarray:
    """(..., 3) derivatives of the model in (a, b, c)."""
    volume = np.asarray(volume_ml, dtype=float)
    ratio = b / volume
    power = ratio**c
    denominator = 1.0 + power
    d_a = 1.0 / denominator
    d_b = -a * c * power / (b * denominator**2)
    d_c = -a * power * np.log(ratio) / denominator**2
    return np.stack([d_a, d_b, d_c], axis=-1)


@dataclass(frozen=True)
class RecoveryCurve:
    """A fitted recovery curve of one quantity at one sphere-to-background ratio.

    Attributes
    ----------
    quantity : {"contrast", "mean", "max"}
        What was recovered (see the module notes).
    sphere_to_background : float or None
        Sphere-to-background concentration ratio of the phantom (None: unknown, e.g. a table).
    parameters : (a, b, c)
        Model parameters, b in mL.
    covariance : 3 x 3 array
        Covariance of the parameters (from the fit, scaled as :func:`fit_recovery_curve` says).
    volumes_ml, values, values_sd : tuples
        The measured points (sphere volume, recovery, its standard uncertainty).
    """

    quantity: str
    sphere_to_background: float | None
    parameters: tuple[float, float, float]
    covariance: np.ndarray
    volumes_ml: tuple[float, ...]
    values: tuple[float, ...]
    values_sd: tuple[float, ...]
    # Standard deviations by which the large-object FWHM is moved (uncertainty propagation only).
    large_object_shift_sd: float = 0.0

    def __call__(self, volume_ml):
        """Recovery at ``volume_ml`` (mL).

        Mean and max curves: the fitted model. Contrast curves: the fitted model up to the
        second-largest sphere; above the largest, the contrast recovery of a Gaussian-blurred sphere
        (:func:`gaussian_sphere_recovery`) with the FWHM that reproduces the :data:`LARGE_OBJECT_SPHERES`
        largest spheres (:attr:`large_object_fwhm_mm`); between the two largest spheres a blend,
        linear in log volume, so the curve is continuous. Spill-out is a surface effect: 1 - CR
        falls as the surface-to-volume ratio does and CR tends to 1 for large objects, where the
        empirical model would carry on at its fitted plateau (any value the points allowed, below
        the largest spheres' recovery when they level off, as OSEM's do at high contrast).
        """
        volume = np.asarray(volume_ml, dtype=float)
        values = recovery_model(volume, *self.parameters)
        ordered = sorted(self.volumes_ml)
        if self.quantity != "contrast" or len(ordered) < 2 or not np.any(volume > ordered[-2]):
            return values
        low, high = ordered[-2], ordered[-1]
        weight = np.clip(np.log(np.maximum(volume, low) / low) / math.log(high / low), 0.0, 1.0)
        fwhm = self.large_object_fwhm_mm
        large = gaussian_sphere_recovery(np.maximum(volume, low).ravel(), fwhm)[0].reshape(volume.shape) \
            if fwhm > 0 else np.ones(volume.shape)
        return (1.0 - weight) * values + weight * large

    @functools.cached_property
    def large_object_fit(self) -> EffectiveResolution:
        """The Gaussian whose blurred spheres best reproduce the :data:`LARGE_OBJECT_SPHERES` largest spheres.

        Weighted least squares of :func:`gaussian_sphere_recovery` (:func:`fit_effective_fwhm`: weights
        1 / SD^2, the FWHM's standard uncertainty from the fit's curvature).
        """
        volumes = np.asarray(self.volumes_ml, dtype=float)
        pick = np.argsort(volumes)[-LARGE_OBJECT_SPHERES:]
        sd = np.asarray(self.values_sd, dtype=float)[pick]
        return fit_effective_fwhm(lambda fwhm: gaussian_sphere_recovery(volumes[pick], fwhm)[0],
                                  np.asarray(self.values, dtype=float)[pick], np.where(sd > 0, sd, 1.0),
                                  "continuous spheres, Gaussian PSF, largest spheres of the curve")

    @property
    def large_object_fwhm_mm(self) -> float:
        """FWHM (mm) of the large-object part (:attr:`large_object_fit`), moved by ``large_object_shift_sd``."""
        fit = self.large_object_fit
        return max(fit.fwhm_mm + self.large_object_shift_sd * fit.fwhm_sd_mm, 0.0)

    def large_object_perturbation(self) -> RecoveryCurve:
        """The same curve with its large-object FWHM one standard deviation larger (for uncertainty)."""
        return replace(self, large_object_shift_sd=self.large_object_shift_sd + 1.0)

    @property
    def smallest_volume_ml(self) -> float:
        """Smallest measured volume (mL): below it the curve is an extrapolation."""
        return float(min(self.volumes_ml))

    @property
    def largest_volume_ml(self) -> float:
        """Largest measured volume (mL)."""
        return float(max(self.volumes_ml))

    def standard_uncertainty(self, volume_ml):
        """Standard uncertainty of the curve at ``volume_ml``: sqrt(J Sigma J^T) (Gear et al. 2018).

        Above the largest sphere of a contrast curve (see :meth:`__call__`): the uncertainty at the
        largest sphere scaled as the spill-out, (1 - CR(V)) / (1 - CR(V_largest)), and the change
        with the large-object FWHM one standard deviation larger, in quadrature.
        """
        volume = np.asarray(volume_ml, dtype=float)
        largest = self.largest_volume_ml
        clipped = np.minimum(volume, largest) if self.quantity == "contrast" else volume
        gradient = _model_gradient(clipped, *self.parameters)
        sd = np.sqrt(np.einsum("...i,ij,...j->...", gradient, self.covariance, gradient))
        if self.quantity != "contrast" or not np.any(volume > largest):
            return sd
        anchor = 1.0 - float(self(largest))
        scale = np.where(volume > largest, (1.0 - self(volume)) / anchor if anchor > 0 else 1.0, 1.0)
        fwhm_effect = np.where(volume > largest, np.abs(self.large_object_perturbation()(volume) - self(volume)), 0.0)
        return np.hypot(sd * scale, fwhm_effect)

    def parameter_perturbations(self) -> list[tuple[float, float, float]]:
        """Parameter sets one standard deviation along each principal axis of the covariance.

        Evaluating any derived quantity at these sets (minus its value at the fitted
        parameters) gives independent first-order contributions whose squares add up to the
        propagated variance, also for quantities that use the curve at several volumes (all
        lesions of a lobe), where the errors are correlated.
        """
        eigenvalues, eigenvectors = np.linalg.eigh(np.asarray(self.covariance, dtype=float))
        base = np.asarray(self.parameters, dtype=float)
        return [tuple(base + math.sqrt(value) * eigenvectors[:, k])
                for k, value in enumerate(eigenvalues) if value > 0]

    def with_parameters(self, parameters) -> RecoveryCurve:
        """The same curve with other parameters (for perturbations)."""
        return RecoveryCurve(self.quantity, self.sphere_to_background, tuple(float(p) for p in parameters),
                             self.covariance, self.volumes_ml, self.values, self.values_sd, self.large_object_shift_sd)

    def to_json_dict(self) -> dict:
        """Plain JSON (keys with units)."""
        a, b, c = self.parameters
        return {"quantity": self.quantity, "sphere_to_background": self.sphere_to_background,
                "model": RECOVERY_MODEL, "parameters": {"a": a, "b_ml": b, "c": c},
                "covariance": np.asarray(self.covariance).tolist(), "volumes_ml": list(self.volumes_ml),
                "values": list(self.values), "values_sd": list(self.values_sd)}

    @classmethod
    def from_json_dict(cls, data: dict) -> RecoveryCurve:
        """Inverse of :meth:`to_json_dict` (KeyError/ValueError on a malformed entry)."""
        if data.get("model", RECOVERY_MODEL) != RECOVERY_MODEL:
            raise ValueError(f"recovery model {data.get('model')!r} is not {RECOVERY_MODEL!r}")
        quantity = data["quantity"]
        if quantity not in QUANTITIES:
            raise ValueError(f"recovery quantity {quantity!r} is not one of {QUANTITIES}")
        p = data["parameters"]
        covariance = np.asarray(data["covariance"], dtype=float)
        if covariance.shape != (3, 3):
            raise ValueError(f"recovery covariance must be 3 x 3, got shape {covariance.shape}")
        ratio = data.get("sphere_to_background")
        return cls(quantity, None if ratio is None else float(ratio),
                   (float(p["a"]), float(p["b_ml"]), float(p["c"])), covariance,
                   tuple(float(v) for v in data["volumes_ml"]), tuple(float(v) for v in data["values"]),
                   tuple(float(v) for v in data["values_sd"]))


def fit_recovery_curve(volumes_ml: Sequence[float], values: Sequence[float],
                       values_sd: Sequence[float] | None = None, *, quantity: str = "contrast",
                       sphere_to_background: float | None = None) -> RecoveryCurve:
    """Fit RC(V) = a / (1 + (b / V)^c) to measured recovery coefficients (weighted least squares).

    Parameters
    ----------
    volumes_ml, values : sequences
        Sphere volumes (mL, > 0) and their recovery; at least 4 points (3 parameters).
    values_sd : sequence, optional
        Standard uncertainties of the values (weights; absolute). Without them the points
        weigh equally and the covariance comes from the residuals alone.
    quantity, sphere_to_background
        Recorded with the curve.

    Returns
    -------
    RecoveryCurve
        With the parameter covariance: with ``values_sd``, the covariance of the weighted fit
        scaled up by the reduced chi-square when the points scatter more than their
        uncertainties say (lack of fit counts as uncertainty), never scaled down.

    Raises
    ------
    ValueError
        Fewer than 4 points, non-positive volumes, non-finite values, or a failed fit.
    """
    if quantity not in QUANTITIES:
        raise ValueError(f"recovery quantity {quantity!r} is not one of {QUANTITIES}")
    volume = np.asarray(volumes_ml, dtype=float)
    value = np.asarray(values, dtype=float)
    if volume.shape != value.shape or volume.ndim != 1:
        raise ValueError(f"{volume.size} volumes for {value.size} recovery values")
    if volume.size < 4:
        raise ValueError(f"a recovery curve needs at least 4 spheres (3 parameters), got {volume.size}")
    if not (np.all(np.isfinite(volume)) and np.all(volume > 0) and np.all(np.isfinite(value))):
        raise ValueError(f"recovery volumes must be positive mL and values finite; got volumes "
                         f"{volume.tolist()}, values {value.tolist()}")
    sd = None if values_sd is None else np.asarray(values_sd, dtype=float)
    if sd is not None and (sd.shape != value.shape or not np.all(sd > 0)):
        raise ValueError(f"recovery uncertainties must be positive, one per value; got {sd.tolist()}")
    order = np.argsort(volume)
    volume, value = volume[order], value[order]
    sd = sd[order] if sd is not None else None
    plateau = max(float(value.max()), 1e-2)
    half = volume[np.argmin(np.abs(value - plateau / 2.0))]
    try:
        parameters, covariance = optimize.curve_fit(
            recovery_model, volume, value, p0=(plateau, float(half), 1.5), sigma=sd,
            absolute_sigma=sd is not None, bounds=_PARAMETER_BOUNDS, maxfev=20000)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"the recovery curve {RECOVERY_MODEL} could not be fitted to volumes "
                         f"{volume.round(3).tolist()} mL and values {value.round(4).tolist()}: {error}") from error
    if sd is not None:
        residual = (value - recovery_model(volume, *parameters)) / sd
        dof = volume.size - 3
        covariance = covariance * max(1.0, float(residual @ residual) / dof if dof > 0 else 1.0)
    if not np.all(np.isfinite(covariance)):
        raise ValueError(f"the recovery curve fit to {volume.size} points has an undetermined covariance "
                         "(points too few or degenerate)")
    if sd is None:
        sd = np.full(volume.shape, math.sqrt(max(float(np.mean(
            (value - recovery_model(volume, *parameters)) ** 2)) * volume.size / max(volume.size - 3, 1), 0.0)))
    return RecoveryCurve(quantity, sphere_to_background, tuple(float(p) for p in parameters), covariance,
                         tuple(volume.tolist()), tuple(value.tolist()), tuple(np.asarray(sd).tolist()))


# --- Gaussian point-spread function: closed forms and the voxel-grid model -----------------------

def blurred_sphere_profile(r_mm, radius_mm: float, sigma_mm: float):
    """A uniform ball (value 1, radius R) convolved with an isotropic 3D Gaussian, at distance r from its centre.

    f(r) = [erf((R - r)/(s sqrt 2)) + erf((R + r)/(s sqrt 2))] / 2
           + s / (r sqrt(2 pi)) [exp(-(R + r)^2 / 2 s^2) - exp(-(R - r)^2 / 2 s^2)],
    and f(0) = erf(R / (s sqrt 2)) - sqrt(2/pi) (R/s) exp(-R^2 / 2 s^2).
    """
    r = np.asarray(r_mm, dtype=float)
    s = float(sigma_mm)
    root2 = math.sqrt(2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 0.5 * (special.erf((radius_mm - r) / (s * root2)) + special.erf((radius_mm + r) / (s * root2))) \
            + s / (r * math.sqrt(2.0 * math.pi)) * (np.exp(-((radius_mm + r) ** 2) / (2 * s * s))
                                                   - np.exp(-((radius_mm - r) ** 2) / (2 * s * s)))
    centre = special.erf(radius_mm / (s * root2)) - math.sqrt(2.0 / math.pi) * radius_mm / s * math.exp(
        -radius_mm**2 / (2 * s * s))
    return np.where(r < 1e-9 * max(radius_mm, 1.0), centre, value)


def gaussian_sphere_recovery(volume_ml, fwhm_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """(mean, max) recovery of continuous spheres of ``volume_ml`` blurred by a Gaussian of ``fwhm_mm``.

    Mean over the true sphere: (3 / R^3) int_0^R f(r) r^2 dr by Gauss-Legendre quadrature of
    :func:`blurred_sphere_profile`; max = f(0). Cold background; by linearity also the contrast
    recovery in a uniform warm background.
    """
    volume = np.atleast_1d(np.asarray(volume_ml, dtype=float))
    sigma = fwhm_mm / FWHM_PER_SIGMA
    nodes, weights = _GAUSS_LEGENDRE
    means, maxima = [], []
    for v in volume:
        radius = (3.0 * v * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
        r = 0.5 * radius * (nodes + 1.0)
        integral = 0.5 * radius * float(np.sum(weights * blurred_sphere_profile(r, radius, sigma) * r * r))
        means.append(3.0 * integral / radius**3)
        maxima.append(float(blurred_sphere_profile(0.0, radius, sigma)))
    return np.asarray(means), np.asarray(maxima)


def _sampled_gaussian(sigma_voxels: float, reach: int) -> np.ndarray:
    """The 1D kernel of scipy.ndimage.gaussian_filter (normalised, cut at 4 sigma) on lags -reach..reach."""
    radius = int(_TRUNCATE_SIGMA * sigma_voxels + 0.5)
    lags = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (lags / sigma_voxels) ** 2) if sigma_voxels > 0 else (lags == 0).astype(float)
    weights /= weights.sum()
    kernel = np.zeros(2 * reach + 1)
    inside = np.abs(lags) <= reach
    kernel[lags[inside] + reach] = weights[inside]
    return kernel


class OccupancyAutocorrelation:
    """Contrast recovery of a uniform object on a voxel grid for any Gaussian blur, from one FFT.

    For an object with voxel occupancy w, the occupancy-weighted mean of its image blurred by a
    separable kernel g is sum(w (g * w)) / sum(w) = sum_k A(k) g(k) / sum(w), with A the
    autocorrelation of w; A is computed once, so each FWHM costs one small tensor contraction
    (the same number as blurring with scipy.ndimage.gaussian_filter, mode "constant").
    """

    def __init__(self, occupancy: np.ndarray, spacing_zyx_mm):
        w = np.asarray(occupancy, dtype=float)
        shape = [2 * n - 1 for n in w.shape]
        spectrum = np.fft.rfftn(w, shape, axes=(0, 1, 2))
        autocorrelation = np.fft.irfftn(spectrum * np.conj(spectrum), shape, axes=(0, 1, 2))
        self.autocorrelation = np.fft.fftshift(autocorrelation)  # lag 0 at the centre
        self.reach = [n - 1 for n in w.shape]
        self.total = float(w.sum())
        self.spacing = np.asarray(spacing_zyx_mm, dtype=float)

    def contrast_recovery(self, fwhm_mm: float) -> float:
        """sum(w (G * w)) / sum(w) for a Gaussian of ``fwhm_mm``."""
        sigma = fwhm_mm / FWHM_PER_SIGMA / self.spacing
        gz, gy, gx = (_sampled_gaussian(float(s), r) for s, r in zip(sigma, self.reach, strict=True))
        return float(np.einsum("ijk,i,j,k->", self.autocorrelation, gz, gy, gx)) / self.total


def grid_contrast_recovery(occupancy: np.ndarray, spacing_zyx_mm, fwhm_mm: float) -> float:
    """Contrast recovery of a uniform object given by its voxel occupancy, blurred by a Gaussian.

    ``occupancy`` (z, y, x, in [0, 1]); the result is sum(w (G * w)) / sum(w): the
    occupancy-weighted mean of the blurred object, the model of a measured mean in the object's
    true volume (the same Gaussian blur as the geometric transfer matrix of
    :mod:`luprrt.workflows.dose_regions`). See :class:`OccupancyAutocorrelation` for many FWHMs.
    """
    return OccupancyAutocorrelation(occupancy, spacing_zyx_mm).contrast_recovery(fwhm_mm)


@dataclass(frozen=True)
class EffectiveResolution:
    """The Gaussian FWHM that reproduces measured contrast recovery, its uncertainty and residuals."""

    fwhm_mm: float
    fwhm_sd_mm: float
    model_values: tuple[float, ...]
    rms_residual: float
    method: str


def fit_effective_fwhm(model, measured: Sequence[float], measured_sd: Sequence[float] | None = None,
                       method: str = "", fwhm_range_mm: tuple[float, float] = (0.5, 60.0)) -> EffectiveResolution:
    """The FWHM (mm) minimising the weighted squared differences between ``model(fwhm)`` and ``measured``.

    Parameters
    ----------
    model : callable
        FWHM (mm) -> array of modelled contrast recoveries, one per measured value (e.g. spheres
        on the grid with :func:`grid_contrast_recovery`, or :func:`gaussian_sphere_recovery`).
    measured, measured_sd : sequences
        Measured contrast recoveries and their standard uncertainties (weights).
    method : str
        Recorded description of the model.

    Returns
    -------
    EffectiveResolution
        Standard uncertainty of the FWHM from the curvature of the weighted sum of squares
        (Gauss-Newton), scaled up by the reduced chi-square when the points scatter more than
        their uncertainties.
    """
    values = np.asarray(measured, dtype=float)
    sd = np.ones_like(values) if measured_sd is None else np.asarray(measured_sd, dtype=float)

    def cost(fwhm: float) -> float:
        return float(np.sum(((np.asarray(model(fwhm)) - values) / sd) ** 2))

    grid = np.geomspace(fwhm_range_mm[0], fwhm_range_mm[1], 25)
    costs = [cost(f) for f in grid]
    k = int(np.argmin(costs))
    low, high = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    best = optimize.minimize_scalar(cost, bounds=(low, high), method="bounded", options={"xatol": 1e-3})
    fwhm = float(best.x)
    step = max(1e-3 * fwhm, 1e-3)
    jacobian = (np.asarray(model(fwhm + step)) - np.asarray(model(fwhm - step))) / (2 * step) / sd
    information = float(jacobian @ jacobian)
    fitted = np.asarray(model(fwhm))
    chi2 = float(np.sum(((fitted - values) / sd) ** 2))
    dof = max(values.size - 1, 1)
    scale = max(1.0, chi2 / dof) if measured_sd is not None else chi2 / dof
    fwhm_sd = math.sqrt(scale / information) if information > 0 else math.inf
    rms = float(np.sqrt(np.mean((fitted - values) ** 2)))
    return EffectiveResolution(fwhm, fwhm_sd, tuple(fitted.tolist()), rms, method)
