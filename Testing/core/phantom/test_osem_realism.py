"""The OSEM fixture has the character of clinical OSEM SPECT, which the Gaussian model lacks.

Measured with LuPRRT's own LobeQuant and dosimetry code, without any recovery correction
(Testing/osem_realism.py; ``python -m Testing.osem_realism`` prints the table). The expected
character is what careful users find on OSEM reconstructions with resolution recovery (the
table of the issue that asked for this fixture, and the phantom literature: Hippelainen et al.
EJNMMI Res 2016;6:16 report concentration recovery of 0.18-0.43 for 10-13 mm Lu-177 spheres
and ~0.8-1 for the largest; edge overshoot of resolution-recovered OSEM puts sphere maxima above
the true concentration). Tolerances are wide on purpose: the fixture is one noise realisation of
one patient, and the simulator is physically modelled, not tuned to those numbers.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from osem_realism import (
    fixture_patient,
    gaussian_spects,
    measure,
    osem_spects,
    table,
)

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def results():
    patient = fixture_patient()
    osem = measure(patient, osem_spects(), "OSEM fixture")
    gaussian = measure(patient, gaussian_spects(patient), "Gaussian+Poisson")
    log.warning("uncorrected quantification, OSEM fixture vs Gaussian model:\n%s", table([osem, gaussian]))
    return osem, gaussian


def _by_diameter(result, values):
    return sorted(((result.diameters_mm[k], v) for k, v in values.items()), reverse=True)


def test_lesion_tn_underestimate_grows_as_lesions_shrink(results):
    osem, _ = results
    by_size = _by_diameter(osem, osem.lesion_tn_error)
    errors = {d: e for d, e in by_size}
    # Every lesion loses contrast (partial volume + spill-in to the reference), small ones most.
    assert all(e < 0.0 for e in errors.values())
    large = [e for d, e in by_size if d >= 30.0]
    small = [e for d, e in by_size if d <= 14.0]
    assert max(small) < min(large)
    assert -0.35 < np.mean(large) < -0.02  # issue: -11 % (46 mm), -19 % (32 mm)
    assert np.mean(small) < -0.40  # issue: -47..-82 % (13-9 mm)


def test_max_based_values_overshoot_for_large_lesions_only_with_osem(results):
    osem, gaussian = results
    large = [k for k, d in osem.diameters_mm.items() if d >= 30.0]
    # Edge overshoot (Gibbs) + noise: the max of a large lesion exceeds its true concentration
    # (issue: 1.3-1.9x); the Gaussian model cannot exceed the truth by more than its noise.
    assert min(osem.lesion_max_over_truth[k] for k in large) > 1.05
    assert max(osem.lesion_max_over_truth[k] for k in large) < 2.5
    assert max(gaussian.lesion_max_over_truth[k] for k in large) < min(osem.lesion_max_over_truth[k]
                                                                          for k in large)


def test_ia_iv_ratio_is_biased_upwards_by_partial_volume(results):
    osem, _ = results
    # The IA lobe's lesions are larger (46/32/21/13/9 mm vs 32/21/14/10 mm): better recovery there
    # inflates the pooled-tumour ratio (issue: +18 % at 24 h).
    for hours, error in osem.ia_iv_ratio_error.items():
        assert 0.0 < error < 0.40, hours


def test_kidney_and_large_lesion_doses_are_underestimated(results):
    osem, _ = results
    for name, error in osem.kidney_dose_error.items():
        assert -0.30 < error < -0.02, name  # issue: -14 %
    errors = list(osem.lesion_dose_error.values())
    assert all(e < 0.0 for e in errors)
    assert -0.50 < np.mean(errors) < -0.10  # issue: -29 % for lesions >= 20 mm


def test_spill_in_reaches_only_a_few_millimetres_with_an_undershoot_ring(results):
    osem, gaussian = results
    bands = osem.spill_in
    # Lesion activity spills into the first 5 mm of non-tumour liver (issue: 2x), barely beyond
    # 10 mm, and far away the non-tumour level is right (issue: 1.06x, 0.90x, 1.00x).
    assert bands["0-5 mm"] > 1.3
    assert bands["0-5 mm"] > bands["5-10 mm"] > bands["10-20 mm"]
    assert bands["20-inf mm"] == pytest.approx(1.0, abs=0.06)
    # The Gaussian model spreads lesion activity much farther.
    assert gaussian.spill_in["5-10 mm"] > bands["5-10 mm"]
