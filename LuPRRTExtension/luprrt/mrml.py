"""MRML adapters: Slicer nodes <-> LuPRRT core objects (SimpleITK images, segmentations, tables).

The only module of :mod:`luprrt` that imports ``slicer``. Module Logic classes convert
their input nodes here, call the core, and write results back as nodes.

Coordinates: MRML is RAS, SimpleITK and the core are LPS. A point converts by
negating x and y; an image's origin and direction matrix likewise (rows 0 and 1 of
the direction matrix change sign, spacing is unchanged). Voxel arrays keep their
(z, y, x) order. Input nodes are never modified.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from vtk.util import numpy_support

from .grid import LPS_TO_RAS
from .io import UNITS_KEY
from .segments import TAG_KEYS, Segment, Segmentation, SegmentTags, role_from_terminology, terminology_entry

LABELMAP = "Binary labelmap"
UNITS_ATTRIBUTE = "LuPRRT.Units"

# Voxel units -> (UCUM code, code meaning, quantity code or None) for a volume's coded
# VoxelValueUnits/VoxelValueQuantity. UCUM codes and meanings as in DICOM PS3.16 CID 84
# (PET Units) and CID 85 (SUV units); quantities: DCM 112031 "Attenuation Coefficient",
# DCM 128513 "Absorbed Dose" (CID 10070).
VOXEL_UNITS: dict[str, tuple[str, str, tuple[str, str, str] | None]] = {
    "Bq/mL": ("Bq/ml", "Becquerels/milliliter", None),
    "HU": ("[hnsf'U]", "Hounsfield unit", ("DCM", "112031", "Attenuation Coefficient")),
    "SUVbw": ("{SUVbw}g/ml", "Standardized Uptake Value body weight", None),
    "mm2/s": ("mm2/s", "Square millimeter per second", None),
    "counts": ("{counts}", "Counts", None),
    "Gy": ("Gy", "Gray", ("DCM", "128513", "Absorbed Dose")),
}

# Column-name suffix -> unit label (the project names every quantity with its unit).
COLUMN_UNITS: dict[str, str] = {
    "_bq_per_ml": "Bq/mL", "_kbq_per_ml": "kBq/mL", "_mbq_per_ml": "MBq/mL", "_mbq_h_per_ml": "MBq h/mL",
    "_mbq_h": "MBq h", "_mbq": "MBq", "_gbq": "GBq", "_gy_per_gbq": "Gy/GBq", "_gy": "Gy",
    "_mm2_per_s": "mm2/s", "_mm": "mm", "_cm": "cm", "_ml": "mL", "_h": "h", "_per_h": "1/h", "_d": "d",
    "_s": "s", "_kg": "kg", "_hu": "HU", "_percent": "%", "_pct": "%", "_suvbw": "SUVbw",
}

_PLOT_TYPES = {"scatter": "PlotTypeScatter", "line": "PlotTypeLine", "bar": "PlotTypeBar"}
# Marks the series and group tables that plot_chart made for a chart (value: the chart's ID).
_CHART_ATTRIBUTE = "LuPRRT.PlotChart"


def _scene(scene):
    return scene if scene is not None else slicer.mrmlScene


def _lps_to_ras_point(point) -> list[float]:
    point = np.asarray(point, dtype=float).reshape(-1)
    if point.shape != (3,) or not np.all(np.isfinite(point)):
        raise ValueError(f"expected a finite 3D point in mm, got {point.tolist()}")
    return (point * LPS_TO_RAS).tolist()


# -- volumes -----------------------------------------------------------------------------------------
def volume_node_from_image(image: sitk.Image, name: str, scene=None, units: str | None = None,
                           node_class: str = "vtkMRMLScalarVolumeNode"):
    """Add a scalar volume node holding ``image`` (values and geometry copied).

    Parameters
    ----------
    image : SimpleITK.Image
        3D scalar image in LPS geometry.
    name : str
        Node name.
    scene : vtkMRMLScene, optional
        Target scene (default ``slicer.mrmlScene``).
    units : str, optional
        Voxel units (e.g. "Bq/mL", "HU", "Gy"); default: the image's ``luprrt_units``
        metadata if present. Stored as the node attribute ``LuPRRT.Units`` and as the
        coded VoxelValueUnits (UCUM) / VoxelValueQuantity of the node.
    node_class : str
        ``vtkMRMLScalarVolumeNode`` or ``vtkMRMLLabelMapVolumeNode``.

    Returns
    -------
    vtkMRMLScalarVolumeNode
    """
    _require_volume_image(image, name)
    node = _scene(scene).AddNewNodeByClass(node_class, name)
    return update_volume_node_from_image(node, image, units=units)


def update_volume_node_from_image(node, image: sitk.Image, units: str | None = None):
    """Refill an existing scalar volume node with ``image`` (values, geometry, units); the node is kept.

    Its ID, name, display node and the nodes that reference it stay; voxel values, origin, spacing
    and directions are replaced (a new grid size is allowed), and so are its voxel units (removed
    when neither ``units`` nor the image's ``luprrt_units`` metadata give them). A node under a
    parent transform is refused: the image's world geometry would be moved by the transform.

    Parameters
    ----------
    node : vtkMRMLScalarVolumeNode
        Output volume to refill (e.g. the one chosen in a module's output selector).
    image : SimpleITK.Image
        3D scalar image in LPS geometry.
    units : str, optional
        Voxel units, as in :func:`volume_node_from_image`.

    Returns
    -------
    vtkMRMLScalarVolumeNode
        ``node``.
    """
    if node is None or not node.IsA("vtkMRMLScalarVolumeNode"):
        got = node.GetClassName() if node is not None else None
        raise ValueError(f"expected a scalar volume node to fill, got {got}")
    _require_volume_image(image, node.GetName())
    transform = node.GetParentTransformNode()
    if transform is not None:
        raise ValueError(f"output volume {node.GetName()!r} is under the transform {transform.GetName()!r}; "
                         "choose a volume without a parent transform (or none, for a new one)")
    if units is None and image.HasMetaDataKey(UNITS_KEY):
        units = image.GetMetaData(UNITS_KEY)
    values = _vtk_compatible(sitk.GetArrayFromImage(image), node.GetName())
    was_modifying = node.StartModify()
    node.SetOrigin(*(np.asarray(image.GetOrigin()) * LPS_TO_RAS))
    node.SetSpacing(*image.GetSpacing())
    directions = np.asarray(image.GetDirection()).reshape(3, 3) * LPS_TO_RAS[:, None]
    node.SetIJKToRASDirections(directions.tolist())
    slicer.util.updateVolumeFromArray(node, values)
    if units:
        _set_voxel_units(node, units)
    else:  # stale units of the previous content would mislabel the new values
        node.RemoveAttribute(UNITS_ATTRIBUTE)
        node.SetVoxelValueUnits(None)
        node.SetVoxelValueQuantity(None)
    node.EndModify(was_modifying)
    node.CreateDefaultDisplayNodes()  # only when missing: a chosen node keeps its display settings
    return node


def _require_volume_image(image, name: str) -> None:
    if not isinstance(image, sitk.Image):
        raise ValueError(f"volume {name!r} needs a SimpleITK image, got {type(image).__name__}")
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"image for {name!r} must be a 3D scalar image, got {image.GetDimension()}D with "
                         f"{image.GetNumberOfComponentsPerPixel()} components per voxel")


def _vtk_compatible(values: np.ndarray, name: str) -> np.ndarray:
    """64-bit integers are not displayable in Slicer: narrow them to int32 when lossless."""
    if values.dtype.kind in "iu" and values.dtype.itemsize == 8:
        if values.size and (values.min() < np.iinfo(np.int32).min or values.max() > np.iinfo(np.int32).max):
            raise ValueError(f"image for {name!r} has 64-bit integer values outside the int32 range; "
                             "cast it to float64 first")
        return values.astype(np.int32)
    return values


def _set_voxel_units(node, units: str) -> None:
    node.SetAttribute(UNITS_ATTRIBUTE, units)
    code, meaning, quantity = VOXEL_UNITS.get(units, (units, units, None))
    node.SetVoxelValueUnits(_coded_entry("UCUM", code, meaning))
    # None clears the quantity a refilled node had (a dose map refilled with activity is no dose).
    node.SetVoxelValueQuantity(_coded_entry(*quantity) if quantity is not None else None)


def _coded_entry(scheme: str, value: str, meaning: str):
    entry = slicer.vtkCodedEntry()
    entry.SetValueSchemeMeaning(value, scheme, meaning)
    return entry


def voxel_units(node) -> str | None:
    """Voxel units of a volume node: its ``LuPRRT.Units`` attribute, else its coded UCUM units."""
    units = node.GetAttribute(UNITS_ATTRIBUTE)
    if units:
        return units
    coded = node.GetVoxelValueUnits() if hasattr(node, "GetVoxelValueUnits") else None
    if coded is None or not coded.GetCodeValue():
        return None
    by_code = {code: name for name, (code, _, _) in VOXEL_UNITS.items()}
    return by_code.get(coded.GetCodeValue(), coded.GetCodeValue())


def image_from_volume_node(node) -> sitk.Image:
    """A SimpleITK image (LPS) with the voxel values and world geometry of a scalar volume node.

    A linear parent transform is applied to the geometry (the image is where Slicer shows
    it); a non-linear one raises ValueError. Voxel units, when known, are in the image's
    ``luprrt_units`` metadata.
    """
    if node is None or not node.IsA("vtkMRMLScalarVolumeNode"):
        raise ValueError(f"expected a scalar volume node, got {node.GetClassName() if node else None}")
    if node.GetImageData() is None:
        raise ValueError(f"volume {node.GetName()!r} has no voxels")
    image = sitk.GetImageFromArray(np.array(slicer.util.arrayFromVolume(node), copy=True))
    origin, spacing, direction = _world_geometry(node)
    image.SetOrigin(tuple(origin * LPS_TO_RAS))
    image.SetSpacing(tuple(spacing))
    image.SetDirection(tuple((direction * LPS_TO_RAS[:, None]).ravel()))
    units = voxel_units(node)
    if units:
        image.SetMetaData(UNITS_KEY, units)
    return image


def _world_geometry(node) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origin RAS, spacing, direction RAS 3x3) of a volume node in world coordinates."""
    directions = [[0.0] * 3 for _ in range(3)]
    node.GetIJKToRASDirections(directions)
    origin, spacing, direction = np.array(node.GetOrigin()), np.array(node.GetSpacing()), np.array(directions)
    transform = node.GetParentTransformNode()
    if transform is None:
        return origin, spacing, direction
    if not transform.IsTransformToWorldLinear():
        raise ValueError(f"volume {node.GetName()!r} is under the non-linear transform "
                         f"{transform.GetName()!r}; harden or remove it first")
    matrix = vtk.vtkMatrix4x4()
    transform.GetMatrixTransformToWorld(matrix)
    to_world = slicer.util.arrayFromVTKMatrix(matrix)
    axes = to_world[:3, :3] @ (direction * spacing)
    spacing = np.linalg.norm(axes, axis=0)
    direction = axes / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-6):
        raise ValueError(f"volume {node.GetName()!r}: its transform {transform.GetName()!r} shears the grid")
    return to_world[:3, :3] @ origin + to_world[:3, 3], spacing, direction


# -- segmentations -----------------------------------------------------------------------------------
def _oriented_image(layer: sitk.Image):
    """A vtkOrientedImageData (RAS geometry) holding one label layer."""
    labels = sitk.GetArrayFromImage(layer)
    oriented = slicer.vtkOrientedImageData()
    oriented.SetDimensions(*layer.GetSize())
    oriented.SetOrigin(*(np.asarray(layer.GetOrigin()) * LPS_TO_RAS))
    oriented.SetSpacing(*layer.GetSpacing())
    direction = np.asarray(layer.GetDirection()).reshape(3, 3) * LPS_TO_RAS[:, None]
    oriented.SetDirections(direction.tolist())
    scalar_type = vtk.VTK_UNSIGNED_CHAR if labels.max(initial=0) < 256 else vtk.VTK_UNSIGNED_SHORT
    oriented.AllocateScalars(scalar_type, 1)
    target = numpy_support.vtk_to_numpy(oriented.GetPointData().GetScalars())
    target[:] = labels.ravel()
    return oriented


def segmentation_node_from_segmentation(segmentation: Segmentation, name: str, reference_volume_node=None,
                                        scene=None):
    """Add a segmentation node with every segment of ``segmentation``.

    Each label layer becomes one shared labelmap (so overlapping segments stay in separate
    layers, label values are kept), each segment keeps its ID, name, colour, terminology
    entry and LuPRRT tags (``LuPRRT.Role``, ``LuPRRT.Side``, ``LuPRRT.Route``,
    ``LuPRRT.LesionId``: the keys of the ``.seg.nrrd`` files of :mod:`luprrt.io.seg_nrrd`).

    ``reference_volume_node`` (optional) sets the segmentation's reference geometry (the
    grid Slicer's editor paints on); by default it is the segmentation's own grid.
    """
    if not segmentation.segments:
        raise ValueError(f"segmentation for {name!r} has no segments")
    node = _scene(scene).AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    node.CreateDefaultDisplayNodes()
    target = node.GetSegmentation()
    layers = [_oriented_image(layer) for layer in segmentation.layers]
    if reference_volume_node is not None:
        node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume_node)
    else:
        converter = slicer.vtkSegmentationConverter
        target.SetConversionParameter(converter.GetReferenceImageGeometryParameterName(),
                                      converter.SerializeImageGeometry(layers[0]))
    was_modifying = node.StartModify()
    for seg in segmentation.segments:
        segment = slicer.vtkSegment()
        segment.SetName(seg.name)
        segment.SetNameAutoGenerated(False)
        segment.SetColor(*seg.color)
        segment.SetColorAutoGenerated(False)
        segment.SetLabelValue(seg.label_value)
        segment.AddRepresentation(LABELMAP, layers[seg.layer])
        segment.SetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), terminology_entry(seg.tags))
        for key, attribute in TAG_KEYS.items():
            value = getattr(seg.tags, attribute)
            if value is not None:
                segment.SetTag(key, str(value))
        target.AddSegment(segment, seg.segment_id)
    node.EndModify(was_modifying)
    return node


def segmentation_from_segmentation_node(node) -> Segmentation:
    """The LuPRRT :class:`Segmentation` of a segmentation node (labelmap layers in LPS, tags).

    Layers are placed on one grid: the node's reference geometry, grown if a segment
    reaches outside it (without a reference geometry: the union of the layers' extents).
    Segments without a ``LuPRRT.Role`` tag get their role from their
    terminology type code, or raise ValueError naming the segment.
    """
    if node is None or not node.IsA("vtkMRMLSegmentationNode"):
        raise ValueError(f"expected a segmentation node, got {node.GetClassName() if node else None}")
    source = node.GetSegmentation()
    if source.GetNumberOfSegments() == 0:
        raise ValueError(f"segmentation {node.GetName()!r} has no segments")
    if source.GetSourceRepresentationName() != LABELMAP:
        # Convert a copy: the node itself stays as it is.
        copy = slicer.vtkSegmentation()
        copy.DeepCopy(source)
        if not copy.CreateRepresentation(LABELMAP):
            raise ValueError(f"segmentation {node.GetName()!r}: cannot convert "
                             f"{source.GetSourceRepresentationName()!r} to a binary labelmap")
        source = copy
    # The reference grid (grown if a segment reaches outside it); without one, the layers' own extents.
    has_reference = bool(source.GetConversionParameter(
        slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName()))
    mode = (slicer.vtkSegmentation.EXTENT_UNION_OF_EFFECTIVE_SEGMENTS_AND_REFERENCE_GEOMETRY if has_reference
            else slicer.vtkSegmentation.EXTENT_UNION_OF_SEGMENTS)
    geometry = slicer.vtkOrientedImageData()
    geometry_string = source.DetermineCommonLabelmapGeometry(mode, None)
    slicer.vtkSegmentationConverter.DeserializeImageGeometry(geometry_string, geometry, True,
                                                             vtk.VTK_UNSIGNED_SHORT, 1)
    layer_of_segment = {}
    layers = []
    for layer_index in range(source.GetNumberOfLayers()):
        layer_image = source.GetLayerDataObject(layer_index)
        layers.append(_layer_on_grid(layer_image, geometry))
        for segment_id in source.GetSegmentIDsForLayer(layer_index):
            layer_of_segment[segment_id] = layer_index
    segments = []
    for segment_id in source.GetSegmentIDs():
        segment = source.GetSegment(segment_id)
        segments.append(Segment(
            segment_id=segment_id,
            name=segment.GetName(),
            tags=_segment_tags(segment, segment_id, node.GetName()),
            layer=layer_of_segment[segment_id],
            label_value=segment.GetLabelValue(),
            color=tuple(float(c) for c in segment.GetColor()),
        ))
    return Segmentation(layers, segments)


def _layer_on_grid(layer_image, geometry) -> sitk.Image:
    resampled = slicer.vtkOrientedImageData()
    slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
        layer_image, geometry, resampled, False, False)
    extent = resampled.GetExtent()
    dims = [extent[2 * a + 1] - extent[2 * a] + 1 for a in range(3)]
    labels = numpy_support.vtk_to_numpy(resampled.GetPointData().GetScalars()).reshape(dims[::-1])
    dtype = np.uint8 if labels.max(initial=0) < 256 else np.uint16
    image = sitk.GetImageFromArray(labels.astype(dtype))
    directions = [[0.0] * 3 for _ in range(3)]
    resampled.GetDirections(directions)
    direction = np.array(directions)
    spacing = np.array(resampled.GetSpacing())
    first_voxel = np.array(resampled.GetOrigin()) + direction @ (spacing * [extent[0], extent[2], extent[4]])
    image.SetOrigin(tuple(first_voxel * LPS_TO_RAS))
    image.SetSpacing(tuple(spacing))
    image.SetDirection(tuple((direction * LPS_TO_RAS[:, None]).ravel()))
    return image


def _segment_tags(segment, segment_id: str, node_name: str) -> SegmentTags:
    values = {}
    for key, attribute in TAG_KEYS.items():
        value = vtk.reference("")
        if segment.GetTag(key, value) and str(value):
            values[attribute] = str(value)
    if "role" not in values:
        role_side = role_from_terminology(segment.GetTerminology() or "")
        if role_side is None:
            raise ValueError(f"segmentation {node_name!r}: segment {segment_id!r} has no LuPRRT.Role tag and "
                             "its terminology type is not one LuPRRT knows; tag it (role: liver, lobe, "
                             "lesion, ...)")
        values["role"], side = role_side
        values.setdefault("side", side)
    return SegmentTags(**values)


def labelmap_on_grid(segmentation_node, segment_ids: Sequence[str], reference_volume_node) -> np.ndarray:
    """Segments resampled onto a volume's grid: a (z, y, x) label array, label i+1 = ``segment_ids[i]``.

    Slicer's ``ExportSegmentsToLabelmapNode`` does the resampling (nearest neighbour on the
    reference grid, e.g. CT-defined segments onto a SPECT grid). Segments given together
    should not overlap (where they do, the later one wins): export each layer separately.
    """
    if not segment_ids:
        raise ValueError("no segment IDs given")
    segmentation = segmentation_node.GetSegmentation()
    missing = [s for s in segment_ids if segmentation.GetSegment(s) is None]
    if missing:
        raise ValueError(f"segmentation {segmentation_node.GetName()!r} has no segments {missing}; "
                         f"it has {list(segmentation.GetSegmentIDs())}")
    if reference_volume_node is None or reference_volume_node.GetImageData() is None:
        raise ValueError("a reference volume with voxels is needed to define the grid")
    scene = segmentation_node.GetScene()
    ids = vtk.vtkStringArray()
    for segment_id in segment_ids:
        ids.InsertNextValue(segment_id)
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__labelmap_on_grid__")
    try:
        # Without a colour table the export numbers the segments 1, 2, ... in the order given.
        if not slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
                segmentation_node, ids, labelmap, reference_volume_node,
                slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY):
            raise ValueError(f"exporting segments {list(segment_ids)} of {segmentation_node.GetName()!r} "
                             f"onto the grid of {reference_volume_node.GetName()!r} failed")
        return np.array(slicer.util.arrayFromVolume(labelmap), copy=True)
    finally:
        display = labelmap.GetDisplayNode()
        colors = display.GetColorNode() if display is not None else None
        for temporary in (labelmap, display, colors):
            # The export makes a colour table for the labelmap; shared default tables are singletons.
            if temporary is not None and temporary.GetScene() is scene and not temporary.GetSingletonTag():
                scene.RemoveNode(temporary)


# -- tables and plots --------------------------------------------------------------------------------
def unit_from_column_name(column: str) -> str | None:
    """Unit label encoded in a column name's suffix (``lesion_dose_gy`` -> ``"Gy"``), or None."""
    lower = column.lower()
    for suffix in sorted(COLUMN_UNITS, key=len, reverse=True):
        if lower.endswith(suffix):
            return COLUMN_UNITS[suffix]
    return None


def _columns_of(rows) -> dict[str, list]:
    if isinstance(rows, Mapping):
        columns = {str(k): list(v) for k, v in rows.items()}
        lengths = {k: len(v) for k, v in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"table columns differ in length: {lengths}")
        return columns
    rows = list(rows)
    if not rows:
        raise ValueError("no rows given; a table needs at least one row (or pass a columns dict)")
    names = list(rows[0])
    for index, row in enumerate(rows):
        if list(row) != names:
            raise ValueError(f"row {index} has columns {list(row)}, row 0 has {names}")
    return {name: [row[name] for row in rows] for name in names}


def _vtk_column(name: str, values: list):
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool | np.bool_) for v in present) and len(present) == len(values):
        array = vtk.vtkBitArray()
        for v in values:
            array.InsertNextValue(int(v))
    elif (present and len(present) == len(values)
          and all(isinstance(v, numbers.Integral) and not isinstance(v, bool | np.bool_) for v in values)
          and all(-2**31 <= int(v) < 2**31 for v in values)):
        array = numpy_support.numpy_to_vtk(np.asarray(values, dtype=np.int32), deep=True)
    elif present and all(isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_) for v in present):
        array = numpy_support.numpy_to_vtk(np.array([math.nan if v is None else float(v) for v in values]),
                                           deep=True)
    elif all(isinstance(v, str) or v is None for v in values):
        array = vtk.vtkStringArray()
        for v in values:
            array.InsertNextValue("" if v is None else v)
    else:
        kinds = sorted({type(v).__name__ for v in values})
        raise ValueError(f"column {name!r} mixes value types {kinds}; use numbers, strings or booleans")
    array.SetName(name)
    return array


def table_node_from_rows(rows: Sequence[Mapping] | Mapping[str, Sequence], name: str,
                         units: Mapping[str, str] | None = None, scene=None):
    """Add a table node from rows (list of dicts) or columns (dict of sequences).

    Column types follow the values: bool -> bit, int -> int, float (None -> NaN) -> double,
    str -> string. Each column's unit label is ``units[column]`` if given, else the unit
    its name ends with (``_bq_per_ml`` -> Bq/mL, see :data:`COLUMN_UNITS`).
    """
    columns = _columns_of(rows)  # checked before a node is added
    node = _scene(scene).AddNewNodeByClass("vtkMRMLTableNode", name)
    return _fill_table(node, columns, units)


def update_table_node_from_rows(node, rows: Sequence[Mapping] | Mapping[str, Sequence],
                                units: Mapping[str, str] | None = None):
    """Replace the content of an existing table node with rows or columns; the node is kept.

    Its ID, name, attributes and the nodes that reference it (plot series, views) stay; all
    columns and their properties (unit labels) are replaced, typed as in
    :func:`table_node_from_rows`. Invalid rows raise ValueError before the node is touched.

    Returns
    -------
    vtkMRMLTableNode
        ``node``.
    """
    if node is None or not node.IsA("vtkMRMLTableNode"):
        raise ValueError(f"expected a table node to fill, got {node.GetClassName() if node else None}")
    columns = _columns_of(rows)
    was_modifying = node.StartModify()
    node.RemoveAllColumns()
    _fill_table(node, columns, units)
    node.EndModify(was_modifying)
    return node


def table_node_output(rows: Sequence[Mapping] | Mapping[str, Sequence], name: str, node=None, *,
                      units: Mapping[str, str] | None = None, columns: Sequence[str] = ()):
    """A Logic's table output: ``node`` refilled with ``rows``, or a new table node named after ``name``.

    A refilled node keeps its ID, name, attributes and references (see
    :func:`update_table_node_from_rows`); a new node gets a name unique in the scene. Without rows
    the table gets the empty ``columns``.
    """
    content = rows if len(rows) else {column: [] for column in columns}
    if node is None:
        return table_node_from_rows(content, slicer.mrmlScene.GenerateUniqueName(name), units=units)
    return update_table_node_from_rows(node, content, units=units)


def volume_node_output(image: sitk.Image, name: str, units: str, node=None):
    """A Logic's volume output: ``node`` refilled with ``image`` (ID, name, display kept), or a new node."""
    if node is None:
        return volume_node_from_image(image, slicer.mrmlScene.GenerateUniqueName(name), units=units)
    return update_volume_node_from_image(node, image, units=units)


def _fill_table(node, columns: dict[str, list], units: Mapping[str, str] | None):
    was_modifying = node.StartModify()
    for column, values in columns.items():
        node.AddColumn(_vtk_column(column, values))
        unit = (units or {}).get(column) or unit_from_column_name(column)
        if unit:
            node.SetColumnUnitLabel(column, unit)
    node.EndModify(was_modifying)
    return node


def rows_from_table_node(node) -> list[dict]:
    """Rows of a table node as dicts of Python values (str, int, float, bool), in column order."""
    table = node.GetTable()
    columns = {}
    for index in range(table.GetNumberOfColumns()):
        array = table.GetColumn(index)
        count = table.GetNumberOfRows()
        if isinstance(array, vtk.vtkStringArray):
            values = [array.GetValue(i) for i in range(count)]
        elif isinstance(array, vtk.vtkBitArray):
            values = [bool(array.GetValue(i)) for i in range(count)]
        elif isinstance(array, vtk.vtkDataArray):
            values = numpy_support.vtk_to_numpy(array)[:count].tolist()
        else:
            values = [array.GetVariantValue(i).ToString() for i in range(count)]
        columns[array.GetName()] = values
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _column_names(table_node) -> list[str]:
    table = table_node.GetTable()
    return [table.GetColumnName(i) for i in range(table.GetNumberOfColumns())]


def plot_chart(table_node, x_column: str, y_columns: Sequence[str], name: str,
               group_column: str | None = None, plot_type: str = "scatter", x_title: str | None = None,
               y_title: str | None = None, scene=None, chart_node=None):
    """Add a plot chart of table columns (or refill ``chart_node``): one series per y column or group.

    Parameters
    ----------
    table_node : vtkMRMLTableNode
        Source table (not modified).
    x_column, y_columns : str, list of str
        Column names.
    name : str
        Chart name and title.
    group_column : str, optional
        Split the rows by this column's values: one new table node and one series per group
        (and y column), e.g. a time-activity curve per lesion.
    plot_type : {"scatter", "line", "bar"}
    x_title, y_title : str, optional
        Axis titles; default the column name with its unit label.
    scene : vtkMRMLScene, optional
        Target scene of a new chart (default ``slicer.mrmlScene``).
    chart_node : vtkMRMLPlotChartNode, optional
        An existing chart to refill: its series are replaced and the series and group tables
        an earlier call made for it are removed from the scene (nothing is left behind); its
        ID and name are kept.
    """
    y_columns = [y_columns] if isinstance(y_columns, str) else list(y_columns)
    if plot_type not in _PLOT_TYPES:
        raise ValueError(f"unknown plot type {plot_type!r}; expected one of {list(_PLOT_TYPES)}")
    wanted = [x_column, *y_columns] + ([group_column] if group_column else [])
    missing = [c for c in wanted if c not in _column_names(table_node)]
    if not y_columns or missing:
        raise ValueError(f"table {table_node.GetName()!r} lacks columns {missing or 'y'}; "
                         f"it has {_column_names(table_node)}")
    if chart_node is not None and not chart_node.IsA("vtkMRMLPlotChartNode"):
        raise ValueError(f"expected a plot chart node to refill, got {chart_node.GetClassName()}")
    scene = chart_node.GetScene() if chart_node is not None else _scene(scene)
    if chart_node is None:
        chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", name)
    else:
        chart = chart_node
        _remove_chart_series(chart)
    chart.SetTitle(name)
    chart.SetXAxisTitle(x_title or _titled(table_node, x_column))
    chart.SetYAxisTitle(y_title or (_titled(table_node, y_columns[0]) if len(y_columns) == 1 else ", ".join(
        _titled(table_node, y) for y in y_columns)))
    sources = [(None, table_node)]
    if group_column:
        rows = rows_from_table_node(table_node)
        groups = list(dict.fromkeys(row[group_column] for row in rows))
        units = {c: table_node.GetColumnUnitLabel(c) for c in _column_names(table_node)}
        sources = [(group, table_node_from_rows([r for r in rows if r[group_column] == group],
                                                f"{name} {group}", units=units, scene=scene))
                   for group in groups]
        for _, source in sources:
            source.SetAttribute(_CHART_ATTRIBUTE, chart.GetID())
    for group, source in sources:
        for y in y_columns:
            label = y if group is None else (f"{group}" if len(y_columns) == 1 else f"{group} {y}")
            series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", label)
            series.SetAttribute(_CHART_ATTRIBUTE, chart.GetID())
            series.SetAndObserveTableNodeID(source.GetID())
            series.SetXColumnName(x_column)
            series.SetYColumnName(y)
            series.SetPlotType(getattr(slicer.vtkMRMLPlotSeriesNode, _PLOT_TYPES[plot_type]))
            if plot_type == "scatter":
                series.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleCircle)
            series.SetUniqueColor()
            chart.AddAndObservePlotSeriesNodeID(series.GetID())
    return chart


def _remove_chart_series(chart) -> None:
    """Detach every series of ``chart``; remove the series and group tables plot_chart made for it."""
    scene = chart.GetScene()
    made_here = []
    for index in range(chart.GetNumberOfPlotSeriesNodes()):
        series = chart.GetNthPlotSeriesNode(index)
        if series is not None and series.GetAttribute(_CHART_ATTRIBUTE) == chart.GetID():
            made_here.append(series)
            table = series.GetTableNode()
            if table is not None and table.GetAttribute(_CHART_ATTRIBUTE) == chart.GetID():
                made_here.append(table)
    chart.RemoveAllPlotSeriesNodeIDs()
    for node in dict.fromkeys(made_here):  # several series may share one group table
        scene.RemoveNode(node)


def _titled(table_node, column: str) -> str:
    unit = table_node.GetColumnUnitLabel(column)
    return f"{column} [{unit}]" if unit else column


# -- markups -----------------------------------------------------------------------------------------
def markups_line(p1_lps_mm, p2_lps_mm, name: str, scene=None):
    """Add a markups line between two LPS points (mm), e.g. a lesion's longest diameter."""
    ras = [_lps_to_ras_point(p1_lps_mm), _lps_to_ras_point(p2_lps_mm)]
    node = _scene(scene).AddNewNodeByClass("vtkMRMLMarkupsLineNode", name)
    node.CreateDefaultDisplayNodes()
    for point in ras:
        node.AddControlPoint(vtk.vtkVector3d(*point))
    return node


def markups_plane_to_point_normal(plane_node) -> tuple[np.ndarray, np.ndarray]:
    """(point on the plane, unit normal) of a markups plane, in LPS world coordinates (mm)."""
    if plane_node is None or not plane_node.IsA("vtkMRMLMarkupsPlaneNode"):
        got = plane_node.GetClassName() if plane_node is not None else None
        raise ValueError(f"expected a markups plane node, got {got}")
    if not plane_node.GetIsPlaneValid():
        raise ValueError(f"plane {plane_node.GetName()!r} is not fully placed")
    origin, normal = [0.0] * 3, [0.0] * 3
    plane_node.GetOriginWorld(origin)
    plane_node.GetNormalWorld(normal)
    normal = np.asarray(normal) * LPS_TO_RAS
    return np.asarray(origin) * LPS_TO_RAS, normal / np.linalg.norm(normal)


def points_from_fiducials(node) -> np.ndarray:
    """Control point positions of a markups node, (N, 3) in LPS world coordinates (mm)."""
    if node is None or not node.IsA("vtkMRMLMarkupsNode"):
        raise ValueError(f"expected a markups node, got {node.GetClassName() if node else None}")
    points = np.zeros((node.GetNumberOfControlPoints(), 3))
    position = [0.0, 0.0, 0.0]
    for index in range(len(points)):
        node.GetNthControlPointPositionWorld(index, position)
        points[index] = position
    return points * LPS_TO_RAS


def dicom_files_of_volume_node(node) -> list[str]:
    """The DICOM files a volume was loaded from (Slicer's DICOM database), for objects that reference it.

    Slicer's DICOM import records the SOP Instance UIDs in the node attribute
    ``DICOM.instanceUIDs``; the database maps them to files. A volume loaded any other way has
    none: a ValueError says so.
    """
    if node is None:
        raise ValueError("no CT volume selected: DICOM objects reference the CT they were drawn on")
    uids = (node.GetAttribute("DICOM.instanceUIDs") or "").split()
    database = getattr(slicer, "dicomDatabase", None)
    files = [database.fileForInstance(uid) for uid in uids] if database is not None else []
    if not uids or not all(files):
        raise ValueError(f"CT {node.GetName()!r} was not loaded from Slicer's DICOM database, so its DICOM files "
                         "are unknown; load the CT through the DICOM module (or use `luprrt export-dicom`)")
    return files
