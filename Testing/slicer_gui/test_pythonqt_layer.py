"""The PythonQt-compatible layer itself: each PythonQt behaviour that a GUI test relies on, on real Qt."""

from __future__ import annotations

import time

import pytest


def test_properties_are_attributes_and_win_over_methods():
    import qt

    button = qt.QPushButton("Apply")
    button.enabled = False
    assert not button.isEnabled()  # the widget itself, not a Python attribute
    button.toolTip = "Select a SPECT volume."
    assert button.toolTip == "Select a SPECT volume." == button.property("toolTip")
    assert button.text == "Apply"  # the property, not the bound method text()
    spin = qt.QDoubleSpinBox()
    spin.maximum = 20.0
    spin.value = 12.5
    assert spin.value == pytest.approx(12.5)
    with pytest.raises(TypeError, match="cannot be set"):
        spin.value = "twelve"


def test_name_and_class_name_as_in_pythonqt():
    import qt

    box = qt.QCheckBox()
    box.name = "overwriteCheckBox"
    assert box.objectName == "overwriteCheckBox" == box.name
    assert box.className() == "QCheckBox"
    assert qt.QCheckBox is qt.QCheckBox  # made once, on first use


def test_string_connect_reaches_the_slot_and_refuses_unknown_signals():
    import qt

    box = qt.QCheckBox()
    seen = []
    box.connect("toggled(bool)", seen.append)
    box.checked = True
    assert seen == [True]
    with pytest.raises(ValueError, match=r"has no signal 'toggeled\(bool\)'"):
        box.connect("toggeled(bool)", seen.append)
    with pytest.raises(ValueError, match="has no signal"):
        box.connect("toggled(int)", seen.append)  # right name, wrong argument type
    box.disconnect("toggled(bool)", seen.append)
    box.checked = False
    assert seen == [True]


def test_an_exception_in_a_slot_is_caught_for_the_test(slot_errors):
    import qt

    button = qt.QPushButton()

    def handler():
        raise RuntimeError("handler failed")

    button.connect("clicked()", handler)
    button.click()  # returns normally: Qt swallows the exception
    errors = slot_errors()
    assert [str(e) for e in errors] == ["handler failed"]


def test_enums_timers_and_dialogs(shown):
    import qt
    import slicer

    assert int(qt.QMessageBox.Ok) == 0x400 and int(qt.Qt.AlignLeft) == 1
    fired = []
    qt.QTimer.singleShot(0, lambda: fired.append(True))
    deadline = time.monotonic() + 5.0
    while not fired and time.monotonic() < deadline:
        slicer.app.processEvents()
    assert fired == [True]
    slicer.util.errorDisplay("Bad input: the SPECT has no units", windowTitle="LobeQuant")
    assert [(m.kind, m.text) for m in shown.messages] == [("critical", "Bad input: the SPECT has no units")]
    progress = slicer.util.createProgressDialog(maximum=100)
    progress.value = 40
    progress.value = 100
    assert shown.progress == [[0, 40, 100]]


def test_application_answers_what_slicers_layer_asks(gui):
    import slicer

    assert slicer.util.mainWindow() is gui.main_window
    assert gui.main_window in slicer.app.topLevelWidgets()
    assert slicer.app.translate("LobeQuant", "Apply") == "Apply"
    assert slicer.app.moduleDocumentationUrl("LobeQuant").endswith("/lobequant.html")
    assert slicer.app.moduleManager().module("Volumes") is not None


def test_node_combo_box_follows_the_scene(scene):
    import slicer

    combo = slicer.qMRMLNodeComboBox()
    combo.nodeTypes = ("vtkMRMLScalarVolumeNode",)
    combo.noneEnabled = True
    combo.noneDisplay = "None"
    combo.baseName = "SPECT"
    combo.setMRMLScene(scene)
    changes = []
    combo.connect("currentNodeChanged(vtkMRMLNode*)", changes.append)
    ct = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT")
    scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "labels")  # a subclass: listed by default
    hidden = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "hidden")
    hidden.SetHideFromEditors(True)
    scene.AddNewNodeByClass("vtkMRMLTableNode", "table")  # another type: never listed
    combo.setCurrentNode(None)
    assert combo.itemTexts() == ["None", "CT", "labels"]
    assert combo.currentNode() is None and changes == []  # adding nodes selects none
    combo.showChildNodeTypes = False
    assert combo.itemTexts() == ["None", "CT"]
    combo.setCurrentNode(ct)
    assert changes == [ct] and combo.currentNodeID == ct.GetID()
    scene.RemoveNode(ct)
    assert combo.currentNode() is None and changes == [ct, None]
    made = combo.addNode()
    assert made.GetName() == "SPECT" and combo.currentNode() is made
    assert combo.observerCount() == 5
    combo.setMRMLScene(None)
    assert combo.observerCount() == 0 and combo.itemTexts() == ["None"]


def test_node_combo_box_drops_its_observers_when_deleted(scene):
    import slicer
    from PySide6 import QtCore

    combo = slicer.qMRMLNodeComboBox()
    combo.nodeTypes = ("vtkMRMLScalarVolumeNode",)
    combo.setMRMLScene(scene)
    observed = combo._observed
    combo.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    assert observed["tags"] == [] and observed["scene"] is None
    scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "after")  # no callback into a deleted widget


def test_table_view_shows_the_table_and_its_changes(scene):
    import qt
    import slicer

    from luprrt import mrml

    table = mrml.table_node_from_rows({"lesion_id": ["L01", "L02"], "tn_mean": [4.5, 7.25]}, "T/N")
    view = slicer.qMRMLTableView()
    view.setMRMLTableNode(table)
    model = view.model()
    assert [model.headerData(c, qt.Qt.Horizontal) for c in range(2)] == ["lesion_id", "tn_mean"]
    assert [view.cellText(r, 1) for r in range(2)] == ["4.5", "7.25"]
    table.GetTable().SetValue(1, 1, 9.0)
    table.Modified()
    assert view.cellText(1, 1) == "9"


UI_WITH_MRML_CONNECTIONS = """<?xml version="1.0" encoding="UTF-8"?>
<ui version="4.0"><class>Demo</class>
 <widget class="qMRMLWidget" name="Demo"><layout class="QVBoxLayout" name="layout">
  <item><widget class="qMRMLNodeComboBox" name="tableSelector">
   <property name="nodeTypes"><stringlist><string>vtkMRMLTableNode</string></stringlist></property>
   <property name="noneEnabled"><bool>true</bool></property></widget></item>
  <item><widget class="qMRMLTableView" name="tableView"/></item>
  <item><widget class="ctkPathLineEdit" name="calibrationPath">
   <property name="filters"><set>ctkPathLineEdit::Files|ctkPathLineEdit::Readable</set></property></widget></item>
 </layout></widget>
 <customwidgets>
  <customwidget><class>qMRMLWidget</class><extends>QWidget</extends><header>qMRMLWidget.h</header></customwidget>
  <customwidget><class>qMRMLNodeComboBox</class><extends>QWidget</extends><header>x.h</header></customwidget>
  <customwidget><class>qMRMLTableView</class><extends>QTableView</extends><header>x.h</header></customwidget>
  <customwidget><class>ctkPathLineEdit</class><extends>QWidget</extends><header>x.h</header></customwidget>
 </customwidgets>
 <connections>
  <connection><sender>Demo</sender><signal>mrmlSceneChanged(vtkMRMLScene*)</signal>
   <receiver>tableSelector</receiver><slot>setMRMLScene(vtkMRMLScene*)</slot></connection>
  <connection><sender>tableSelector</sender><signal>currentNodeChanged(vtkMRMLNode*)</signal>
   <receiver>tableView</receiver><slot>setMRMLTableNode(vtkMRMLNode*)</slot></connection>
 </connections>
</ui>
"""


def test_ui_file_loads_into_pythonqt_classes_with_mrml_connections(scene, tmp_path):
    import ctk
    import qt
    import slicer

    path = tmp_path / "Demo.ui"
    path.write_text(UI_WITH_MRML_CONNECTIONS, encoding="utf-8")
    widget = slicer.util.loadUI(str(path))
    ui = slicer.util.childWidgetVariables(widget)
    assert type(widget) is slicer.qMRMLWidget and type(ui.tableSelector) is slicer.qMRMLNodeComboBox
    assert type(ui.calibrationPath) is ctk.ctkPathLineEdit and ui.calibrationPath.filters == 0x12
    assert ui.tableSelector.nodeTypes == ("vtkMRMLTableNode",) and ui.tableSelector.noneEnabled
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", "results")
    widget.setMRMLScene(scene)  # the .ui connection hands the scene on
    assert ui.tableSelector.mrmlScene() is scene
    ui.tableSelector.setCurrentNode(table)  # the .ui connection shows the table
    assert ui.tableView.mrmlTableNode() is table
    assert isinstance(widget.findChildren(qt.QWidget), list) and ui.tableView in widget.findChildren(qt.QWidget)


def test_ui_connection_to_a_missing_signal_fails_loudly(scene, tmp_path):
    import slicer

    path = tmp_path / "Broken.ui"
    path.write_text(UI_WITH_MRML_CONNECTIONS.replace("currentNodeChanged(vtkMRMLNode*)", "nodeChanged(vtkMRMLNode*)"),
                    encoding="utf-8")
    with pytest.raises(ValueError, match=r"has no signal 'nodeChanged\(vtkMRMLNode\*\)'"):
        slicer.util.loadUI(str(path))


def test_ctk_widgets_keep_ctks_properties_and_signals():
    import ctk
    import qt

    section = ctk.ctkCollapsibleButton()
    section.text = "Advanced"
    inner = qt.QCheckBox(section)
    section.collapsed = True
    assert section.text == "Advanced" and inner.isHidden()
    section.collapsed = False
    assert not inner.isHidden()
    slider = ctk.ctkSliderWidget()
    slider.decimals, slider.minimum, slider.maximum = 1, 0.0, 20.0
    values = []
    slider.connect("valueChanged(double)", values.append)
    slider.value = 3.24
    assert slider.value == pytest.approx(3.2) and values == [pytest.approx(3.2)]  # rounded to 1 decimal
    path = ctk.ctkPathLineEdit()
    paths = []
    path.connect("currentPathChanged(QString)", paths.append)
    path.currentPath = "/data/site_calibration.json"
    assert paths == ["/data/site_calibration.json"]
    folder = ctk.ctkDirectoryButton()
    folders = []
    folder.connect("directoryChanged(QString)", folders.append)
    folder.directory = "/data/out"
    assert folder.directory == "/data/out" and folders == ["/data/out"]
