"""Stand-in for Slicer's ``qSlicerCoreIOManager``: read and write files with MRML logics.

``slicer.util.loadVolume``/``loadSegmentation``/``loadTable``/``loadMarkups``/
``loadScene``/``saveNode``/``saveScene`` call ``slicer.app.coreIOManager()``; this class
answers with the module logics' own readers (volumes, segmentations, tables, markups,
models, transforms, sequences) and the storage nodes' writers, so a file is read
and written exactly as Slicer's C++ code does it. Scenes are read and written as
``.mrml`` files, directories or ``.mrb`` bundles (zip archives of a bundle directory).
"""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from pathlib import Path

logger = logging.getLogger(__name__)

# File name endings per Slicer file type; the longest matching ending wins.
FILE_TYPES: dict[str, tuple[str, ...]] = {
    "SegmentationFile": (".seg.nrrd", ".seg.nhdr", ".seg.vtm"),
    "SequenceFile": (".seq.nrrd", ".seq.nhdr", ".mrb.seq"),
    "MarkupsFile": (".mrk.json", ".fcsv"),
    "SceneFile": (".mrml", ".mrb"),
    "VolumeFile": (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd", ".hdr", ".vtk.nrrd"),
    "TableFile": (".csv", ".tsv"),
    "ModelFile": (".vtk", ".vtp", ".stl", ".ply", ".obj"),
    "TransformFile": (".h5", ".tfm", ".hdf5"),
}
# Writer file type per node class (first matching base class).
WRITER_TYPES: tuple[tuple[str, str], ...] = (
    ("vtkMRMLSegmentationNode", "SegmentationFile"),
    ("vtkMRMLSequenceNode", "SequenceFile"),
    ("vtkMRMLMarkupsNode", "MarkupsFile"),
    ("vtkMRMLVolumeNode", "VolumeFile"),
    ("vtkMRMLTableNode", "TableFile"),
    ("vtkMRMLModelNode", "ModelFile"),
    ("vtkMRMLTransformNode", "TransformFile"),
    ("vtkMRMLTextNode", "TextFile"),
)
# vtkSlicerVolumesLogic::AddArchetypeVolume loading-option bits, by slicer.util.loadVolume property.
_VOLUME_OPTION_BITS = {"labelmap": 1, "center": 2, "singleFile": 4, "autoWindowLevel": 8,
                       "discardOrientation": 16}


def _error(messages, text: str) -> bool:
    import vtk

    logger.error(text)
    if messages is not None:
        messages.AddMessage(vtk.vtkCommand.ErrorEvent, text)
    return False


def node_name_from_file(path: str) -> str:
    """Node name Slicer gives a loaded file: its name without the (compound) extension."""
    name = Path(path).name
    endings = sorted((e for es in FILE_TYPES.values() for e in es), key=len, reverse=True)
    for ending in endings:
        if name.lower().endswith(ending):
            return name[: -len(ending)]
    return Path(name).stem


class CoreIOManager:
    """Reads files into and writes nodes and scenes from one MRML scene."""

    def __init__(self, scene, app_logic, logics: dict, temporary_path: str):
        self._scene = scene
        self._app_logic = app_logic
        self._logics = logics
        self._temporary_path = temporary_path

    # -- file types ---------------------------------------------------------------------------------
    def fileType(self, fileName) -> str:
        """Slicer file type of a file name (``"VolumeFile"``, ``"SegmentationFile"``, ...) or ``"NoFile"``."""
        name = str(fileName).lower()
        if Path(fileName).is_dir():
            return "SceneFile"
        best, best_length = "NoFile", 0
        for file_type, endings in FILE_TYPES.items():
            for ending in endings:
                if name.endswith(ending) and len(ending) > best_length:
                    best, best_length = file_type, len(ending)
        return best

    def fileWriterFileType(self, node) -> str:
        """Slicer file type used to save ``node``."""
        for class_name, file_type in WRITER_TYPES:
            if node.IsA(class_name):
                return file_type
        return "NoFile"

    # -- reading ------------------------------------------------------------------------------------
    def loadNodes(self, fileType: str, properties: dict, loadedNodes=None, userMessages=None) -> bool:
        """Read ``properties["fileName"]`` as ``fileType``; loaded nodes go into ``loadedNodes``."""
        file_name = str(properties.get("fileName", ""))
        if not file_name or not os.path.exists(file_name):
            return _error(userMessages, f"file not found: {file_name!r}")
        readers = {
            "VolumeFile": self._read_volume,
            "SegmentationFile": self._read_segmentation,
            "TableFile": self._read_table,
            "MarkupsFile": self._read_markups,
            "ModelFile": self._read_model,
            "TransformFile": self._read_transform,
            "SequenceFile": self._read_sequence,
            "SceneFile": self._read_scene,
        }
        reader = readers.get(fileType)
        if reader is None:
            return _error(userMessages, f"no reader for file type {fileType!r} ({file_name})")
        nodes = reader(file_name, properties, userMessages)
        if nodes is None:
            return _error(userMessages, f"failed to read {file_name} as {fileType}")
        for node in nodes:
            if loadedNodes is not None:
                loadedNodes.AddItem(node)
        return True

    def _name(self, file_name: str, properties: dict) -> str:
        return str(properties.get("name") or node_name_from_file(file_name))

    def _read_volume(self, file_name, properties, messages):
        import vtk

        options = sum(bit for key, bit in _VOLUME_OPTION_BITS.items() if properties.get(key))
        files = vtk.vtkStringArray()
        for extra in properties.get("fileNames", ()):
            files.InsertNextValue(str(extra))
        name = self._name(file_name, properties)
        node = self._logics["Volumes"].AddArchetypeVolume(file_name, name, options, files, messages)
        if node is None:
            return None
        if properties.get("colorNodeID") and node.GetDisplayNode():
            node.GetDisplayNode().SetAndObserveColorNodeID(properties["colorNodeID"])
        return [node]

    def _read_segmentation(self, file_name, properties, messages):
        auto_opacities = bool(properties.get("autoOpacities", True))
        node = self._logics["Segmentations"].LoadSegmentationFromFile(
            file_name, auto_opacities, self._name(file_name, properties), None, messages)
        return [node] if node is not None else None

    def _read_table(self, file_name, properties, messages):
        name = self._name(file_name, properties)
        node = self._logics["Tables"].AddTable(file_name, name, True, "", messages)
        return [node] if node is not None else None

    def _read_markups(self, file_name, properties, messages):
        node_id = self._logics["Markups"].LoadMarkups(file_name, properties.get("name"), messages)
        return [self._scene.GetNodeByID(node_id)] if node_id else None

    def _read_model(self, file_name, properties, messages):
        coordinates = int(properties.get("coordinateSystem", 1))
        node = self._logics["Models"].AddModel(file_name, coordinates, messages)
        if node is not None and properties.get("name"):
            node.SetName(properties["name"])
        return [node] if node is not None else None

    def _read_transform(self, file_name, properties, messages):
        node = self._logics["Transforms"].AddTransform(file_name, self._scene, messages)
        if node is not None and properties.get("name"):
            node.SetName(properties["name"])
        return [node] if node is not None else None

    def _read_sequence(self, file_name, properties, messages):
        node = self._logics["Sequences"].AddSequence(file_name, messages)
        if node is not None and properties.get("name"):
            node.SetName(properties["name"])
        return [node] if node is not None else None

    def _read_scene(self, file_name, properties, messages):
        if properties.get("clear"):
            self._scene.Clear(False)
        if file_name.lower().endswith(".mrb"):
            unpack_dir = tempfile.mkdtemp(prefix="mrb-", dir=self._temporary_path)
            ok = self._app_logic.OpenSlicerDataBundle(file_name, unpack_dir, messages)
            return [] if ok else None
        mrml = file_name
        if os.path.isdir(file_name):
            found = sorted(Path(file_name).glob("*.mrml"))
            if not found:
                _error(messages, f"no .mrml file in scene directory {file_name}")
                return None
            mrml = str(found[0])
        self._scene.SetURL(mrml)
        ok = self._scene.Import(None, messages)
        return [] if ok else None

    # -- writing ------------------------------------------------------------------------------------
    def saveNodes(self, fileType: str, properties: dict, userMessages=None) -> bool:
        """Write the node ``properties["nodeID"]`` (or the scene, for ``"SceneFile"``) to ``fileName``."""
        file_name = str(properties.get("fileName", ""))
        if not file_name:
            return _error(userMessages, "no fileName given")
        if fileType == "SceneFile":
            return self._write_scene(file_name, userMessages)
        node = self._scene.GetNodeByID(properties.get("nodeID") or "")
        if node is None:
            return _error(userMessages, f"no node {properties.get('nodeID')!r} in the scene")
        if not node.IsA("vtkMRMLStorableNode"):
            return _error(userMessages,
                          f"node {node.GetName()!r} ({node.GetClassName()}) cannot be saved to a file")
        storage = node.GetStorageNode()
        if storage is None or not storage.SupportedFileType(file_name):
            node.AddDefaultStorageNode(file_name)
            storage = node.GetStorageNode()
        if storage is None:
            return _error(userMessages, f"no storage node for {node.GetClassName()} and {file_name}")
        storage.SetFileName(file_name)
        if "useCompression" in properties:
            storage.SetUseCompression(int(bool(properties["useCompression"])))
        ok = bool(storage.WriteData(node))
        if userMessages is not None:
            userMessages.AddMessages(storage.GetUserMessages())
        if not ok:
            return _error(userMessages, f"writing {node.GetName()!r} to {file_name} failed")
        return True

    def _write_scene(self, file_name: str, messages) -> bool:
        target = Path(file_name)
        if target.suffix.lower() == ".mrml":
            target.parent.mkdir(parents=True, exist_ok=True)
            self._scene.SetRootDirectory(str(target.parent))
            self._scene.SetURL(str(target))
            return bool(self._scene.Commit()) or _error(messages, f"writing scene {target} failed")
        if target.suffix.lower() == ".mrb":
            # A bundle is the zip of a bundle directory named like the file (as Slicer writes it).
            work = Path(tempfile.mkdtemp(prefix="mrb-", dir=self._temporary_path)) / target.stem
            work.mkdir()
            if not self._app_logic.SaveSceneToSlicerDataBundleDirectory(str(work), None, messages):
                return _error(messages, f"writing scene bundle directory {work} failed")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(work.rglob("*")):
                    archive.write(path, path.relative_to(work.parent).as_posix())
            return True
        target.mkdir(parents=True, exist_ok=True)
        if not self._app_logic.SaveSceneToSlicerDataBundleDirectory(str(target), None, messages):
            return _error(messages, f"writing scene directory {target} failed")
        return True
