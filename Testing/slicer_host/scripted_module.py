"""Stand-in for ``slicer.ScriptedLoadableModule`` (the scripted-module base classes), headless.

Only what a module's Module, Logic and Test classes need outside the GUI:

* :class:`ScriptedLoadableModule`: fills the module's ``parent`` (title, categories,
  contributors, help and acknowledgement text, hidden flag, dependencies) with
  defaults that the module then overwrites.
* :class:`ScriptedLoadableModuleLogic`: ``getParameterNode()`` returns the module's
  singleton ``vtkMRMLScriptedModuleNode`` in ``slicer.mrmlScene`` (created on first use).
* :class:`ScriptedLoadableModuleTest`: a ``unittest.TestCase`` whose
  ``delayDisplay`` logs instead of showing a popup.
* :class:`ScriptedLoadableModuleWidget`: constructible, ``setup()`` does nothing (a
  Widget cannot run without Slicer's GUI).
"""

from __future__ import annotations

import logging
import os
import sys
import types
import unittest
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass
class ModuleParent:
    """What Slicer passes as ``parent`` to a scripted module: its metadata and path."""

    name: str
    path: str = ""
    title: str = ""
    categories: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    contributors: list[str] = field(default_factory=list)
    helpText: str = ""
    acknowledgementText: str = ""
    hidden: bool = False
    icon: object = None
    index: int = -1

    def logic(self):
        """Scripted modules have no C++ logic: ``None``, as in Slicer."""
        return None


def _module_file(obj) -> str:
    module = sys.modules.get(type(obj).__module__)
    return os.path.abspath(getattr(module, "__file__", "") or "")


class ScriptedLoadableModule:
    """Base class of a module's metadata class (``class LobeQuant(ScriptedLoadableModule)``)."""

    def __init__(self, parent: ModuleParent):
        self.parent = parent
        self.moduleName = type(self).__name__
        parent.title = parent.title or self.moduleName
        parent.categories = []
        parent.dependencies = []
        parent.contributors = []
        parent.helpText = ""
        parent.acknowledgementText = ""
        parent.path = parent.path or _module_file(self)

    def getDefaultModuleDocumentationLink(self, docPage: str | None = None) -> str:
        """Help-text link to Slicer's documentation of this module."""
        page = docPage or self.moduleName
        return (f'<p>For more information see the <a href="https://slicer.readthedocs.io/">{page} '
                "documentation</a>.</p>")

    def resourcePath(self, filename: str) -> str:
        """Absolute path of ``Resources/<filename>`` next to the module file."""
        return os.path.join(os.path.dirname(self.parent.path), "Resources", filename)

    def runTest(self, msec: int = 100, **kwargs) -> None:
        """Run the module's ``<Module>Test.runTest()`` as Slicer's "Reload and Test" does."""
        module = sys.modules[type(self).__module__]
        test_class = getattr(module, f"{self.moduleName}Test")
        test_class().runTest(**kwargs)


class ScriptedLoadableModuleWidget:
    """Base class of a module's panel; constructible headless, ``setup`` does nothing."""

    def __init__(self, parent=None):
        self.parent = parent
        self.moduleName = type(self).__name__.removesuffix("Widget")
        self.developerMode = False

    def resourcePath(self, filename: str) -> str:
        return os.path.join(os.path.dirname(_module_file(self)), "Resources", filename)

    def setup(self) -> None:
        """Slicer builds the reload/test section here; there is no GUI headless."""

    def cleanup(self) -> None:
        """Called when the application closes."""


class ScriptedLoadableModuleLogic:
    """Base class of a module's Logic: owns the module's parameter node."""

    def __init__(self, parent=None):
        self.parent = parent
        self.moduleName = type(self).__name__.removesuffix("Logic")
        self.isSingletonParameterNode = True

    def getParameterNode(self):
        """The module's singleton ``vtkMRMLScriptedModuleNode`` in ``slicer.mrmlScene``, made on first use."""
        import slicer

        node = slicer.mrmlScene.GetSingletonNode(self.moduleName, "vtkMRMLScriptedModuleNode")
        if node is None:
            node = self.createParameterNode()
            node = slicer.mrmlScene.AddNode(node)
        return node

    def createParameterNode(self):
        """A new parameter node tagged with this module's name (not yet in the scene)."""
        import slicer

        node = slicer.vtkMRMLScriptedModuleNode()
        if self.isSingletonParameterNode:
            node.SetSingletonTag(self.moduleName)
        node.SetName(slicer.mrmlScene.GenerateUniqueName(self.moduleName))
        node.SetAttribute("ModuleName", self.moduleName)
        if hasattr(self, "setDefaultParameters"):
            self.setDefaultParameters(node)
        return node

    def getAllParameterNodes(self) -> list:
        """Every parameter node of this module in the scene."""
        import slicer

        return [node for node in slicer.util.getNodesByClass("vtkMRMLScriptedModuleNode")
                if node.GetAttribute("ModuleName") == self.moduleName]


class ScriptedLoadableModuleTest(unittest.TestCase):
    """Base class of a module's self-test (``<Module>Test``)."""

    def delayDisplay(self, message: str, requiredDelay: int = 1000, msec: int | None = None) -> None:
        """Slicer shows a popup for a moment; headless the message is logged."""
        logger.info(message)

    def takeScreenshot(self, name: str, description: str, type: int = -1) -> None:
        """No views to capture headless; logged."""
        logger.info("screenshot %s skipped headless: %s", name, description)


def make_module() -> types.ModuleType:
    module = types.ModuleType("slicer.ScriptedLoadableModule", __doc__)
    for cls in (ScriptedLoadableModule, ScriptedLoadableModuleWidget, ScriptedLoadableModuleLogic,
                ScriptedLoadableModuleTest):
        setattr(module, cls.__name__, cls)
    module.__all__ = [cls.__name__ for cls in (ScriptedLoadableModule, ScriptedLoadableModuleWidget,
                                                 ScriptedLoadableModuleLogic, ScriptedLoadableModuleTest)]
    sys.modules["slicer.ScriptedLoadableModule"] = module
    return module
