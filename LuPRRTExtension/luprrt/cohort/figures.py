"""PNG figures of the cohort analysis (matplotlib, Agg, no pyplot state).

Figures are drawn on ``matplotlib.figure.Figure`` objects, which render with the Agg
canvas without touching pyplot's global state or the GUI backend, so they are safe in
batch runs and inside Slicer. Every function writes one PNG and returns its path; an
existing file is only replaced with ``overwrite=True``.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import output_exists
from ._tables import require_columns
from .models import PARTIAL_RESPONSE_PCT, PROGRESSION_PCT, EffectTable, RocCurve
from .trial import PairedIaIvResult

HOURS_PER_WEEK = 168.0
_DPI = 120
_INCREASE, _DECREASE, _NEUTRAL = "#c0392b", "#2471a3", "#7f8c8d"


def _output_path(path: str | Path, overwrite: bool) -> Path:
    """Check the PNG target before drawing: .png suffix, existing folder, no silent overwrite."""
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(f"figure path must end in .png: {target}")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"folder of the figure does not exist: {target.parent}")
    if target.exists() and not overwrite:
        raise output_exists(target)
    return target


def _new_figure(width_in: float, height_in: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=_DPI, layout="constrained")


def _save(figure, target: Path) -> Path:
    figure.savefig(target, format="png", dpi=_DPI)
    return target


def _plain_log_ticks(axis, low: float, high: float) -> None:
    """Label a log axis with plain numbers (0.5, 1, 2, 20) instead of powers of ten.

    Ticks are the 1-2-5 series inside the limits, or all of 1..9 per decade when the
    axis spans too little for three of those.
    """
    from matplotlib import ticker

    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for mantissas in ((1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10.0**e for e in decades for m in mantissas if low <= m * 10.0**e <= high]
        if len(ticks) >= 3:
            break
    if len(ticks) < 2:
        return  # too narrow for round numbers: keep matplotlib's labels
    axis.set_major_locator(ticker.FixedLocator(ticks))
    axis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def paired_ia_iv_figure(result: PairedIaIvResult, path: str | Path, overwrite: bool = False) -> Path:
    """Per-patient IV lobe vs IA lobe values joined by a line, on a log axis.

    Lines rising to the IA lobe are red, falling ones blue; the black diamonds are the
    geometric means over patients, and the title gives the ratio with its interval.
    """
    target = _output_path(path, overwrite)
    table = result.per_patient
    iv = table[f"iv_gmean_{result.value}"].to_numpy()
    ia = table[f"ia_gmean_{result.value}"].to_numpy()
    figure = _new_figure(4.0, 5.0)
    axes = figure.subplots()
    for before, after in zip(iv, ia, strict=True):
        axes.plot([0, 1], [before, after], color=_INCREASE if after > before else _DECREASE,
                  alpha=0.7, linewidth=1.2, marker="o", markersize=3)
    axes.plot([0, 1], [result.iv_gmean, result.ia_gmean], color="black", marker="D", markersize=7,
              linewidth=2.5, label="geometric mean")
    axes.set_yscale("log")
    _plain_log_ticks(axes.yaxis, *axes.get_ylim())
    axes.set_xticks([0, 1], ["IV lobe", "IA lobe"])
    axes.set_xlim(-0.3, 1.3)
    quantity = "T/N" if result.value.startswith("tn") else result.value
    axes.set_ylabel(f"{quantity} per patient (geometric mean of its lesions)")
    axes.set_title(f"Cycle {result.cycle}: IA/IV {result.ratio:.2f} "
                   f"({100 * result.confidence:.0f} % CI {result.ci_low:.2f}-{result.ci_high:.2f}), "
                   f"n = {result.n_patients}", fontsize=9)
    axes.legend(loc="best", fontsize=8)
    return _save(figure, target)


def forest_plot(effects: EffectTable | pd.DataFrame, path: str | Path, title: str = "",
                overwrite: bool = False) -> Path:
    """Odds ratios with confidence intervals, one row per predictor, log x axis, line at OR = 1."""
    target = _output_path(path, overwrite)
    table = effects.table if isinstance(effects, EffectTable) else effects
    require_columns(table, ("predictor", "odds_ratio", "ci_low_or", "ci_high_or"), "effects table")
    if table.empty:
        raise ValueError("effects table is empty: nothing to plot")
    odds = table["odds_ratio"].to_numpy(dtype=float)
    low, high = table["ci_low_or"].to_numpy(dtype=float), table["ci_high_or"].to_numpy(dtype=float)
    rows = np.arange(len(table))[::-1]
    figure = _new_figure(6.0, 1.2 + 0.45 * len(table))
    axes = figure.subplots()
    axes.errorbar(odds, rows, xerr=[odds - low, high - odds], fmt="s", color="black", capsize=3)
    axes.axvline(1.0, color=_NEUTRAL, linestyle="--", linewidth=1)
    labels = table["predictor"].astype(str)
    if "effect_per" in table.columns:
        labels = labels + " (" + table["effect_per"].astype(str) + ")"
    axes.set_yticks(rows, labels.tolist())
    axes.set_xscale("log")
    _plain_log_ticks(axes.xaxis, *axes.get_xlim())
    axes.set_xlabel("odds ratio of response (log scale)")
    heading = title or (effects.method if isinstance(effects, EffectTable) else "")
    axes.set_title(textwrap.fill(heading, 60), fontsize=9)
    return _save(figure, target)


def roc_figure(curves: Mapping[str, RocCurve], path: str | Path, title: str = "",
               overwrite: bool = False) -> Path:
    """ROC curves of several predictors, with the AUC in each legend entry."""
    target = _output_path(path, overwrite)
    if not curves:
        raise ValueError("no ROC curves given")
    figure = _new_figure(5.0, 5.0)
    axes = figure.subplots()
    for label, curve in curves.items():
        # straight segments between thresholds: tied scores give a diagonal, as in the trapezoidal AUC
        axes.plot(curve.false_positive_rate, curve.true_positive_rate, label=f"{label} (AUC {curve.auc:.2f})")
    axes.plot([0, 1], [0, 1], color=_NEUTRAL, linestyle=":", linewidth=1)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.set_aspect("equal")
    axes.set_xlabel("1 - specificity (false-positive rate)")
    axes.set_ylabel("sensitivity (true-positive rate)")
    axes.set_title(title, fontsize=9)
    axes.legend(loc="lower right", fontsize=8)
    return _save(figure, target)


def _response_lines(axes) -> None:
    axes.axhline(PROGRESSION_PCT, color=_INCREASE, linestyle="--", linewidth=1, label="+20 % (PD)")
    axes.axhline(PARTIAL_RESPONSE_PCT, color=_DECREASE, linestyle="--", linewidth=1, label="-30 % (PR)")
    axes.axhline(0.0, color="black", linewidth=0.6)


def spider_plot(table: pd.DataFrame, path: str | Path, change: str = "diameter_change_pct",
                time: str = "time_since_baseline_h", lesion: tuple[str, str] = ("patient_id", "lesion_id"),
                overwrite: bool = False) -> Path:
    """Per-lesion % change of the longest diameter over time, one line per lesion.

    ``time`` is in hours (LuPRRT's time unit) and shown in weeks. Every line starts at the
    baseline (0 weeks, 0 %) by definition of the change, whether or not the table holds a
    baseline row. Lines are coloured by their last value.
    """
    target = _output_path(path, overwrite)
    require_columns(table, (*lesion, change, time), "lesion response table")
    figure = _new_figure(6.5, 4.5)
    axes = figure.subplots()
    for _, rows in table.sort_values(time).groupby(list(lesion), sort=False):
        values = rows[change].to_numpy(dtype=float)
        hours = rows[time].to_numpy(dtype=float)
        if hours[0] > 0.0:
            values, hours = np.concatenate([[0.0], values]), np.concatenate([[0.0], hours])
        colour = (_DECREASE if values[-1] <= PARTIAL_RESPONSE_PCT
                  else _INCREASE if values[-1] >= PROGRESSION_PCT else _NEUTRAL)
        axes.plot(hours / HOURS_PER_WEEK, values, color=colour, marker="o", markersize=2.5, linewidth=1,
                  alpha=0.8)
    _response_lines(axes)
    axes.set_xlabel("time since baseline (weeks)")
    axes.set_ylabel("change of longest diameter (%)")
    axes.legend(loc="upper left", fontsize=8)
    return _save(figure, target)


def waterfall_plot(table: pd.DataFrame, path: str | Path, change: str = "best_sum_diameters_change_pct",
                   patient: str = "patient_id", overwrite: bool = False) -> Path:
    """Best % change per patient as bars sorted from worst to best, with -30 % and +20 % lines."""
    target = _output_path(path, overwrite)
    require_columns(table, (patient, change), "best-change table")
    if table[patient].duplicated().any():
        raise ValueError(f"one row per patient expected; duplicated {patient!r} values: "
                         f"{table.loc[table[patient].duplicated(), patient].tolist()[:5]}")
    ordered = table.sort_values(change, ascending=False)
    values = ordered[change].to_numpy(dtype=float)
    colours = np.where(values <= PARTIAL_RESPONSE_PCT, _DECREASE,
                       np.where(values >= PROGRESSION_PCT, _INCREASE, _NEUTRAL))
    figure = _new_figure(max(5.0, 0.25 * len(values) + 2.0), 4.5)
    axes = figure.subplots()
    axes.bar(np.arange(len(values)), values, color=colours, width=0.8)
    _response_lines(axes)
    axes.set_xticks(np.arange(len(values)), ordered[patient].astype(str).tolist(), rotation=90, fontsize=7)
    axes.set_ylabel("best change of the sum of diameters (%)")
    axes.legend(loc="upper right", fontsize=8)
    return _save(figure, target)
