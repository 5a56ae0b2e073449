"""Region dose statistics and cumulative DVHs, vectorised over regions."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.dosimetry import cumulative_dose_volume_histograms, region_dose_statistics


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(9)
    dose = rng.gamma(2.0, 3.0, (20, 22, 24))
    labels = rng.choice([0, 1, 2, 7], size=dose.shape, p=[0.4, 0.3, 0.2, 0.1]).astype(np.uint8)
    return dose, labels


def test_statistics_equal_numpy_per_region(case):
    dose, labels = case
    image = sitk.GetImageFromArray(dose)
    image.SetSpacing((2.0, 2.5, 4.0))
    label_image = sitk.GetImageFromArray(labels)
    label_image.CopyInformation(image)
    stats = region_dose_statistics(image, label_image)
    np.testing.assert_array_equal(stats.labels, [1, 2, 7])
    for i, label in enumerate(stats.labels):
        values = dose[labels == label]
        assert stats.voxel_count[i] == values.size
        assert stats.volume_ml[i] == pytest.approx(values.size * 0.02)
        assert stats.mean_gy[i] == pytest.approx(values.mean())
        assert stats.d2_gy[i] == pytest.approx(np.percentile(values, 98))
        assert stats.d50_gy[i] == pytest.approx(np.median(values))
        assert stats.d98_gy[i] == pytest.approx(np.percentile(values, 2))
        assert (stats.min_gy[i], stats.max_gy[i]) == pytest.approx((values.min(), values.max()))
    assert stats.rows()[2]["label"] == 7 and set(stats.rows()[0]) >= {"mean_gy", "d2_gy", "volume_ml"}


def test_cumulative_dvh_of_known_dose_ramp():
    dose = np.arange(100, dtype=float).reshape(1, 10, 10)  # 0..99 Gy, one voxel each
    labels = np.ones((1, 10, 10), dtype=np.int32)
    labels[0, 5:] = 2  # region 2 holds doses 50..99
    dvh = cumulative_dose_volume_histograms(dose, labels, bin_width_gy=10.0)
    np.testing.assert_allclose(dvh.dose_gy, np.arange(10) * 10.0)
    np.testing.assert_allclose(dvh.volume_fraction[0], [1.0, 0.8, 0.6, 0.4, 0.2, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(dvh.volume_fraction[1], [1, 1, 1, 1, 1, 1.0, 0.8, 0.6, 0.4, 0.2])


def test_dvh_consistent_with_statistics(case):
    dose, labels = case
    dvh = cumulative_dose_volume_histograms(dose, labels, n_bins=400)
    stats = region_dose_statistics(dose, labels)
    for i in range(3):
        # D50: half of the volume receives at least it.
        j = np.searchsorted(dvh.dose_gy, stats.d50_gy[i])
        assert dvh.volume_fraction[i, j - 1] >= 0.5 >= dvh.volume_fraction[i, j + 1]
    assert np.all(np.diff(dvh.volume_fraction, axis=1) <= 0)


def test_dvh_errors(case):
    dose, labels = case
    with pytest.raises(ValueError, match="label array shape"):
        region_dose_statistics(dose, labels[:-1])
    with pytest.raises(ValueError, match="no labelled voxel"):
        region_dose_statistics(dose, np.zeros_like(labels))
    with pytest.raises(ValueError, match="labels must be integers"):
        region_dose_statistics(dose, labels.astype(float))
    with pytest.raises(ValueError, match="bin width must be positive"):
        cumulative_dose_volume_histograms(dose, labels, bin_width_gy=-1.0)


def test_a_label_grid_other_than_the_dose_grid_and_negative_labels_are_refused():
    dose = sitk.Image(4, 3, 2, sitk.sitkFloat32)
    dose.SetSpacing((2.0, 2.0, 3.0))
    finer = sitk.Image(4, 3, 2, sitk.sitkUInt8)
    finer.SetSpacing((1.0, 2.0, 3.0))
    with pytest.raises(ValueError) as error:
        region_dose_statistics(dose, finer)
    assert str(error.value) == ("label image grid (size (4, 3, 2), spacing (1.0, 2.0, 3.0)) differs from the dose "
                                "grid (size (4, 3, 2), spacing (2.0, 2.0, 3.0))")
    labels = np.zeros((2, 3, 4), dtype=np.int16)
    labels[0, 0, 0] = -1
    with pytest.raises(ValueError) as error:
        cumulative_dose_volume_histograms(np.ones((2, 3, 4)), labels)
    assert str(error.value) == "labels must be non-negative, got minimum -1"
