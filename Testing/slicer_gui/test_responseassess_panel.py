"""ResponseAssess's panel clicked through the README tutorial on the synthetic patient, on real Qt."""

from __future__ import annotations

import pytest


@pytest.fixture
def response(open_panel):
    return open_panel("ResponseAssess")


def test_steps_follow_the_inputs(response, patient, scene):
    ui = response.ui
    assert not ui.measureButton.enabled and ui.measureButton.toolTip == "Select the baseline segmentation."
    assert ui.trackButton.toolTip == "Select the baseline and follow-up segmentations."
    ui.baselineSegmentationSelector.setCurrentNode(patient.segmentation("cycle1"))
    ui.followupSegmentationSelector.setCurrentNode(patient.segmentation("followup1"))
    assert ui.measureButton.enabled and ui.trackButton.enabled  # registration ticked, but no CT at all
    ui.baselineCtSelector.setCurrentNode(patient.ct("cycle1"))
    assert not ui.trackButton.enabled
    assert ui.trackButton.toolTip == "Registration needs both CT volumes (or untick registration)."
    ui.registerCheckBox.checked = False
    assert ui.trackButton.enabled
    assert ui.assessButton.toolTip == "Select a measurement table, or measure both time points first."


def test_tutorial_measure_track_assess(response, patient, scene, shown):
    """README step 5: baseline and follow-up segmentations with their CTs, measure, track, assess."""
    from luprrt import mrml

    ui, parameters = response.ui, response.parameters
    progress = []
    ui.progressBar.connect("valueChanged(int)", progress.append)
    ui.baselineSegmentationSelector.setCurrentNode(patient.segmentation("cycle1"))
    ui.followupSegmentationSelector.setCurrentNode(patient.segmentation("followup1"))
    ui.baselineCtSelector.setCurrentNode(patient.ct("cycle1"))
    ui.followupCtSelector.setCurrentNode(patient.ct("followup1"))
    ui.measureButton.click()
    baseline = mrml.rows_from_table_node(parameters.baselineDiametersTable)
    truth = {lesion["lesion_id"]: lesion for lesion in patient.truth["lesions"]}
    assert {row["lesion_id"] for row in baseline} == set(truth)
    ui.trackButton.click()
    assert parameters.trackedSegmentation is not None and parameters.lesionEventsTable is not None
    ui.measureButton.click()  # the tracked follow-up, measured with the baseline's ids
    assert not ui.assessButton.enabled and ui.assessButton.toolTip == "Enter the patient ID."
    ui.patientIdLineEdit.text = patient.manifest["patient_id"]
    ui.baselineDateLineEdit.text = patient.session("cycle1")["datetime"][:10]
    ui.followupDateLineEdit.text = patient.session("followup1")["datetime"][:10]
    assert ui.assessButton.enabled
    ui.assessButton.click()

    assert shown.messages == []
    assert progress and progress[-1] == 100
    time_points = mrml.rows_from_table_node(parameters.timePointTable)
    assert ui.timePointSelector.currentNode() is parameters.timePointTable
    followup_date = patient.session("followup1")["datetime"][:10]
    assert [str(row["date"]) for row in time_points] == [followup_date], time_points
    # The sum of the measured baseline diameters is the RECIST baseline of the follow-up time point.
    assert time_points[0]["baseline_sum_mm"] > 0 and parameters.bestResponseTable is not None
    # Truth: RECIST 1.1 takes the two largest liver lesions as targets; their analytic diameters
    # change far from the 30 % (PR) and 20 % (PD) limits here, so the response is known.
    largest = sorted(truth.values(), key=lambda t: -t["longest_axial_diameter_mm"]["cycle1"])[:2]
    sums = [sum(t["longest_axial_diameter_mm"][visit] for t in largest) for visit in ("cycle1", "followup1")]
    change_pct = 100.0 * (sums[1] - sums[0]) / sums[0]
    expected = "PR" if change_pct <= -30 else "PD" if change_pct >= 20 else "SD"
    assert -25 < change_pct < 15  # far from both limits: the measured diameters cannot cross one
    assert str(time_points[0]["overall_response"]) == expected
    followup = mrml.rows_from_table_node(parameters.followupDiametersTable)
    assert {row["lesion_id"] for row in followup} == set(truth)  # tracking kept every lesion's id


def test_a_bad_click_shows_an_error_dialog(response, patient, scene, shown, slot_errors):
    """Dates in the wrong order are refused by the button state; a follow-up with no lesion by the Logic."""
    ui = response.ui
    ui.baselineSegmentationSelector.setCurrentNode(patient.segmentation("cycle1"))
    empty = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "empty follow-up")
    ui.followupSegmentationSelector.setCurrentNode(empty)
    ui.registerCheckBox.checked = False
    assert ui.trackButton.enabled
    ui.trackButton.click()
    assert [m.kind for m in shown.messages] == ["critical"], shown.messages
    assert shown.messages[0].text.startswith("Failed to track the follow-up lesions.\n\n")
    assert len(slot_errors()) == 1
