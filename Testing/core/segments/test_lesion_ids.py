"""One rule for new lesion tracking ids: never a number used before, in the scheme most ids follow."""

from __future__ import annotations

import itertools

from luprrt.segments import new_lesion_ids, next_lesion_ids


def test_numbers_continue_after_the_largest_of_the_common_prefix():
    assert next_lesion_ids(["L01", "L03", None, "X7"], 2) == ["L04", "L05"]  # "L" is the common scheme
    assert next_lesion_ids(["L2", "L6", "L3"], 1) == ["L7"]  # padding of the largest id kept
    assert next_lesion_ids(["007", "012"], 1) == ["013"]
    assert next_lesion_ids(["L99"], 1) == ["L100"]


def test_ties_between_prefixes_go_to_the_larger_number():
    assert next_lesion_ids(["A1", "B9"], 1) == ["B10"]


def test_without_numbered_ids_the_luprrt_scheme_starts_at_one():
    assert next_lesion_ids([], 2) == ["L01", "L02"]
    assert next_lesion_ids(["liver-a", None], 1) == ["L01"]
    assert next_lesion_ids([], 1, prefix="T", width=3) == ["T001"]


def test_ids_are_fresh_for_ever():
    ids = list(itertools.islice(new_lesion_ids(["L05"]), 200))
    assert len(set(ids)) == 200 and ids[0] == "L06" and ids[-1] == "L205"
