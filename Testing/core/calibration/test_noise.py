"""Noise of a region mean from one image: against independent realisations of known noise.

Truths: white noise (SD of a mean of N voxels = sigma / sqrt N), and Gaussian-smoothed white noise,
whose region means are simulated 300 times to give their SD directly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from luprrt.calibration import estimate_noise, noise_exponent


def test_white_noise_has_no_correlation():
    rng = np.random.default_rng(1)
    image = rng.normal(100.0, 10.0, (40, 50, 60))
    mask = np.zeros(image.shape, dtype=bool)
    mask[5:35, 5:45, 5:55] = True
    noise = estimate_noise(image, mask, (4.0, 4.0, 4.0))
    assert noise.voxel_sd == pytest.approx(10.0, rel=0.02)
    assert noise.correlation_volume_voxels == pytest.approx(1.0, abs=0.05)
    region = np.zeros((10, 10, 10))
    region[2:8, 2:8, 2:8] = 1.0
    assert noise.sd_of_mean(region, 100.0) == pytest.approx(10.0 / math.sqrt(216), rel=0.04)


def test_correlated_noise_gives_the_sd_of_region_means():
    """Smoothed white noise (sigma 1.2 voxels): predicted SD of a sphere's mean vs 300 realisations."""
    rng = np.random.default_rng(2)
    shape = (48, 48, 48)

    def realisation():
        return 100.0 + ndimage.gaussian_filter(rng.normal(0.0, 30.0, shape), 1.2, mode="wrap")

    mask = np.zeros(shape, dtype=bool)
    mask[4:44, 4:44, 4:44] = True
    noise = estimate_noise(realisation(), mask, (4.0, 4.0, 4.0))
    z, y, x = np.indices(shape)
    sphere = (((z - 24) ** 2 + (y - 24) ** 2 + (x - 24) ** 2) <= 4.5**2).astype(float)
    means = [float(np.sum(sphere * realisation()) / sphere.sum()) for _ in range(300)]
    # SD of an SD estimate from 300 samples: ~4 %; the noise model itself is a fit: 15 % tolerance.
    assert noise.sd_of_mean(sphere, 100.0) == pytest.approx(np.std(means), rel=0.15)
    white = noise.voxel_sd / math.sqrt(sphere.sum())
    assert np.std(means) > 2.0 * white  # correlation matters: the naive sigma / sqrt(N) is far off


def test_noise_level_dependence():
    assert noise_exponent([10.0, 40.0], [1.0, 4.0]) == pytest.approx(1.0)
    assert noise_exponent([10.0, 40.0], [1.0, 2.0]) == pytest.approx(0.5)
    assert noise_exponent([10.0, 40.0], [1.0, 100.0]) == 1.5  # clipped
    with pytest.raises(ValueError, match="at least 50 voxels"):
        estimate_noise(np.ones((5, 5, 5)), np.ones((5, 5, 5), dtype=bool)[:, :, :1].repeat(1, 2), (1, 1, 1))
