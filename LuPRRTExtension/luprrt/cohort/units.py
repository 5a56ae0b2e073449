"""Units of cohort-table columns, read from the column names.

LuPRRT names every quantity with its unit as a suffix (``tumour_dose_gy``,
``kidney_concentration_bq_per_ml``); statistics tables prefix the statistic
(``mean_tumour_dose_gy``, ``q1_kidney_uptake_pct_ia``). Dimensionless quantities
(T/N, ratios, odds ratios, AUC, p-values) get the UCUM unit ``1``; counts (``n_...``)
get ``count``. The HTML report uses this to put a unit in every numeric column header.
"""

from __future__ import annotations

# Physical unit suffixes, longest first so that "_mbq_h" wins over "_h" and "_gy_per_gbq"
# over "_gy". Standardised uptake values use body-weight normalisation, whose unit is g/mL
# (DICOM PS3.3 C.8.9.1.1.3, Units attribute "GML").
_SUFFIX_UNITS = (
    ("_bq_per_ml", "Bq/mL"),
    ("_gy_per_gbq", "Gy/GBq"),
    ("_mm2_per_s", "mm²/s"),
    ("_mbq_h", "MBq h"),
    ("_pct_ia", "%IA"),
    ("_suvmax", "g/mL"),
    ("_suvmean", "g/mL"),
    ("_suvpeak", "g/mL"),
    ("_suv", "g/mL"),
    ("_gbq", "GBq"),
    ("_mbq", "MBq"),
    ("_pct", "%"),
    ("_gy", "Gy"),
    ("_mm", "mm"),
    ("_ml", "mL"),
    ("_h", "h"),
)

# Name tokens that mark a dimensionless quantity (T/N, ratios, probabilities, test statistics).
_DIMENSIONLESS_TOKENS = frozenset(
    {
        "tn", "ratio", "or", "odds", "auc", "p", "rho", "coef", "se", "statistic", "share",
        "probability", "correlation", "fpr", "tpr", "z", "t", "logit", "variance", "responder",
    }
)

DIMENSIONLESS = "1"
COUNT = "count"


def column_unit(name: str) -> str | None:
    """Read the unit of a cohort-table column from its name; None when the name carries none.

    Parameters
    ----------
    name : str
        Column name following the LuPRRT convention (unit suffix, statistic prefix).

    Returns
    -------
    str or None
        A unit label ("Gy", "Bq/mL", "%IA", "g/mL", "1" for dimensionless, "count"), or
        None if the name does not tell.

    Examples
    --------
    >>> column_unit("mean_tumour_dose_gy"), column_unit("ratio_ia_iv"), column_unit("n_patients")
    ('Gy', '1', 'count')
    """
    lower = str(name).lower()
    for suffix, unit in _SUFFIX_UNITS:
        if lower.endswith(suffix):
            return unit
    if lower.startswith("n_") or lower == "n":
        return COUNT
    if _DIMENSIONLESS_TOKENS.intersection(lower.split("_")):
        return DIMENSIONLESS
    return None
