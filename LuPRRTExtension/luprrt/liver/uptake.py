"""Organ uptake per cycle: kidneys, liver, lobes and everything outside the liver.

Kidney and extrahepatic uptake are secondary endpoints of the IA-vs-IV study. For
each cycle's SPECT (activity concentration in Bq/mL at scan time) the activity of a
region is the sum of its voxels times the voxel volume (MBq), and its uptake in
percent of the administered activity compares it with the administered activity
decayed to the scan time (Lu-177 physical decay, :func:`luprrt.physics.decay_factor`):

    uptake % = 100 * A_region(t) / (A_administered * exp(-ln 2 t / T1/2)),

t = hours after injection. "Extrahepatic" is the whole SPECT field of view minus the
liver (so it includes the kidneys and spleen); activity outside the field of view is
not seen.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from ..grid import GridGeometry
from ..physics import decay_factor
from ..provenance import ProgressCallback, no_progress
from ..regionstats import RegionMasks
from ..segments import Segmentation, segmentation_on_grid
from .tn import CycleSpect

log = logging.getLogger(__name__)

UPTAKE_COLUMNS = ("cycle", "hours_post_injection", "region", "role", "side", "route", "volume_ml",
                  "mean_bq_per_ml", "activity_mbq", "administered_activity_mbq",
                  "administered_activity_at_scan_mbq", "uptake_percent_of_administered")


def uptake_rows(cycles: Sequence[CycleSpect], segmentation: Segmentation | None = None, *,
                progress: ProgressCallback | None = None) -> list[dict]:
    """Activity (MBq) and % of administered activity of kidneys, liver, lobes and the rest.

    Parameters
    ----------
    cycles : sequence of CycleSpect
        Each with its SPECT (Bq/mL), hours after injection and administered
        activity (MBq); optionally its own segmentation.
    segmentation : Segmentation, optional
        Used for cycles without their own: kidneys (``role="kidney"``, with or
        without side), the liver (``role="liver"``, or its lobes) and lobes.

    Returns
    -------
    list of dict
        Columns :data:`UPTAKE_COLUMNS`; per cycle the rows left kidney, right kidney
        (when tagged by side), kidneys (all kidney segments), liver, each lobe, and
        extrahepatic (field of view minus liver).
    """
    if not cycles:
        raise ValueError("no SPECT cycles given")
    progress = progress or no_progress
    built: dict[tuple[int, GridGeometry], tuple[RegionMasks, list[tuple]]] = {}
    rows = []
    for n, cycle in enumerate(cycles):
        seg = cycle.segmentation or segmentation
        if seg is None:
            raise ValueError(f"cycle {cycle.cycle} has no segmentation and no shared one was given")
        administered = cycle.administered_activity_mbq
        if administered is None or not administered > 0:
            raise ValueError(f"cycle {cycle.cycle}: administered_activity_mbq must be positive, "
                             f"got {administered}")
        if not math.isfinite(cycle.hours_post_injection) or cycle.hours_post_injection < 0:
            raise ValueError(f"cycle {cycle.cycle}: hours_post_injection must be >= 0, got "
                             f"{cycle.hours_post_injection}")
        key = (id(seg), GridGeometry.from_image(cycle.spect))
        if key not in built:
            built[key] = _uptake_regions(seg, cycle.spect)
        masks, described = built[key]
        stats = masks.statistics(cycle.spect, unit="Bq/mL")
        at_scan = administered * float(decay_factor(cycle.hours_post_injection))
        for i, (_, region, role, side, route) in enumerate(described):  # same order as the masks
            activity = float(stats.total_mbq[i])
            rows.append({
                "cycle": cycle.cycle, "hours_post_injection": float(cycle.hours_post_injection),
                "region": region, "role": role, "side": side, "route": route,
                "volume_ml": float(stats.volume_ml[i]), "mean_bq_per_ml": float(stats.mean[i]),
                "activity_mbq": activity, "administered_activity_mbq": float(administered),
                "administered_activity_at_scan_mbq": at_scan,
                "uptake_percent_of_administered": 100.0 * activity / at_scan,
            })
        progress((n + 1) / len(cycles), f"uptake of cycle {cycle.cycle}")
    return rows


def _uptake_regions(segmentation: Segmentation, reference) -> tuple[RegionMasks, list[tuple]]:
    """Regions of one grid and their (name, region label, role, side, route) descriptions."""
    # Only whole organs enter the uptake endpoints; lesions (some below one SPECT voxel) are left out.
    organs = segmentation.without(s.segment_id for s in segmentation.segments
                                  if s.tags.role not in ("kidney", "liver", "lobe"))
    on_grid = segmentation_on_grid(organs, reference)
    kidneys = on_grid.find(role="kidney")
    if not kidneys:
        raise ValueError("segmentation has no kidney segment (role=kidney): kidney uptake cannot be measured")
    lobes = sorted(on_grid.find(role="lobe"), key=lambda s: s.tags.side or "")
    sides = [lobe.tags.side for lobe in lobes]
    if None in sides or len(set(sides)) != len(sides):
        raise ValueError(f"lobe segments need one distinct side each, got sides {sides}")
    livers = on_grid.find(role="liver")
    if len(livers) > 1:
        raise ValueError(f"segmentation has {len(livers)} liver segments: {[s.segment_id for s in livers]}")
    if not livers and not lobes:
        raise ValueError("segmentation has no liver: it needs a segment tagged role=liver or lobe segments")
    shape = GridGeometry.from_image(reference).shape
    masks: dict[str, np.ndarray] = {}
    described = []
    all_kidneys = np.zeros(shape, dtype=bool)
    for side in ("left", "right"):
        sided = [s for s in kidneys if s.tags.side == side]
        if len(sided) > 1:
            raise ValueError(f"segmentation has {len(sided)} {side} kidney segments")
        if sided:
            masks[f"kidney:{side}"] = on_grid.mask_array(sided[0].segment_id)
            described.append((f"kidney:{side}", f"{side} kidney", "kidney", side, None))
    for kidney in kidneys:
        all_kidneys |= on_grid.mask_array(kidney.segment_id)
    masks["kidneys"] = all_kidneys
    described.append(("kidneys", "kidneys", "kidney", None, None))
    liver = on_grid.mask_array(livers[0].segment_id) if livers else np.zeros(shape, dtype=bool)
    for lobe in lobes:
        lobe_mask = on_grid.mask_array(lobe.segment_id)
        if not livers:
            liver |= lobe_mask
        masks[f"lobe:{lobe.tags.side}"] = lobe_mask
    masks["liver"] = liver
    described.append(("liver", "liver", "liver", None, None))
    for lobe in lobes:
        side = lobe.tags.side
        described.append((f"lobe:{side}", f"{side} lobe", "lobe", side, lobe.tags.route))
    masks["extrahepatic"] = ~liver
    described.append(("extrahepatic", "extrahepatic", "extrahepatic", None, None))
    order = [d[0] for d in described]
    return RegionMasks(reference, {name: masks[name] for name in order}), described
