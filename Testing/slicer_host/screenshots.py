"""``make screenshots``: a PNG of every module panel before and after Apply, rendered offscreen.

Each panel is built as Slicer builds it (real Qt, Slicer's own scripted-module layer), its inputs
are chosen on a small synthetic patient as in the README tutorial, and the panel is grabbed
(``QWidget.grab``) once the inputs are set and once the results are in::

    QT_QPA_PLATFORM=offscreen python -m Testing.slicer_host.screenshots --out docs/panels

writes ``<Module>_before.png`` and ``<Module>_after.png`` for LobeQuant, LesionDosimetry and
ResponseAssess. The look is plain Qt's (Fusion style), not Slicer's theme, and CTK/qMRML widgets
are this host's minimal versions.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

PANEL_WIDTH_PX = 480


def _choose(combo, text: str) -> None:
    combo.currentIndex = [combo.itemText(i) for i in range(combo.count)].index(text)


def _lobequant(panel, patient) -> Iterator[None]:
    import slicer

    ui = panel.ui
    ui.ctSelector.setCurrentNode(patient.ct())
    ui.segmentationSelector.setCurrentNode(patient.segmentation())
    _choose(ui.iaSideComboBox, "right")
    _choose(ui.lobeSplitMethodComboBox, "couinaud")
    ui.couinaudSelector.setCurrentNode(slicer.util.loadLabelVolume(str(patient.folder / "truth/couinaud.nrrd")))
    ui.spectSelector.setCurrentNode(patient.spects()[24.0])
    ui.hoursSpinBox.value = 24.0
    ui.activitySpinBox.value = 7400.0
    ui.addCycleButton.click()
    yield
    ui.applyButton.click()


def _lesiondosimetry(panel, patient) -> Iterator[None]:
    ui = panel.ui
    spects = patient.spects()
    for slot, hours in enumerate(sorted(spects), start=1):
        getattr(ui, f"spectSelector{slot}").setCurrentNode(spects[hours])
        getattr(ui, f"hoursSpinBox{slot}").value = hours
    ui.ctSelector.setCurrentNode(patient.ct())
    ui.segmentationSelector.setCurrentNode(patient.segmentation())
    yield
    ui.applyButton.click()


def _responseassess(panel, patient) -> Iterator[None]:
    ui = panel.ui
    ui.baselineSegmentationSelector.setCurrentNode(patient.segmentation("cycle1"))
    ui.followupSegmentationSelector.setCurrentNode(patient.segmentation("followup1"))
    ui.baselineCtSelector.setCurrentNode(patient.ct("cycle1"))
    ui.followupCtSelector.setCurrentNode(patient.ct("followup1"))
    ui.patientIdLineEdit.text = patient.manifest["patient_id"]
    ui.baselineDateLineEdit.text = patient.session("cycle1")["datetime"][:10]
    ui.followupDateLineEdit.text = patient.session("followup1")["datetime"][:10]
    yield
    ui.measureButton.click()
    ui.trackButton.click()
    ui.measureButton.click()
    ui.assessButton.click()


TUTORIALS = {"LobeQuant": _lobequant, "LesionDosimetry": _lesiondosimetry, "ResponseAssess": _responseassess}


def _grab(panel, path: Path) -> None:
    """Render the whole panel (its full height) offscreen into ``path``."""
    import slicer
    from PySide6 import QtWidgets

    slicer.app.processEvents()
    height = QtWidgets.QWidget.sizeHint(panel.parent).height()
    panel.parent.resize(PANEL_WIDTH_PX, height)
    slicer.app.processEvents()
    if not QtWidgets.QWidget.grab(panel.parent).save(str(path)):
        raise OSError(f"could not write {path}")


def write_screenshots(out: Path, patient_folder: Path | None = None) -> list[Path]:
    """Write ``<Module>_before.png`` / ``<Module>_after.png`` of every panel into ``out``; their paths."""
    from .dialogs import SHOWN
    from .gui_host import SLOT_ERRORS, start_gui_host
    from .panels import Panel, PatientLoader

    gui = start_gui_host()
    if gui.scripted_layer.startswith("LuPRRT"):
        raise RuntimeError("screenshots need Slicer's pure-Python layer: set LUPRRT_SLICER_SOURCE to a Slicer "
                           "source tree or place one at ../shared/upstream/slicer")
    out.mkdir(parents=True, exist_ok=True)
    if patient_folder is None:
        from luprrt.phantom import make_patient, write_patient

        patient_folder = Path(tempfile.mkdtemp(prefix="luprrt-screenshot-patient-"))
        write_patient(make_patient(0, small=True, n_cycles=1, followup_weeks=(12.0,)), patient_folder)
    patient = PatientLoader(patient_folder)
    written = []
    for name, tutorial in TUTORIALS.items():
        gui.host.clear_scene()
        SHOWN.clear()
        panel = Panel(name)
        steps = tutorial(panel, patient)
        for stage in ("before", "after"):
            next(steps, None)
            if SLOT_ERRORS or SHOWN.messages:
                raise RuntimeError(f"{name} {stage} Apply: {SLOT_ERRORS or SHOWN.messages}")
            path = out / f"{name}_{stage}.png"
            _grab(panel, path)
            written.append(path)
        panel.close()
    gui.host.clear_scene()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/panels"), help="folder for the PNG files")
    arguments = parser.parse_args(argv)
    try:
        for path in write_screenshots(arguments.out):
            print(path)
    except (RuntimeError, OSError) as error:
        print(f"screenshots: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
