"""ADC: voxel-wise weighted log-linear fit of synthetic DWI, and scanner ADC maps with their units."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.features import adc_map, fit_adc
from luprrt.io import QuantitativeImage

B_VALUES = (0.0, 50.0, 400.0, 800.0)
# Region label -> (ADC mm2/s, S0): liver-metastasis-like, liver-like and cyst-like.
REGIONS = {1: (0.8e-3, 1000.0), 2: (1.3e-3, 700.0), 3: (2.6e-3, 1500.0)}


def region_labels() -> np.ndarray:
    labels = np.zeros((12, 20, 30), dtype=np.uint8)
    labels[1:11, 2:18, 2:10] = 1
    labels[1:11, 2:18, 11:19] = 2
    labels[1:11, 2:18, 20:28] = 3
    return labels


def on_grid(array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.5, 1.5, 5.0))
    image.SetOrigin((-20.0, 10.0, 30.0))
    return image


def synthetic_dwi(noise_sigma: float = 0.0, seed: int = 7) -> tuple[list[sitk.Image], np.ndarray]:
    """DWI images (float64) per b-value; background signal 0. Rician noise when sigma > 0."""
    labels = region_labels()
    adc = np.zeros(labels.shape)
    s0 = np.zeros(labels.shape)
    for label, (value, signal) in REGIONS.items():
        adc[labels == label] = value
        s0[labels == label] = signal
    rng = np.random.default_rng(seed)
    images = []
    for b in B_VALUES:
        signal = s0 * np.exp(-b * adc)
        if noise_sigma:
            real = signal + rng.normal(0.0, noise_sigma, signal.shape)
            imaginary = rng.normal(0.0, noise_sigma, signal.shape)
            signal = np.hypot(real, imaginary)  # magnitude images carry Rician noise
        images.append(on_grid(signal))
    return images, labels


def test_noise_free_dwi_recovers_adc_and_s0():
    images, labels = synthetic_dwi()
    fit = fit_adc(images, B_VALUES)
    adc = sitk.GetArrayFromImage(fit.adc_mm2_per_s)
    s0 = sitk.GetArrayFromImage(fit.s0)
    for label, (value, signal) in REGIONS.items():
        np.testing.assert_allclose(adc[labels == label], value, rtol=1e-9, atol=0)
        np.testing.assert_allclose(s0[labels == label], signal, rtol=1e-9, atol=0)
    # Background (no signal) is masked, not fitted.
    assert np.isnan(adc[labels == 0]).all()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(fit.valid), (labels > 0).astype(np.uint8))
    assert fit.adc_mm2_per_s.GetSpacing() == images[0].GetSpacing()
    assert fit.b_values_s_per_mm2 == B_VALUES


def test_noisy_dwi_gives_region_means_within_two_percent():
    # sigma 10: SNR 100 / 70 / 150 at b = 0, down to ~19 for the cyst at b = 800.
    images, labels = synthetic_dwi(noise_sigma=10.0)
    adc = sitk.GetArrayFromImage(fit_adc(images, B_VALUES).adc_mm2_per_s)
    for label, (value, _) in REGIONS.items():
        values = adc[labels == label]
        assert np.isfinite(values).all()
        assert values.mean() == pytest.approx(value, rel=0.02)
        # The noise is real: single voxels scatter by 1.5-3.5 %, the mean of 1280 voxels by < 0.1 %.
        assert values.std() > 0.01 * value


def test_two_b_values_are_enough_and_match_the_two_point_formula():
    images, labels = synthetic_dwi()
    fit = fit_adc([images[0], images[3]], [0.0, 800.0])
    s_0, s_800 = (sitk.GetArrayFromImage(images[k]) for k in (0, 3))
    inside = labels > 0
    np.testing.assert_allclose(sitk.GetArrayFromImage(fit.adc_mm2_per_s)[inside],
                               np.log(s_0[inside] / s_800[inside]) / 800.0, rtol=1e-12)


def test_low_signal_and_non_positive_voxels_are_masked():
    images, labels = synthetic_dwi()
    arrays = [sitk.GetArrayFromImage(image) for image in images]
    arrays[0][labels == 2] = 10.0  # below 5 % of the 99th percentile (1500) of the b = 0 image
    arrays[3][5, 10, 25] = 0.0  # a dropout at b = 800 inside region 3
    fit = fit_adc([on_grid(a) for a in arrays], B_VALUES)
    adc = sitk.GetArrayFromImage(fit.adc_mm2_per_s)
    assert np.isnan(adc[labels == 2]).all()
    assert np.isnan(adc[5, 10, 25])
    assert np.isfinite(adc[labels == 1]).all()
    # An explicit threshold below the lowered signal keeps region 2 in the fit.
    kept = sitk.GetArrayFromImage(fit_adc([on_grid(a) for a in arrays], B_VALUES, min_signal=5.0).adc_mm2_per_s)
    assert np.isfinite(kept[labels == 2]).all()


@pytest.mark.parametrize(("b_values", "message"), [
    ([0.0, 400.0, 400.0, 800.0], r"strictly increasing, got \[0.0, 400.0, 400.0, 800.0\]"),
    ([800.0, 400.0, 50.0, 0.0], r"strictly increasing, got \[800.0, 400.0, 50.0, 0.0\]"),
    ([0.0], r"at least 2 b-values .* got \[0.0\]"),
    ([-50.0, 0.0, 400.0, 800.0], r"finite and >= 0 s/mm2, got \[-50.0"),
    ([0.0, 400.0, 800.0], r"4 DWI images for 3 b-values \[0.0, 400.0, 800.0\]"),
])
def test_bad_b_values_are_named(b_values, message):
    images, _ = synthetic_dwi()
    with pytest.raises(ValueError, match=message):
        fit_adc(images, b_values)


def test_dwi_on_different_grids_is_refused():
    images, _ = synthetic_dwi()
    images[2].SetOrigin((0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match=r"DWI image 2 \(b = 400 s/mm2\) is not on the grid"):
        fit_adc(images, B_VALUES)


def test_adc_map_units():
    labels = region_labels()
    truth = np.where(labels > 0, 1.1e-3, 0.0)
    scaled = on_grid(truth * 1e6)  # stored in 1e-6 mm2/s, as many scanners do
    for unit in ("1e-6 mm2/s", "um2/s", "µm²/s", "μm2/s"):
        np.testing.assert_allclose(sitk.GetArrayFromImage(adc_map(scaled, unit)), truth, rtol=1e-12)
    np.testing.assert_allclose(sitk.GetArrayFromImage(adc_map(on_grid(truth * 1e3), "1e-3 mm2/s")), truth,
                               rtol=1e-12)
    record = QuantitativeImage(image=on_grid(truth.astype(np.float32)), units="mm2/s", source="adc.nrrd")
    np.testing.assert_allclose(sitk.GetArrayFromImage(adc_map(record)), truth, rtol=1e-6)
    with pytest.raises(ValueError, match=r"median ADC 1100 mm2/s with unit='mm2/s'.*1e-6 mm2/s"):
        adc_map(scaled, "mm2/s")
    with pytest.raises(ValueError, match="the unit of the ADC map is needed"):
        adc_map(scaled)
    with pytest.raises(ValueError, match="unknown ADC unit 'cm2/s'"):
        adc_map(scaled, "cm2/s")
    with pytest.raises(ValueError, match="unit='1e-6 mm2/s' disagrees with the image's 'mm2/s'"):
        adc_map(record, "1e-6 mm2/s")
