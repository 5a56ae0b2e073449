"""Issue 10's acceptance, on the OSEM fixture with the site calibration made from its own phantoms.

Limits (the issue's): IA/IV lobe T/N ratio within 5 % of the truth at every time point; lesion T/N
and lesion dose within 10 % for lesions >= 20 mm; kidney dose within 5 %; non-tumour liver mean
within 5 %. The numbers are printed (``python -m Testing.osem_acceptance`` prints the same table).
Interval coverage over noise realisations: Testing/core/calibration/test_osem_coverage.py.
"""

from __future__ import annotations

import logging

import pytest
from osem_acceptance import (
    FIXTURE_DIR,
    fixture,
    fixture_patient,
    measure,
    missing_fixture,
    patient_spects,
    site_calibration,
    table,
)

log = logging.getLogger(__name__)
pytestmark = pytest.mark.skipif(missing_fixture() is not None, reason=missing_fixture() or "")


@pytest.fixture(scope="module")
def acceptance(tmp_path_factory):
    calibration = site_calibration(FIXTURE_DIR, tmp_path_factory.mktemp("site_calibration"))
    result = measure(fixture_patient(), patient_spects(FIXTURE_DIR), calibration, "OSEM fixture")
    text = table(result)
    print(text)
    log.warning("recovery-corrected quantification on the OSEM fixture:\n%s", text)
    return calibration, result


def test_site_calibration_of_the_fixture(acceptance):
    calibration, _ = acceptance
    # The cylinder gives the factor the fixture's builder derived the same way (total counts / activity / time).
    assert calibration.cps_per_mbq == pytest.approx(fixture()["calibration"]["calibration_factor_cps_per_mbq"],
                                                    rel=0.02)
    assert [c.sphere_to_background for c in calibration.contrast_curves] == [4.0, 10.0]
    assert 4.0 < calibration.effective_fwhm_mm < 20.0
    assert calibration.max_not_recommended


def test_ia_iv_ratio_within_5_percent_at_every_time_point(acceptance):
    _, result = acceptance
    assert len(result.ia_iv_ratio_error) == len(fixture()["patient"]["scans"])
    assert max(abs(e) for e in result.ia_iv_ratio_error.values()) <= 0.05


def test_lesions_of_20_mm_and_more_within_10_percent(acceptance):
    _, result = acceptance
    assert result.lesion_tn_error and result.lesion_dose_error
    assert max(abs(e) for e in result.lesion_tn_error.values()) <= 0.10
    assert max(abs(e) for e in result.lesion_dose_error.values()) <= 0.10


def test_kidney_dose_within_5_percent(acceptance):
    _, result = acceptance
    assert len(result.kidney_dose_error) == 2
    assert max(abs(e) for e in result.kidney_dose_error.values()) <= 0.05


def test_nontumour_liver_within_5_percent(acceptance):
    _, result = acceptance
    assert max(abs(e) for e in result.nontumour_error.values()) <= 0.05
