"""Activity-image checks: a little negative noise is kept and reported, more than noise gives is refused."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.io.checks import NEGATIVE_SHARE_LIMIT, check_activity_image


def _image(values):
    return sitk.GetImageFromArray(np.asarray(values, dtype=np.float32).reshape(1, 2, -1))


def test_negative_noise_is_kept_and_reported_up_to_the_limit(caplog):
    values = [400.0, 300.0, 200.0, 100.0, -3.0, -2.0]  # negatives 5 of 1000 Bq/mL: 0.5 %
    image = _image(values)
    with caplog.at_level(logging.WARNING, logger="luprrt.io.checks"):
        notes = check_activity_image(image, "spect.dcm")
    assert notes == ["2 SPECT voxels are negative (down to -3); their sum is 0.5 % of the positive total; they are "
                     "kept as they are"]
    assert "spect.dcm: 2 SPECT voxels are negative" in caplog.text
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image).ravel(), values)  # not modified
    assert check_activity_image(_image([1.0, 2.0, 0.0, 3.0]), "clean.dcm") == []
    beyond = 1000.0 * NEGATIVE_SHARE_LIMIT * 1.2  # 6 % of the positive total
    with pytest.raises(ValueError) as error:
        check_activity_image(_image([400.0, 300.0, 200.0, 100.0, -beyond / 2, -beyond / 2]), "offset.dcm")
    assert str(error.value) == ("offset.dcm: 2 SPECT voxels are negative (down to -30); their sum is 6 % of the "
                                "positive total, more than reconstruction noise gives (5 %); check the image's "
                                "rescale intercept and units")
