"""Start Slicer's real MRML and module logics headless, once per process.

:func:`start_host` builds what Slicer's application builds at start-up, from the
``slicer-core`` wheel: one ``vtkMRMLScene``, a ``vtkSlicerApplicationLogic`` whose
colour logic holds the default colour nodes, and the module logics (Colors,
Units, SubjectHierarchy, Volumes, Segmentations, Markups, Tables, Plots,
Sequences, Transforms, Models, Texts, CropVolume), each given the application
logic and the scene and registered with ``appLogic.SetModuleLogic(name, logic)``.
Setting the scene on the segmentations logic registers the segmentation converter
rules. Remote IO and data IO logics are wired in so that ``.mrb`` bundles read back.

It then fills the gaps of the ``slicer`` namespace (``slicer.mrmlScene``,
``slicer.app``, ``slicer.modules``, ``slicer.ScriptedLoadableModule``,
``slicer.parameterNodeWrapper``, ``slicer.i18n``, ``qt``, ``ctk``) with stand-ins,
and only where the real thing is missing.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

logger = logging.getLogger(__name__)

# Slicer module name -> logic class of slicer-core (order matters: colours and units first,
# subject hierarchy before the modules that place their nodes in it).
MODULE_LOGICS: dict[str, str] = {
    "Colors": "vtkSlicerColorLogic",
    "Units": "vtkSlicerUnitsLogic",
    "SubjectHierarchy": "vtkSlicerSubjectHierarchyModuleLogic",
    "Volumes": "vtkSlicerVolumesLogic",
    "Segmentations": "vtkSlicerSegmentationsModuleLogic",
    "Markups": "vtkSlicerMarkupsLogic",
    "Tables": "vtkSlicerTablesLogic",
    "Plots": "vtkSlicerPlotsLogic",
    "Sequences": "vtkSlicerSequencesLogic",
    "Transforms": "vtkSlicerTransformLogic",
    "Models": "vtkSlicerModelsLogic",
    "Texts": "vtkSlicerTextsLogic",
    "CropVolume": "vtkSlicerCropVolumeLogic",
}


@dataclass
class Host:
    """The running headless host: the scene, the application logic and the module logics."""

    scene: object
    app_logic: object
    logics: dict[str, object]
    app: object
    temporary_path: str
    stand_ins: list[str] = field(default_factory=list)
    io_logics: tuple = ()

    def clear_scene(self) -> None:
        """Remove every node except singletons (default colours, units, ...), as ``Clear(0)`` in Slicer,
        and give the empty scene its subject hierarchy again, as at start-up."""
        import slicer

        self.scene.Clear(False)
        slicer.vtkMRMLSubjectHierarchyNode.ResolveSubjectHierarchy(self.scene)


# The running host is kept on the slicer module itself, so that this package imported under
# two names (``slicer_host`` and ``Testing.slicer_host``) still makes one host per process.
_HOST_ATTRIBUTE = "_luprrt_headless_host"


def current_host() -> Host | None:
    """The host started in this process, or None."""
    slicer = sys.modules.get("slicer")
    return getattr(slicer, _HOST_ATTRIBUTE, None) if slicer is not None else None


def start_host() -> Host:
    """Start the headless host (idempotent: one per process) and return it."""
    host = current_host()
    if host is not None:
        return host
    import slicer

    stand_ins = install_stand_ins()
    temporary_path = tempfile.mkdtemp(prefix="luprrt-slicer-host-")
    atexit.register(shutil.rmtree, temporary_path, True)

    scene = slicer.vtkMRMLScene()
    app_logic = slicer.vtkSlicerApplicationLogic()
    # Slicer's home and share directories hold colour files and terminologies; the wheel ships
    # none, so point them at an empty folder rather than the process's current directory.
    app_logic.SetHomeDirectory(temporary_path)
    app_logic.SetShareDirectory("share")
    (Path(temporary_path) / "share" / "ColorFiles").mkdir(parents=True)
    app_logic.SetTemporaryPath(temporary_path)
    app_logic.SetMRMLScene(scene)

    logics = {}
    for name, class_name in MODULE_LOGICS.items():
        logic = getattr(slicer, class_name)()
        logic.SetMRMLApplicationLogic(app_logic)
        if name == "Colors":
            app_logic.SetColorLogic(logic)
        logic.SetMRMLScene(scene)
        app_logic.SetModuleLogic(name, logic)
        logics[name] = logic
    _add_generic_label_colors(scene, logics["Colors"])
    io_logics = _wire_remote_io(scene, app_logic, temporary_path)

    existing = getattr(slicer, "modules", None)
    modules = existing if isinstance(existing, SimpleNamespace) else SimpleNamespace()
    from .app import Application, CoreModule
    from .io_manager import CoreIOManager

    for name, logic in logics.items():
        setattr(modules, name.lower(), CoreModule(name, logic))
    app = Application(scene, app_logic, CoreIOManager(scene, app_logic, logics, temporary_path), modules,
                      temporary_path)
    if not hasattr(slicer, "app"):
        slicer.app = app
        stand_ins.append("slicer.app")
    if not hasattr(slicer, "modules"):
        slicer.modules = modules
        stand_ins.append("slicer.modules")
    slicer.mrmlScene = scene
    host = Host(scene, app_logic, logics, slicer.app, temporary_path, stand_ins, io_logics)
    setattr(slicer, _HOST_ATTRIBUTE, host)
    logger.info("headless Slicer host started (stand-ins: %s)", ", ".join(stand_ins))
    return host


def _add_generic_label_colors(scene, color_logic) -> None:
    """Slicer's default labelmap colours come from GenericColors.txt, which the wheel lacks:
    put a procedural label table under that node ID so labelmap display nodes find one."""
    import slicer

    wanted_id = color_logic.GetDefaultLabelMapColorNodeID()
    prefix = "vtkMRMLColorTableNode"
    if scene.GetNodeByID(wanted_id) is not None or not wanted_id.startswith(prefix):
        return
    table = slicer.vtkMRMLColorTableNode()
    table.SetTypeToLabels()
    table.SetSingletonTag(wanted_id[len(prefix):])
    table.SetName("GenericColors")
    table.SetAttribute("Category", "Discrete")
    table.SetSaveWithScene(False)  # like Slicer's default colour nodes: not written into scenes
    scene.AddNode(table)


def _wire_remote_io(scene, app_logic, temporary_path: str) -> tuple:
    """Remote IO + data IO logics: storage nodes of a loaded scene or bundle read through them."""
    import slicer

    remote_io = slicer.vtkMRMLRemoteIOLogic()
    cache = Path(temporary_path) / "cache"
    cache.mkdir()
    (cache / ".slicer-cache").touch()  # the cache manager's marker of a folder it may clean
    remote_io.GetCacheManager().SetRemoteCacheDirectory(str(cache))
    data_io = slicer.vtkDataIOManagerLogic()
    data_io.SetMRMLApplicationLogic(app_logic)
    data_io.SetAndObserveDataIOManager(remote_io.GetDataIOManager())
    remote_io.SetMRMLScene(scene)
    remote_io.AddDataIOToScene()
    return remote_io, data_io


def install_stand_ins() -> list[str]:
    """Put the headless stand-ins into the ``slicer`` namespace where the real ones are missing.

    Returns the names installed (empty inside the real Slicer application).
    """
    import slicer

    from . import i18n, parameter_node, scripted_module
    from .qt_stubs import gui_class_fallback, install_qt_stubs

    installed = install_qt_stubs()
    for attribute, factory in (("ScriptedLoadableModule", scripted_module.make_module),
                               ("parameterNodeWrapper", parameter_node.make_module),
                               ("i18n", i18n.make_module)):
        try:
            importlib.import_module(f"slicer.{attribute}")
        except ImportError:
            setattr(slicer, attribute, factory())
            installed.append(f"slicer.{attribute}")
    if "qt" in installed and "__getattr__" not in vars(slicer):
        # Widget classes (qMRMLNodeComboBox, ...) are referenced only inside Widget code.
        slicer.__getattr__ = gui_class_fallback
        installed.append("slicer.q*/ctk* GUI classes")
    return installed

