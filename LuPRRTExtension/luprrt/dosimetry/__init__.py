"""Lu-177 dosimetry: time-activity, time-integrated activity, S-values, voxel dose, limits.

Modules
-------
tac               region time-activity fits (mono/bi-exponential, trapezoid), AICc, TIA +- SD
voxel_tia         voxel-wise TIA in closed form (log-linear least squares, physical floor)
single_time_point Haenscheid 2018, Madsen 2018 and the hybrid scheme
svalues           sphere (lesion) and OpenDose organ self S-values, mass scaling
point_kernels     radial energy-deposition distributions (electrons, photons) in water
vsv_kernel        voxel S-value kernels for any voxel size
dose              local deposition, FFT voxel-S-value convolution, CT density, S-value doses
dvh               cumulative DVHs and D2/D50/D98/mean for many regions at once
radiobiology      kidney BED, cumulative limits and next-cycle projection
calculators       organ and lesion TIACs for OLINDA/EXM case files and MIRDcalc tables
"""

from .calculators import (
    CALCULATOR_ORGANS,
    calculator_kinetics,
    write_mirdcalc_csv,
    write_olinda_case,
)
from .dose import (
    HuDensityCalibration,
    density_image_from_ct,
    fft_convolve_same,
    local_deposition_dose,
    organ_s_value_dose_gy,
    sphere_s_value_dose_gy,
    voxel_s_value_dose,
)
from .dvh import (
    CumulativeDoseVolumeHistograms,
    RegionDoseStatistics,
    cumulative_dose_volume_histograms,
    region_dose_statistics,
)
from .radiobiology import (
    MARROW_DOSE_LIMIT_GY,
    CycleDose,
    LimitCheck,
    SafetyAssessment,
    assess_organ_limits,
    biologically_effective_dose_gy,
)
from .single_time_point import (
    activity_scaled_tia_mbq_h,
    haenscheid_tia_mbq_h,
    hybrid_tia_mbq_h,
    madsen_tia_mbq_h,
)
from .svalues import organ_self_s_value, s_value_dose_gy, sphere_mass_g, sphere_self_s_value
from .tac import TimeActivityFit, fit_time_activity, trapezoid_weights_h
from .voxel_tia import VoxelTimeIntegratedActivity, voxel_time_integrated_activity
from .vsv_kernel import DEFAULT_KERNEL_RADIUS_MM, VoxelSValueKernel, build_voxel_s_value_kernel

__all__ = [
    "CALCULATOR_ORGANS",
    "DEFAULT_KERNEL_RADIUS_MM",
    "MARROW_DOSE_LIMIT_GY",
    "CumulativeDoseVolumeHistograms",
    "CycleDose",
    "HuDensityCalibration",
    "LimitCheck",
    "RegionDoseStatistics",
    "SafetyAssessment",
    "TimeActivityFit",
    "VoxelSValueKernel",
    "VoxelTimeIntegratedActivity",
    "activity_scaled_tia_mbq_h",
    "assess_organ_limits",
    "biologically_effective_dose_gy",
    "build_voxel_s_value_kernel",
    "calculator_kinetics",
    "cumulative_dose_volume_histograms",
    "density_image_from_ct",
    "fft_convolve_same",
    "fit_time_activity",
    "haenscheid_tia_mbq_h",
    "hybrid_tia_mbq_h",
    "local_deposition_dose",
    "madsen_tia_mbq_h",
    "organ_s_value_dose_gy",
    "organ_self_s_value",
    "region_dose_statistics",
    "s_value_dose_gy",
    "sphere_mass_g",
    "sphere_s_value_dose_gy",
    "sphere_self_s_value",
    "trapezoid_weights_h",
    "voxel_s_value_dose",
    "voxel_time_integrated_activity",
    "write_mirdcalc_csv",
    "write_olinda_case",
]
