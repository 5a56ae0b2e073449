"""A patient random-intercept linear model with a fallback for a variance on its boundary."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PatientModel:
    """Fixed effects and their standard errors from :func:`fit_patient_model`."""

    params: pd.Series
    bse: pd.Series
    fit: object
    method: str

    def wald(self, term: str, confidence: float = 0.95) -> tuple[float, float, float, float]:
        """Estimate, CI low, CI high and two-sided p of ``term`` (normal quantiles)."""
        value, se = float(self.params[term]), float(self.bse[term])
        z = stats.norm.ppf(0.5 + confidence / 2.0)
        return value, value - z * se, value + z * se, float(2.0 * stats.norm.sf(abs(value / se)))


def fit_patient_model(formula: str, data: pd.DataFrame, groups: str = "patient_id", re_formula: str | None = "1",
                      vc_formula: dict | None = None) -> PatientModel:
    """Linear mixed model (statsmodels MixedLM, REML) with random effects per patient.

    When the patient variance sits on its boundary (zero), MixedLM's Hessian is singular;
    the model then falls back to ordinary least squares with patient-clustered (sandwich)
    standard errors, which respects the clustering without a variance component.
    """
    import statsmodels.formula.api as smf

    try:
        model = smf.mixedlm(formula, data, groups=data[groups].astype(str), re_formula=re_formula,
                            vc_formula=vc_formula)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = model.fit(reml=True, method=["lbfgs", "cg", "powell"])
        for warning in caught:
            logger.log(logging.INFO if fit.converged else logging.WARNING, "MixedLM: %s", warning.message)
        bse = fit.bse_fe
        if not np.isfinite(bse.to_numpy(dtype=float)).all():
            raise np.linalg.LinAlgError("non-finite standard errors")
        return PatientModel(fit.fe_params, bse, fit, "MixedLM, patient random intercept, REML")
    except np.linalg.LinAlgError as error:
        logger.info("MixedLM %s failed (%s); OLS with patient-clustered errors", formula, error)
        codes = pd.factorize(data[groups])[0]
        fit = smf.ols(formula, data).fit(cov_type="cluster", cov_kwds={"groups": codes})
        return PatientModel(fit.params, fit.bse, fit, "OLS with patient-clustered standard errors "
                                                      "(patient variance on its boundary)")
