"""CT-to-CT registration between time points (cycles, follow-ups) and resampling.

Rigid (Euler 3D) registration by Mattes mutual information (Mattes et al., IEEE TMI
2003;22:120-128) in a multi-resolution pyramid, started from a centred initial transform;
an optional B-spline refinement (Rueckert et al., IEEE TMI 1999;18:712-721). Both use
SimpleITK's ImageRegistrationMethod (Lowekamp et al., Front Neuroinform 2013;7:45).

Transform convention (ITK's): the returned transform maps points of the *fixed* image
(LPS mm) to points of the *moving* image, so ``resample_to(moving, fixed, transform)``
brings the moving image onto the fixed grid, and lesion centroids of the fixed time point
map into the moving one with ``transform.TransformPoint``.

Quality is reported with every result: the final Mattes mutual information and the Dice
coefficient of the body masks (HU > -300) before and after registration.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from .provenance import ProgressCallback, no_progress

logger = logging.getLogger(__name__)

# Body outline threshold, HU: above lung (~ -850 HU) and air (-1000 HU), below fat (~ -100 HU).
BODY_THRESHOLD_HU = -300.0

_INTERPOLATORS = {
    "nearest": sitk.sitkNearestNeighbor,
    "linear": sitk.sitkLinear,
    "bspline": sitk.sitkBSpline,
}


@dataclass(frozen=True)
class RegistrationResult:
    """A registration and its quality.

    Attributes
    ----------
    transform : maps fixed LPS points (mm) to moving LPS points (mm)
    metric_mattes_mi : Mattes mutual information after registration (nats; higher = better
        aligned; SimpleITK's metric value is its negative), on the full-resolution images
    metric_mattes_mi_before : the same before registration (initial transform)
    body_dice_before, body_dice_after : Dice of the body masks on the fixed grid, 0-1
    stop_condition : the optimizer's reason for stopping (last level)
    """

    transform: sitk.Transform
    metric_mattes_mi: float
    metric_mattes_mi_before: float
    body_dice_before: float
    body_dice_after: float
    stop_condition: str


def body_mask(ct: sitk.Image, threshold_hu: float = BODY_THRESHOLD_HU) -> sitk.Image:
    """Body outline of a CT: HU > ``threshold_hu``, largest connected part, holes filled per slice.

    Holes (lungs, bowel gas) are filled slice by slice so that air reaching the body surface
    through the airway at one level does not empty the lungs everywhere.

    Returns
    -------
    UInt8 image on the CT grid, 1 inside the body.
    """
    _check_3d(ct, "ct")
    above = sitk.BinaryThreshold(ct, lowerThreshold=float(threshold_hu), upperThreshold=float("inf"),
                                 insideValue=1, outsideValue=0)
    if not sitk.GetArrayViewFromImage(above).any():
        raise ValueError(f"CT has no voxel above {threshold_hu} HU: is it in Hounsfield units?")
    largest = sitk.RelabelComponent(sitk.ConnectedComponent(above), sortByObjectSize=True) == 1
    body = sitk.GetArrayFromImage(largest).astype(bool)
    # In-plane-only connectivity fills each slice separately; padding one empty slice at either
    # end keeps the first and last slice from counting as array border.
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    filled = ndimage.binary_fill_holes(np.pad(body, ((1, 1), (0, 0), (0, 0))), structure=in_plane)[1:-1]
    mask = sitk.GetImageFromArray(filled.astype(np.uint8))
    mask.CopyInformation(ct)
    return mask


def resample_to(image: sitk.Image, reference: sitk.Image, transform: sitk.Transform | None = None,
                interpolator: str | int = "linear", default_value: float = 0.0) -> sitk.Image:
    """Resample ``image`` onto the grid of ``reference`` through ``transform`` (reference -> image points).

    Parameters
    ----------
    interpolator : ``"nearest"`` (labels), ``"linear"`` or ``"bspline"``, or a SimpleITK constant
    default_value : value outside ``image`` (e.g. -1000 HU for CT, 0 for activity)

    Returns
    -------
    An image with the reference geometry and the pixel type of ``image``.
    """
    if isinstance(interpolator, str):
        if interpolator not in _INTERPOLATORS:
            raise ValueError(f"unknown interpolator {interpolator!r}; expected one of {list(_INTERPOLATORS)}")
        interpolator = _INTERPOLATORS[interpolator]
    if image.GetDimension() != reference.GetDimension():
        raise ValueError(f"cannot resample a {image.GetDimension()}D image onto a "
                         f"{reference.GetDimension()}D grid")
    if transform is None:
        transform = sitk.Transform(image.GetDimension(), sitk.sitkIdentity)
    return sitk.Resample(image, reference, transform, interpolator, float(default_value), image.GetPixelID())


def register_rigid(fixed_ct: sitk.Image, moving_ct: sitk.Image, *,
                   initial_transform: sitk.Transform | None = None,
                   shrink_factors: tuple[int, ...] = (4, 2, 1),
                   smoothing_sigmas_vox: tuple[float, ...] = (2.0, 1.0, 0.0),
                   histogram_bins: int = 50, sampling_fraction: float = 0.2,
                   iterations: int = 200, use_body_mask: bool = True, seed: int = 20240531,
                   progress: ProgressCallback | None = None) -> RegistrationResult:
    """Rigid registration of two CTs by Mattes mutual information.

    Parameters
    ----------
    fixed_ct, moving_ct : 3D CT images in HU (grids may differ)
    initial_transform : start transform (fixed -> moving); default: the geometric centres aligned
        (``CenteredTransformInitializer``, GEOMETRY)
    shrink_factors, smoothing_sigmas_vox : multi-resolution pyramid (one entry per level;
        sigmas in voxels)
    histogram_bins : Mattes joint-histogram bins
    sampling_fraction : share of fixed voxels sampled at random per iteration, 0-1
    iterations : maximum optimizer iterations per level
    use_body_mask : restrict the metric to the fixed body mask
    seed : random sampling seed (results are reproducible)
    progress : callable(fraction, message)

    Returns
    -------
    RegistrationResult with an ``Euler3DTransform``.
    """
    fixed, moving = _as_float(fixed_ct, "fixed_ct"), _as_float(moving_ct, "moving_ct")
    if len(shrink_factors) != len(smoothing_sigmas_vox):
        raise ValueError(f"shrink_factors {shrink_factors} and smoothing_sigmas_vox {smoothing_sigmas_vox} "
                         "need one entry per level")
    if not 0.0 < sampling_fraction <= 1.0:
        raise ValueError(f"sampling_fraction must be in (0, 1]; got {sampling_fraction}")
    if initial_transform is None:
        initial_transform = sitk.CenteredTransformInitializer(
            fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY)
    # Rotations about the fixed image centre keep rotation and translation nearly independent.
    centre = fixed.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2.0 for n in fixed.GetSize()])
    transform = sitk.Euler3DTransform(initial_transform) if isinstance(
        initial_transform, sitk.Euler3DTransform) else _as_euler(initial_transform, centre)

    method = _mattes_method(histogram_bins, sampling_fraction, seed)
    fixed_mask = body_mask(fixed_ct) if use_body_mask else None
    if fixed_mask is not None:
        method.SetMetricFixedMask(fixed_mask)
    # Step in mm for translations and ~mm at the body surface for rotations.
    method.SetOptimizerAsRegularStepGradientDescent(learningRate=4.0, minStep=1e-3,
                                                    numberOfIterations=iterations, relaxationFactor=0.5,
                                                    gradientMagnitudeTolerance=1e-8)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel(list(shrink_factors))
    method.SetSmoothingSigmasPerLevel(list(smoothing_sigmas_vox))
    method.SetSmoothingSigmasAreSpecifiedInPhysicalUnits(False)
    method.SetInitialTransform(transform, inPlace=True)
    _report_levels(method, len(shrink_factors), progress or no_progress, "rigid")
    method.Execute(fixed, moving)
    logger.info("rigid registration: %s", method.GetOptimizerStopConditionDescription())
    return _result(transform, initial_transform, fixed_ct, moving_ct, fixed_mask, histogram_bins,
                   method.GetOptimizerStopConditionDescription())


def register_deformable(fixed_ct: sitk.Image, moving_ct: sitk.Image, *,
                        initial_transform: sitk.Transform | None = None,
                        mesh_size: tuple[int, int, int] = (4, 4, 4),
                        shrink_factors: tuple[int, ...] = (2, 1),
                        smoothing_sigmas_vox: tuple[float, ...] = (1.0, 0.0),
                        histogram_bins: int = 50, sampling_fraction: float = 0.2,
                        iterations: int = 50, use_body_mask: bool = True, seed: int = 20240531,
                        progress: ProgressCallback | None = None) -> RegistrationResult:
    """B-spline refinement of a (rigid) registration by Mattes mutual information.

    Parameters
    ----------
    initial_transform : the rigid result (fixed -> moving) to refine; default identity
    mesh_size : B-spline control-grid cells per axis over the fixed image (small = smooth)
    iterations : maximum L-BFGS-B iterations per level
    (other parameters as in :func:`register_rigid`)

    Returns
    -------
    RegistrationResult whose transform is a ``CompositeTransform`` (B-spline, then the initial
    transform, applied to fixed points).
    """
    fixed, moving = _as_float(fixed_ct, "fixed_ct"), _as_float(moving_ct, "moving_ct")
    if len(mesh_size) != 3 or min(mesh_size) < 1:
        raise ValueError(f"mesh_size must be three positive cell counts; got {mesh_size}")
    if len(shrink_factors) != len(smoothing_sigmas_vox):
        raise ValueError(f"shrink_factors {shrink_factors} and smoothing_sigmas_vox {smoothing_sigmas_vox} "
                         "need one entry per level")
    initial = initial_transform if initial_transform is not None else sitk.Transform(3, sitk.sitkIdentity)
    bspline = sitk.BSplineTransformInitializer(fixed, list(mesh_size), order=3)
    method = _mattes_method(histogram_bins, sampling_fraction, seed)
    fixed_mask = body_mask(fixed_ct) if use_body_mask else None
    if fixed_mask is not None:
        method.SetMetricFixedMask(fixed_mask)
    method.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=iterations,
                                maximumNumberOfCorrections=5,
                                maximumNumberOfFunctionEvaluations=4 * iterations)
    method.SetShrinkFactorsPerLevel(list(shrink_factors))
    method.SetSmoothingSigmasPerLevel(list(smoothing_sigmas_vox))
    method.SetSmoothingSigmasAreSpecifiedInPhysicalUnits(False)
    method.SetMovingInitialTransform(initial)
    method.SetInitialTransform(bspline, inPlace=True)
    _report_levels(method, len(shrink_factors), progress or no_progress, "deformable")
    method.Execute(fixed, moving)
    logger.info("deformable registration: %s", method.GetOptimizerStopConditionDescription())
    # ITK composite transforms apply the last-added transform first: fixed -> B-spline -> initial.
    composite = sitk.CompositeTransform([initial, bspline])
    return _result(composite, initial, fixed_ct, moving_ct, fixed_mask, histogram_bins,
                   method.GetOptimizerStopConditionDescription())


def _mattes_method(histogram_bins: int, sampling_fraction: float, seed: int) -> sitk.ImageRegistrationMethod:
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=int(histogram_bins))
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(float(sampling_fraction), int(seed))
    method.SetInterpolator(sitk.sitkLinear)
    return method


def _report_levels(method: sitk.ImageRegistrationMethod, n_levels: int, progress: ProgressCallback,
                   what: str) -> None:
    level = {"done": 0}

    def on_level():
        progress(level["done"] / n_levels, f"{what} registration: level {level['done'] + 1} of {n_levels}")
        level["done"] += 1

    method.AddCommand(sitk.sitkMultiResolutionIterationEvent, on_level)
    method.AddCommand(sitk.sitkEndEvent, lambda: progress(1.0, f"{what} registration done"))


def _result(transform, initial, fixed_ct, moving_ct, fixed_mask, histogram_bins, stop) -> RegistrationResult:
    fixed_mask = fixed_mask if fixed_mask is not None else body_mask(fixed_ct)
    moving_mask = body_mask(moving_ct)
    return RegistrationResult(
        transform=transform,
        metric_mattes_mi=_mutual_information(fixed_ct, moving_ct, transform, histogram_bins),
        metric_mattes_mi_before=_mutual_information(fixed_ct, moving_ct, initial, histogram_bins),
        body_dice_before=_dice(fixed_mask, resample_to(moving_mask, fixed_mask, initial, "nearest")),
        body_dice_after=_dice(fixed_mask, resample_to(moving_mask, fixed_mask, transform, "nearest")),
        stop_condition=stop)


def _mutual_information(fixed_ct, moving_ct, transform, histogram_bins) -> float:
    """Mattes MI (nats) of the full-resolution images, every fixed voxel sampled."""
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=int(histogram_bins))
    method.SetMetricSamplingStrategy(method.NONE)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetInitialTransform(transform, inPlace=False)
    return -float(method.MetricEvaluate(_as_float(fixed_ct, "fixed_ct"), _as_float(moving_ct, "moving_ct")))


def _dice(a: sitk.Image, b: sitk.Image) -> float:
    x, y = sitk.GetArrayViewFromImage(a) > 0, sitk.GetArrayViewFromImage(b) > 0
    total = int(x.sum()) + int(y.sum())
    return 2.0 * int(np.count_nonzero(x & y)) / total if total else math.nan


def _as_euler(transform: sitk.Transform, centre) -> sitk.Euler3DTransform:
    """An Euler3DTransform about ``centre`` equal to a rigid transform (translation, versor, rigid affine)."""
    if transform.GetDimension() != 3:
        raise ValueError(f"initial_transform must be 3D; got {transform.GetDimension()}D")
    # Read the transform off its action on the origin and the unit axes.
    origin = np.array(transform.TransformPoint((0.0, 0.0, 0.0)))
    matrix = np.column_stack([np.array(transform.TransformPoint(tuple(axis))) - origin for axis in np.eye(3)])
    if not np.allclose(matrix.T @ matrix, np.eye(3), atol=1e-6) or np.linalg.det(matrix) < 0:
        raise ValueError("initial_transform is not rigid (rotation + translation); pass a rigid transform")
    centre = np.asarray(centre, dtype=float)
    euler = sitk.Euler3DTransform()
    euler.SetCenter(centre.tolist())
    euler.SetMatrix(matrix.ravel().tolist())
    # T(x) = R (x - c) + c + t, so t = T(c) - c.
    euler.SetTranslation((np.array(transform.TransformPoint(tuple(centre))) - centre).tolist())
    return euler


def _as_float(image: sitk.Image, name: str) -> sitk.Image:
    _check_3d(image, name)
    return sitk.Cast(image, sitk.sitkFloat32)


def _check_3d(image: sitk.Image, name: str) -> None:
    if not isinstance(image, sitk.Image):
        raise ValueError(f"{name} must be a SimpleITK image; got {type(image).__name__}")
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"{name} must be a 3D scalar image; got {image.GetDimension()}D with "
                         f"{image.GetNumberOfComponentsPerPixel()} component(s)")
