"""Find the extension's scripted modules and import them headless, as Slicer does at start-up.

Slicer puts each module's folder on ``sys.path``, imports ``<Module>.py`` under the
name ``<Module>``, instantiates the class ``<Module>`` with a ``parent`` holding the
module metadata, and exposes it as ``slicer.modules.<module>`` (lower case) and
``slicer.modules.<Module>Instance``. :func:`load_scripted_module` does the same.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
from dataclasses import dataclass
from pathlib import Path

from .bootstrap import start_host
from .scripted_module import ModuleParent

REPO_ROOT = Path(__file__).resolve().parents[2]


def module_files(root: Path = REPO_ROOT) -> list[Path]:
    """Every ``<Module>/<Module>.py`` directly under ``root`` (the extension's modules), sorted."""
    return sorted(folder / f"{folder.name}.py" for folder in root.iterdir()
                  if folder.is_dir() and not folder.name.startswith(".")
                  and (folder / f"{folder.name}.py").is_file())


def self_check_names(module_file: Path) -> list[tuple[str, int]]:
    """``(name, line)`` of every ``test_*`` method of the file's ``<Module>Test`` class, in file order.

    Read from the source (no import), so listing a module's self-tests costs no Slicer start-up.
    """
    module_file = Path(module_file)
    tree = ast.parse(module_file.read_text(encoding="utf-8"), filename=str(module_file))
    class_name = f"{module_file.stem}Test"
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return [(item.name, item.lineno) for item in node.body
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                    and item.name.startswith("test_")]
    return []


@dataclass
class LoadedModule:
    """A scripted module imported headless: its Python module, module-class instance and metadata."""

    name: str
    path: Path
    module: types.ModuleType
    instance: object
    parent: ModuleParent

    def member(self, suffix: str):
        """``<Module><suffix>`` from the module file (``"Logic"``, ``"Widget"``, ``"Test"``,
        ``"ParameterNode"``), or None when the file does not define it."""
        return getattr(self.module, f"{self.name}{suffix}", None)


_LOADED: dict[Path, LoadedModule] = {}


def load_scripted_module(path: str | Path) -> LoadedModule:
    """Import ``<Module>.py`` headless (once per process), instantiate ``<Module>(parent)`` and
    register it in ``slicer.modules``."""
    path = Path(path).resolve()
    if path in _LOADED:
        return _LOADED[path]
    start_host()
    import slicer

    name = path.stem
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    module_class = getattr(module, name, None)
    if module_class is None:
        raise ValueError(f"{path} defines no class {name!r} (a scripted module needs one)")
    parent = ModuleParent(name=name, path=str(path))
    instance = module_class(parent)
    setattr(slicer.modules, name.lower(), parent)
    setattr(slicer.modules, f"{name}Instance", instance)
    loaded = LoadedModule(name, path, module, instance, parent)
    _LOADED[path] = loaded
    return loaded
