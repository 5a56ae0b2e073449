"""A module's panel built as Slicer builds it, and the synthetic patient's files loaded as a user would.

Used by the GUI tests (Testing/slicer_gui) and ``make screenshots``; needs the GUI host
(:func:`slicer_host.gui_host.start_gui_host`) running in the process.
"""

from __future__ import annotations

import json
from pathlib import Path

from .modules import REPO_ROOT, load_scripted_module


class Panel:
    """A module's panel as Slicer builds it, and what a test needs to drive it."""

    def __init__(self, name: str):
        import slicer

        self.name = name
        self.loaded = load_scripted_module(REPO_ROOT / name / f"{name}.py")
        self.parent = slicer.qSlicerScriptedLoadableModuleWidget()
        self.parent.resize(480, 600)
        self.widget = self.loaded.member("Widget")(self.parent)
        self.widget.setup()
        self.parent.isEntered = True
        self.widget.enter()
        self.parent.show()
        slicer.app.processEvents()

    @property
    def ui(self):
        return self.widget.ui

    @property
    def parameters(self):
        return self.widget._parameterNode

    def close(self) -> None:
        """Leave the module and unload it, as Slicer does on exit or reload."""
        import slicer
        from PySide6 import QtCore

        if self.parent.isEntered:
            self.widget.exit()
            self.parent.isEntered = False
        slicer.app.moduleManager().unloadModule(self.name)
        self.parent.deleteLater()
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)


class PatientLoader:
    """Loads the synthetic patient's files into the scene as a user would (DICOM images, .seg.nrrd)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        self.truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))

    def session(self, name: str) -> dict:
        return next(s for s in self.manifest["sessions"] if s["name"] == name)

    def volume(self, relative: str, name: str):
        from luprrt import mrml
        from luprrt.io import read_image

        image = read_image(self.folder / relative)
        return mrml.volume_node_from_image(image.image, name, units=image.units)

    def ct(self, session: str = "cycle1"):
        return self.volume(self.session(session)["ct"], f"CT {session}")

    def spects(self, session: str = "cycle1") -> dict[float, object]:
        """Hours after injection -> SPECT node (Bq/mL) of the session."""
        return {s["hours_post_injection"]: self.volume(s["file"], f"SPECT {s['hours_post_injection']:g}h")
                for s in self.session(session)["spect"]}

    def segmentation(self, session: str = "cycle1"):
        import slicer

        return slicer.util.loadSegmentation(str(self.folder / self.session(session)["segmentation"]),
                                            {"name": f"segmentation {session}"})
