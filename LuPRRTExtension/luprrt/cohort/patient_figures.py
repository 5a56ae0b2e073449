"""Per-patient quality-control figures: CT with SPECT overlay and outlines, time-activity curves, DVHs, RECIST.

They show what was measured: the reader sees the lobes and lesions as segmented on the CT,
the SPECT they were measured on, the fitted time-activity curves behind the doses, the dose
distribution per region and the course of the sum of target diameters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from .endpoint_figures import ROUTE_COLOURS, save_checked
from .figures import _new_figure, _output_path


def _on_grid(image: sitk.Image, reference: sitk.Image, nearest: bool) -> np.ndarray:
    interpolator = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    return sitk.GetArrayFromImage(sitk.Resample(image, reference, sitk.Transform(), interpolator, 0.0))


def _extent(reference: sitk.Image, axes: tuple[int, int]) -> list[float]:
    origin, spacing, size = reference.GetOrigin(), reference.GetSpacing(), reference.GetSize()
    (a, b) = axes
    return [origin[a] - spacing[a] / 2, origin[a] + spacing[a] * (size[a] - 0.5),
            origin[b] + spacing[b] * (size[b] - 0.5), origin[b] - spacing[b] / 2]


def ct_spect_overlay_figure(ct: sitk.Image, spect_bq_per_ml: sitk.Image, outlines: dict[str, tuple[np.ndarray, str]],
                            lesion_centres_mm: list[tuple[str, tuple[float, float, float]]], path,
                            overwrite: bool = False) -> Path:
    """Axial slices through up to three lesions and a coronal slice through the first: CT, SPECT, outlines.

    Parameters
    ----------
    ct : CT (HU); the display grid
    spect_bq_per_ml : SPECT (Bq/mL), resampled onto the CT grid (linear)
    outlines : name -> (mask array on the CT grid (z, y, x), colour)
    lesion_centres_mm : (lesion id, LPS centre in mm) of the lesions to show, largest first
    """
    target = _output_path(path, overwrite)
    ct_array = sitk.GetArrayFromImage(ct)
    spect = _on_grid(spect_bq_per_ml, ct, nearest=False) / 1000.0  # kBq/mL
    shown = lesion_centres_mm[:3]
    figure = _new_figure(9.0, 7.2)
    panels = np.atleast_1d(figure.subplots(2, 2)).ravel()[:len(shown) + 1]
    for unused in np.atleast_1d(figure.get_axes())[len(shown) + 1:]:
        unused.remove()
    vmax = float(np.percentile(spect[spect > 0], 99.5)) if (spect > 0).any() else 1.0
    image = None
    for panel, (lesion_id, centre) in zip(panels, [*shown, shown[0]] if shown else [], strict=False):
        index = ct.TransformPhysicalPointToIndex(centre)
        coronal = panel is panels[-1]
        if coronal:
            cut = (slice(None), index[1], slice(None))
            extent, labels = _extent(ct, (0, 2)), ("x, right to left (mm)", "z, inferior to superior (mm)")
        else:
            cut = (index[2], slice(None), slice(None))
            extent, labels = _extent(ct, (0, 1)), ("x, right to left (mm)", "y, anterior to posterior (mm)")
        origin = "lower" if coronal else "upper"
        if coronal:
            extent = [extent[0], extent[1], extent[3], extent[2]]
        panel.imshow(ct_array[cut], cmap="gray", vmin=-160, vmax=240, extent=extent, origin=origin)
        image = panel.imshow(np.ma.masked_less_equal(spect[cut], 0.05 * vmax), cmap="inferno", alpha=0.55,
                             vmin=0, vmax=vmax, extent=extent, origin=origin)
        for mask, colour in outlines.values():
            section = mask[cut].astype(float)
            if section.any():
                xs = np.linspace(extent[0], extent[1], section.shape[1])
                # row 0 is drawn at the top (extent[3]) with origin "upper", at the bottom (extent[2]) with "lower"
                ys = (np.linspace(extent[3], extent[2], section.shape[0]) if origin == "upper"
                      else np.linspace(extent[2], extent[3], section.shape[0]))
                panel.contour(xs, ys, section, levels=[0.5], colors=[colour], linewidths=0.8)
        panel.set_title(f"{'coronal' if coronal else 'axial'} through {lesion_id}", fontsize=9)
        panel.set_xlabel(labels[0], fontsize=8)
        panel.set_ylabel(labels[1], fontsize=8)
        panel.tick_params(labelsize=7)
    if image is not None:
        figure.colorbar(image, ax=list(panels), shrink=0.8, label="SPECT (kBq/mL)")
    return save_checked(figure, target)


def tac_figure(tac: pd.DataFrame, cycle: int, path, overwrite: bool = False) -> Path:
    """Time-activity curves of one cycle: measured activity (points) and the fitted curve, per region."""
    target = _output_path(path, overwrite)
    part = tac[tac["cycle"] == cycle]
    figure = _new_figure(7.0, 4.0)
    axes = figure.subplots()
    for k, (region, rows) in enumerate(part.groupby("region", sort=False)):
        colour = f"C{k % 10}"
        measured = rows[rows["series"] == "measured"]
        fit = rows[rows["series"] == "fit"]
        axes.plot(fit["time_h"], fit["activity_mbq"], color=colour, linewidth=1)
        axes.plot(measured["time_h"], measured["activity_mbq"], "o", color=colour, markersize=3, label=region)
    axes.set_yscale("log")
    axes.set_xlabel("time after administration (h)")
    axes.set_ylabel("activity in the region (MBq)")
    axes.legend(fontsize=7, ncols=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save_checked(figure, target)


def dvh_figure(dose_gy: sitk.Image, regions: dict[str, np.ndarray], path, overwrite: bool = False) -> Path:
    """Cumulative dose-volume histograms of regions given as masks on the dose grid.

    A voxel counts for the first region (in the order given) that contains it: give lesions before
    the lobes that hold them.
    """
    from ..dosimetry import cumulative_dose_volume_histograms

    target = _output_path(path, overwrite)
    dose = sitk.GetArrayFromImage(dose_gy)
    labels = np.zeros(dose.shape, dtype=np.int32)
    names = {}
    for value, (name, mask) in enumerate(regions.items(), start=1):
        labels[mask & (labels == 0)] = value
        names[value] = name
    figure = _new_figure(5.0, 3.6)
    axes = figure.subplots()
    if labels.any():
        dvh = cumulative_dose_volume_histograms(dose, labels)
        for row, value in enumerate(dvh.labels):
            name = names[int(value)]
            colour = ROUTE_COLOURS.get(name.split()[-1]) or ("#555555" if "kidney" in name else f"C{row + 2}")
            style = ":" if "left kidney" in name else "-"
            axes.plot(dvh.dose_gy, 100.0 * dvh.volume_fraction[row], style, label=name, color=colour)
    axes.set_xlabel("absorbed dose, cycle 1 (Gy)")
    axes.set_ylabel("volume receiving at least this dose (%)")
    axes.legend(fontsize=6)
    return save_checked(figure, target)


def recist_timeline_figure(time_points: pd.DataFrame, path, overwrite: bool = False) -> Path:
    """Sum of target diameters over time with the RECIST 1.1 overall response of each visit."""
    target = _output_path(path, overwrite)
    figure = _new_figure(5.0, 3.0)
    axes = figure.subplots()
    weeks = np.concatenate([[0.0], time_points["days_from_baseline"].to_numpy(float) / 7.0])
    base = float(time_points["baseline_sum_mm"].iloc[0])
    sums = np.concatenate([[base], time_points["sum_of_diameters_mm"].to_numpy(float)])
    axes.plot(weeks, sums, marker="o", color="black")
    for w, s, label in zip(weeks[1:], sums[1:], time_points["overall_response"], strict=True):
        axes.annotate(str(label), (w, s), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    axes.axhline(0.7 * base, color=ROUTE_COLOURS["IV"], linestyle="--", linewidth=0.8)
    axes.set_xlabel("time since baseline CT (weeks)")
    axes.set_ylabel("sum of target diameters (mm)")
    axes.set_ylim(0, max(sums.max(), base) * 1.2)
    return save_checked(figure, target)


