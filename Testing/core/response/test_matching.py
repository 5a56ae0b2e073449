"""Lesion tracking between time points on synthetic lesion sets with known correspondence."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.response.matching import apply_tracking_ids, match_lesions
from luprrt.segments import Segmentation, SegmentTags

SPACING_MM = (2.0, 2.0, 2.5)
SHAPE_ZYX = (40, 56, 56)


def grid(origin=(-56.0, -56.0, -50.0)) -> sitk.Image:
    image = sitk.Image(SHAPE_ZYX[::-1], sitk.sitkUInt8)
    image.SetSpacing(SPACING_MM)
    image.SetOrigin(origin)
    return image


def ball(reference: sitk.Image, centre_lps, radii_mm) -> np.ndarray:
    """Boolean (z, y, x) ellipsoid with LPS centre and semi-axes in mm."""
    k, j, i = np.ogrid[:SHAPE_ZYX[0], :SHAPE_ZYX[1], :SHAPE_ZYX[2]]
    (ox, oy, oz), (sx, sy, sz) = reference.GetOrigin(), reference.GetSpacing()
    (cx, cy, cz), (rx, ry, rz) = centre_lps, radii_mm
    return (((ox + sx * i - cx) / rx) ** 2 + ((oy + sy * j - cy) / ry) ** 2
            + ((oz + sz * k - cz) / rz) ** 2 <= 1.0)


def lesion_set(lesions: dict[str, tuple], reference: sitk.Image | None = None,
               tagged: bool = True) -> Segmentation:
    """Segmentation with one lesion per entry ``segment_id: (centre_lps, radius_mm or semi-axes)``."""
    reference = reference or grid()
    segmentation = Segmentation.empty_like(reference)
    for segment_id, (centre, radius) in lesions.items():
        radii = (radius,) * 3 if np.isscalar(radius) else radius
        tags = SegmentTags("lesion", lesion_id=segment_id if tagged else None)
        segmentation.add_segment(ball(reference, centre, radii), tags, segment_id=segment_id)
    return segmentation


BASELINE = {
    "L1": ((-25.0, -20.0, -10.0), 8.0),
    "L2": ((20.0, -15.0, 5.0), 6.0),
    "L3": ((0.0, 25.0, 15.0), 10.0),
    "L4": ((28.0, 28.0, -20.0), 5.0),
}


def test_shifted_follow_up_keeps_every_id_through_the_transform():
    # A whole-voxel shift larger than every lesion: no overlap without the transform, identical
    # rasterisation with it (so Dice = 1 exactly).
    shift = np.array([18.0, -14.0, 12.5])
    moved = {f"fu{k}": (tuple(np.add(c, shift)), r) for k, (c, r) in enumerate(BASELINE.values())}
    followup = lesion_set(moved, tagged=False)
    translation = sitk.TranslationTransform(3, shift.tolist())
    result = match_lesions(lesion_set(BASELINE), followup, translation)
    assert result.mapping == {"fu0": "L1", "fu1": "L2", "fu2": "L3", "fu3": "L4"}
    np.testing.assert_allclose([pair.dice for pair in result.pairs], 1.0)
    np.testing.assert_allclose([pair.centroid_distance_mm for pair in result.pairs], 0.0, atol=1e-9)
    assert [e.kind for e in result.events] == ["matched"] * 4
    unregistered = match_lesions(lesion_set(BASELINE), followup, max_distance_mm=5.0)
    assert unregistered.dice.max() == 0.0
    assert {e.kind for e in unregistered.events} == {"disappeared", "new"}


def test_deformed_follow_up_with_shrinking_and_growing_lesions_keeps_ids():
    rng = np.random.default_rng(4)
    followup = {}
    for k, (centre, radius) in enumerate(BASELINE.values()):
        moved = tuple(np.asarray(centre) + rng.uniform(-5.0, 5.0, 3))
        followup[f"seg{3 - k}"] = (moved, (radius * 0.7, radius * 1.2, radius))  # anisotropic change
    result = match_lesions(lesion_set(BASELINE), lesion_set(followup, tagged=False))
    assert result.mapping == {"seg3": "L1", "seg2": "L2", "seg1": "L3", "seg0": "L4"}
    assert not result.of_kind("new") and not result.of_kind("disappeared")


def test_new_lesion_gets_the_next_free_id_and_a_lost_one_disappears():
    followup = {"a": BASELINE["L1"], "b": BASELINE["L2"], "c": BASELINE["L3"],
                "fresh": ((-30.0, 30.0, -30.0), 4.0)}
    result = match_lesions(lesion_set(BASELINE), lesion_set(followup, tagged=False), taken_ids=["L6"])
    assert result.mapping == {"a": "L1", "b": "L2", "c": "L3", "fresh": "L7"}
    new, = result.of_kind("new")
    assert new.followup_segment_ids == ("fresh",) and new.tracking_ids == ("L7",)
    gone, = result.of_kind("disappeared")
    assert gone.reference_lesion_ids == ("L4",)


def test_global_assignment_beats_greedy_nearest_neighbour():
    # Greedy would give B its nearest follow-up lesion P (5 mm) and leave A with Q (20 mm);
    # the optimal assignment A-P (7 mm) + B-Q (8 mm) is cheaper.
    reference = lesion_set({"A": ((0.0, 0.0, 0.0), 2.0), "B": ((12.0, 0.0, 0.0), 2.0)})
    followup = lesion_set({"P": ((7.0, 0.0, 0.0), 2.0), "Q": ((20.0, 0.0, 0.0), 2.0)}, tagged=False)
    result = match_lesions(reference, followup, max_distance_mm=25.0)
    assert result.mapping == {"P": "A", "Q": "B"}
    np.testing.assert_allclose([p.centroid_distance_mm for p in result.pairs], [7.0, 8.0], atol=1e-9)


def test_split_lesion_is_reported_with_its_fragments():
    reference = lesion_set({"L1": ((0.0, 0.0, 0.0), (24.0, 8.0, 8.0)), "L2": ((0.0, 35.0, 0.0), 6.0)})
    followup = lesion_set({"east": ((-14.0, 0.0, 0.0), (9.0, 7.0, 7.0)),
                           "west": ((14.0, 0.0, 0.0), (8.0, 6.0, 6.0)),
                           "other": ((0.0, 35.0, 0.0), 6.0)}, tagged=False)
    result = match_lesions(reference, followup)
    split, = result.of_kind("split")
    assert split.reference_lesion_ids == ("L1",)
    assert set(split.followup_segment_ids) == {"east", "west"}
    assert result.mapping["east"] == "L1"         # the larger fragment keeps the id
    assert result.mapping["west"] == "L3"         # the other fragment gets the next free id
    assert result.mapping["other"] == "L2"
    assert not result.of_kind("new") and not result.of_kind("disappeared")


def test_merged_lesions_are_reported_and_keep_one_id():
    reference = lesion_set({"L1": ((-9.0, 0.0, 0.0), 6.0), "L2": ((9.0, 0.0, 0.0), 5.0),
                            "L3": ((0.0, 35.0, 0.0), 6.0)})
    followup = lesion_set({"blob": ((0.0, 0.0, 0.0), (18.0, 9.0, 9.0)), "x": ((0.0, 35.0, 0.0), 6.0)},
                          tagged=False)
    result = match_lesions(reference, followup)
    merged, = result.of_kind("merged")
    assert set(merged.reference_lesion_ids) == {"L1", "L2"}
    assert merged.followup_segment_ids == ("blob",)
    assert result.mapping == {"blob": merged.reference_lesion_ids[0], "x": "L3"}
    assert not result.of_kind("disappeared") and not result.of_kind("new")


def test_override_is_honoured():
    followup = lesion_set(dict(zip("abcd", BASELINE.values(), strict=True)), tagged=False)
    # The reader swaps a and b (the automatic match would be a-L1, b-L2) and calls c new.
    result = match_lesions(lesion_set(BASELINE), followup, overrides={"a": "L2", "b": "L1", "c": None})
    assert result.mapping == {"a": "L2", "b": "L1", "c": "L5", "d": "L4"}
    assert [e.reference_lesion_ids for e in result.of_kind("disappeared")] == [("L3",)]
    by = {p.followup_segment_id: p.by for p in result.pairs}
    assert by["a"] == "override" and by["d"] == "assignment"
    with pytest.raises(ValueError, match=r"override keys \['zz'\] are not follow-up lesion segments"):
        match_lesions(lesion_set(BASELINE), followup, overrides={"zz": "L1"})
    with pytest.raises(ValueError, match=r"override values \['L9'\] are not reference lesion ids"):
        match_lesions(lesion_set(BASELINE), followup, overrides={"a": "L9"})
    with pytest.raises(ValueError, match=r"same reference lesion \['L1'\]"):
        match_lesions(lesion_set(BASELINE), followup, overrides={"a": "L1", "b": "L1"})


def test_follow_up_on_a_different_grid_is_compared_in_the_reference_grid():
    shifted_grid = grid(origin=(-61.0, -47.0, -55.0))
    followup = lesion_set({"p": BASELINE["L3"], "q": BASELINE["L1"]}, reference=shifted_grid, tagged=False)
    result = match_lesions(lesion_set(BASELINE), followup)
    assert result.mapping == {"p": "L3", "q": "L1"}
    assert min(p.dice for p in result.pairs) > 0.8


def test_apply_tracking_ids_retags_a_copy():
    followup = lesion_set({"x": BASELINE["L2"], "y": ((-30.0, 30.0, -30.0), 4.0)}, tagged=False)
    result = match_lesions(lesion_set(BASELINE), followup)
    tracked = apply_tracking_ids(followup, result)
    assert {s.segment_id: s.tags.lesion_id for s in tracked.segments} == {"x": "L2", "y": "L5"}
    assert tracked.segment("x").name == "lesion L2"
    assert followup.segment("x").tags.lesion_id is None   # input untouched


def test_reference_lesions_need_unique_ids():
    reference = lesion_set({"L1": BASELINE["L1"]})
    reference.add_segment(ball(reference.reference, (20.0, 20.0, 0.0), (4, 4, 4)),
                          SegmentTags("lesion", lesion_id="L1"), segment_id="again")
    with pytest.raises(ValueError, match=r"reference lesion ids are not unique: \['L1'\]"):
        match_lesions(reference, lesion_set({"x": BASELINE["L1"]}, tagged=False))
    untagged = lesion_set({"x": BASELINE["L1"]}, tagged=False)
    with pytest.raises(ValueError, match=r"without a lesion_id tag: \['x'\]"):
        match_lesions(untagged, untagged)
