"""Every module's Qt Designer file loads cleanly and matches its module code.

Slicer's panels cannot run here, but their ``.ui`` files can be checked with PySide6's
QUiLoader (offscreen). For each ``<Module>/Resources/UI/*.ui`` of the repository:

1. every widget class is a Qt class or declared in ``<customwidgets>`` (an undeclared
   custom class silently vanishes when Qt loads the file), and every custom class
   extends a known class;
2. with a placeholder class registered for each custom widget (carrying the signals
   and slots its ``<connections>`` use), the file loads without a single Qt warning
   (enum and flag properties of custom widgets are left out: only the real class knows
   their types);
3. every ``self.ui.<name>`` used in ``<Module>.py`` names an object of the file;
4. every widget bound with the ``SlicerParameterName`` property names a field of the
   module's ``@parameterNodeWrapper`` class;
5. every interactive widget (buttons, boxes, sliders, selectors) has a tooltip.

The fixture module ``fixtures/UiCheck`` holds one good file and one file per defect, so
the check is exercised even before the modules have panels.
"""

from __future__ import annotations

import ast
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_MODULE = Path(__file__).resolve().parent / "fixtures" / "UiCheck" / "UiCheck.py"
FIXTURE_UI = FIXTURE_MODULE.parent / "Resources" / "UI"

# Widgets a user operates: they need a tooltip. Qt base classes (matched along <extends>)
# and Slicer/CTK widgets that the .ui files declare as plain QWidget.
INTERACTIVE_QT = {"QAbstractButton", "QPushButton", "QToolButton", "QCheckBox", "QRadioButton",
                  "QComboBox", "QFontComboBox", "QAbstractSpinBox", "QSpinBox", "QDoubleSpinBox",
                  "QDateTimeEdit", "QLineEdit", "QAbstractSlider", "QSlider", "QDial"}
INTERACTIVE_CUSTOM = {"qMRMLNodeComboBox", "qMRMLCheckableNodeComboBox", "qMRMLSegmentSelectorWidget",
                      "qMRMLSubjectHierarchyComboBox", "qMRMLSliderWidget", "qMRMLSpinBox",
                      "qMRMLRangeWidget", "qMRMLColorTableComboBox", "ctkSliderWidget", "ctkDoubleSpinBox",
                      "ctkRangeWidget", "ctkDoubleSlider", "ctkRangeSlider", "ctkPathLineEdit",
                      "ctkDirectoryButton", "ctkCheckBox", "ctkComboBox", "ctkCheckableComboBox",
                      "ctkColorPickerButton", "ctkMenuButton"}
SECTION_HEADERS = {"ctkCollapsibleButton", "ctkCollapsibleGroupBox"}  # titled sections, not controls
_SIGNATURE = re.compile(r"^(\w+)\((.*)\)$")
# Placeholder classes must outlive their loader: QUiLoader keeps only a weak reference.
_PLACEHOLDERS: list[type] = []


def repository_ui_files() -> list[Path]:
    """Every ``<Module>/Resources/UI/*.ui`` of the repository."""
    return sorted(REPO_ROOT.glob("*/Resources/UI/*.ui"))


def _module_file(ui_path: Path) -> Path:
    """``<Module>/<Module>.py`` for ``<Module>/Resources/UI/<file>.ui``."""
    folder = ui_path.parents[2]
    return folder / f"{folder.name}.py"


# -- reading the .ui and the module file -------------------------------------------------------------
def _custom_widgets(root: ET.Element) -> dict[str, str]:
    """Declared custom widget class -> the class it extends."""
    return {cw.findtext("class", "").strip(): cw.findtext("extends", "").strip()
            for cw in root.iter("customwidget")}


def _object_names(root: ET.Element) -> set[str]:
    return {el.get("name") for tag in ("widget", "layout", "action") for el in root.iter(tag)
            if el.get("name")}


def _string_property(widget: ET.Element, name: str) -> str | None:
    for prop in widget.findall("property"):
        if prop.get("name") == name:
            return (prop.findtext("string") or "").strip()
    return None


def _ui_attributes(module_file: Path) -> dict[str, int]:
    """``self.ui.<name>`` uses of a module file: name -> first line."""
    uses: dict[str, int] = {}
    for node in ast.walk(ast.parse(module_file.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                and node.value.attr == "ui" and isinstance(node.value.value, ast.Name)
                and node.value.value.id == "self"):
            uses.setdefault(node.attr, node.lineno)
    return uses


def _parameter_fields(module_file: Path) -> set[str] | None:
    """Field names of the module's ``@parameterNodeWrapper`` class(es), None if it has none."""
    fields, found = set(), False
    for node in ast.walk(ast.parse(module_file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef) and any(
                (d.id if isinstance(d, ast.Name) else getattr(d, "attr", "")) == "parameterNodeWrapper"
                for d in node.decorator_list):
            found = True
            fields |= {item.target.id for item in node.body
                       if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)}
    return fields if found else None


# -- loading with Qt ---------------------------------------------------------------------------------
def _qt_application():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtWidgets

    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


def _signatures(root: ET.Element, classes: dict[str, str]) -> dict[str, dict[str, set[tuple[str, ...]]]]:
    """For each widget class: the signals and slots its connections use (name -> argument lists)."""
    members: dict[str, dict[str, set[tuple[str, ...]]]] = {}
    for connection in root.iter("connection"):
        for role, kind in (("sender", "signal"), ("receiver", "slot")):
            match = _SIGNATURE.match((connection.findtext(kind) or "").replace(" ", ""))
            cls = classes.get((connection.findtext(role) or "").strip())
            if match and cls:
                args = tuple(a for a in match.group(2).split(",") if a)
                members.setdefault(cls, {}).setdefault(f"{kind}:{match.group(1)}", set()).add(args)
    return members


def _placeholder(name: str, base: type, members: dict[str, set[tuple[str, ...]]]) -> type:
    from PySide6 import QtCore

    namespace = {"__init__": lambda self, parent=None: base.__init__(self, parent)}
    for key, overloads in members.items():
        kind, member = key.split(":")
        if kind == "signal":
            namespace[member] = QtCore.Signal(*[list(a) for a in sorted(overloads)]) if len(overloads) > 1 \
                else QtCore.Signal(*next(iter(overloads)))
        else:
            def slot(self, *args):
                """Placeholder slot: accepts the connection, does nothing."""
            for args in sorted(overloads):
                slot = QtCore.Slot(*args, name=member)(slot)
            namespace[member] = slot
    cls = type(name, (base,), namespace)
    _PLACEHOLDERS.append(cls)
    return cls


def _load_warnings(root: ET.Element, custom: dict[str, str]) -> list[str]:
    """Qt warnings (and failures) while QUiLoader builds the file with placeholder custom widgets."""
    _qt_application()
    from PySide6 import QtCore, QtWidgets
    from PySide6.QtUiTools import QUiLoader

    loader = QUiLoader()
    classes = {el.get("name"): el.get("class") for el in root.iter("widget")}
    members = _signatures(root, classes)
    built: dict[str, type] = {}

    def build(name: str, chain: tuple[str, ...] = ()) -> type:
        if name in built:
            return built[name]
        extends = custom[name]
        if extends in custom and extends not in chain:
            base = build(extends, (*chain, name))
        else:
            base = getattr(QtWidgets, extends)
        built[name] = _placeholder(name, base, members.get(name, {}))
        loader.registerCustomWidget(built[name])
        return built[name]

    for name in custom:
        build(name)
    # A placeholder does not know the enum and flag types of the real widget's properties
    # (ctkSliderWidget.orientation, ctkPathLineEdit.filters): Qt cannot read those values, so
    # they are left out; every other property of custom widgets becomes a dynamic property.
    for widget in root.iter("widget"):
        if widget.get("class") in custom:
            for prop in list(widget.findall("property")):
                if prop.find("enum") is not None or prop.find("set") is not None:
                    widget.remove(prop)
    buffer = QtCore.QBuffer()
    buffer.setData(QtCore.QByteArray(ET.tostring(root)))
    buffer.open(QtCore.QIODevice.OpenModeFlag.ReadOnly)
    messages: list[str] = []
    previous = QtCore.qInstallMessageHandler(lambda mode, context, text: messages.append(text))
    try:
        widget = loader.load(buffer)
    finally:
        QtCore.qInstallMessageHandler(previous)
    if widget is None:
        messages.append(f"QUiLoader could not load the file: {loader.errorString()}")
    else:
        widget.deleteLater()
    return [f"Qt warning: {m}" for m in messages]


def ui_problems(ui_path: Path, module_file: Path) -> list[str]:
    """Everything wrong with one .ui file and its module file (empty list: clean)."""
    root = ET.parse(ui_path).getroot()
    custom = _custom_widgets(root)
    _qt_application()
    from PySide6 import QtWidgets

    # Qt's own widget classes (QUiLoader's list would also hold placeholders registered before),
    # plus Designer's "Line" (a QFrame).
    qt_classes = {name for name in dir(QtWidgets)
                  if isinstance(getattr(QtWidgets, name), type) and issubclass(getattr(QtWidgets, name),
                                                                              QtWidgets.QWidget)} | {"Line"}
    problems = []
    for name, extends in custom.items():
        if extends not in custom and not hasattr(QtWidgets, extends):
            problems.append(f"custom widget {name} extends {extends!r}, neither a Qt widget nor declared")
    for widget in root.iter("widget"):
        cls = widget.get("class")
        if cls not in qt_classes and cls not in custom:
            problems.append(f"widget {widget.get('name')!r} of class {cls} is not declared in "
                            "<customwidgets>")
    if problems:
        return problems  # loading would drop or misbuild these widgets
    problems += _load_warnings(ET.parse(ui_path).getroot(), custom)

    names = _object_names(root)
    if not module_file.is_file():
        return [*problems, f"module file {module_file} not found"]
    for attribute, line in sorted(_ui_attributes(module_file).items()):
        if attribute not in names:
            problems.append(f"{module_file.name}:{line} uses self.ui.{attribute}, which {ui_path.name} lacks")
    fields = _parameter_fields(module_file)
    for widget in root.iter("widget"):
        parameter = _string_property(widget, "SlicerParameterName")
        if parameter is None:
            continue
        if fields is None:
            problems.append(f"widget {widget.get('name')!r} is bound to {parameter!r} but "
                            f"{module_file.name} has no @parameterNodeWrapper class")
        elif parameter.split(".")[0] not in fields:
            problems.append(f"widget {widget.get('name')!r} is bound to {parameter!r}, not a parameter of "
                            f"{module_file.name} ({sorted(fields)})")
    for widget in root.iter("widget"):
        if _is_interactive(widget.get("class"), custom) and not _string_property(widget, "toolTip"):
            problems.append(f"widget {widget.get('name')!r} ({widget.get('class')}) has no toolTip")
    return problems


def _is_interactive(cls: str, custom: dict[str, str]) -> bool:
    seen = set()
    while cls and cls not in seen:
        if cls in SECTION_HEADERS:
            return False
        if cls in INTERACTIVE_QT or cls in INTERACTIVE_CUSTOM:
            return True
        seen.add(cls)
        cls = custom.get(cls, "")
    return False


# -- tests -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ui_path", [*repository_ui_files(), FIXTURE_UI / "UiCheck.ui"],
                         ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_ui_file_loads_cleanly_and_matches_its_module(ui_path):
    module_file = FIXTURE_MODULE if ui_path.parent == FIXTURE_UI else _module_file(ui_path)
    assert ui_problems(ui_path, module_file) == []


def test_every_module_with_a_widget_has_its_ui_file():
    from slicer_host import module_files

    for module_file in module_files():
        if "loadUI(" in module_file.read_text(encoding="utf-8"):
            expected = module_file.parent / "Resources" / "UI" / f"{module_file.stem}.ui"
            assert expected.is_file(), f"{module_file.name} loads a .ui but {expected} does not exist"


@pytest.mark.parametrize(("defect", "expected"), [
    ("UndeclaredClass", ["widget 'spectSelector' of class qMRMLNodeComboBox is not declared in "
                         "<customwidgets>"]),
    ("QtWarning", [r'Qt warning: .*"Qt::NoSuchFocus" of the enum-type property focusPolicy '
                   r"could not be read\."]),
    ("MissingWidget", [r"UiCheck.py:\d+ uses self.ui.applyButton, which MissingWidget.ui lacks"]),
    ("UnknownParameter", [r"widget 'marginSlider' is bound to 'marginCm', not a parameter of UiCheck.py "
                          r"\(\['marginMm', 'spectVolume'\]\)"]),
    ("MissingToolTip", [r"widget 'applyButton' \(QPushButton\) has no toolTip"]),
])
def test_ui_check_reports_each_defect(defect, expected):
    problems = ui_problems(FIXTURE_UI / f"{defect}.ui", FIXTURE_MODULE)
    assert len(problems) == len(expected), problems
    for problem, pattern in zip(problems, expected, strict=True):
        assert re.fullmatch(pattern, problem), problem
