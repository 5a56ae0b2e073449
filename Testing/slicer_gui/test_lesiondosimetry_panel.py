"""LesionDosimetry's panel clicked through the README tutorial on the synthetic patient, on real Qt."""

from __future__ import annotations

import pytest


@pytest.fixture
def dosimetry(open_panel):
    return open_panel("LesionDosimetry")


def test_apply_follows_the_inputs(dosimetry, patient, scene):
    ui = dosimetry.ui
    assert not ui.applyButton.enabled
    assert ui.applyButton.toolTip == "Select at least the first SPECT and a segmentation."
    assert not ui.calibrateButton.enabled and not ui.exportDicomButton.enabled
    ui.segmentationSelector.setCurrentNode(patient.segmentation())
    assert not ui.applyButton.enabled
    ui.spectSelector1.setCurrentNode(patient.spects()[4.0])
    assert ui.applyButton.enabled
    assert ui.applyButton.toolTip == "Compute the time-integrated activity, doses and limits."


def test_tutorial_four_spects_apply_limits(dosimetry, patient, scene, shown):
    """README step 4: the four cycle-1 SPECTs with their times, CT, segmentation, Apply: the organ limits."""
    from luprrt import mrml

    ui, parameters = dosimetry.ui, dosimetry.parameters
    progress = []
    ui.progressBar.connect("valueChanged(int)", progress.append)
    spects = patient.spects()
    for slot, hours in enumerate(sorted(spects), start=1):
        getattr(ui, f"spectSelector{slot}").setCurrentNode(spects[hours])
        getattr(ui, f"hoursSpinBox{slot}").value = hours
    ui.ctSelector.setCurrentNode(patient.ct())
    ui.segmentationSelector.setCurrentNode(patient.segmentation())
    ui.activitySpinBox.value = 7.4
    assert ui.progressBar.value == 0
    assert [getattr(parameters, f"hoursPostInjection{k}") for k in range(1, 5)] == [4.0, 24.0, 96.0, 168.0]
    ui.applyButton.click()

    assert shown.messages == []
    assert 0 < progress[0] < progress[-1] == 100 and progress == sorted(progress), progress  # from 0 before
    limits = parameters.limitsTable
    assert limits is not None and ui.limitsTableSelector.currentNode() is limits
    for field in ("tiaVolume", "doseVolume", "doseTable", "tacTable", "tacChart", "tiaTable"):
        assert getattr(parameters, field) is not None, field
    rows = mrml.rows_from_table_node(limits)
    assert rows and any("kidney" in " ".join(str(v) for v in row.values()).lower() for row in rows), rows
    dose_rows = mrml.rows_from_table_node(parameters.doseTable)
    truth_lesions = {lesion["lesion_id"] for lesion in patient.truth["lesions"]}
    assert truth_lesions <= {str(row.get("lesion_id", "")) for row in dose_rows}
    assert ui.exportDicomButton.enabled  # Apply done, CT and segmentation present


def test_export_dicom_after_apply_writes_the_dose_objects(dosimetry, patient, patient_folder, scene, shown,
                                                         tmp_path, monkeypatch):
    """Export DICOM asks for a folder (first making sure highdicom is there) and writes RT Dose and the report."""
    import pydicom
    import slicer
    from slicer_host import dialogs

    # The CT as Slicer's DICOM module loads it: instance UIDs on the node, the database maps them to files.
    ct_files = sorted(str(p) for p in (patient_folder / "ct").rglob("*.dcm"))
    uids = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in ct_files]
    ct = patient.ct()
    ct.SetAttribute("DICOM.instanceUIDs", " ".join(uids))
    database = type("DicomDatabase", (), {"fileForInstance": staticmethod(dict(zip(uids, ct_files, strict=True)).get)})
    monkeypatch.setattr(slicer, "dicomDatabase", database, raising=False)
    ui = dosimetry.ui
    for slot, (hours, node) in enumerate(sorted(patient.spects().items()), start=1):
        getattr(ui, f"spectSelector{slot}").setCurrentNode(node)
        getattr(ui, f"hoursSpinBox{slot}").value = hours
    ui.ctSelector.setCurrentNode(ct)
    ui.segmentationSelector.setCurrentNode(patient.segmentation())
    ui.activitySpinBox.value = 7.4
    ui.applyButton.click()
    dialogs.FILE_ANSWERS.append(str(tmp_path / "dicom"))
    ui.exportDicomButton.click()

    assert shown.messages == []
    modalities = {pydicom.dcmread(p, stop_before_pixels=True).Modality for p in (tmp_path / "dicom").rglob("*.dcm")}
    assert {"RTDOSE", "SR"} <= modalities, modalities


def test_a_bad_click_shows_an_error_dialog(dosimetry, patient, scene, shown, slot_errors):
    """A CT (HU) given as the SPECT: Apply is enabled, the Logic refuses, the user sees why."""
    ui = dosimetry.ui
    ui.spectSelector1.setCurrentNode(patient.ct())
    ui.segmentationSelector.setCurrentNode(patient.segmentation())
    ui.applyButton.click()
    assert [m.kind for m in shown.messages] == ["critical"]
    text = shown.messages[0].text
    assert text.startswith("Dosimetry failed.\n\n") and "\n" not in text.split("\n\n", 1)[1], text
    errors = slot_errors()
    assert len(errors) == 1 and str(errors[0]) in text
