"""Predictive models of lesion and patient response to PRRT (the predictive-imaging study).

The lesion-level outcome is response yes/no, derived from the category of the change of
the lesion's longest diameter; predictors are baseline 18F-FDG SUVmax, 68Ga-octreotate
SUVmax, MRI ADC and the tumour absorbed dose per cycle and cumulative. Lesions of one
patient share the patient's biology and treatment, so they are not independent: every
inference here respects that clustering (patient bootstrap, GEE with exchangeable
correlation, random patient effects, patient-grouped cross-validation).

The patient-level model relates RECIST 1.1 response (CR/PR vs SD/PD; Eisenhauer et al.,
Eur J Cancer 2009) to per-patient aggregates; with few patients, complete separation is
common, and Firth's penalised likelihood (Firth, Biometrika 1993; Heinze & Schemper,
Stat Med 2002) then gives finite estimates.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from ..provenance import ProgressCallback, no_progress
from ._tables import binary_outcome, require_columns, require_complete
from .units import column_unit

logger = logging.getLogger(__name__)

# RECIST 1.1 categories (Eisenhauer et al. 2009): complete/partial response vs stable/progressive disease.
RESPONDER_CATEGORIES = ("CR", "PR")
NON_RESPONDER_CATEGORIES = ("SD", "PD")

# Lesion-level analogue of the RECIST 1.1 thresholds on one longest diameter, in %:
# <= -30 % partial response, >= +20 % progression, -100 % disappeared.
PARTIAL_RESPONSE_PCT = -30.0
PROGRESSION_PCT = 20.0


# ---------------------------------------------------------------- outcomes


def responder_from_category(
    categories,
    responders: Sequence[str] = RESPONDER_CATEGORIES,
    non_responders: Sequence[str] = NON_RESPONDER_CATEGORIES,
) -> np.ndarray:
    """Response yes/no from response categories (CR/PR -> True, SD/PD -> False).

    Raises
    ------
    ValueError
        A category that is in neither list (the unknown values are named).
    """
    values = np.asarray(categories, dtype=object)
    text = np.array([str(v).strip().upper() for v in values.ravel()], dtype=object).reshape(values.shape)
    yes = np.isin(text, [c.upper() for c in responders])
    no = np.isin(text, [c.upper() for c in non_responders])
    unknown = ~(yes | no)
    if unknown.any():
        raise ValueError(f"unknown response categories {sorted(set(values[unknown].tolist()), key=str)}; "
                         f"expected one of {[*responders, *non_responders]}")
    return yes


def diameter_change_category(change_pct) -> np.ndarray:
    """Category of a lesion's longest-diameter change from baseline, in %.

    The RECIST 1.1 thresholds applied to one lesion: -100 % "CR", <= -30 % "PR",
    >= +20 % "PD", otherwise "SD". (RECIST proper applies them to the sum of target
    diameters and also asks >= 5 mm absolute growth for PD; this is its lesion analogue.)
    """
    change = np.asarray(change_pct, dtype=float)
    if not np.isfinite(change).all() or (change < -100.0).any():
        raise ValueError("diameter change must be finite and >= -100 %")
    return np.select(
        [change <= -100.0, change <= PARTIAL_RESPONSE_PCT, change >= PROGRESSION_PCT],
        ["CR", "PR", "PD"],
        default="SD",
    ).astype(object)


def best_percent_change(table: pd.DataFrame, change: str = "sum_diameters_change_pct",
                        by: str = "patient_id") -> pd.DataFrame:
    """Best (most negative) % change from baseline per patient, for a waterfall plot.

    Returns a table with ``by`` and ``best_<change>``, sorted from worst to best.
    """
    require_columns(table, (by, change), "response table")
    best = table.groupby(by)[change].min().rename(f"best_{change}")
    return best.sort_values(ascending=False).reset_index()


# ---------------------------------------------------------------- ROC and AUC


def _outcome_and_score(y, score) -> tuple[np.ndarray, np.ndarray]:
    positive = binary_outcome(y, "outcome")
    values = np.asarray(score, dtype=float)
    if positive.ndim != 1 or values.shape != positive.shape:
        raise ValueError(f"outcome and score must be 1-D of equal length, got {positive.shape} "
                         f"and {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"score must be finite; {int((~np.isfinite(values)).sum())} value(s) are not")
    n_positive = int(positive.sum())
    if n_positive in (0, positive.size):
        raise ValueError(f"an AUC needs both outcomes; got {n_positive} positive of {positive.size}")
    return positive, values


def roc_auc(y, score) -> float:
    """Area under the ROC curve, via the Mann-Whitney U statistic.

    AUC = P(score of a responder > score of a non-responder) + 0.5 P(tie), computed from
    mid-ranks: (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg) (Hanley & McNeil,
    Radiology 1982).

    Parameters
    ----------
    y : array_like of bool or {0, 1}
        Outcome (1 = response).
    score : array_like of float
        Predictor; higher values are taken to predict response.
    """
    positive, values = _outcome_and_score(y, score)
    ranks = stats.rankdata(values)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    u_statistic = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u_statistic / (n_pos * n_neg))


@dataclass(frozen=True)
class RocCurve:
    """Empirical ROC curve: one point per distinct threshold, from (0, 0) to (1, 1)."""

    false_positive_rate: np.ndarray
    true_positive_rate: np.ndarray
    thresholds: np.ndarray
    auc: float


def roc_curve_points(y, score) -> RocCurve:
    """ROC curve points of a score (higher = response predicted), ties kept as one step.

    Each point classifies ``score >= threshold`` as responder; the first threshold is +inf
    (nothing positive). The trapezoidal area under the points equals :func:`roc_auc`.
    """
    positive, values = _outcome_and_score(y, score)
    order = np.argsort(-values, kind="mergesort")
    ordered = values[order]
    last_of_threshold = np.r_[np.nonzero(np.diff(ordered))[0], ordered.size - 1]
    true_positives = np.cumsum(positive[order])[last_of_threshold]
    false_positives = last_of_threshold + 1 - true_positives
    n_pos = positive.sum()
    return RocCurve(
        false_positive_rate=np.r_[0.0, false_positives / (positive.size - n_pos)],
        true_positive_rate=np.r_[0.0, true_positives / n_pos],
        thresholds=np.r_[np.inf, ordered[last_of_threshold]],
        auc=roc_auc(positive, values),
    )


def _weighted_auc(score: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC for many weight vectors at once (bootstrap resamples as counts).

    ``weights`` has shape (n_resamples, n_lesions). Lesions are sorted by score once; per
    resample, the weighted positives of each distinct score beat the weighted negatives
    below it and tie with half of those equal to it. NaN where a class is absent.
    """
    order = np.argsort(score, kind="mergesort")
    ordered = score[order]
    starts = np.r_[0, np.nonzero(np.diff(ordered))[0] + 1]
    w = weights[:, order]
    is_pos = positive[order]
    pos = np.add.reduceat(w * is_pos, starts, axis=1)
    neg = np.add.reduceat(w * ~is_pos, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    numerator = (pos * (below + 0.5 * neg)).sum(axis=1)
    denominator = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


@dataclass(frozen=True)
class AucResult:
    """AUC of one predictor with a cluster-bootstrap percentile confidence interval.

    ``auc`` refers to the oriented predictor: if ``lower_predicts_response`` the score
    was negated, so lower values of the predictor predict response.
    """

    predictor: str
    auc: float
    ci_low: float
    ci_high: float
    lower_predicts_response: bool
    resampled: str
    n_lesions: int
    n_clusters: int
    n_positive: int
    n_boot: int
    n_boot_valid: int
    confidence: float

    def to_frame(self) -> pd.DataFrame:
        """One-row table (dimensionless AUC, counts)."""
        return pd.DataFrame(
            {
                "predictor": [self.predictor],
                "auc": [self.auc],
                "ci_low_auc": [self.ci_low],
                "ci_high_auc": [self.ci_high],
                "lower_predicts_response": ["yes" if self.lower_predicts_response else "no"],
                "resampled": [self.resampled],
                "n_lesions": [self.n_lesions],
                "n_clusters": [self.n_clusters],
                "n_positive": [self.n_positive],
            }
        )


def auc_with_patient_bootstrap_ci(
    df: pd.DataFrame,
    predictor: str,
    outcome: str,
    cluster: str | None = "patient_id",
    n_boot: int = 2000,
    seed: int | None = None,
    confidence: float = 0.95,
    direction: str = "auto",
    progress: ProgressCallback | None = None,
) -> AucResult:
    """AUC of a lesion-level predictor with a percentile CI from a patient (cluster) bootstrap.

    Lesions of one patient are correlated, so the bootstrap resamples whole patients with
    replacement (every lesion of a drawn patient enters as often as the patient is drawn;
    Field & Welsh, JRSS-B 2007). With ``cluster=None`` lesions are resampled one by one
    (the naive bootstrap, too narrow when lesions are clustered). All resamples are
    evaluated in one vectorised pass as integer weights.

    Parameters
    ----------
    df : pandas.DataFrame
        Lesion table with ``predictor``, ``outcome`` (0/1) and ``cluster`` columns.
    predictor : str
        Numeric column scored (e.g. ``tumour_dose_gy``, ``fdg_suvmax``, ``adc_mm2_per_s``).
    outcome : str
        0/1 column, 1 = lesion response.
    cluster : str or None
        Column identifying the patient; None resamples lesions independently.
    n_boot : int
        Number of bootstrap resamples (>= 100; 2000 for reporting).
    seed : int or None
        Seed of numpy's default generator, for a reproducible interval.
    confidence : float
        Level of the percentile interval.
    direction : {"auto", "higher", "lower"}
        Which values predict response. ``"auto"`` decides from the full-data AUC (lower if
        it is below 0.5) and keeps that orientation in every resample.
    progress : ProgressCallback, optional
        Called with the fraction of resamples done.

    Returns
    -------
    AucResult
    """
    if direction not in ("auto", "higher", "lower"):
        raise ValueError(f"direction must be 'auto', 'higher' or 'lower', got {direction!r}")
    if n_boot < 100:
        raise ValueError(f"n_boot must be >= 100 for a percentile interval, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    columns = [predictor, outcome] + ([cluster] if cluster is not None else [])
    require_columns(df, columns, "lesion table")
    require_complete(df, columns, "lesion table")
    progress = progress or no_progress
    positive, score = _outcome_and_score(df[outcome].to_numpy(), df[predictor].to_numpy())
    raw_auc = roc_auc(positive, score)
    lower = direction == "lower" or (direction == "auto" and raw_auc < 0.5)
    if lower:
        score = -score
    if cluster is None:
        codes, n_clusters = np.arange(score.size), score.size
    else:
        codes, uniques = pd.factorize(df[cluster])
        n_clusters = len(uniques)
    if n_clusters < 2:
        raise ValueError(f"the bootstrap needs >= 2 clusters in {cluster!r}, got {n_clusters}")
    rng = np.random.default_rng(seed)
    replicates = np.empty(n_boot)
    chunk = 256
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        draws = rng.integers(0, n_clusters, size=(size, n_clusters))
        flat = (np.arange(size)[:, None] * n_clusters + draws).ravel()
        counts = np.bincount(flat, minlength=size * n_clusters).reshape(size, n_clusters)
        replicates[start:start + size] = _weighted_auc(score, positive, counts[:, codes].astype(float))
        progress((start + size) / n_boot, f"bootstrap AUC of {predictor}")
    valid = replicates[np.isfinite(replicates)]
    if valid.size < 0.9 * n_boot:
        raise ValueError(f"only {valid.size} of {n_boot} resamples held both outcomes; too few "
                         f"responders or non-responders for a bootstrap interval of {predictor!r}")
    tail = 50.0 * (1.0 - confidence)
    ci_low, ci_high = np.percentile(valid, [tail, 100.0 - tail])
    return AucResult(
        predictor=predictor,
        auc=roc_auc(positive, score),
        ci_low=float(ci_low),
        ci_high=float(ci_high),
        lower_predicts_response=bool(lower),
        resampled="lesion" if cluster is None else cluster,
        n_lesions=int(score.size),
        n_clusters=int(n_clusters),
        n_positive=int(positive.sum()),
        n_boot=n_boot,
        n_boot_valid=int(valid.size),
        confidence=confidence,
    )


# ---------------------------------------------------------------- regression models


@dataclass(frozen=True)
class EffectTable:
    """Effects of a logistic model as odds ratios (per SD of each predictor when standardised).

    ``table`` columns: ``predictor``, ``effect_per`` (the SD, with its unit, that one step
    of the predictor means), ``coef_log_odds``, ``se_log_odds``, ``odds_ratio``,
    ``ci_low_or``, ``ci_high_or``, ``p_value``.
    """

    table: pd.DataFrame
    method: str
    n_observations: int
    n_clusters: int
    details: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """Return the effects table (units in the column names)."""
        return self.table.copy()


def _design(data: pd.DataFrame, predictors: Sequence[str], standardise: bool):
    """Predictor matrix (standardised to mean 0, SD 1 if asked), with means and SDs."""
    x = data[list(predictors)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(x).all():
        bad = [p for p, ok in zip(predictors, np.isfinite(x).all(axis=0), strict=True) if not ok]
        raise ValueError(f"predictor(s) {bad} must be finite numbers")
    means = x.mean(axis=0)
    sds = x.std(axis=0, ddof=1)
    constant = [p for p, sd in zip(predictors, sds, strict=True) if not sd > 0]
    if constant:
        raise ValueError(f"predictor(s) {constant} are constant; they carry no information")
    if standardise:
        x = (x - means) / sds
    return x, means, sds


def _effects_frame(predictors, coef, se, p_value, sds, standardise: bool, confidence: float) -> pd.DataFrame:
    z = stats.norm.ppf(0.5 + confidence / 2.0)
    steps = []
    for name, sd in zip(predictors, sds, strict=True):
        unit = column_unit(name)
        unit_text = "" if unit in (None, "1") else f" {unit}"
        steps.append(f"1 SD = {sd:.3g}{unit_text}" if standardise else f"1{unit_text}")
    return pd.DataFrame(
        {
            "predictor": list(predictors),
            "effect_per": steps,
            "coef_log_odds": coef,
            "se_log_odds": se,
            "odds_ratio": np.exp(coef),
            "ci_low_or": np.exp(coef - z * se),
            "ci_high_or": np.exp(coef + z * se),
            "p_value": p_value,
        }
    )


def _clustered_frame(df, outcome, predictors, cluster):
    if not predictors:
        raise ValueError("at least one predictor is needed")
    columns = [outcome, *predictors, cluster]
    require_columns(df, columns, "lesion table")
    require_complete(df, columns, "lesion table")
    return df[columns]


def gee_logistic(
    df: pd.DataFrame,
    outcome: str,
    predictors: Sequence[str],
    cluster: str = "patient_id",
    standardise: bool = True,
    confidence: float = 0.95,
) -> EffectTable:
    """Population-averaged logistic model of lesion response with patient clusters (GEE).

    statsmodels GEE, Binomial family with logit link, exchangeable working correlation
    within patients, robust (sandwich) standard errors (Liang & Zeger, Biometrika 1986).
    With ``standardise`` the odds ratios are per SD of each predictor. GEE effects are
    marginal: smaller in size than the subject-specific effects of a random-intercept model
    by about 1 / sqrt(1 + 0.346 sigma_u^2) (Zeger, Liang & Albert, Biometrics 1988).

    Parameters
    ----------
    df : pandas.DataFrame
        Lesion table without missing values in the columns used.
    outcome : str
        0/1 column, 1 = lesion response.
    predictors : sequence of str
        Numeric columns (units in their names).
    cluster : str
        Column identifying the patient.
    standardise : bool
        Report effects per SD of each predictor (else per unit).
    confidence : float
        Level of the Wald intervals.

    Returns
    -------
    EffectTable
        ``details`` holds the exchangeable within-patient correlation.
    """
    import statsmodels.api as sm

    data = _clustered_frame(df, outcome, predictors, cluster)
    y = binary_outcome(data[outcome].to_numpy(), outcome).astype(float)
    x, _, sds = _design(data, predictors, standardise)
    groups, uniques = pd.factorize(data[cluster])
    model = sm.GEE(y, sm.add_constant(x, has_constant="add"), groups=groups,
                   family=sm.families.Binomial(), cov_struct=sm.cov_struct.Exchangeable())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = model.fit()
    for warning in caught:
        logger.warning("GEE: %s", warning.message)
    coef, se, p = np.asarray(fit.params), np.asarray(fit.bse), np.asarray(fit.pvalues)
    return EffectTable(
        table=_effects_frame(predictors, coef[1:], se[1:], p[1:], sds, standardise, confidence),
        method="GEE logistic, exchangeable within-patient correlation, robust SE",
        n_observations=len(y),
        n_clusters=len(uniques),
        details={
            "within_patient_correlation": float(np.ravel(fit.model.cov_struct.dep_params)[0]),
            "intercept_log_odds": float(coef[0]),
        },
    )


def mixed_logistic(
    df: pd.DataFrame,
    outcome: str,
    predictors: Sequence[str],
    cluster: str = "patient_id",
    standardise: bool = True,
    confidence: float = 0.95,
) -> EffectTable:
    """Subject-specific logistic model with a random intercept per patient (variational Bayes).

    statsmodels BinomialBayesMixedGLM fitted by mean-field variational Bayes (``fit_vb``),
    with its default priors: fixed effects N(0, 2^2) and a log-normal prior on the
    random-intercept SD. Intervals are posterior mean -/+ z posterior SD and the p-values
    the matching normal approximation; variational Bayes tends to understate posterior
    spread, so treat them as approximate and prefer :func:`gee_logistic` for inference.

    Returns
    -------
    EffectTable
        ``details`` holds the posterior mean of the patient random-intercept SD (log-odds).
    """
    from scipy import sparse
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    data = _clustered_frame(df, outcome, predictors, cluster)
    y = binary_outcome(data[outcome].to_numpy(), outcome).astype(float)
    x, _, sds = _design(data, predictors, standardise)
    groups, uniques = pd.factorize(data[cluster])
    membership = sparse.csr_matrix((np.ones(len(y)), (np.arange(len(y)), groups)),
                                   shape=(len(y), len(uniques)))
    model = BinomialBayesMixedGLM(
        y, np.column_stack([np.ones(len(y)), x]), membership, np.zeros(len(uniques), dtype=int),
        fep_names=["intercept", *predictors], vcp_names=[cluster],
    )
    fit = model.fit_vb()
    mean, sd = np.asarray(fit.fe_mean), np.asarray(fit.fe_sd)
    p = 2.0 * stats.norm.sf(np.abs(mean / sd))
    return EffectTable(
        table=_effects_frame(predictors, mean[1:], sd[1:], p[1:], sds, standardise, confidence),
        method="mixed logistic (random patient intercept), variational Bayes",
        n_observations=len(y),
        n_clusters=len(uniques),
        details={
            "patient_sd_log_odds": float(np.exp(np.asarray(fit.vcp_mean)[0])),
            "intercept_log_odds": float(mean[0]),
        },
    )


def _firth_logistic(x: np.ndarray, y: np.ndarray, max_iter: int = 200, tol: float = 1e-9):
    """Firth's bias-reduced logistic regression by Newton steps with step halving.

    Maximises l(beta) + 0.5 log det I(beta) (Jeffreys prior penalty; Firth 1993) with the
    modified score X' (y - p + h (0.5 - p)), h the hat-matrix diagonal (Heinze & Schemper
    2002). Returns the estimates and the inverse information at the optimum.
    """

    def penalised(beta):
        eta = x @ beta
        weights = special.expit(eta) * special.expit(-eta)
        sign, logdet = np.linalg.slogdet(x.T @ (x * weights[:, None]))
        return np.sum(y * eta - np.logaddexp(0.0, eta)) + 0.5 * logdet if sign > 0 else -np.inf

    beta = np.zeros(x.shape[1])
    for _ in range(max_iter):
        prob = special.expit(x @ beta)
        weights = prob * (1.0 - prob)
        inverse = np.linalg.inv(x.T @ (x * weights[:, None]))
        hat = weights * np.einsum("ij,jk,ik->i", x, inverse, x)
        step = inverse @ (x.T @ (y - prob + hat * (0.5 - prob)))
        current, scale = penalised(beta), 1.0
        while penalised(beta + scale * step) < current and scale > 1e-6:
            scale /= 2.0
        beta = beta + scale * step
        if np.max(np.abs(scale * step)) < tol:
            break
    else:
        raise ValueError(f"Firth logistic regression did not converge in {max_iter} iterations")
    prob = special.expit(x @ beta)
    return beta, np.linalg.inv(x.T @ (x * (prob * (1.0 - prob))[:, None]))


# |log-odds| per predictor SD beyond which an ML fit is taken as (quasi-)separated.
_SEPARATION_COEF = 15.0


def _fit_logistic(x: np.ndarray, y: np.ndarray, method: str):
    """Logistic fit with intercept: maximum likelihood, or Firth if asked or if ML separates.

    Returns (coefficients, covariance, method used); column 0 is the intercept.
    """
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

    design = np.column_stack([np.ones(len(y)), x])
    if method in ("auto", "mle"):
        separated = False
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fit = sm.Logit(y, design).fit(disp=0, maxiter=100)
            except (PerfectSeparationError, np.linalg.LinAlgError):
                separated = True
        if not separated:
            separated = (
                any(issubclass(w.category, PerfectSeparationWarning) for w in caught)
                or not fit.mle_retvals["converged"]
                or np.max(np.abs(fit.params[1:])) > _SEPARATION_COEF
            )
        if not separated:
            return np.asarray(fit.params), np.asarray(fit.cov_params()), "maximum likelihood"
        if method == "mle":
            raise ValueError("the outcome is (quasi-)separated by the predictors: maximum likelihood "
                             "estimates are infinite; use method='firth'")
        logger.warning("logistic regression: separation detected; using Firth's penalised likelihood")
    beta, covariance = _firth_logistic(design, y)
    return beta, covariance, "Firth penalised likelihood"


def patient_aggregates(lesions: pd.DataFrame, aggregations: Mapping[str, str],
                       cluster: str = "patient_id") -> pd.DataFrame:
    """Per-patient aggregates of lesion columns, e.g. ``{"tumour_dose_gy": "mean", "fdg_suvmax": "max"}``.

    Returns one row per patient with ``<statistic>_<column>`` columns (the unit stays the
    column's unit), e.g. ``mean_tumour_dose_gy`` and ``max_fdg_suvmax``.
    """
    allowed = ("mean", "median", "max", "min", "sum")
    unknown = {c: s for c, s in aggregations.items() if s not in allowed}
    if unknown:
        raise ValueError(f"unknown aggregation(s) {unknown}; use one of {allowed}")
    require_columns(lesions, (cluster, *aggregations), "lesion table")
    grouped = lesions.groupby(cluster)
    return pd.DataFrame(
        {f"{stat}_{column}": grouped[column].agg(stat) for column, stat in aggregations.items()}
    ).reset_index()


def patient_response_model(
    patients: pd.DataFrame,
    outcome: str,
    predictors: Sequence[str],
    method: str = "auto",
    standardise: bool = True,
    confidence: float = 0.95,
) -> EffectTable:
    """Logistic regression of patient response (RECIST CR/PR = 1 vs SD/PD = 0) on aggregates.

    One row per patient, so the rows are independent. ``method="auto"`` fits by maximum
    likelihood and switches to Firth's penalised likelihood when the outcome is separated
    (perfect prediction, no convergence or |coefficient| > 15 per SD), which with a few
    dozen patients is common; ``"mle"`` raises instead and ``"firth"`` always penalises.
    Intervals are Wald intervals; Heinze & Schemper (2002) prefer profile penalised-
    likelihood intervals for Firth fits, which are not computed here.

    Parameters
    ----------
    patients : pandas.DataFrame
        One row per patient (see :func:`patient_aggregates`, :func:`responder_from_category`).
    outcome : str
        0/1 column (1 = responder).
    predictors : sequence of str
        Numeric per-patient columns.
    method : {"auto", "mle", "firth"}
        Estimation method (see above).
    standardise : bool
        Report effects per SD of each predictor (else per unit).
    confidence : float
        Level of the Wald intervals.
    """
    if method not in ("auto", "mle", "firth"):
        raise ValueError(f"method must be 'auto', 'mle' or 'firth', got {method!r}")
    if not predictors:
        raise ValueError("at least one predictor is needed")
    columns = [outcome, *predictors]
    require_columns(patients, columns, "patient table")
    require_complete(patients, columns, "patient table")
    y = binary_outcome(patients[outcome].to_numpy(), outcome).astype(float)
    if y.sum() in (0, len(y)):
        raise ValueError(f"outcome {outcome!r} has a single class ({int(y.sum())} of {len(y)} responders)")
    x, _, sds = _design(patients, predictors, standardise)
    coef, covariance, used = _fit_logistic(x, y, method)
    se = np.sqrt(np.diag(covariance))
    p = 2.0 * stats.norm.sf(np.abs(coef / se))
    return EffectTable(
        table=_effects_frame(predictors, coef[1:], se[1:], p[1:], sds, standardise, confidence),
        method=f"patient-level logistic regression, {used}",
        n_observations=len(y),
        n_clusters=len(y),
        details={"intercept_log_odds": float(coef[0]), "fit": used},
    )


# ---------------------------------------------------------------- patient-grouped cross-validation


def group_kfold(groups, n_splits: int = 5, seed: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split rows into ``n_splits`` folds such that all rows of a group (patient) share a fold.

    Groups are assigned, largest first, to the fold with the fewest rows so far, which
    balances fold sizes; with a ``seed`` groups of equal size are taken in random order.

    Returns
    -------
    list of (train_index, test_index)
        Integer row positions; every row is in exactly one test fold.
    """
    codes, uniques = pd.factorize(pd.Series(groups))
    if (codes < 0).any():
        raise ValueError("groups must not contain missing values")
    n_groups = len(uniques)
    if not 2 <= n_splits <= n_groups:
        raise ValueError(f"n_splits must be between 2 and the number of groups ({n_groups}), got {n_splits}")
    sizes = np.bincount(codes)
    order = np.arange(n_groups) if seed is None else np.random.default_rng(seed).permutation(n_groups)
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_of_group = np.empty(n_groups, dtype=int)
    load = np.zeros(n_splits, dtype=int)
    for group in order:  # one step per patient, not per lesion
        fold = int(np.argmin(load))
        fold_of_group[group] = fold
        load[fold] += sizes[group]
    fold_of_row = fold_of_group[codes]
    rows = np.arange(codes.size)
    return [(rows[fold_of_row != k], rows[fold_of_row == k]) for k in range(n_splits)]


@dataclass(frozen=True)
class CrossValidationResult:
    """Out-of-fold predicted response probabilities from patient-grouped cross-validation."""

    probability: np.ndarray
    fold: np.ndarray
    auc: float
    n_splits: int
    predictors: tuple
    fits: tuple


def grouped_cv_probabilities(
    df: pd.DataFrame,
    outcome: str,
    predictors: Sequence[str],
    cluster: str = "patient_id",
    n_splits: int = 5,
    seed: int | None = None,
    method: str = "auto",
) -> CrossValidationResult:
    """Out-of-fold probabilities of a logistic model, never testing on a training patient.

    Each fold's model is fitted on the other folds' patients (predictors standardised with
    the training mean and SD only, so nothing of the test patients leaks in) and predicts
    the held-out patients' lesions. The CV AUC is the AUC of all out-of-fold probabilities.

    Returns
    -------
    CrossValidationResult
        ``probability`` and ``fold`` are aligned with the rows of ``df``.
    """
    columns = [outcome, *predictors, cluster]
    require_columns(df, columns, "lesion table")
    require_complete(df, columns, "lesion table")
    y = binary_outcome(df[outcome].to_numpy(), outcome).astype(float)
    x, _, _ = _design(df, predictors, standardise=False)
    probability = np.empty(len(y))
    fold = np.empty(len(y), dtype=int)
    fits = []
    for k, (train, held_out) in enumerate(group_kfold(df[cluster].to_numpy(), n_splits, seed)):
        if y[train].sum() in (0, train.size):
            raise ValueError(f"fold {k}: the training patients hold a single outcome class")
        mean, sd = x[train].mean(axis=0), x[train].std(axis=0, ddof=1)
        if not (sd > 0).all():
            constant = [name for name, spread in zip(predictors, sd, strict=True) if not spread > 0]
            raise ValueError(f"fold {k}: predictor(s) {constant} are constant over the training patients")
        coef, _, used = _fit_logistic((x[train] - mean) / sd, y[train], method)
        probability[held_out] = special.expit(coef[0] + ((x[held_out] - mean) / sd) @ coef[1:])
        fold[held_out] = k
        fits.append(used)
    return CrossValidationResult(probability, fold, roc_auc(y, probability), n_splits, tuple(predictors),
                                 tuple(fits))
