"""LobeQuant's panel clicked through the README tutorial on the synthetic patient, on real Qt."""

from __future__ import annotations

import pytest


def _choose(combo, text: str) -> None:
    """Pick an entry of a QComboBox by its text, as a user would."""
    texts = [combo.itemText(i) for i in range(combo.count)]
    combo.currentIndex = texts.index(text)


def _lesion_rows(table_node) -> list[dict]:
    from luprrt import mrml

    return [row for row in mrml.rows_from_table_node(table_node) if row["role"] == "lesion"]


@pytest.fixture
def lobequant(open_panel):
    return open_panel("LobeQuant")


def test_buttons_follow_the_inputs_and_say_what_is_missing(lobequant, patient, scene):
    ui = lobequant.ui
    assert not ui.addCycleButton.enabled and ui.addCycleButton.toolTip == "Select a SPECT volume."
    assert not ui.applyButton.enabled and ui.applyButton.toolTip == "Select the liver and lesion segmentation."
    segmentation = patient.segmentation()
    ui.segmentationSelector.setCurrentNode(segmentation)
    assert ui.applyButton.toolTip == "Add at least one SPECT to the cycles."
    _choose(ui.lobeSplitMethodComboBox, "couinaud")
    assert ui.couinaudSelector.enabled and ui.caudateComboBox.enabled and not ui.splitPlaneSelector.enabled
    assert not ui.splitButton.enabled and ui.splitButton.toolTip == "Select the Couinaud segment label map."
    _choose(ui.lobeSplitMethodComboBox, "plane")
    assert ui.splitPlaneSelector.enabled and not ui.couinaudSelector.enabled
    ui.marginOneVoxelCheckBox.checked = True
    assert not ui.marginSlider.enabled
    ui.marginOneVoxelCheckBox.checked = False
    assert ui.marginSlider.enabled
    ui.spectSelector.setCurrentNode(patient.spects()[24.0])
    assert ui.addCycleButton.enabled
    assert ui.addCycleButton.toolTip == "Add the SPECT with its cycle and hours after injection."


def test_tutorial_split_add_apply_export(lobequant, patient, scene, shown, tmp_path):
    """README step 3: CT, segmentation, IA side right, Couinaud split, add the 24 h SPECT, Apply, Export CSV."""
    import slicer

    ui, parameters = lobequant.ui, lobequant.parameters
    ui.ctSelector.setCurrentNode(patient.ct())
    ui.segmentationSelector.setCurrentNode(patient.segmentation())
    _choose(ui.iaSideComboBox, "right")
    _choose(ui.lobeSplitMethodComboBox, "couinaud")
    couinaud = slicer.util.loadLabelVolume(str(patient.folder / "truth" / "couinaud.nrrd"))
    ui.couinaudSelector.setCurrentNode(couinaud)
    assert ui.splitButton.enabled
    ui.splitButton.click()
    lobes = parameters.lobeSegmentation
    assert lobes is not None and ui.lobeSegmentationSelector.currentNode() is lobes

    ui.spectSelector.setCurrentNode(patient.spects()[24.0])
    ui.cycleSpinBox.value = 1
    ui.hoursSpinBox.value = 24.0
    ui.activitySpinBox.value = 7400.0
    ui.addCycleButton.click()
    assert ui.cyclesTableView.model().rowCount() == 1 and ui.removeCycleButton.enabled
    assert ui.applyButton.enabled
    ui.applyButton.click()

    assert shown.messages == []
    values = shown.progress[-1]
    assert values[0] == 0 and values[-1] == 100 and values == sorted(values), values
    tn = parameters.tnTable
    assert tn is not None and ui.tnTableSelector.currentNode() is tn
    truth_lesions = {lesion["lesion_id"] for lesion in patient.truth["lesions"]}
    assert {row["lesion_id"] for row in _lesion_rows(tn)} == truth_lesions
    assert ui.ratioTableSelector.currentNode() is parameters.ratioTable is not None
    assert ui.uptakeTableSelector.currentNode() is parameters.uptakeTable is not None

    assert not ui.exportButton.enabled and ui.exportButton.toolTip == "Compute T/N first."  # no folder yet
    folder = tmp_path / "csv"
    folder.mkdir()
    ui.exportDirectoryButton.directory = str(folder)
    assert ui.exportButton.enabled
    ui.exportButton.click()
    assert shown.messages == []
    written = sorted(path.name for path in folder.iterdir())
    assert written and all(name.endswith(".csv") for name in written), written


def test_a_bad_click_shows_an_error_dialog(lobequant, patient, scene, shown, slot_errors):
    """The same SPECT twice at the same cycle and hour: an error dialog with the one-line reason."""
    ui = lobequant.ui
    ui.spectSelector.setCurrentNode(patient.spects()[24.0])
    ui.hoursSpinBox.value = 24.0
    ui.addCycleButton.click()
    assert shown.messages == [] and slot_errors() == []
    ui.addCycleButton.click()
    assert [m.kind for m in shown.messages] == ["critical"]
    assert shown.messages[0].text == "Failed to add the SPECT.\n\ncycle 1 already has a SPECT at 24 h"
    # tryWithErrorDisplay shows the dialog, then re-raises into Qt, which logs it: that error only.
    assert [str(e) for e in slot_errors()] == ["cycle 1 already has a SPECT at 24 h"]


def test_remove_takes_the_selected_spect_out_of_the_cycles(lobequant, patient, scene):
    from luprrt import mrml

    ui, parameters = lobequant.ui, lobequant.parameters
    spects = patient.spects()
    for hours in (4.0, 24.0):
        ui.spectSelector.setCurrentNode(spects[hours])
        ui.hoursSpinBox.value = hours
        ui.addCycleButton.click()
    view = ui.cyclesTableView
    assert view.model().rowCount() == 2
    view.setCurrentIndex(view.model().index(0, 0))  # the user selects the 4 h row
    ui.removeCycleButton.click()
    rows = mrml.rows_from_table_node(parameters.cyclesTable)
    assert [row["hours_post_injection"] for row in rows] == [24.0] and view.model().rowCount() == 1
