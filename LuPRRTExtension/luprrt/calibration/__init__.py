"""Site calibration of quantitative SPECT and what it corrects: recovery, spill-in margins, uncertainty.

Modules
-------
cylinder    calibration factor (cps/MBq) or Bq/mL scale from a uniform cylinder of known activity
iec         the NEMA IEC body phantom: spheres found by registering the known geometry; recovery
            (mean, max, contrast) per sphere with its uncertainty
recovery    recovery curve RC(V) = a / (1 + (b / V)^c) with covariance; Gaussian recovery models
            (continuous spheres, objects on a voxel grid) and the effective FWHM that reproduces them
noise       counting noise of a reconstruction measured in a uniform region (voxel SD,
            autocorrelation) and the standard deviation of any region's mean
site        :class:`SiteCalibration`: the versioned site-calibration JSON (camera, collimator,
            reconstruction, date, who), recovery tables, contrast interpolation, spill-in margin
correction  recovery-corrected lesion T/N and concentration, lobe T/N pooled after correction,
            the IA/IV ratio, with their uncertainty budget
boundary    segmentation-boundary moves of +-1 voxel (delineation uncertainty)
uncertainty first-order propagation source by source (Gear et al. 2018 EANM guidance) and coverage
"""

from .boundary import BOUNDARY_RECTANGULAR_FACTOR, shift_boundary
from .correction import (
    MINIMUM_CONTRAST_RECOVERY,
    LesionMeasurement,
    TNCorrection,
    correct_lesions,
    corrected_ratio,
)
from .cylinder import (
    CYLINDER_UNITS,
    DEFAULT_ACTIVITY_SD_PERCENT,
    CylinderCalibration,
    calibrate_from_cylinder,
)
from .iec import IecMeasurement, IecPose, SphereMeasurement, find_iec_spheres, measure_iec_phantom
from .noise import DEFAULT_NOISE_EXPONENT, NoiseModel, estimate_noise, noise_exponent
from .recovery import (
    FWHM_PER_SIGMA,
    RECOVERY_MODEL,
    EffectiveResolution,
    OccupancyAutocorrelation,
    RecoveryCurve,
    blurred_sphere_profile,
    fit_effective_fwhm,
    fit_recovery_curve,
    gaussian_sphere_recovery,
    grid_contrast_recovery,
    recovery_model,
)
from .site import (
    DEFAULT_EDGE_MARGIN_FWHM,
    DEFAULT_MARGIN_FWHM,
    MINIMUM_MARGIN_MM,
    SITE_CALIBRATION_FORMAT,
    SITE_CALIBRATION_VERSION,
    ContrastRecovery,
    SiteCalibration,
    SiteInfo,
    build_site_calibration,
    read_recovery_table,
    read_site_calibration,
    write_site_calibration,
)
from .uncertainty import (
    COVERAGE_FACTOR_95,
    RECTANGULAR_SOURCES,
    SOURCES,
    UncertaintyBudget,
    coverage_fraction,
    coverage_half_width_95,
    covered,
)

__all__ = [
    "BOUNDARY_RECTANGULAR_FACTOR",
    "COVERAGE_FACTOR_95",
    "CYLINDER_UNITS",
    "DEFAULT_ACTIVITY_SD_PERCENT",
    "DEFAULT_EDGE_MARGIN_FWHM",
    "DEFAULT_MARGIN_FWHM",
    "DEFAULT_NOISE_EXPONENT",
    "FWHM_PER_SIGMA",
    "MINIMUM_CONTRAST_RECOVERY",
    "MINIMUM_MARGIN_MM",
    "RECOVERY_MODEL",
    "RECTANGULAR_SOURCES",
    "SITE_CALIBRATION_FORMAT",
    "SITE_CALIBRATION_VERSION",
    "SOURCES",
    "ContrastRecovery",
    "CylinderCalibration",
    "EffectiveResolution",
    "IecMeasurement",
    "IecPose",
    "LesionMeasurement",
    "NoiseModel",
    "OccupancyAutocorrelation",
    "RecoveryCurve",
    "SiteCalibration",
    "SiteInfo",
    "SphereMeasurement",
    "TNCorrection",
    "UncertaintyBudget",
    "blurred_sphere_profile",
    "build_site_calibration",
    "calibrate_from_cylinder",
    "correct_lesions",
    "corrected_ratio",
    "coverage_fraction",
    "coverage_half_width_95",
    "covered",
    "estimate_noise",
    "find_iec_spheres",
    "fit_effective_fwhm",
    "fit_recovery_curve",
    "gaussian_sphere_recovery",
    "grid_contrast_recovery",
    "measure_iec_phantom",
    "noise_exponent",
    "read_recovery_table",
    "read_site_calibration",
    "recovery_model",
    "shift_boundary",
    "write_site_calibration",
]
