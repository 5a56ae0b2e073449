"""MRML helpers of the ResponseAssess Logic: output nodes, geometry checks, registration transforms.

Conversions between nodes and core objects are ``luprrt.mrml``'s job; what is here is
specific to this module (filling a chosen output node, refusing inputs on the wrong grid).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import slicer
import vtk

from luprrt.grid import LPS_TO_RAS


def replace_segmentation(fresh, output_node):
    """``fresh`` itself, or its segments copied into ``output_node`` (``fresh`` is then removed)."""
    if output_node is None:
        return fresh
    output_node.GetSegmentation().DeepCopy(fresh.GetSegmentation())
    output_node.CreateDefaultDisplayNodes()
    scene = fresh.GetScene()
    display_nodes = [fresh.GetNthDisplayNode(i) for i in range(fresh.GetNumberOfDisplayNodes())]
    for node in [*display_nodes, fresh]:  # removing a node leaves its display nodes behind
        scene.RemoveNode(node)
    return output_node


def require_no_transform(node) -> None:
    """Refuse a node under a parent transform: segments and voxels would be in different frames."""
    transform = node.GetParentTransformNode()
    if transform is not None:
        raise ValueError(f"{node.GetName()!r} is under the transform {transform.GetName()!r}; harden the "
                         "transform first (Data module, right-click, Harden transform)")


def lesions_on_volume_grid(segmentation_node, lesions, volume_node):
    """The lesion segments resampled onto a volume's grid (Slicer's labelmap export), one layer.

    Raises ValueError (geometry mismatch) when a lesion has no voxel on that grid.
    """
    from luprrt import mrml
    from luprrt.segments import Segment, Segmentation

    require_no_transform(volume_node)
    labels = mrml.labelmap_on_grid(segmentation_node, [seg.segment_id for seg in lesions], volume_node)
    counts = np.bincount(labels.ravel(), minlength=len(lesions) + 1)
    outside = [seg.tags.lesion_id or seg.segment_id for k, seg in enumerate(lesions) if counts[k + 1] == 0]
    if outside:
        raise ValueError(f"geometry mismatch: lesions {outside} of segmentation "
                         f"{segmentation_node.GetName()!r} have no voxel on the grid of volume "
                         f"{volume_node.GetName()!r}")
    layer = sitk.GetImageFromArray(labels.astype(np.uint8 if len(lesions) < 256 else np.uint16))
    ijk_to_ras = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(ijk_to_ras)
    matrix = slicer.util.arrayFromVTKMatrix(ijk_to_ras)
    spacing = np.linalg.norm(matrix[:3, :3], axis=0)
    layer.SetOrigin(tuple(matrix[:3, 3] * LPS_TO_RAS))
    layer.SetSpacing(tuple(spacing))
    layer.SetDirection(tuple((matrix[:3, :3] / spacing * LPS_TO_RAS[:, None]).ravel()))
    segments = [Segment(seg.segment_id, seg.name, seg.tags, 0, k + 1, seg.color)
                for k, seg in enumerate(lesions)]
    return Segmentation([layer], segments)


def require_covered(segmentation, ct: sitk.Image, segmentation_node, ct_node) -> None:
    """Every lesion centroid lies inside the CT, else the segmentation belongs to another image."""
    shapes = sitk.LabelShapeStatisticsImageFilter()
    upper = np.asarray(ct.GetSize()) - 0.5
    outside = []
    for index, layer in enumerate(segmentation.layers):
        in_layer = [seg for seg in segmentation.find(role="lesion") if seg.layer == index]
        if not in_layer:
            continue
        shapes.Execute(layer)
        for seg in in_layer:
            if not shapes.HasLabel(seg.label_value):
                continue
            centroid = shapes.GetCentroid(seg.label_value)
            position = np.asarray(ct.TransformPhysicalPointToContinuousIndex(centroid))
            if np.any(position < -0.5) or np.any(position > upper):
                outside.append(seg.tags.lesion_id or seg.segment_id)
    if outside:
        raise ValueError(f"geometry mismatch: lesions {outside} of segmentation "
                         f"{segmentation_node.GetName()!r} lie outside CT {ct_node.GetName()!r}; "
                         "is it the CT of the same time point?")


def transform_node(transform: sitk.Transform, name: str, scene):
    """A linear transform node that shows the follow-up in the reference frame.

    ``transform`` maps reference LPS points to follow-up LPS points (ITK's fixed-to-moving
    convention); in RAS that is the node's transform *from parent* (world = reference frame),
    so a follow-up volume placed under the node lines up with the reference.
    """
    if not all(hasattr(transform, method) for method in ("GetMatrix", "GetTranslation", "GetCenter")):
        raise ValueError(f"expected a rigid or affine registration transform, got {transform.GetName()}")
    rotation = np.asarray(transform.GetMatrix()).reshape(3, 3)
    centre = np.asarray(transform.GetCenter())
    lps = np.eye(4)
    lps[:3, :3] = rotation
    lps[:3, 3] = np.asarray(transform.GetTranslation()) + centre - rotation @ centre
    flip = np.diag([*LPS_TO_RAS, 1.0])
    node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", name)
    node.SetMatrixTransformFromParent(slicer.util.vtkMatrixFromArray(flip @ lps @ flip))
    return node
