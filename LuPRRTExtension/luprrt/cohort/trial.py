"""IA-vs-IV lobe comparisons of the within-patient controlled LUTIA design.

In the IA-vs-IV study each patient's 177Lu-dotatate is given into one hepatic artery: the
treated lobe is the intra-arterial (IA) arm and the contralateral lobe, reached by second
pass, is the intravenous (IV) arm of the same patient. The primary endpoint is the lesion
tumour-to-non-tumour activity-concentration ratio (T/N) after cycle 1, IA lobe vs IV lobe,
tested with a paired t-test; the published result (Ebbers et al., EJNMMI 2024, LUTIA) was
T/N 17.4 vs 16.2 (paired t-test p = 0.30), mean ratio 1.17 (95 % CI 1.00-1.37), 67 % of
patients with some increase.

All functions take a tidy lesion table, one row per lesion and cycle, with columns
``patient_id``, ``cycle``, ``route`` ("IA"/"IV" = the arm of the lesion's lobe),
``lesion_id`` (persistent across cycles, unique within a patient) and the value analysed
(``tn_mean`` by default), plus optional per-patient columns such as kidney or extrahepatic
uptake. T/N is analysed on the log scale because it is a ratio of concentrations whose
spread grows with its level; effects are therefore geometric-mean ratios IA/IV.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ._tables import log_of_positive, require_columns

logger = logging.getLogger(__name__)

ROUTES = ("IA", "IV")
KEY_COLUMNS = ("patient_id", "cycle", "route", "lesion_id")


def _check_routes(table: pd.DataFrame) -> None:
    found = set(table["route"].astype(str))
    unknown = sorted(found - set(ROUTES))
    if unknown:
        raise ValueError(f"column 'route' must hold 'IA' or 'IV'; found {unknown}")


@dataclass(frozen=True)
class PairedLogRatio:
    """Paired comparison on the log scale: geometric-mean ratio with a t-based CI.

    Fields are floats for one trial or arrays over the leading axes of the inputs.
    """

    ratio: np.ndarray | float
    ci_low: np.ndarray | float
    ci_high: np.ndarray | float
    t_statistic: np.ndarray | float
    p_value: np.ndarray | float
    n_pairs: int
    confidence: float


def geometric_mean_ratio_ci(log_ia, log_iv, confidence: float = 0.95) -> PairedLogRatio:
    """Geometric-mean ratio IA/IV of paired log values, its t confidence interval and p-value.

    The per-patient log differences d_i = log IA_i - log IV_i give the ratio exp(mean d),
    the interval exp(mean d -/+ t_{n-1, (1+c)/2} sd(d)/sqrt(n)) and the two-sided paired
    t-test of mean d = 0 (Student's paired t-test on log-transformed values).

    Parameters
    ----------
    log_ia, log_iv : array_like, shape (..., n_patients)
        Natural logs of the per-patient IA and IV values; leading axes are independent
        trials (so many simulated trials are analysed in one vectorised call).
    confidence : float
        Confidence level of the interval, in (0, 1).

    Returns
    -------
    PairedLogRatio
        Ratio, interval, t statistic and p-value (dimensionless), one per trial.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    ia, iv = np.asarray(log_ia, dtype=float), np.asarray(log_iv, dtype=float)
    if ia.shape != iv.shape:
        raise ValueError(f"log_ia and log_iv must have the same shape, got {ia.shape} and {iv.shape}")
    n = ia.shape[-1] if ia.ndim else 0
    if n < 2:
        raise ValueError(f"a paired comparison needs at least 2 patients, got {n}")
    diff = ia - iv
    if not np.isfinite(diff).all():
        raise ValueError("log_ia and log_iv must be finite (log of positive values)")
    mean = diff.mean(axis=-1)
    se = diff.std(axis=-1, ddof=1) / np.sqrt(n)
    quantile = stats.t.ppf(0.5 + confidence / 2.0, n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_stat = mean / se
    p_value = 2.0 * stats.t.sf(np.abs(t_stat), n - 1)
    scalar = np.ndim(mean) == 0
    pick = float if scalar else np.asarray
    return PairedLogRatio(
        ratio=pick(np.exp(mean)),
        ci_low=pick(np.exp(mean - quantile * se)),
        ci_high=pick(np.exp(mean + quantile * se)),
        t_statistic=pick(t_stat),
        p_value=pick(p_value),
        n_pairs=int(n),
        confidence=confidence,
    )


@dataclass(frozen=True)
class PairedIaIvResult:
    """IA lobe vs IV lobe of the same patients at one cycle.

    Attributes
    ----------
    value : str
        Column analysed (e.g. ``tn_mean``, dimensionless T/N).
    ia_mean, iv_mean : float
        Mean over patients of the per-patient arithmetic lesion mean (as published).
    ia_gmean, iv_gmean : float
        Geometric mean over patients of the per-patient geometric lesion mean.
    ratio, ci_low, ci_high : float
        Geometric-mean ratio IA/IV and its confidence interval.
    p_value : float
        Paired t-test on log values (``level="patient"``) or Wald test of the mixed model
        (``level="lesion"``).
    p_value_arithmetic : float
        Paired t-test on the untransformed per-patient means (the published primary test).
    wilcoxon_statistic, wilcoxon_p_value : float
        Wilcoxon signed-rank test of the per-patient log ratios (sensitivity analysis).
    share_increased : float
        Fraction of patients whose IA lobe value exceeds their IV lobe value.
    per_patient : pandas.DataFrame
        One row per analysed patient: lesion counts, means and the patient's ratio.
    excluded_patients : tuple
        Patients without lesions in both lobes at this cycle (not analysable pairwise).
    """

    value: str
    cycle: object
    level: str
    confidence: float
    n_patients: int
    n_lesions_ia: int
    n_lesions_iv: int
    ia_mean: float
    iv_mean: float
    ia_gmean: float
    iv_gmean: float
    ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    p_value_arithmetic: float
    wilcoxon_statistic: float
    wilcoxon_p_value: float
    share_increased: float
    method: str
    per_patient: pd.DataFrame = field(repr=False)
    excluded_patients: tuple = ()

    def to_frame(self) -> pd.DataFrame:
        """One-row summary table whose column names carry their units."""
        v = self.value
        return pd.DataFrame(
            {
                "cycle": [self.cycle],
                "n_patients": [self.n_patients],
                "n_lesions_ia": [self.n_lesions_ia],
                "n_lesions_iv": [self.n_lesions_iv],
                f"ia_mean_{v}": [self.ia_mean],
                f"iv_mean_{v}": [self.iv_mean],
                f"ia_gmean_{v}": [self.ia_gmean],
                f"iv_gmean_{v}": [self.iv_gmean],
                "ratio_ia_iv": [self.ratio],
                "ci_low_ratio": [self.ci_low],
                "ci_high_ratio": [self.ci_high],
                "p_value": [self.p_value],
                "p_value_arithmetic_t": [self.p_value_arithmetic],
                "p_value_wilcoxon": [self.wilcoxon_p_value],
                "share_increased": [self.share_increased],
            }
        )


def paired_ia_iv(
    table: pd.DataFrame,
    cycle=1,
    value: str = "tn_mean",
    level: str = "patient",
    confidence: float = 0.95,
) -> PairedIaIvResult:
    """Compare the IA lobe with the IV lobe of the same patients at one cycle.

    Per patient the lesion values of each lobe are summarised by their geometric mean
    (mean of log values); the per-patient log differences give the geometric-mean ratio
    IA/IV with a t confidence interval and the paired t-test on log values, with the
    Wilcoxon signed-rank test as a sensitivity analysis. The untransformed per-patient
    means and their paired t-test are reported too, to compare with the published analysis
    (Ebbers et al., EJNMMI 2024: T/N 17.4 vs 16.2, p = 0.30, ratio 1.17, 95 % CI 1.00-1.37).

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy lesion table with ``patient_id``, ``cycle``, ``route``, ``lesion_id`` and ``value``.
    cycle : int
        Treatment cycle analysed (1 = primary endpoint).
    value : str
        Column to compare; must be positive (T/N is dimensionless).
    level : {"patient", "lesion"}
        ``"patient"``: paired analysis of per-patient geometric means, each patient
        counting once (the trial's design). ``"lesion"``: every lesion counts, analysed by
        a linear mixed model ``log value ~ route`` with a random intercept and a random
        IA effect per patient (statsmodels MixedLM, REML; the slope is dropped if it
        cannot be fitted); its ratio, interval and Wald p-value replace the paired ones,
        the other fields stay per patient.
    confidence : float
        Confidence level of the interval.

    Returns
    -------
    PairedIaIvResult

    Raises
    ------
    ValueError
        Missing columns, unknown routes or level, no rows for the cycle, non-positive
        values, or fewer than 2 patients with lesions in both lobes.
    """
    if level not in ("patient", "lesion"):
        raise ValueError(f"level must be 'patient' or 'lesion', got {level!r}")
    require_columns(table, (*KEY_COLUMNS, value), "lesion table")
    _check_routes(table)
    rows = table.loc[table["cycle"] == cycle]
    if rows.empty:
        raise ValueError(f"no rows for cycle {cycle!r}; cycles present: {sorted(table['cycle'].unique())}")
    work = pd.DataFrame(
        {
            "patient_id": rows["patient_id"].to_numpy(),
            "lesion_id": rows["lesion_id"].to_numpy(),
            "route": rows["route"].astype(str).to_numpy(),
            "log_value": log_of_positive(rows[value], value),
            "raw": rows[value].to_numpy(dtype=float),
        }
    )
    lobes = (
        work.groupby(["patient_id", "route"])
        .agg(n=("log_value", "size"), log_mean=("log_value", "mean"), mean=("raw", "mean"))
        .unstack("route")
        .reindex(columns=pd.MultiIndex.from_product([("n", "log_mean", "mean"), ROUTES]))
    )
    complete = lobes[("n", "IA")].notna() & lobes[("n", "IV")].notna()
    excluded = tuple(lobes.index[~complete])
    if excluded:
        logger.warning("cycle %s: %d patient(s) lack lesions in one lobe and are excluded: %s",
                       cycle, len(excluded), list(excluded))
    lobes = lobes.loc[complete]
    if len(lobes) < 2:
        raise ValueError(f"cycle {cycle!r}: {len(lobes)} patient(s) have lesions in both lobes; need >= 2")

    log_ia, log_iv = lobes[("log_mean", "IA")].to_numpy(), lobes[("log_mean", "IV")].to_numpy()
    mean_ia, mean_iv = lobes[("mean", "IA")].to_numpy(), lobes[("mean", "IV")].to_numpy()
    per_patient = pd.DataFrame(
        {
            "patient_id": lobes.index.to_numpy(),
            "n_lesions_ia": lobes[("n", "IA")].to_numpy(dtype=int),
            "n_lesions_iv": lobes[("n", "IV")].to_numpy(dtype=int),
            f"ia_mean_{value}": mean_ia,
            f"iv_mean_{value}": mean_iv,
            f"ia_gmean_{value}": np.exp(log_ia),
            f"iv_gmean_{value}": np.exp(log_iv),
            "ratio_ia_iv": np.exp(log_ia - log_iv),
        }
    )
    paired = geometric_mean_ratio_ci(log_ia, log_iv, confidence)
    wilcoxon = stats.wilcoxon(log_ia - log_iv)
    ratio, ci_low, ci_high, p_value = paired.ratio, paired.ci_low, paired.ci_high, paired.p_value
    method = (f"per-patient geometric means; paired t-test on log {value}; "
              "Wilcoxon signed-rank on log ratios (sensitivity)")
    if level == "lesion":
        kept = work.loc[work["patient_id"].isin(lobes.index)]
        fit, _, with_slope = _fit_with_fallback(kept, [cycle], np.full(len(kept), cycle), False, True)
        model_row = fit.ratios(confidence).iloc[0]
        ratio, ci_low, ci_high, p_value = model_row[["ratio_ia_iv", "ci_low_ratio", "ci_high_ratio", "p_value"]]
        method = (f"lesion level: MixedLM log {value} ~ route, random "
                  f"{_describe_random_effects(False, with_slope)}, REML, Wald CI")
    return PairedIaIvResult(
        value=value,
        cycle=cycle,
        level=level,
        confidence=confidence,
        n_patients=len(lobes),
        n_lesions_ia=int(per_patient["n_lesions_ia"].sum()),
        n_lesions_iv=int(per_patient["n_lesions_iv"].sum()),
        ia_mean=float(mean_ia.mean()),
        iv_mean=float(mean_iv.mean()),
        ia_gmean=float(np.exp(log_ia.mean())),
        iv_gmean=float(np.exp(log_iv.mean())),
        ratio=float(ratio),
        ci_low=float(ci_low),
        ci_high=float(ci_high),
        p_value=float(p_value),
        p_value_arithmetic=float(stats.ttest_rel(mean_ia, mean_iv).pvalue),
        wilcoxon_statistic=float(wilcoxon.statistic),
        wilcoxon_p_value=float(wilcoxon.pvalue),
        share_increased=float(np.mean(log_ia > log_iv)),
        method=method,
        per_patient=per_patient,
        excluded_patients=excluded,
    )


@dataclass(frozen=True)
class _RouteFit:
    """Fixed effects of the IA indicator per cycle from a fitted MixedLM."""

    cycles: list
    log_ratio: np.ndarray
    covariance: np.ndarray
    fit: object

    def ratios(self, confidence: float) -> pd.DataFrame:
        """IA/IV ratio per cycle with Wald interval (normal quantiles) and p-value."""
        se = np.sqrt(np.diag(self.covariance))
        z = stats.norm.ppf(0.5 + confidence / 2.0)
        return pd.DataFrame(
            {
                "cycle": self.cycles,
                "ratio_ia_iv": np.exp(self.log_ratio),
                "ci_low_ratio": np.exp(self.log_ratio - z * se),
                "ci_high_ratio": np.exp(self.log_ratio + z * se),
                "p_value": 2.0 * stats.norm.sf(np.abs(self.log_ratio / se)),
            }
        )


def _fit_route_mixed_model(
    work: pd.DataFrame, cycles, lesion_random_effect: bool, cycle_values, route_random_slope: bool = False
) -> _RouteFit:
    """MixedLM of log value on cycle and route-by-cycle with a patient random intercept.

    The interaction route * C(cycle) is written in its cell-means form: one IA indicator
    per cycle, so each coefficient is directly the log ratio IA/IV at that cycle.
    """
    import statsmodels.formula.api as smf

    data = pd.DataFrame(
        {
            "log_value": work["log_value"].to_numpy(),
            "patient": work["patient_id"].astype(str).to_numpy(),
            "lesion": work["lesion_id"].astype(str).to_numpy(),
            "cycle_index": pd.Categorical(cycle_values, categories=cycles).codes,
        }
    )
    is_ia = (work["route"].to_numpy() == "IA").astype(float)
    data["ia"] = is_ia
    ia_terms = []
    for index in range(len(cycles)):
        name = f"ia_at_cycle_{index}"
        data[name] = is_ia * (data["cycle_index"].to_numpy() == index)
        ia_terms.append(name)
    cycle_term = "C(cycle_index) + " if len(cycles) > 1 else ""
    formula = f"log_value ~ {cycle_term}{' + '.join(ia_terms)}"
    vc_formula = {"lesion": "0 + C(lesion)"} if lesion_random_effect else None
    re_formula = "1 + ia" if route_random_slope else "1"
    model = smf.mixedlm(formula, data, groups="patient", re_formula=re_formula, vc_formula=vc_formula)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # statsmodels tries the optimisers in turn until one converges; L-BFGS alone was seen
        # to stall on single-cycle data with a random IA slope where CG and Powell converge.
        fit = model.fit(reml=True, method=["lbfgs", "cg", "powell"])
    # Warnings of optimisers that were superseded by a converged one are only of interest when debugging.
    level = logging.INFO if fit.converged else logging.WARNING
    for warning in caught:
        logger.log(level, "MixedLM: %s", warning.message)
    covariance = fit.cov_params().loc[ia_terms, ia_terms].to_numpy()
    return _RouteFit(list(cycles), fit.fe_params[ia_terms].to_numpy(), covariance, fit)


def _describe_random_effects(lesion: bool, slope: bool) -> str:
    parts = ["patient intercept"]
    if slope:
        parts.append("patient IA slope")
    if lesion:
        parts.append("lesion(patient) intercept")
    return " + ".join(parts)


def _fit_with_fallback(work, cycles, cycle_values, lesion: bool, slope: bool):
    """Fit the requested random effects; drop the slope, then the lesion term, if that fails.

    A fit fails when it raises a numerical error or does not converge (e.g. a variance
    component on the boundary with too few lesions per patient).
    """
    ladder = [(lesion, slope), (lesion, False), (False, slope), (False, False)]
    candidates = list(dict.fromkeys(ladder))
    for index, (with_lesion, with_slope) in enumerate(candidates):
        last = index == len(candidates) - 1
        try:
            route_fit = _fit_route_mixed_model(work, cycles, with_lesion, cycle_values, with_slope)
        except (np.linalg.LinAlgError, ValueError) as error:
            if last:
                raise ValueError(f"the mixed model could not be fitted: {error}") from error
            logger.warning("MixedLM with %s failed (%s); simplifying",
                           _describe_random_effects(with_lesion, with_slope), error)
            continue
        if route_fit.fit.converged or last:
            return route_fit, with_lesion, with_slope
        logger.warning("MixedLM with %s did not converge; simplifying",
                       _describe_random_effects(with_lesion, with_slope))
    raise AssertionError("unreachable: the last candidate always returns")


@dataclass(frozen=True)
class MixedModelResult:
    """IA/IV ratio per cycle from a linear mixed model on log values.

    Attributes
    ----------
    per_cycle : pandas.DataFrame
        ``cycle``, ``ratio_ia_iv``, ``ci_low_ratio``, ``ci_high_ratio``, ``p_value``
        (Wald, normal quantiles).
    p_value_ratio_constant : float
        Wald chi-square test that the IA/IV ratio is the same at every cycle.
    random_effects : str
        The random-effects structure actually fitted.
    variance_patient_log, variance_ia_slope_log, variance_lesion_log, variance_residual_log : float
        Variance components on the natural-log scale (NaN for a term not fitted).
    """

    per_cycle: pd.DataFrame
    p_value_ratio_constant: float
    random_effects: str
    variance_patient_log: float
    variance_ia_slope_log: float
    variance_lesion_log: float
    variance_residual_log: float
    n_observations: int
    n_patients: int
    n_lesions: int
    converged: bool
    value: str

    @property
    def method(self) -> str:
        """One line saying what was fitted."""
        return (f"MixedLM log {self.value} ~ route * C(cycle), random {self.random_effects}, "
                "REML, Wald CI")

    def to_frame(self) -> pd.DataFrame:
        """Per-cycle table (units in the column names)."""
        return self.per_cycle.copy()


def mixed_model_over_cycles(
    table: pd.DataFrame,
    value: str = "tn_mean",
    lesion_random_effect: bool = True,
    route_random_slope: bool = True,
    confidence: float = 0.95,
) -> MixedModelResult:
    """IA/IV ratio at every cycle from one linear mixed model over all cycles.

    Fits ``log value ~ route * C(cycle)`` (statsmodels MixedLM, REML) with a random
    intercept per patient; when ``lesion_random_effect``, a random intercept for each
    lesion nested in its patient (the same lesion is measured at every cycle, so its
    values are correlated beyond the patient effect); when ``route_random_slope``, a
    random IA effect per patient. The slope matters: in a within-patient comparison the
    patient-by-route variation is the error of the IA effect, and leaving it out makes
    the interval too narrow whenever the IA gain differs between patients. If a structure
    cannot be fitted (numerical failure or no convergence, e.g. one lesion per patient)
    the slope and then the lesion term are dropped, a warning is logged and
    ``random_effects`` names the structure actually fitted.

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy lesion table (``patient_id``, ``cycle``, ``route``, ``lesion_id``, ``value``).
    value : str
        Positive column analysed on the log scale.
    lesion_random_effect : bool
        Add the lesion-within-patient random intercept.
    route_random_slope : bool
        Add a per-patient random IA effect (correlated with the patient intercept).
    confidence : float
        Confidence level of the Wald intervals (normal quantiles).

    Returns
    -------
    MixedModelResult
    """
    require_columns(table, (*KEY_COLUMNS, value), "lesion table")
    _check_routes(table)
    routes_per_lesion = table.groupby(["patient_id", "lesion_id"])["route"].nunique()
    mixed = routes_per_lesion[routes_per_lesion > 1]
    if not mixed.empty:
        raise ValueError(f"a lesion lies in one lobe, but these (patient_id, lesion_id) have both "
                         f"routes: {list(mixed.index[:5])}")
    duplicated = table.duplicated(["patient_id", "lesion_id", "cycle"])
    if duplicated.any():
        raise ValueError(f"(patient_id, lesion_id, cycle) must be unique; duplicated rows at index "
                         f"{list(table.index[duplicated][:5])}")
    work = pd.DataFrame(
        {
            "patient_id": table["patient_id"].to_numpy(),
            "lesion_id": table["lesion_id"].to_numpy(),
            "route": table["route"].astype(str).to_numpy(),
            "log_value": log_of_positive(table[value], value),
        }
    )
    cycles = sorted(table["cycle"].unique())
    route_fit, with_lesion, with_slope = _fit_with_fallback(
        work, cycles, table["cycle"].to_numpy(), lesion_random_effect, route_random_slope
    )
    fit = route_fit.fit
    k = len(cycles)
    p_constant = float("nan")
    if k > 1:
        contrast = np.hstack([-np.ones((k - 1, 1)), np.eye(k - 1)])
        delta = contrast @ route_fit.log_ratio
        chi2 = float(delta @ np.linalg.solve(contrast @ route_fit.covariance @ contrast.T, delta))
        p_constant = float(stats.chi2.sf(chi2, k - 1))
    lesion_variance = float(np.asarray(fit.vcomp)[0]) if with_lesion else float("nan")
    return MixedModelResult(
        per_cycle=route_fit.ratios(confidence),
        p_value_ratio_constant=p_constant,
        random_effects=_describe_random_effects(with_lesion, with_slope),
        variance_patient_log=float(np.asarray(fit.cov_re)[0, 0]),
        variance_ia_slope_log=float(np.asarray(fit.cov_re)[1, 1]) if with_slope else float("nan"),
        variance_lesion_log=lesion_variance,
        variance_residual_log=float(fit.scale),
        n_observations=len(work),
        n_patients=int(work["patient_id"].nunique()),
        n_lesions=int(work.groupby(["patient_id", "lesion_id"]).ngroups),
        converged=bool(fit.converged),
        value=value,
    )


def uptake_summary_by_cycle(table: pd.DataFrame, columns) -> pd.DataFrame:
    """Per-cycle mean, SD, median and IQR of per-patient quantities (kidney, extrahepatic uptake).

    Per-patient columns repeated on every lesion row of a patient and cycle are reduced
    to one value per patient and cycle first, so patients with many lesions do not weigh more.

    Parameters
    ----------
    table : pandas.DataFrame
        Table with ``patient_id``, ``cycle`` and the ``columns`` (unit suffix in the name,
        e.g. ``kidney_uptake_pct_ia``, ``extrahepatic_uptake_pct_ia``, ``kidney_dose_gy``).
    columns : str or sequence of str
        Columns to summarise.

    Returns
    -------
    pandas.DataFrame
        One row per cycle; for each column ``n_patients_<c>``, ``mean_<c>``, ``sd_<c>``
        (ddof 1), ``median_<c>``, ``q1_<c>``, ``q3_<c>`` (IQR = q3 - q1).

    Raises
    ------
    ValueError
        Missing columns, non-numeric values, or a column that differs between the rows of one
        patient and cycle (then it is not a per-patient quantity).
    """
    columns = [columns] if isinstance(columns, str) else list(columns)
    require_columns(table, ("patient_id", "cycle", *columns), "uptake table")
    values = table[["patient_id", "cycle", *columns]].copy()
    for column in columns:
        numeric = pd.to_numeric(values[column], errors="coerce")
        if (numeric.isna() & values[column].notna()).any():
            raise ValueError(f"column {column!r} must be numeric")
        values[column] = numeric
    grouped = values.groupby(["patient_id", "cycle"])[columns]
    lowest, highest = grouped.min(), grouped.max()
    differs = ~np.isclose(lowest.to_numpy(), highest.to_numpy(), rtol=1e-9, equal_nan=True)
    if differs.any():
        row, col = np.argwhere(differs)[0]
        raise ValueError(f"column {columns[col]!r} differs within patient {lowest.index[row][0]!r}, "
                         f"cycle {lowest.index[row][1]!r}: it must be one value per patient and cycle")
    per_patient = grouped.first()
    by_cycle = per_patient.groupby(level="cycle")
    parts = {}
    for column in columns:
        series = by_cycle[column]
        parts[f"n_patients_{column}"] = series.count()
        parts[f"mean_{column}"] = series.mean()
        parts[f"sd_{column}"] = series.std(ddof=1)
        parts[f"median_{column}"] = series.median()
        parts[f"q1_{column}"] = series.quantile(0.25)
        parts[f"q3_{column}"] = series.quantile(0.75)
    return pd.DataFrame(parts).reset_index()


def cumulative_lesion_dose(table: pd.DataFrame, dose: str = "tumour_dose_gy") -> pd.DataFrame:
    """Add the cumulative absorbed dose of each lesion over cycles (serial dosimetry).

    Returns a new table (the input is not modified) with ``cumulative_<dose>`` (Gy): the
    sum of the lesion's per-cycle doses up to and including each cycle.
    """
    require_columns(table, ("patient_id", "lesion_id", "cycle", dose), "lesion table")
    duplicated = table.duplicated(["patient_id", "lesion_id", "cycle"])
    if duplicated.any():
        raise ValueError(f"(patient_id, lesion_id, cycle) must be unique; duplicated rows at index "
                         f"{list(table.index[duplicated][:5])}")
    doses = pd.to_numeric(table[dose], errors="coerce")
    if doses.isna().any() or (doses < 0).any():
        raise ValueError(f"column {dose!r} must be a non-negative number on every row")
    ordered = table.assign(**{dose: doses}).sort_values(["patient_id", "lesion_id", "cycle"])
    cumulative = ordered.groupby(["patient_id", "lesion_id"])[dose].cumsum()
    return table.assign(**{f"cumulative_{dose}": cumulative.reindex(table.index)})


def lobe_dose_summary(table: pd.DataFrame, dose: str = "tumour_dose_gy") -> pd.DataFrame:
    """Lesion absorbed dose summarised per patient, cycle and lobe (route).

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, ``cycle``, ``route``, ``n_lesions``, ``mean_<dose>``,
        ``median_<dose>``, ``min_<dose>``, ``max_<dose>`` (Gy).
    """
    require_columns(table, ("patient_id", "cycle", "route", dose), "lesion table")
    _check_routes(table)
    grouped = table.groupby(["patient_id", "cycle", "route"])[dose]
    return pd.DataFrame(
        {
            "n_lesions": grouped.size(),
            f"mean_{dose}": grouped.mean(),
            f"median_{dose}": grouped.median(),
            f"min_{dose}": grouped.min(),
            f"max_{dose}": grouped.max(),
        }
    ).reset_index()


@dataclass(frozen=True)
class SpearmanResult:
    """Spearman rank correlation between absorbed dose and response."""

    rho: float
    p_value: float
    n: int
    level: str
    dose: str
    response: str


def dose_response_spearman(
    table: pd.DataFrame,
    dose: str = "tumour_dose_gy",
    response: str = "diameter_change_pct",
    level: str = "lesion",
) -> SpearmanResult:
    """Spearman correlation of absorbed dose with a response measure.

    Parameters
    ----------
    table : pandas.DataFrame
        Lesion table with ``patient_id``, ``dose`` and ``response``; rows missing either
        value are left out.
    dose : str
        Absorbed-dose column, Gy (per cycle or cumulative).
    response : str
        Response column, e.g. % change of the longest diameter.
    level : {"lesion", "patient"}
        ``"lesion"`` correlates lesions directly; its p-value ignores the clustering of
        lesions within patients and is therefore optimistic. ``"patient"`` correlates the
        per-patient means (one independent point per patient).
    """
    if level not in ("lesion", "patient"):
        raise ValueError(f"level must be 'lesion' or 'patient', got {level!r}")
    require_columns(table, ("patient_id", dose, response), "lesion table")
    data = pd.DataFrame(
        {
            "patient_id": table["patient_id"].to_numpy(),
            dose: pd.to_numeric(table[dose], errors="coerce").to_numpy(),
            response: pd.to_numeric(table[response], errors="coerce").to_numpy(),
        }
    ).dropna()
    if level == "patient":
        data = data.groupby("patient_id")[[dose, response]].mean()
    if len(data) < 3:
        raise ValueError(f"Spearman correlation needs >= 3 complete {level}s, got {len(data)}")
    result = stats.spearmanr(data[dose], data[response])
    return SpearmanResult(float(result.statistic), float(result.pvalue), len(data), level, dose, response)


def size_matched_lesions(table: pd.DataFrame, cycle=1, volume: str = "volume_ml",
                         max_volume_ratio: float = 2.0) -> pd.DataFrame:
    """The lesions of ``cycle`` paired across the IA and IV lobes of each patient by size.

    A sensitivity analysis of the IA-vs-IV comparison: partial-volume recovery grows with
    lesion size, so lobes whose lesions differ in size differ in measured T/N even at the same
    true T/N. Per patient, the IA-IV lesion pair closest in log volume is matched first, then
    the next closest among the unmatched, as long as the larger volume is at most
    ``max_volume_ratio`` times the smaller (greedy nearest-neighbour matching without
    replacement). Returns the matched rows (both lobes), with a ``match`` column numbering
    the pairs within each patient.
    """
    require_columns(table, (*KEY_COLUMNS, volume), "lesion table")
    if not max_volume_ratio >= 1:
        raise ValueError(f"max_volume_ratio must be >= 1, got {max_volume_ratio}")
    rows = table.loc[table["cycle"] == cycle]
    kept = []
    for _, patient in rows.groupby("patient_id", sort=True):
        ia = patient.loc[patient["route"] == "IA"]
        iv = patient.loc[patient["route"] == "IV"]
        if ia.empty or iv.empty:
            continue
        log_ia = np.log(ia[volume].to_numpy(dtype=float))
        log_iv = np.log(iv[volume].to_numpy(dtype=float))
        distance = np.abs(log_ia[:, None] - log_iv[None, :])
        order = np.dstack(np.unravel_index(np.argsort(distance, axis=None), distance.shape))[0]
        used_ia, used_iv, pair = set(), set(), 0
        for i, j in order:
            if i in used_ia or j in used_iv or distance[i, j] > np.log(max_volume_ratio):
                continue
            used_ia.add(i)
            used_iv.add(j)
            pair += 1
            kept.append(ia.iloc[[i]].assign(match=pair))
            kept.append(iv.iloc[[j]].assign(match=pair))
    if not kept:
        return rows.iloc[0:0].assign(match=pd.Series(dtype=int))
    return pd.concat(kept, ignore_index=True)
