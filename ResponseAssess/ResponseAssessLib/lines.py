"""Long-axis markups lines of measured lesions, one per (segmentation, lesion tracking id).

A measurement run shows each lesion's long axis as a markups line so that the reader can
check it. The line remembers which segmentation and lesion it measures and the end points
as computed; when the reader moves an end point (or draws the line from scratch and tags
it), the line is a manual measurement and wins over the segment on the next run (RECIST
1.1 leaves the measurement to the reader: Eisenhauer et al., Eur J Cancer 2009;45:228-247).
Lines are found by these attributes, never by name.
"""

from __future__ import annotations

import json

import numpy as np
import slicer
import vtk

from luprrt.grid import LPS_TO_RAS

LESION_ID_ATTRIBUTE = "LuPRRT.LesionId"
SEGMENTATION_ATTRIBUTE = "LuPRRT.DiameterOfSegmentation"  # node ID of the measured segmentation
SOURCE_ATTRIBUTE = "LuPRRT.DiameterSource"  # "segment" (computed) or "manual" (the reader's)
COMPUTED_ATTRIBUTE = "LuPRRT.ComputedLongAxisLPS"  # end points as computed (JSON, LPS mm)
# A control point further than this from its computed position was moved by the reader, mm.
# Far above float round-off of the RAS <-> LPS round trip, far below any deliberate edit.
EDIT_TOLERANCE_MM = 1e-3


def line_endpoints_lps(line_node) -> np.ndarray:
    """End points (2, 3) of a markups line in LPS world coordinates, mm."""
    from luprrt import mrml

    if line_node is None or not line_node.IsA("vtkMRMLMarkupsLineNode"):
        found = line_node.GetClassName() if line_node else None
        raise ValueError(f"expected a markups line node, got {found}")
    points = mrml.points_from_fiducials(line_node)
    if len(points) != 2:
        raise ValueError(f"line {line_node.GetName()!r} has {len(points)} control points; a diameter needs 2")
    return points


def long_axis_lines(segmentation_node) -> dict[str, object]:
    """Lines made by earlier measurement runs of ``segmentation_node``, keyed by lesion tracking id."""
    found = {}
    for node in slicer.util.getNodesByClass("vtkMRMLMarkupsLineNode"):
        if node.GetAttribute(SEGMENTATION_ATTRIBUTE) == segmentation_node.GetID():
            lesion_id = node.GetAttribute(LESION_ID_ATTRIBUTE)
            if lesion_id:
                found[lesion_id] = node
    return found


def user_edited_lines(segmentation_node) -> dict[str, object]:
    """Lines of ``segmentation_node`` that are manual: tagged so, or moved since they were computed."""
    edited = {}
    for lesion_id, node in long_axis_lines(segmentation_node).items():
        if node.GetAttribute(SOURCE_ATTRIBUTE) == "manual":
            edited[lesion_id] = node
            continue
        computed = node.GetAttribute(COMPUTED_ATTRIBUTE)
        if node.GetNumberOfControlPoints() != 2 or not computed:
            edited[lesion_id] = node  # the reader removed or added points: not our line any more
            continue
        if np.abs(line_endpoints_lps(node) - np.asarray(json.loads(computed))).max() > EDIT_TOLERANCE_MM:
            edited[lesion_id] = node
    return edited


def show_long_axis(segmentation_node, lesion_id: str, endpoints_lps_mm, name: str):
    """Create or update the computed long-axis line of one lesion (end points in LPS mm)."""
    from luprrt import mrml

    endpoints = np.asarray(endpoints_lps_mm, dtype=float)
    node = long_axis_lines(segmentation_node).get(lesion_id)
    if node is None:
        node = mrml.markups_line(endpoints[0], endpoints[1], name, scene=segmentation_node.GetScene())
        node.SetAttribute(SEGMENTATION_ATTRIBUTE, segmentation_node.GetID())
        node.SetAttribute(LESION_ID_ATTRIBUTE, lesion_id)
    else:
        was_modifying = node.StartModify()
        node.RemoveAllControlPoints()
        for point in endpoints * LPS_TO_RAS:
            node.AddControlPointWorld(vtk.vtkVector3d(*point))
        node.EndModify(was_modifying)
    node.SetAttribute(SOURCE_ATTRIBUTE, "segment")
    node.SetAttribute(COMPUTED_ATTRIBUTE, json.dumps(endpoints.tolist()))
    return node


def mark_manual(line_node, segmentation_node, lesion_id: str) -> None:
    """Tag a reader's line as the manual measurement of one lesion (kept as manual in later runs)."""
    line_node.SetAttribute(SEGMENTATION_ATTRIBUTE, segmentation_node.GetID())
    line_node.SetAttribute(LESION_ID_ATTRIBUTE, lesion_id)
    line_node.SetAttribute(SOURCE_ATTRIBUTE, "manual")
