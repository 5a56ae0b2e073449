"""The headless Slicer host: real MRML logics, slicer.util helpers, stand-ins and module loading."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

DEMO_MODULE = "LuPRRTHostDemo"
DEMO_SOURCE = textwrap.dedent('''
    """A scripted module written like the extension's modules, to exercise the host."""

    from __future__ import annotations

    import enum
    from pathlib import Path
    from typing import Annotated, Optional

    import ctk
    import qt
    import vtk

    import slicer
    from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
    from slicer.i18n import tr as _
    from slicer.i18n import translate
    from slicer.parameterNodeWrapper import Choice, Default, WithinRange, parameterNodeWrapper
    from slicer.ScriptedLoadableModule import *
    from slicer.util import VTKObservationMixin


    class Route(enum.Enum):
        IA = "IA"
        IV = "IV"


    class LuPRRTHostDemo(ScriptedLoadableModule):
        def __init__(self, parent):
            ScriptedLoadableModule.__init__(self, parent)
            self.parent.title = _("Host demo")
            self.parent.categories = [translate("qSlicerAbstractCoreModule", "Nuclear Medicine")]
            self.parent.contributors = ["Ann Example (Example Hospital)"]
            self.parent.helpText = _("Exercises the headless host.")
            self.parent.acknowledgementText = _("None.")
            slicer.app.connect("startupCompleted()", lambda: None)


    @parameterNodeWrapper
    class LuPRRTHostDemoParameterNode:
        inputVolume: vtkMRMLScalarVolumeNode
        segmentation: Optional[vtkMRMLSegmentationNode]
        marginMm: Annotated[float, WithinRange(0.0, 20.0)] = 3.0
        cycles: Annotated[int, Default(4)]
        tissue: Annotated[str, Choice(["liver", "kidney"])] = "liver"
        invert: bool = False
        hoursPostInjection: list[float] = [4.0, 24.0]
        route: Route = Route.IA
        outputFolder: Path = Path("/tmp")
        note: Optional[str]


    class LuPRRTHostDemoWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
        def __init__(self, parent=None):
            ScriptedLoadableModuleWidget.__init__(self, parent)
            VTKObservationMixin.__init__(self)

        def setup(self):
            ScriptedLoadableModuleWidget.setup(self)
            panel = ctk.ctkCollapsibleButton()
            panel.setLayout(qt.QFormLayout())
            self.selector = slicer.qMRMLNodeComboBox()
            self.selector.nodeTypes = ["vtkMRMLScalarVolumeNode"]
            qt.QTimer.singleShot(0, lambda: None)


    class LuPRRTHostDemoLogic(ScriptedLoadableModuleLogic):
        def getParameterNode(self):
            return LuPRRTHostDemoParameterNode(super().getParameterNode())


    class LuPRRTHostDemoTest(ScriptedLoadableModuleTest):
        calls = []

        def setUp(self):
            slicer.mrmlScene.Clear()

        def runTest(self):
            self.setUp()
            self.test_parameter_node_is_a_singleton()

        def test_parameter_node_is_a_singleton(self):
            LuPRRTHostDemoTest.calls.append("singleton")
            first = LuPRRTHostDemoLogic().getParameterNode()
            second = LuPRRTHostDemoLogic().getParameterNode()
            self.assertIs(first.parameterNode, second.parameterNode)
            self.delayDisplay("parameter node ok")

        def test_failure_is_reported(self):
            self.assertEqual(1, 2)

        def helper_without_prefix(self):
            pass
''')


@pytest.fixture(scope="module")
def demo_module(tmp_path_factory, slicer_host_session):
    """The demo module file, written to a repository-like folder and loaded headless."""
    from slicer_host import load_scripted_module

    root = tmp_path_factory.mktemp("repo")
    path = root / DEMO_MODULE / f"{DEMO_MODULE}.py"
    path.parent.mkdir()
    path.write_text(DEMO_SOURCE, encoding="utf-8")
    return load_scripted_module(path)


# -- bootstrap ---------------------------------------------------------------------------------------
def test_host_is_one_per_process_and_fills_the_slicer_namespace(host):
    import slicer
    from slicer_host import MODULE_LOGICS, start_host

    assert start_host() is host
    assert slicer.mrmlScene is host.scene
    assert slicer.app.mrmlScene() is host.scene
    assert slicer.app.applicationLogic() is host.app_logic
    for name in MODULE_LOGICS:
        logic = getattr(slicer.modules, name.lower()).logic()
        assert logic is host.logics[name]
        assert host.app_logic.GetModuleLogic(name) is logic
        assert logic.GetMRMLScene() is host.scene
    assert host.app_logic.GetColorLogic() is host.logics["Colors"]
    assert {"qt", "ctk", "slicer.ScriptedLoadableModule", "slicer.parameterNodeWrapper", "slicer.i18n",
            "slicer.app", "slicer.modules"} <= set(host.stand_ins)


def test_clear_scene_keeps_default_colours_and_subject_hierarchy(host):
    import slicer

    slicer.util.addVolumeFromArray(np.zeros((2, 2, 2)), name="temporary")
    host.clear_scene()
    assert slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode") == []
    assert host.scene.GetNodeByID("vtkMRMLColorTableNodeGrey") is not None
    generic = host.scene.GetNodeByID(host.logics["Colors"].GetDefaultLabelMapColorNodeID())
    assert generic is not None and generic.GetNumberOfColors() > 100
    assert len(slicer.util.getNodesByClass("vtkMRMLSubjectHierarchyNode")) == 1


def test_segmentation_converter_rules_are_registered(host):
    import slicer

    volume = slicer.util.addVolumeFromArray(np.zeros((20, 20, 20), np.uint8), np.diag([2.0, 2.0, 2.0, 1.0]))
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    node.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    node.GetSegmentation().AddEmptySegment("cube", "cube")
    cube = np.zeros((20, 20, 20), np.uint8)
    cube[5:15, 5:15, 5:15] = 1
    slicer.util.updateSegmentBinaryLabelmapFromArray(cube, node, "cube", volume)

    assert int(slicer.util.arrayFromSegmentBinaryLabelmap(node, "cube", volume).sum()) == 1000
    assert node.CreateClosedSurfaceRepresentation()
    surface = node.GetSegmentation().GetSegment("cube").GetRepresentation("Closed surface")
    bounds = np.array(surface.GetBounds())
    # The surface of voxels 5..14 (2 mm) lies between their centres and edges: 9..29 mm in RAS-positive z.
    assert 8.0 <= bounds[4] <= 10.0 and 28.0 <= bounds[5] <= 30.0


# -- slicer.util through the stand-in IO manager ----------------------------------------------------
def test_volume_helpers_and_file_round_trip(host, tmp_path):
    import slicer

    ijk_to_ras = np.array([[-0.8, 0.0, 0.0, 10.0], [0.0, -1.2, 0.0, -5.0], [0.0, 0.0, 3.0, 7.5],
                           [0.0, 0.0, 0.0, 1.0]])
    values = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    node = slicer.util.addVolumeFromArray(values, ijk_to_ras, name="ct")
    assert slicer.util.getNode("ct") is node
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(node), values)

    path = tmp_path / "ct.nrrd"
    assert slicer.util.saveNode(node, str(path))
    loaded = slicer.util.loadVolume(str(path), {"name": "ct again"})
    assert loaded.GetName() == "ct again"
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(loaded), values)
    np.testing.assert_allclose(slicer.util.arrayFromVTKMatrix(_ijk_to_ras(loaded)), ijk_to_ras, atol=1e-9)

    slicer.util.updateVolumeFromArray(loaded, np.ones((2, 3, 4), np.float32))
    assert slicer.util.arrayFromVolume(loaded).shape == (2, 3, 4)
    with pytest.raises(RuntimeError, match=r"file not found: .*missing\.nrrd"):
        slicer.util.loadVolume(str(tmp_path / "missing.nrrd"))


def _ijk_to_ras(node):
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return matrix


def test_segmentation_table_and_markups_files_round_trip(host, tmp_path):
    import slicer

    volume = slicer.util.addVolumeFromArray(np.zeros((6, 6, 6), np.uint8))
    seg = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "seg")
    seg.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    seg.GetSegmentation().AddEmptySegment("a", "a")
    mask = np.zeros((6, 6, 6), np.uint8)
    mask[1:3, 2:5, 0:4] = 1
    slicer.util.updateSegmentBinaryLabelmapFromArray(mask, seg, "a", volume)
    assert slicer.util.saveNode(seg, str(tmp_path / "seg.seg.nrrd"))
    seg_back = slicer.util.loadSegmentation(str(tmp_path / "seg.seg.nrrd"))
    assert int(slicer.util.arrayFromSegmentBinaryLabelmap(seg_back, "a", volume).sum()) == 24

    table = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", "tac")
    columns = [np.array([4.0, 24.0]), np.array([10.5, 7.25])]
    slicer.util.updateTableFromArray(table, columns, ["time_h", "a_mbq"])
    assert slicer.util.saveNode(table, str(tmp_path / "tac.csv"))
    table_back = slicer.util.loadTable(str(tmp_path / "tac.csv"))
    np.testing.assert_array_equal(slicer.util.arrayFromTableColumn(table_back, "a_mbq"), [10.5, 7.25])

    points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "points")
    points.AddControlPoint([1.0, 2.0, 3.0])
    points.AddControlPoint([-4.0, 5.5, 6.0])
    assert slicer.util.saveNode(points, str(tmp_path / "points.mrk.json"))
    points_back = slicer.util.loadMarkups(str(tmp_path / "points.mrk.json"))
    np.testing.assert_allclose(slicer.util.arrayFromMarkupsControlPoints(points_back),
                               [[1.0, 2.0, 3.0], [-4.0, 5.5, 6.0]])


def test_scene_bundle_round_trip_restores_data_and_parameters(host, tmp_path, demo_module):
    import slicer

    values = np.random.default_rng(3).normal(size=(3, 4, 5)).astype(np.float32)
    slicer.util.addVolumeFromArray(values, name="spect")
    parameters = demo_module.member("Logic")().getParameterNode()
    parameters.marginMm = 7.5
    parameters.inputVolume = slicer.util.getNode("spect")
    bundle = tmp_path / "case.mrb"
    assert slicer.util.saveScene(str(bundle))
    host.clear_scene()
    assert slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode") == []

    slicer.util.loadScene(str(bundle))
    restored = slicer.util.getNode("spect")
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(restored), values)
    parameters = demo_module.member("Logic")().getParameterNode()
    assert parameters.marginMm == 7.5
    assert parameters.inputVolume is restored


def test_try_with_error_display_reraises_without_a_popup(host):
    import slicer

    with pytest.raises(ValueError, match="no SPECT"), slicer.util.tryWithErrorDisplay("Computation failed"):
        raise ValueError("no SPECT selected")


# -- stand-ins -----------------------------------------------------------------------------------------
def test_parameter_node_defaults_and_round_trip(host, demo_module):
    import slicer

    logic_class = demo_module.member("Logic")
    parameters = logic_class().getParameterNode()
    assert (parameters.marginMm, parameters.cycles) == (3.0, 4)
    assert (parameters.tissue, parameters.invert) == ("liver", False)
    assert parameters.hoursPostInjection == [4.0, 24.0]
    assert parameters.route is demo_module.module.Route.IA
    assert parameters.outputFolder == Path("/tmp")
    assert parameters.inputVolume is None and parameters.segmentation is None and parameters.note is None

    volume = slicer.util.addVolumeFromArray(np.zeros((2, 2, 2)), name="spect")
    parameters.marginMm = 12.25
    parameters.cycles = 2
    parameters.invert = True
    parameters.hoursPostInjection = [4.0, 24.0, 96.0]
    parameters.route = demo_module.module.Route.IV
    parameters.inputVolume = volume
    parameters.note = "cycle 1"

    again = logic_class().getParameterNode()  # a second wrapper of the same node
    assert again.note == "cycle 1"
    again.note = None
    assert parameters.note is None
    assert (again.marginMm, again.cycles, again.invert) == (12.25, 2, True)
    assert again.hoursPostInjection == [4.0, 24.0, 96.0]
    assert again.route is demo_module.module.Route.IV
    assert again.inputVolume is volume
    node = again.parameterNode
    assert node.GetParameter("marginMm") == "12.25"
    assert node.GetNodeReferenceID("inputVolume") == volume.GetID()
    # Parameter nodes are singletons and survive a scene clear (as in Slicer): count only this module's.
    module_tag = node.GetSingletonTag()
    assert module_tag
    assert [n.GetSingletonTag() for n in slicer.util.getNodesByClass("vtkMRMLScriptedModuleNode")
            ].count(module_tag) == 1

    again.inputVolume = None
    assert parameters.inputVolume is None


def test_parameter_node_rejects_bad_values_with_clear_messages(host, demo_module):
    import slicer

    parameters = demo_module.member("Logic")().getParameterNode()
    with pytest.raises(ValueError, match=r"'marginMm': 25.0 is not within \[0.0, 20.0\]"):
        parameters.marginMm = 25.0
    with pytest.raises(ValueError, match=r"'tissue': 'spleen' is not one of \['liver', 'kidney'\]"):
        parameters.tissue = "spleen"
    with pytest.raises(TypeError, match=r"'cycles' expects int, got 2\.5"):
        parameters.cycles = 2.5
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    with pytest.raises(TypeError, match="expects vtkMRMLScalarVolumeNode, got vtkMRMLSegmentationNode"):
        parameters.inputVolume = segmentation
    with pytest.raises(AttributeError, match="has no parameter 'marginCm'"):
        parameters.marginCm = 1.0
    assert parameters.marginMm == 3.0  # unchanged by the rejected value


def test_parameter_node_wrapper_refuses_types_it_cannot_store(host):
    from slicer.parameterNodeWrapper import parameterNodeWrapper

    unsupported = type("Unsupported", (), {"__annotations__": {"lookup": dict}, "__module__": __name__})
    with pytest.raises(TypeError, match=r"Unsupported.lookup: type <class 'dict'> is not supported"):
        parameterNodeWrapper(unsupported)


def test_parameter_node_wrapper_refuses_what_slicer_refuses(host):
    """PEP 604 unions and a union of nodes without None fail in Slicer, so they fail here too."""
    import typing

    from slicer import vtkMRMLMarkupsFiducialNode, vtkMRMLMarkupsPlaneNode
    from slicer.parameterNodeWrapper import parameterNodeWrapper

    def wrapper_class(annotation):
        return type("Fields", (), {"__annotations__": {"field": annotation}, "__module__": __name__})

    for annotation in (float | None, vtkMRMLMarkupsPlaneNode | vtkMRMLMarkupsFiducialNode | None):
        with pytest.raises(TypeError, match=r"Fields.field: write typing.Union\[...\] or typing.Optional"):
            parameterNodeWrapper(wrapper_class(annotation))
    with pytest.raises(TypeError, match=r"Fields.field: a union of node classes must include None"):
        parameterNodeWrapper(wrapper_class(typing.Union[vtkMRMLMarkupsPlaneNode,  # noqa: UP007 - the point
                                                        vtkMRMLMarkupsFiducialNode]))
    # What Slicer accepts is accepted: Optional scalars and Union[nodes..., None].
    parameterNodeWrapper(wrapper_class(typing.Optional[float]))  # noqa: UP045 - Slicer needs typing.Optional
    parameterNodeWrapper(wrapper_class(typing.Union[vtkMRMLMarkupsPlaneNode,  # noqa: UP007 - as above
                                                    vtkMRMLMarkupsFiducialNode, None]))


def test_parameter_node_checks_value_types_as_slicer_does(host, demo_module):
    """Slicer's IsInstance validators refuse numpy scalars, 0/1 for bools, str for paths, values for enums."""
    parameters = demo_module.member("Logic")().getParameterNode()
    for name, value in (("marginMm", np.float32(2.5)), ("cycles", np.int64(2)), ("invert", 1),
                        ("invert", np.bool_(True)), ("outputFolder", "/tmp/out"), ("route", "IV"),
                        ("marginMm", True)):
        with pytest.raises(TypeError, match=f"parameter '{name}' expects"):
            setattr(parameters, name, value)
    parameters.marginMm = 2  # an int is a valid float value in Slicer too
    assert parameters.marginMm == 2.0
    parameters.marginMm = np.float64(2.5)  # a subclass of float
    assert parameters.marginMm == 2.5


def test_scripted_module_loads_headless_like_slicer(host, demo_module):
    import slicer

    parent = demo_module.parent
    assert (parent.title, parent.categories, parent.hidden) == ("Host demo", ["Nuclear Medicine"], False)
    assert parent.contributors == ["Ann Example (Example Hospital)"]
    assert getattr(slicer.modules, DEMO_MODULE.lower()) is parent
    assert getattr(slicer.modules, f"{DEMO_MODULE}Instance") is demo_module.instance
    assert slicer.util.modulePath(DEMO_MODULE) == str(demo_module.path)
    resources = demo_module.path.parent / "Resources"
    assert demo_module.instance.resourcePath("UI/x.ui") == str(resources / "UI" / "x.ui")
    demo_module.member("Widget")().setup()  # qt/ctk/q* widget classes are harmless stubs

    test_class = demo_module.member("Test")
    test_class.calls.clear()
    demo_module.instance.runTest()  # what "Reload and Test" runs
    assert test_class.calls == ["singleton"]
    case = test_class("test_failure_is_reported")
    with pytest.raises(AssertionError, match="1 != 2"):
        case.test_failure_is_reported()


def test_module_discovery_lists_module_files_and_their_self_tests(tmp_path, demo_module):
    from slicer_host import module_files, self_check_names

    (tmp_path / "NoModule").mkdir()
    (tmp_path / "NoModule" / "helper.py").write_text("x = 1\n")
    (tmp_path / "NoTests").mkdir()
    (tmp_path / "NoTests" / "NoTests.py").write_text("class NoTests:\n    pass\n")
    (tmp_path / DEMO_MODULE).mkdir()
    (tmp_path / DEMO_MODULE / f"{DEMO_MODULE}.py").write_text(DEMO_SOURCE)

    assert [p.parent.name for p in module_files(tmp_path)] == ["LuPRRTHostDemo", "NoTests"]
    assert [name for name, _ in self_check_names(demo_module.path)] == [
        "test_parameter_node_is_a_singleton", "test_failure_is_reported"]
    assert self_check_names(tmp_path / "NoTests" / "NoTests.py") == []


def test_qt_ctk_and_gui_classes_are_harmless_stubs(host):
    import ctk
    import qt
    import slicer

    assert {"qt", "ctk"} <= set(host.stand_ins)
    widget = qt.QWidget()
    widget.setLayout(qt.QVBoxLayout())
    assert not widget.layout().count()
    assert qt.Qt.AlignLeft | qt.Qt.AlignTop
    assert slicer.util.settingsValue("LuPRRT/never-set", 5) == 5
    ctk.ctkCollapsibleButton().text = "Inputs"
    slicer.qMRMLNodeComboBox().setMRMLScene(slicer.mrmlScene)
    with pytest.raises(AttributeError, match="vtkMRMLNoSuchNode"):
        _ = slicer.vtkMRMLNoSuchNode


def test_i18n_and_startup_callbacks(host):
    from slicer.i18n import tr, translate
    from slicer_host.app import Application

    assert tr("Inputs") == "Inputs"
    assert translate("qSlicerAbstractCoreModule", "Nuclear Medicine") == "Nuclear Medicine"

    app = Application(host.scene, host.app_logic, None, None, host.temporary_path)
    calls = []
    app.connect("startupCompleted()", lambda: calls.append("early"))
    assert calls == []
    app.emit_startup_completed()
    app.connect("startupCompleted()", lambda: calls.append("late"))
    assert calls == ["early", "late"]


def test_sample_patient_registers_once_with_sample_data(host, monkeypatch):
    """Sample Data compares sources by their text (downloader repr included): re-registering is a no-op."""
    import importlib.machinery
    import sys
    import types

    from slicer_host import load_scripted_module

    from_repo = Path(__file__).resolve().parents[2] / "LuPRRTExtension" / "LuPRRTExtension.py"
    module = load_scripted_module(from_repo).module
    registered: list[str] = []

    def register(**source):
        text = repr(sorted((key, repr(value)) for key, value in source.items()))
        if text not in registered:  # as SampleDataLogic.isSampleDataSourceRegistered
            registered.append(text)

    fake = types.ModuleType("SampleData")
    fake.__spec__ = importlib.machinery.ModuleSpec("SampleData", None)
    fake.SampleDataLogic = types.SimpleNamespace(registerCustomSampleDataSource=register)
    monkeypatch.setitem(sys.modules, "SampleData", fake)
    assert module.registerSampleData() is True
    assert module.registerSampleData() is True
    assert len(registered) == 1
    assert "sampleName" in registered[0] and module.SAMPLE_NAME in registered[0]
