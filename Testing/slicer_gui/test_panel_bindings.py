"""Every panel sets up on real Qt, binds its parameters to widgets, and round-trips each value.

For each module: ``setup()`` runs with Slicer's own ``ScriptedLoadableModuleWidget`` and
``parameterNodeWrapper``; every parameter is bound to a widget except the results that Apply fills
(listed here, each on purpose); each bound widget, edited as a user would (its Qt property set),
writes the parameter node, and a value written into the parameter node shows in the widget.
"""

from __future__ import annotations

import enum
import pathlib
import typing

import pytest

MODULES = ("LobeQuant", "LesionDosimetry", "ResponseAssess")

# Parameters with no widget on purpose: results that the buttons create and the panel shows in its
# tables and charts (or in Slicer's views), never chosen by the user.
UNBOUND_BY_DESIGN = {
    "LobeQuant": set(),
    "LesionDosimetry": set(),
    "ResponseAssess": set(),
}


def _bound(panel) -> dict:
    """Parameter name -> GUI connector of the panel's parameter node."""
    guis = panel.parameters._parameterGUIs
    assert len(guis) == 1, f"{panel.name}: the parameter node is connected to {len(guis)} GUIs, not one"
    return next(iter(guis.values()))


@pytest.mark.parametrize("name", MODULES)
def test_every_parameter_is_bound_to_a_widget(open_panel, name):
    panel = open_panel(name)
    parameters = set(type(panel.parameters).allParameters)
    bound = set(_bound(panel))
    assert parameters - bound == UNBOUND_BY_DESIGN[name], (
        f"{name}: parameters without a widget: {sorted(parameters - bound - UNBOUND_BY_DESIGN[name])}")


def _annotation(panel, parameter):
    info = type(panel.parameters).allParameters[parameter]
    base = info.unalteredType
    metadata = ()
    if typing.get_origin(base) is typing.Annotated:
        base, *metadata = typing.get_args(base)
    return base, metadata


def _other_value(panel, parameter, scene, tmp_path):
    """A valid value for ``parameter`` different from its current one."""
    base, metadata = _annotation(panel, parameter)
    current = getattr(panel.parameters, parameter)
    choices = next((m.choices for m in metadata if hasattr(m, "choices")), None)
    if choices is not None:
        return next(c for c in choices if c != current)
    if base is bool:
        return not current
    if base in (int, float):
        low = next((m.minimum for m in metadata if hasattr(m, "minimum")), 0)
        high = next((m.maximum for m in metadata if hasattr(m, "maximum")), low + 100)
        value = low + 0.37 * (high - low)
        value = round(value) if base is int else round(value, 1)
        return value if value != current else (low if base is int else round(low + 0.5 * (high - low), 1))
    if base is str:
        return f"{current}edited"
    if isinstance(base, type) and issubclass(base, pathlib.PurePath):
        return tmp_path / f"{parameter}.json"
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return next(m for m in base if m != current)
    node_types = typing.get_args(base) or (base,)
    node_class = next(t for t in node_types if t is not type(None))
    return scene.AddNewNodeByClass(node_class.__name__, f"{parameter} choice")


def _set_in_widget(widget, value) -> None:
    """Edit the widget as a user would: through its Qt property (PythonQt style)."""
    kind = type(widget).__name__
    if kind == "QCheckBox":
        widget.checked = value
    elif kind in ("QDoubleSpinBox", "QSpinBox", "ctkSliderWidget"):
        widget.value = value
    elif kind == "QComboBox":
        texts = [widget.itemText(i) for i in range(widget.count)]
        widget.currentIndex = texts.index(value.label() if hasattr(value, "label") else
                                          value.name if isinstance(value, enum.Enum) else str(value))
    elif kind == "QLineEdit":
        widget.text = value
    elif kind == "ctkPathLineEdit":
        widget.currentPath = str(value)
    elif kind == "ctkDirectoryButton":
        widget.directory = str(value)
    elif kind == "qMRMLNodeComboBox":
        widget.setCurrentNode(value)
    else:
        raise AssertionError(f"no way to edit a {kind} in this test")


def _shown_in_widget(widget):
    kind = type(widget).__name__
    if kind == "QCheckBox":
        return widget.checked
    if kind in ("QDoubleSpinBox", "QSpinBox", "ctkSliderWidget"):
        return widget.value
    if kind == "QComboBox":
        return widget.currentText
    if kind == "QLineEdit":
        return widget.text
    if kind == "ctkPathLineEdit":
        return widget.currentPath
    if kind == "ctkDirectoryButton":
        return widget.directory
    if kind == "qMRMLNodeComboBox":
        return widget.currentNode()
    raise AssertionError(f"no way to read a {kind} in this test")


def _as_shown(value, widget):
    kind = type(widget).__name__
    if kind == "QComboBox":
        return value.name if isinstance(value, enum.Enum) else str(value)
    if kind in ("ctkPathLineEdit", "ctkDirectoryButton"):
        return str(value)
    return value


@pytest.mark.parametrize("name", MODULES)
def test_each_bound_widget_round_trips(open_panel, scene, tmp_path, name):
    """GUI -> parameter node -> GUI for every bound parameter, through the widgets' Qt properties."""
    panel = open_panel(name)
    for parameter, connector in sorted(_bound(panel).items()):
        widget = connector.widget()
        edited = _other_value(panel, parameter, scene, tmp_path)
        _set_in_widget(widget, edited)
        stored = getattr(panel.parameters, parameter)
        assert stored == edited, f"{name}.{parameter}: widget set to {edited!r}, parameter node holds {stored!r}"
        written = _other_value(panel, parameter, scene, tmp_path)
        setattr(panel.parameters, parameter, written)
        shown = _shown_in_widget(widget)
        assert shown == _as_shown(written, widget), (
            f"{name}.{parameter}: parameter node set to {written!r}, widget shows {shown!r}")


@pytest.mark.parametrize("name", MODULES)
def test_scene_close_rebinds_the_panel_to_a_new_parameter_node(open_panel, scene, name):
    import slicer

    panel = open_panel(name)
    first = panel.parameters
    slicer.mrmlScene.Clear(0)
    second = panel.parameters
    assert second is not first and first._parameterGUIs == {} and len(second._parameterGUIs) == 1
    parameter, connector = next((p, c) for p, c in sorted(_bound(panel).items())
                                if type(c.widget()).__name__ == "QCheckBox")
    connector.widget().checked = not getattr(second, parameter)
    assert getattr(second, parameter) == connector.widget().checked  # the new node follows the panel


@pytest.mark.parametrize("name", MODULES)
def test_reload_leaves_no_stale_observers(open_panel, scene, name):
    """Slicer's reload (and exit) unloads a module with cleanup() only, no exit(): nothing may stay connected."""
    import slicer

    panel = open_panel(name)
    old_parameters, old_widget = panel.parameters, panel.widget
    node = old_parameters.parameterNode
    combo_states = [w._observed for w in vars(panel.ui).values() if type(w).__name__ == "qMRMLNodeComboBox"]
    assert combo_states and all(state["tags"] for state in combo_states)
    slicer.app.moduleManager().unloadModule(name)
    assert old_widget.Observations == []
    assert old_parameters._parameterGUIs == {} and old_parameters._guiVtkObserverTags == {}, (
        f"{name}Widget.cleanup() left the parameter node connected to the unloaded panel")
    panel.parent.isEntered = False
    panel.parent.deleteLater()
    from PySide6 import QtCore

    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    panel.widget = None
    assert all(state["tags"] == [] for state in combo_states)  # deleted combo boxes let go of the scene
    reloaded = open_panel(name)
    assert reloaded.parameters.parameterNode is node and len(reloaded.parameters._parameterGUIs) == 1
    node.Modified()  # would reach the deleted widgets if anything stale were left
