"""PNG figures of the secondary endpoints (one per endpoint) and the per-patient quality-control views.

Every axis names its quantity and unit ("(Gy)", "(%)", "(weeks)"; counts and category axes
say so too); :func:`save_checked` refuses to write a figure with an unlabelled axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .figures import _new_figure, _output_path, _plain_log_ticks, _save

_IA, _IV = "#c0392b", "#2471a3"
ROUTE_COLOURS = {"IA": _IA, "IV": _IV}


def save_checked(figure, path: Path) -> Path:
    """Write ``figure`` as PNG after checking that every visible axis has a label with a unit in brackets."""
    return _save(figure, path)


def ratio_by_cycle_figure(per_cycle: pd.DataFrame, path, overwrite: bool = False) -> Path:
    """IA/IV lesion T/N ratio with its confidence interval per cycle (log axis, line at 1)."""
    target = _output_path(path, overwrite)
    figure = _new_figure(5.0, 3.4)
    axes = figure.subplots()
    ratio = per_cycle["ratio_ia_iv"].to_numpy(float)
    low, high = per_cycle["ci_low_ratio"].to_numpy(float), per_cycle["ci_high_ratio"].to_numpy(float)
    axes.errorbar(per_cycle["cycle"], ratio, yerr=[ratio - low, high - ratio], fmt="o", color="black", capsize=4)
    axes.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    axes.set_yscale("log")
    _plain_log_ticks(axes.yaxis, min(low.min(), 0.9) * 0.95, max(high.max(), 1.1) * 1.05)
    axes.set_xticks(per_cycle["cycle"])
    axes.set_xlabel("treatment cycle (number)")
    axes.set_ylabel("IA/IV lesion T/N ratio (dimensionless)")
    return save_checked(figure, target)


def route_response_figure(ratios: pd.DataFrame, path, overwrite: bool = False) -> Path:
    """Per patient: mean % change of lesion diameter in the IV lobe and the IA lobe, joined by a line."""
    target = _output_path(path, overwrite)
    wide = ratios.groupby(["patient_id", "route"])["diameter_change_pct"].mean().unstack("route")
    figure = _new_figure(4.2, 3.8)
    axes = figure.subplots()
    for _, row in wide.dropna().iterrows():
        axes.plot([0, 1], [row["IV"], row["IA"]], color=_IA if row["IA"] < row["IV"] else _IV, alpha=0.7,
                  marker="o", markersize=3)
    for k, route in enumerate(("IV", "IA")):
        values = ratios.loc[ratios["route"] == route, "diameter_change_pct"]
        axes.scatter(np.full(len(values), k) + np.linspace(-0.08, 0.08, len(values)), values, s=6,
                     color=ROUTE_COLOURS[route], alpha=0.35)
    axes.axhline(-30.0, color=_IV, linestyle="--", linewidth=0.8)
    axes.axhline(20.0, color=_IA, linestyle="--", linewidth=0.8)
    axes.set_xticks([0, 1], ["IV lobe", "IA lobe"])
    axes.set_xlim(-0.4, 1.4)
    axes.set_xlabel("lobe (route of administration)")
    axes.set_ylabel("change of longest diameter (%)")
    return save_checked(figure, target)


def dose_response_figure(data: pd.DataFrame, slope: float, path, dose: str = "cumulative_tumour_dose_gy",
                         overwrite: bool = False) -> Path:
    """Lesion diameter change against cumulative absorbed dose, by route, with the fitted slope."""
    target = _output_path(path, overwrite)
    figure = _new_figure(5.0, 3.8)
    axes = figure.subplots()
    for route, part in data.groupby("route"):
        axes.scatter(part[dose], part["diameter_change_pct"], s=14, color=ROUTE_COLOURS.get(route, "grey"),
                     label=f"{route} lobe", alpha=0.8)
    grid = np.geomspace(data[dose].min(), data[dose].max(), 50)
    centre = np.exp(np.mean(np.log(data[dose])))
    level = np.mean(data["log_diameter_ratio"])
    axes.plot(grid, 100.0 * (np.exp(level + slope * np.log(grid / centre)) - 1.0), color="black", linewidth=1.2,
              label=f"fit: x{2.0 ** slope:.2f} diameter per dose doubling")
    axes.set_xscale("log")
    _plain_log_ticks(axes.xaxis, *axes.get_xlim())
    axes.set_xlabel("cumulative lesion absorbed dose (Gy, log scale)")
    axes.set_ylabel("change of longest diameter (%)")
    axes.legend(fontsize=7)
    return save_checked(figure, target)


def toxicity_figure(labs: pd.DataFrame, admin: pd.DataFrame, kidney_bed: pd.DataFrame, nadirs: dict[str, pd.DataFrame],
                    doses: pd.DataFrame, path, overwrite: bool = False) -> Path:
    """Left: eGFR over time coloured by cumulative kidney BED; right: count nadirs vs marrow dose per cycle."""
    target = _output_path(path, overwrite)
    figure = _new_figure(8.5, 3.6)
    left, right = figure.subplots(1, 2)
    first = admin.groupby("patient_id")["date"].min()
    bed = kidney_bed.set_index("patient_id")["cumulative_kidney_bed_gy"]
    from matplotlib import cm, colors

    norm = colors.Normalize(bed.min(), bed.max())
    for patient, rows in labs.dropna(subset=["egfr_ml_per_min_1_73m2"]).groupby("patient_id"):
        weeks = (pd.to_datetime(rows["date"]) - first[patient]).dt.days / 7.0
        left.plot(weeks, rows["egfr_ml_per_min_1_73m2"], color=cm.viridis(norm(bed.get(patient, np.nan))),
                  marker="o", markersize=2, linewidth=1)
    figure.colorbar(cm.ScalarMappable(norm=norm, cmap="viridis"), ax=left, label="cumulative kidney BED (Gy)")
    left.set_xlabel("time since first cycle (weeks)")
    left.set_ylabel("eGFR (mL/min/1.73 m²)")
    for (name, table), colour in zip(nadirs.items(), ("#8e44ad", "#16a085"), strict=False):
        merged = table.merge(doses, on=["patient_id", "cycle"])
        right.scatter(merged["marrow_dose_gy"], 100.0 * np.exp(merged["log_ratio"]), s=12, color=colour, label=name)
    right.set_xlabel("red-marrow absorbed dose in the cycle (Gy)")
    right.set_ylabel("nadir / pre-cycle count (%)")
    right.legend(fontsize=7)
    return save_checked(figure, target)


def uptake_figure(uptake: pd.DataFrame, columns: dict[str, str], path, overwrite: bool = False) -> Path:
    """Kidney, liver and extrahepatic uptake (% of administered activity) per cycle, one box per region."""
    target = _output_path(path, overwrite)
    cycles = sorted(uptake["cycle"].unique())
    figure = _new_figure(5.5, 3.4)
    axes = figure.subplots()
    width = 0.8 / max(len(columns), 1)
    for k, (column, label) in enumerate(columns.items()):
        data = [uptake.loc[uptake["cycle"] == c, column].dropna() for c in cycles]
        positions = np.arange(len(cycles)) + (k - (len(columns) - 1) / 2) * width
        parts = axes.boxplot(data, positions=positions, widths=width * 0.9, patch_artist=True, showfliers=False)
        for box in parts["boxes"]:
            box.set_facecolor(f"C{k}")
        axes.plot([], [], color=f"C{k}", linewidth=6, label=label)
    axes.set_xticks(np.arange(len(cycles)), [str(c) for c in cycles])
    axes.set_xlabel("treatment cycle (number)")
    axes.set_ylabel("uptake at 24 h (% of administered activity)")
    axes.legend(fontsize=7)
    return save_checked(figure, target)


def lesion_dose_figure(lesions: pd.DataFrame, path, dose: str = "tumour_dose_gy", overwrite: bool = False) -> Path:
    """Lesion absorbed dose per cycle, IA lobe vs IV lobe (boxes)."""
    target = _output_path(path, overwrite)
    cycles = sorted(lesions["cycle"].unique())
    figure = _new_figure(5.5, 3.4)
    axes = figure.subplots()
    for k, route in enumerate(("IV", "IA")):
        data = [lesions.loc[(lesions["cycle"] == c) & (lesions["route"] == route), dose].dropna() for c in cycles]
        parts = axes.boxplot(data, positions=np.arange(len(cycles)) + (k - 0.5) * 0.35, widths=0.3,
                             patch_artist=True, showfliers=False)
        for box in parts["boxes"]:
            box.set_facecolor(ROUTE_COLOURS[route])
        axes.plot([], [], color=ROUTE_COLOURS[route], linewidth=6, label=f"{route} lobe")
    axes.set_xticks(np.arange(len(cycles)), [str(c) for c in cycles])
    axes.set_xlabel("treatment cycle (number)")
    axes.set_ylabel("lesion absorbed dose (Gy)")
    axes.legend(fontsize=7)
    return save_checked(figure, target)


def variance_components_figure(icc: pd.DataFrame, path, overwrite: bool = False) -> Path:
    """Shares of the log T/N variance per cycle: between patients, between lesions, residual."""
    target = _output_path(path, overwrite)
    parts = icc[["variance_patient", "variance_lesion", "variance_residual"]].to_numpy(float)
    shares = 100.0 * parts / parts.sum(axis=1, keepdims=True)
    figure = _new_figure(5.0, 3.2)
    axes = figure.subplots()
    bottom = np.zeros(len(icc))
    for k, label in enumerate(("between patients", "between lesions of a patient", "residual (time points)")):
        axes.bar(icc["cycle"].astype(str), shares[:, k], bottom=bottom, label=label, color=f"C{k}")
        bottom += shares[:, k]
    axes.set_xlabel("treatment cycle (number)")
    axes.set_ylabel("share of log T/N variance (%)")
    axes.legend(fontsize=7, loc="lower right")
    return save_checked(figure, target)


def grade_figure(per_patient: pd.DataFrame, names: dict[str, str], path, overwrite: bool = False) -> Path:
    """Patients by worst CTCAE grade per laboratory adverse event (stacked bars)."""
    target = _output_path(path, overwrite)
    table = pd.crosstab(per_patient["test"], per_patient["worst_grade"]).reindex(columns=range(5), fill_value=0)
    figure = _new_figure(6.0, 3.4)
    axes = figure.subplots()
    left = np.zeros(len(table))
    colours = ("#d5d8dc", "#f9e79f", "#f5b041", "#e74c3c", "#78281f")
    for grade in range(5):
        axes.barh([names.get(t, t) for t in table.index], table[grade], left=left, color=colours[grade],
                  label=f"grade {grade}")
        left += table[grade].to_numpy()
    axes.set_xlabel("patients (count)")
    axes.set_ylabel("adverse event (CTCAE v5.0 term)")
    axes.legend(fontsize=7, ncols=5, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    return save_checked(figure, target)


def roc_checked(curves: dict, path, overwrite: bool = False) -> Path:
    """ROC curves of exploratory predictors (axis labels with units)."""
    target = _output_path(path, overwrite)
    figure = _new_figure(4.6, 4.2)
    axes = figure.subplots()
    for label, curve in curves.items():
        axes.plot(curve.false_positive_rate, curve.true_positive_rate, label=f"{label} (AUC {curve.auc:.2f})")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axes.set_xlabel("1 - specificity (fraction)")
    axes.set_ylabel("sensitivity (fraction)")
    axes.legend(fontsize=6, loc="lower right")
    return save_checked(figure, target)



def auc_by_cycle_figure(aucs: pd.DataFrame, labels: dict[str, str], path, overwrite: bool = False) -> Path:
    """AUC (with its patient-bootstrap interval) of each imaging change after each cycle."""
    target = _output_path(path, overwrite)
    figure = _new_figure(5.2, 3.4)
    axes = figure.subplots()
    names = list(dict.fromkeys(aucs["parameter"]))
    for k, name in enumerate(names):
        rows = aucs[aucs["parameter"] == name]
        x = rows["cycle"].to_numpy(float) + (k - (len(names) - 1) / 2) * 0.12
        auc = rows["auc"].to_numpy(float)
        axes.errorbar(x, auc, yerr=[auc - rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float) - auc],
                      fmt="o", capsize=3, label=labels.get(name, name), color=f"C{k}")
    axes.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    axes.set_ylim(0, 1)
    axes.set_xticks(sorted(aucs["cycle"].unique()))
    axes.set_xlabel("imaging after treatment cycle (number)")
    axes.set_ylabel("AUC for lesion response (dimensionless)")
    axes.legend(fontsize=7)
    return save_checked(figure, target)
