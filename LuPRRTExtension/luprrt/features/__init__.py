"""Per-lesion imaging features for outcome prediction: SUV (FDG, 68Ga), ADC and their table.

Modules
-------
suv              body-weight SUV conversion (decay-corrected), SUVmax/mean/peak (1 mL sphere)
adc              apparent diffusion coefficient maps from DW-MRI (closed-form mono-exponential)
lesion_features  one row per lesion of baseline FDG and 68Ga uptake and ADC, on the lesion's
                 own segmentation registered to each modality
"""

from .adc import AdcFit, adc_map, fit_adc
from .lesion_features import LESION_FEATURE_COLUMNS, lesion_features
from .suv import (
    SuvConversion,
    SuvStatistics,
    sphere_mean_image,
    suv_conversion,
    suv_image,
    suv_statistics,
)

__all__ = [
    "LESION_FEATURE_COLUMNS",
    "AdcFit",
    "SuvConversion",
    "SuvStatistics",
    "adc_map",
    "fit_adc",
    "lesion_features",
    "sphere_mean_image",
    "suv_conversion",
    "suv_image",
    "suv_statistics",
]
