"""Lesion tracking between time points: which follow-up lesion is which baseline lesion.

Follow-up lesions are mapped into the reference (earlier) grid with the registration
transform, then compared with the reference lesions by overlap (Dice) and centroid distance.
A global one-to-one assignment (Hungarian method, :func:`scipy.optimize.linear_sum_assignment`;
Kuhn, Naval Res Logist Q 1955;2:83-97) minimises ``(1 - Dice) + distance / max_distance_mm``
over the feasible pairs (any overlap, or centroids within ``max_distance_mm``). Left-over
lesions are then explained as

* **split**: an unmatched follow-up lesion lying mostly (``min_part_fraction``) inside a
  matched reference lesion (one -> several);
* **merged**: an unmatched reference lesion lying mostly inside a matched follow-up lesion
  (several -> one);
* **disappeared** (unmatched reference) or **new** (unmatched follow-up).

Matched lesions keep the reference tracking id; new lesions and split fragments get the next
free id. RECIST 1.1 (Eisenhauer et al., Eur J Cancer 2009;45:228-247, Appendix I) sums the
diameters of fragments of a split target lesion and records a merged lesion once (the others
as 0 mm); the events here give what that bookkeeping needs.

Transform convention: ``transform`` maps reference physical points (LPS mm) to follow-up
physical points, as returned by ``luprrt.registration.register_rigid(fixed=reference CT,
moving=follow-up CT)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from ..segments import Segment, Segmentation, new_lesion_ids

EVENT_KINDS = ("matched", "disappeared", "new", "split", "merged")
# Cost of an infeasible pair, far above any feasible cost (1 - Dice <= 1, scaled distances are small),
# so the assignment first maximises the number of feasible pairs.
_INFEASIBLE = 1e6


@dataclass(frozen=True)
class LesionEvent:
    """What happened to lesions between the two time points.

    ``reference_lesion_ids``: tracking ids at the reference time point;
    ``followup_segment_ids``: follow-up segments involved; ``tracking_ids``: the ids given
    to those follow-up segments (same order).
    """

    kind: str
    reference_lesion_ids: tuple[str, ...]
    followup_segment_ids: tuple[str, ...]
    tracking_ids: tuple[str, ...]


@dataclass(frozen=True)
class LesionPair:
    """One matched pair with the evidence: Dice in the reference grid and centroid distance (mm)."""

    reference_lesion_id: str
    followup_segment_id: str
    dice: float
    centroid_distance_mm: float
    by: str  # "assignment" or "override"


@dataclass
class MatchResult:
    """Lesion correspondence between a reference and a follow-up segmentation.

    ``mapping`` gives every follow-up lesion segment its tracking id. ``dice`` and
    ``centroid_distance_mm`` are (reference x follow-up) matrices in the order of
    ``reference_lesion_ids`` and ``followup_segment_ids``.
    """

    mapping: dict[str, str]
    pairs: list[LesionPair]
    events: list[LesionEvent]
    reference_lesion_ids: tuple[str, ...]
    followup_segment_ids: tuple[str, ...]
    dice: np.ndarray = field(repr=False)
    centroid_distance_mm: np.ndarray = field(repr=False)

    def of_kind(self, kind: str) -> list[LesionEvent]:
        """Events of one kind (see :data:`EVENT_KINDS`)."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}; expected one of {EVENT_KINDS}")
        return [event for event in self.events if event.kind == kind]


def match_lesions(reference: Segmentation, followup: Segmentation, transform: sitk.Transform | None = None, *,
                  max_distance_mm: float = 20.0, min_part_fraction: float = 0.5,
                  overrides: Mapping[str, str | None] | None = None,
                  taken_ids: Iterable[str] = ()) -> MatchResult:
    """Match the lesion segments of ``followup`` to those of ``reference``.

    Parameters
    ----------
    reference : segmentation whose lesion segments (role ``"lesion"``) carry tracking ids
    followup : segmentation of the later time point; its lesions are named by segment id
    transform : maps reference LPS points to follow-up LPS points (None = identity)
    max_distance_mm : largest centroid distance of a pair without overlap, mm
    min_part_fraction : share of a fragment (split) or of a swallowed lesion (merge) that
        must lie inside its partner, 0-1
    overrides : ``{followup_segment_id: reference_lesion_id}`` imposed by the reader; a value
        of None forces the follow-up lesion to be new
    taken_ids : tracking ids already used elsewhere (e.g. at other time points), never reused

    Returns
    -------
    MatchResult
    """
    if max_distance_mm <= 0:
        raise ValueError(f"max_distance_mm must be > 0; got {max_distance_mm}")
    if not 0.0 < min_part_fraction <= 1.0:
        raise ValueError(f"min_part_fraction must be in (0, 1]; got {min_part_fraction}")
    ref_lesions = reference.find(role="lesion")
    fu_lesions = followup.find(role="lesion")
    ref_ids = tuple(_tracking_ids(ref_lesions))
    fu_ids = tuple(seg.segment_id for seg in fu_lesions)
    overrides = _checked_overrides(overrides or {}, ref_ids, fu_ids)
    transform = transform if transform is not None else sitk.Transform(3, sitk.sitkIdentity)

    ref_labels = _lesion_label_array(reference, ref_lesions)
    fu_labels = _lesion_label_array(followup, fu_lesions)
    fu_in_ref = _resample_labels(fu_labels, followup.reference, reference.reference, transform)
    n_ref, n_fu = len(ref_ids), len(fu_ids)
    ref_size = np.bincount(ref_labels.ravel(), minlength=n_ref + 1)[1:]
    fu_size = np.bincount(fu_in_ref.ravel(), minlength=n_fu + 1)[1:]
    joint = np.bincount((ref_labels.astype(np.int64) * (n_fu + 1) + fu_in_ref).ravel(),
                        minlength=(n_ref + 1) * (n_fu + 1)).reshape(n_ref + 1, n_fu + 1)[1:, 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.nan_to_num(2.0 * joint / (ref_size[:, None] + fu_size[None, :]))
    ref_centroids = _centroids_lps(ref_labels, n_ref, reference.reference)
    ref_centroids_in_fu = np.array([transform.TransformPoint(tuple(map(float, p))) for p in ref_centroids])
    fu_centroids = _centroids_lps(fu_labels, n_fu, followup.reference)
    offsets = ref_centroids_in_fu.reshape(n_ref, 1, 3) - fu_centroids.reshape(1, n_fu, 3)
    distance = np.linalg.norm(offsets, axis=2)
    distance = np.nan_to_num(distance, nan=np.inf)  # a lesion outside the grid has no centroid

    ref_index = {lesion_id: i for i, lesion_id in enumerate(ref_ids)}
    fu_index = {segment_id: j for j, segment_id in enumerate(fu_ids)}
    matched: dict[int, int] = {}  # follow-up index -> reference index
    how: dict[int, str] = {}
    for segment_id, lesion_id in overrides.items():
        if lesion_id is not None:
            matched[fu_index[segment_id]] = ref_index[lesion_id]
            how[fu_index[segment_id]] = "override"
    free_ref = [i for i in range(n_ref) if i not in matched.values()]
    free_fu = [j for j in range(n_fu) if fu_ids[j] not in overrides]
    if free_ref and free_fu:
        feasible = (joint > 0) | (distance <= max_distance_mm)
        cost = np.where(feasible, (1.0 - dice) + distance / max_distance_mm, _INFEASIBLE)
        rows, cols = linear_sum_assignment(cost[np.ix_(free_ref, free_fu)])
        for r, c in zip(rows, cols, strict=True):
            i, j = free_ref[r], free_fu[c]
            if feasible[i, j]:
                matched[j] = i
                how[j] = "assignment"

    # Leftovers: split fragments and merged lesions (by overlap), then new and disappeared.
    fu_of_ref = {i: j for j, i in matched.items()}
    fragments: dict[int, list[int]] = {}
    for j in range(n_fu):
        if j in matched or fu_ids[j] in overrides or fu_size[j] == 0:
            continue
        parent = int(np.argmax(joint[:, j])) if n_ref else -1
        if parent >= 0 and parent in fu_of_ref and joint[parent, j] >= min_part_fraction * fu_size[j]:
            fragments.setdefault(parent, []).append(j)
    swallowed: dict[int, list[int]] = {}
    for i in range(n_ref):
        if i in fu_of_ref or ref_size[i] == 0:
            continue
        host = int(np.argmax(joint[i, :])) if n_fu else -1
        if host >= 0 and host in matched and joint[i, host] >= min_part_fraction * ref_size[i]:
            swallowed.setdefault(host, []).append(i)

    mapping: dict[str, str] = {fu_ids[j]: ref_ids[i] for j, i in matched.items()}
    fresh_ids = new_lesion_ids([*ref_ids, *taken_ids])
    split_children = {j for children in fragments.values() for j in children}
    for j in range(n_fu):
        if j not in matched:
            mapping[fu_ids[j]] = next(fresh_ids)
    mapping = {segment_id: mapping[segment_id] for segment_id in fu_ids}

    events: list[LesionEvent] = []
    for j, i in sorted(matched.items(), key=lambda item: item[1]):
        events.append(LesionEvent("matched", (ref_ids[i],), (fu_ids[j],), (ref_ids[i],)))
    for i, children in sorted(fragments.items()):
        parts = [fu_of_ref[i], *children]
        events.append(LesionEvent("split", (ref_ids[i],), tuple(fu_ids[j] for j in parts),
                                  tuple(mapping[fu_ids[j]] for j in parts)))
    for j, parts in sorted(swallowed.items()):
        sources = [matched[j], *parts]
        events.append(LesionEvent("merged", tuple(ref_ids[i] for i in sources), (fu_ids[j],),
                                  (mapping[fu_ids[j]],)))
    merged_refs = {i for parts in swallowed.values() for i in parts}
    for i in range(n_ref):
        if i not in fu_of_ref and i not in merged_refs:
            events.append(LesionEvent("disappeared", (ref_ids[i],), (), ()))
    for j in range(n_fu):
        if j not in matched and j not in split_children:
            events.append(LesionEvent("new", (), (fu_ids[j],), (mapping[fu_ids[j]],)))

    pairs = [LesionPair(ref_ids[i], fu_ids[j], float(dice[i, j]), float(distance[i, j]), how[j])
             for j, i in sorted(matched.items(), key=lambda item: item[1])]
    return MatchResult(mapping, pairs, events, ref_ids, fu_ids, dice, distance)


def apply_tracking_ids(followup: Segmentation, result: MatchResult) -> Segmentation:
    """A copy of ``followup`` whose lesion segments carry the tracking ids of ``result``.

    Segment names that were the default name (``"lesion <id>"``) follow the new id.
    """
    missing = sorted(set(seg.segment_id for seg in followup.find(role="lesion")) - set(result.mapping))
    if missing:
        raise ValueError(f"follow-up lesion segments {missing} are not in the match result")
    tracked = followup.copy()
    for seg in tracked.find(role="lesion"):
        was_default = seg.name == seg.tags.default_name()
        seg.tags = replace(seg.tags, lesion_id=result.mapping[seg.segment_id])
        if was_default:
            seg.name = seg.tags.default_name()
    return tracked


def _tracking_ids(lesions: list[Segment]) -> list[str]:
    ids = [seg.tags.lesion_id for seg in lesions]
    untagged = [seg.segment_id for seg in lesions if seg.tags.lesion_id is None]
    if untagged:
        raise ValueError(f"reference lesion segments without a lesion_id tag: {untagged}")
    duplicates = sorted({lesion_id for lesion_id in ids if ids.count(lesion_id) > 1})
    if duplicates:
        raise ValueError(f"reference lesion ids are not unique: {duplicates}")
    return ids


def _checked_overrides(overrides: Mapping[str, str | None], ref_ids, fu_ids) -> dict[str, str | None]:
    unknown_fu = sorted(set(overrides) - set(fu_ids))
    if unknown_fu:
        raise ValueError(f"override keys {unknown_fu} are not follow-up lesion segments; have {list(fu_ids)}")
    targets = [v for v in overrides.values() if v is not None]
    unknown_ref = sorted(set(targets) - set(ref_ids))
    if unknown_ref:
        raise ValueError(f"override values {unknown_ref} are not reference lesion ids; have {list(ref_ids)}")
    repeated = sorted({v for v in targets if targets.count(v) > 1})
    if repeated:
        raise ValueError(f"overrides map several follow-up lesions to the same reference lesion {repeated}")
    return dict(overrides)


def _lesion_label_array(segmentation: Segmentation, lesions: list[Segment]) -> np.ndarray:
    """(z, y, x) int32 array with lesion k (1-based, in ``lesions`` order) as label k.

    One look-up table per layer, so the work does not grow with the number of lesions.
    """
    shape = segmentation.reference.GetSize()[::-1]
    labels = np.zeros(shape, dtype=np.int32)
    for layer_index, layer in enumerate(segmentation.layers):
        in_layer = [(k + 1, seg) for k, seg in enumerate(lesions) if seg.layer == layer_index]
        if not in_layer:
            continue
        values = sitk.GetArrayViewFromImage(layer)
        lut = np.zeros(int(values.max()) + 1, dtype=np.int32)
        for k, seg in in_layer:
            if seg.label_value < len(lut):
                lut[seg.label_value] = k
        layer_labels = lut[values]
        clash = (labels > 0) & (layer_labels > 0)
        if clash.any():
            a, b = labels[clash][0], layer_labels[clash][0]
            first, second = lesions[a - 1].segment_id, lesions[b - 1].segment_id
            raise ValueError(f"lesion segments {first!r} and {second!r} overlap; "
                             "a voxel can belong to one lesion only")
        labels += layer_labels
    return labels


def _resample_labels(labels: np.ndarray, grid: sitk.Image, reference: sitk.Image,
                     transform: sitk.Transform) -> np.ndarray:
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(grid)
    resampled = sitk.Resample(image, reference, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkInt32)
    return sitk.GetArrayFromImage(resampled)


def _centroids_lps(labels: np.ndarray, n: int, grid: sitk.Image) -> np.ndarray:
    """(n, 3) LPS centroids (mm) of labels 1..n; NaN for a label without voxels."""
    if n == 0:
        return np.zeros((0, 3))
    zyx = np.array(ndimage.center_of_mass(labels > 0, labels, index=np.arange(1, n + 1)), dtype=float)
    ijk = zyx.reshape(n, 3)[:, ::-1]
    steps = np.asarray(grid.GetDirection()).reshape(3, 3) * np.asarray(grid.GetSpacing())
    return np.asarray(grid.GetOrigin()) + ijk @ steps.T
