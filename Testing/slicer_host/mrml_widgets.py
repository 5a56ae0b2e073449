"""Minimal PySide6 versions of Slicer's qMRML / qSlicer widgets, reading the real MRML scene.

:class:`qMRMLNodeComboBox` lists the scene's nodes of its ``nodeTypes`` (subclasses too when
``showChildNodeTypes``; hidden nodes only when ``showHidden``; attribute filters), follows node
added / removed / scene close events through VTK observers it removes again, offers "None" when
``noneEnabled``, names new nodes after
``baseName``, never selects a node by itself, and emits ``currentNodeChanged(vtkMRMLNode*)`` (carried as a Python object).
:class:`qMRMLTableView` shows a ``vtkMRMLTableNode``'s table and refreshes when it is modified.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from .pythonqt import qt_class, register


@register
class qMRMLWidget(qt_class("QWidget")):
    """A widget holding a MRML scene; ``setMRMLScene`` emits ``mrmlSceneChanged(vtkMRMLScene*)``."""

    mrmlSceneChanged = QtCore.Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._scene = None

    def setMRMLScene(self, scene) -> None:
        self._scene = scene
        self.mrmlSceneChanged.emit(scene)

    def mrmlScene(self):
        return self._scene


@register
class qSlicerWidget(qMRMLWidget):
    """Slicer's base of module panels."""


@register
class qSlicerScriptedLoadableModuleWidget(qSlicerWidget):
    """The panel Slicer hands a scripted module's Widget as ``parent`` (``isEntered`` while shown)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._entered = False
        self.setLayout(QtWidgets.QVBoxLayout())

    isEntered = QtCore.Property(bool, lambda self: self._entered, lambda self, v: setattr(self, "_entered", v))


def _scene_events():
    import slicer

    scene_class = slicer.vtkMRMLScene
    return (scene_class.NodeAddedEvent, scene_class.NodeRemovedEvent, scene_class.EndCloseEvent,
            scene_class.EndImportEvent, scene_class.EndBatchProcessEvent)


def _remove_observations(observed: dict) -> None:
    if observed["scene"] is not None:
        for tag in observed["tags"]:
            observed["scene"].RemoveObserver(tag)
    observed["scene"], observed["tags"] = None, []


@register
class qMRMLNodeComboBox(qt_class("QWidget")):
    """Selects one node of the scene among those of ``nodeTypes``."""

    currentNodeChanged = QtCore.Signal((object,), (bool,))
    currentNodeIDChanged = QtCore.Signal(str)
    nodeAdded = QtCore.Signal(object)
    nodeAddedByUser = QtCore.Signal(object)
    mrmlSceneChanged = QtCore.Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._combo = QtWidgets.QComboBox(self)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._combo)
        self._scene = None
        self._observed = {"scene": None, "tags": []}
        self._node_ids: list[str | None] = []
        self._current_id: str | None = None
        self._attributes: list[tuple[str, str, str | None]] = []
        self._settings = {"nodeTypes": [], "noneEnabled": False, "addEnabled": True, "removeEnabled": True,
                          "renameEnabled": False, "editEnabled": False, "showHidden": False,
                          "showChildNodeTypes": True, "baseName": "", "noneDisplay": "None",
                          "selectNodeUponCreation": True}
        self._combo.activated.connect(self._onUserChoice)
        # The C++ widget may be deleted before this Python object: drop the scene observers then.
        observed = self._observed
        self.destroyed.connect(lambda *_: _remove_observations(observed))

    # --- properties (as in qMRMLNodeComboBox.h) -------------------------------------------------
    def _setting(name: str, kind):
        def getter(self):
            return self._settings[name]

        def setter(self, value):
            self._settings[name] = list(value) if kind == "QStringList" else value
            self._populate()

        return QtCore.Property(kind, getter, setter)

    nodeTypes = _setting("nodeTypes", "QStringList")
    noneEnabled = _setting("noneEnabled", bool)
    addEnabled = _setting("addEnabled", bool)
    removeEnabled = _setting("removeEnabled", bool)
    renameEnabled = _setting("renameEnabled", bool)
    editEnabled = _setting("editEnabled", bool)
    showHidden = _setting("showHidden", bool)
    showChildNodeTypes = _setting("showChildNodeTypes", bool)
    baseName = _setting("baseName", str)
    noneDisplay = _setting("noneDisplay", str)
    selectNodeUponCreation = _setting("selectNodeUponCreation", bool)
    del _setting

    currentNodeID = QtCore.Property(str, lambda self: self._current_id or "",
                                    lambda self, node_id: self.setCurrentNodeID(node_id))

    # --- scene ------------------------------------------------------------------------------------
    def setMRMLScene(self, scene) -> None:
        _remove_observations(self._observed)
        self._scene = scene
        if scene is not None:
            self._observed["scene"] = scene
            self._observed["tags"] = [scene.AddObserver(event, self._onSceneEvent) for event in _scene_events()]
        self._populate()
        self.mrmlSceneChanged.emit(scene)

    def observerCount(self) -> int:
        """Scene observers this combo box holds (for tests of stale observers)."""
        return len(self._observed["tags"])

    def mrmlScene(self):
        return self._scene

    def _onSceneEvent(self, caller, event) -> None:
        if self._scene is not None and not self._scene.IsBatchProcessing():
            self._populate()

    def addAttribute(self, nodeType: str, attributeName: str, attributeValue=None) -> None:
        self._attributes.append((nodeType, attributeName, None if attributeValue is None else str(attributeValue)))
        self._populate()

    def _accepts(self, node) -> bool:
        types = self._settings["nodeTypes"]
        if self._settings["showChildNodeTypes"]:
            typed = any(node.IsA(t) for t in types)
        else:
            typed = node.GetClassName() in types
        if not typed or (node.GetHideFromEditors() and not self._settings["showHidden"]):
            return False
        for node_type, name, value in self._attributes:
            if node.IsA(node_type):
                actual = node.GetAttribute(name)
                if actual is None or (value is not None and actual != value):
                    return False
        return True

    def nodes(self) -> list:
        """The nodes listed, in scene order."""
        if self._scene is None:
            return []
        found = self._scene.GetNodes()
        listed = (found.GetItemAsObject(i) for i in range(found.GetNumberOfItems()))
        return [node for node in listed if self._accepts(node)]

    def _populate(self) -> None:
        nodes = self.nodes()
        self._node_ids = ([None] if self._settings["noneEnabled"] else []) + [n.GetID() for n in nodes]
        blocked = self._combo.blockSignals(True)
        self._combo.clear()
        for node_id in self._node_ids:
            self._combo.addItem(self._settings["noneDisplay"] if node_id is None
                                else self._scene.GetNodeByID(node_id).GetName())
        self._combo.blockSignals(blocked)
        # A node added to the scene is not selected (Slicer's own tests of its GUI connectors check it).
        self._select(self._current_id if self._current_id in self._node_ids else None)

    def _select(self, node_id: str | None) -> None:
        if node_id is not None and node_id not in self._node_ids:
            node_id = None
        blocked = self._combo.blockSignals(True)
        self._combo.setCurrentIndex(self._node_ids.index(node_id) if node_id in self._node_ids else -1)
        self._combo.blockSignals(blocked)
        if node_id != self._current_id:
            self._current_id = node_id
            node = self.currentNode()
            self.currentNodeChanged[object].emit(node)
            self.currentNodeChanged[bool].emit(node is not None)
            self.currentNodeIDChanged.emit(node_id or "")

    def _onUserChoice(self, index: int) -> None:
        self._select(self._node_ids[index] if 0 <= index < len(self._node_ids) else None)

    # --- selection ----------------------------------------------------------------------------------
    def currentNode(self):
        if self._scene is None or self._current_id is None:
            return None
        return self._scene.GetNodeByID(self._current_id)

    def setCurrentNode(self, node) -> None:
        self._select(None if node is None else node.GetID())

    def setCurrentNodeID(self, node_id: str) -> None:
        self._select(node_id or None)

    def nodeCount(self) -> int:
        return len(self.nodes())

    def nodeFromIndex(self, index: int):
        nodes = self.nodes()
        return nodes[index] if 0 <= index < len(nodes) else None

    def addNode(self, nodeType: str | None = None):
        """A new node of the first (or given) node type named after ``baseName``, selected."""
        node_type = nodeType or self._settings["nodeTypes"][0]
        base = self._settings["baseName"] or node_type.removeprefix("vtkMRML").removesuffix("Node")
        node = self._scene.AddNewNodeByClass(node_type, self._scene.GenerateUniqueName(base))
        if self._settings["selectNodeUponCreation"]:
            self.setCurrentNode(node)
        self.nodeAddedByUser.emit(node)
        return node

    def itemTexts(self) -> list[str]:
        """The texts shown in the list ("None" first when enabled)."""
        return [self._combo.itemText(i) for i in range(self._combo.count())]


@register
class qMRMLTableView(qt_class("QTableView")):
    """Shows a ``vtkMRMLTableNode`` (column names as headers) and follows its changes."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._table_node = None
        self._observation = None
        self._scene = None
        self.setModel(QtGui.QStandardItemModel(self))

    def setMRMLScene(self, scene) -> None:
        self._scene = scene

    def mrmlScene(self):
        return self._scene

    def setMRMLTableNode(self, node) -> None:
        if self._table_node is not None and self._observation is not None:
            self._table_node.RemoveObserver(self._observation)
        self._table_node, self._observation = node, None
        if node is not None:
            import vtk

            self._observation = node.AddObserver(vtk.vtkCommand.ModifiedEvent, self._refresh)
        self._refresh()

    def mrmlTableNode(self):
        return self._table_node

    def _refresh(self, *_) -> None:
        model = self.model()
        model.clear()
        node = self._table_node
        table = node.GetTable() if node is not None else None
        if table is None:
            return
        columns = table.GetNumberOfColumns()
        model.setHorizontalHeaderLabels([table.GetColumn(c).GetName() or "" for c in range(columns)])
        for row in range(table.GetNumberOfRows()):
            model.appendRow([QtGui.QStandardItem(table.GetValue(row, c).ToString()) for c in range(columns)])

    def cellText(self, row: int, column: int) -> str:
        """Text shown in a cell (for tests)."""
        return self.model().item(row, column).text()


@register
class qMRMLSpinBox(qt_class("QDoubleSpinBox")):
    """Slicer's unit-aware spin box: a QDoubleSpinBox here."""


@register
class qMRMLSliderWidget(qt_class("QWidget")):
    """Slicer's unit-aware slider: named so Slicer's GUI connector table resolves (no module uses it)."""


@register
class qMRMLRangeWidget(qt_class("QWidget")):
    """Slicer's unit-aware range widget: named so Slicer's GUI connector table resolves (no module uses it)."""


@register
class qMRMLSubjectHierarchyComboBox(qt_class("QComboBox")):
    """Named so Slicer's tests of its layer import; no LuPRRT panel uses it (its tests are deselected)."""


@register
class qMRMLSubjectHierarchyTreeView(qt_class("QTreeView")):
    """Named so Slicer's tests of its layer import; no LuPRRT panel uses it (its tests are deselected)."""


WIDGET_CLASSES = (qMRMLWidget, qSlicerWidget, qSlicerScriptedLoadableModuleWidget, qMRMLNodeComboBox,
                  qMRMLTableView, qMRMLSpinBox, qMRMLSliderWidget, qMRMLRangeWidget, qMRMLSubjectHierarchyComboBox,
                  qMRMLSubjectHierarchyTreeView)
