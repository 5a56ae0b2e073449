"""Coverage of the 95 % intervals over >= 20 simulated noise realisations of the OSEM patient.

Needs the simulator's realisation folder (layout in Testing/osem_coverage.py:
``Testing/data/osem/realisations/realisation_<k>/`` with the fixture's patient scan files, k >= 20).
Acceptance (issue 10): 90-99 % for lesion T/N (lesions >= 20 mm) and kidney dose.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from osem_acceptance import FIXTURE_DIR, missing_fixture
from osem_coverage import folder_realisations, run_coverage

from luprrt.calibration import coverage_fraction

log = logging.getLogger(__name__)
REALISATIONS = FIXTURE_DIR / "realisations"
MINIMUM = 20


def _missing() -> str | None:
    reason = missing_fixture()
    if reason:
        return reason
    found = len([p for p in REALISATIONS.glob("realisation_*") if p.is_dir()]) if REALISATIONS.is_dir() else 0
    if found < MINIMUM:
        return (f"{found} noise realisations in {REALISATIONS}; coverage needs >= {MINIMUM} realisation_<k> folders "
                "of the fixture's patient scans with new noise (see Testing/osem_coverage.py)")
    return None


@pytest.mark.skipif(_missing() is not None, reason=_missing() or "")
def test_intervals_cover_the_truth_90_to_99_percent(tmp_path: Path):
    patient, realisations = folder_realisations(FIXTURE_DIR, tmp_path)
    coverage = run_coverage(patient, realisations, true_outlines=False)
    print(coverage.summary())
    log.warning("%s", coverage.summary())
    for quantity in ("lesion T/N >= 20 mm, 24 h", "kidney dose"):
        fraction, _, _ = coverage_fraction(coverage.hits[quantity])
        assert 0.90 <= fraction <= 0.99, (quantity, fraction)
