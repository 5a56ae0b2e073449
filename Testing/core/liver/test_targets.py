"""Trial target lesions per lobe: the largest above the minimum diameter, at most a number per side."""

from __future__ import annotations

import math

import pytest

from luprrt.liver.targets import select_target_lesions

LESIONS = [("a", "left", 45.0), ("b", "left", 31.0), ("c", "left", 30.0), ("d", "left", 62.0), ("e", "left", 33.0),
           ("f", "right", 40.0), ("g", "right", 40.0), ("h", "right", 12.0)]


def test_largest_lesions_above_the_minimum_are_ranked_per_lobe():
    # Left: 62, 45, 33 of the five (30 mm is not above 30 mm); right: the tie keeps the input order.
    assert select_target_lesions(LESIONS) == {"d": 1, "a": 2, "e": 3, "f": 1, "g": 2}
    assert select_target_lesions(LESIONS, max_per_lobe=1, min_diameter_mm=40.0) == {"d": 1}
    assert select_target_lesions(LESIONS, max_per_lobe=10, min_diameter_mm=0.0)["h"] == 3


@pytest.mark.parametrize(("arguments", "message"), [
    ({"max_per_lobe": 0}, "the number of target lesions per lobe must be >= 1, got 0"),
    ({"min_diameter_mm": -1.0}, "the minimum target diameter must be >= 0 mm, got -1.0"),
    ({"min_diameter_mm": math.nan}, "the minimum target diameter must be >= 0 mm, got nan"),
])
def test_bad_selection_rules_are_refused(arguments, message):
    with pytest.raises(ValueError) as error:
        select_target_lesions(LESIONS, **arguments)
    assert str(error.value) == message
