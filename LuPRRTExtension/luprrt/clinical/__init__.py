"""Clinical data: laboratory values and baseline characteristics in, CTCAE v5.0 grades out.

Modules
-------
ctcae   grade thresholds of CTCAE v5.0 laboratory terms (cited data) and :func:`ctcae_grade`
labs    reading and validating the labs and characteristics CSVs; :func:`grade_labs`
"""

from .ctcae import CtcaeTerm, ctcae_grade, ctcae_source, ctcae_terms, default_reference_interval
from .labs import (
    CHARACTERISTIC_COLUMNS,
    LAB_TESTS,
    LabValue,
    baseline_values,
    grade_labs,
    read_characteristics,
    read_labs,
)

__all__ = [
    "CHARACTERISTIC_COLUMNS",
    "LAB_TESTS",
    "CtcaeTerm",
    "LabValue",
    "baseline_values",
    "ctcae_grade",
    "ctcae_source",
    "ctcae_terms",
    "default_reference_interval",
    "grade_labs",
    "read_characteristics",
    "read_labs",
]
