"""Benchmark: statistics of 102 regions (2 lobes + 100 lesions) of a 256^3 float32 image.

Compares luprrt.regionstats.region_statistics (numba run kernel; numpy bincount path)
with SimpleITK's LabelStatisticsImageFilter (default: with histograms, and without),
a per-label boolean-mask loop, and ``image.sum()`` as the memory-bandwidth floor.
Ratios are against region_statistics measured in the same run.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import SimpleITK as sitk

from luprrt.regionstats import region_statistics

log = logging.getLogger(__name__)

SIZE = 256
N_LESIONS = 100


def make_case(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A liver ellipsoid split into two lobes (labels 1, 2) with 100 spherical lesions (3..102)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[:SIZE, :SIZE, :SIZE]
    centre = SIZE / 2
    liver = ((x - centre) / 100) ** 2 + ((y - centre) / 70) ** 2 + ((z - centre) / 80) ** 2 <= 1
    labels = np.where(liver, np.where(x < centre + 10, 1, 2), 0).astype(np.int32)
    inside = np.argwhere(liver[::8, ::8, ::8]) * 8
    for k, (cz, cy, cx) in enumerate(inside[rng.choice(len(inside), N_LESIONS, replace=False)]):
        r = rng.uniform(3, 8)
        box = tuple(slice(max(int(c - r), 0), int(c + r) + 1) for c in (cz, cy, cx))
        zz, yy, xx = np.ogrid[box]
        ball = (zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        labels[box][ball] = 3 + k
    image = rng.gamma(2.0, 5000.0, size=labels.shape).astype(np.float32)
    return image, labels


def best_time(function, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def mask_loop(image: np.ndarray, labels: np.ndarray, values: np.ndarray) -> list[tuple]:
    out = []
    for value in values:
        selected = image[labels == value].astype(np.float64)
        out.append((selected.size, selected.sum(), selected.mean(), selected.std(), selected.min(),
                    selected.max()))
    return out


def main() -> None:
    image, labels = make_case()
    present = np.arange(1, 3 + N_LESIONS)
    sitk_image = sitk.GetImageFromArray(image)
    sitk_labels = sitk.GetImageFromArray(labels)
    ours = region_statistics(image, labels, voxel_volume_ml=0.064)  # warm-up (numba compile/cache load)
    timings: dict[str, float] = {}
    timings["image.sum() (bandwidth floor)"] = best_time(lambda: image.sum(), 5)
    timings["luprrt region_statistics (numba)"] = best_time(
        lambda: region_statistics(image, labels, voxel_volume_ml=0.064), 5)
    timings["luprrt region_statistics (numpy)"] = best_time(
        lambda: region_statistics(image, labels, voxel_volume_ml=0.064, engine="numpy"), 2)
    with_histograms = sitk.LabelStatisticsImageFilter()
    timings["SimpleITK LabelStatistics (default)"] = best_time(
        lambda: with_histograms.Execute(sitk_image, sitk_labels), 2)
    without_histograms = sitk.LabelStatisticsImageFilter()
    without_histograms.SetUseHistograms(False)
    timings["SimpleITK LabelStatistics (no histograms)"] = best_time(
        lambda: without_histograms.Execute(sitk_image, sitk_labels), 3)
    timings["per-label boolean mask loop"] = best_time(lambda: mask_loop(image, labels, present), 1)

    # The answers agree (SimpleITK's sigma uses n - 1; compare means and sums).
    sitk_mean = np.array([without_histograms.GetMean(int(v)) for v in present])
    worst = np.max(np.abs(ours.mean - sitk_mean) / np.abs(sitk_mean))
    reference = timings["luprrt region_statistics (numba)"]
    floor = timings["image.sum() (bandwidth floor)"]
    log.info("%d^3 float32 image, %d regions (%d threads available to SimpleITK)", SIZE, present.size,
             sitk.ProcessObject.GetGlobalDefaultNumberOfThreads())
    log.info("%-44s %10s %18s %16s", "method", "time ms", "x region_stats", "x image.sum()")
    for name, seconds in timings.items():
        log.info("%-44s %10.1f %18.2f %16.2f", name, 1e3 * seconds, seconds / reference, seconds / floor)
    log.info("largest relative difference of region means vs SimpleITK: %.2e", worst)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
