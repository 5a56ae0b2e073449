"""manifest.json of a patient folder: read whole, or refused in one line naming the field and the fix."""

from __future__ import annotations

import json

import pytest

from luprrt.workflows.dose_inputs import read_patient_folder
from luprrt.workflows.manifest import read_manifest

GOOD = {"patient_id": "P1",
        "administrations": [{"cycle": 1, "activity_mbq": 7400.0}, {"cycle": "2", "activity_mbq": 7300}],
        "sessions": [{"name": "c1", "kind": "cycle", "cycle": 1, "segmentation": "seg.seg.nrrd",
                      "spect": [{"file": "spect_4h.nrrd", "hours_post_injection": 4.0},
                                {"file": "spect_24h.nrrd", "hours_post_injection": 24}]},
                     {"name": "base", "kind": "baseline"}]}


def _folder(tmp_path, manifest):
    folder = tmp_path / "patient"
    folder.mkdir()
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (folder / "manifest.json").write_text(text, encoding="utf-8")
    return folder


def test_a_good_manifest_is_read_as_written(tmp_path):
    assert read_manifest(_folder(tmp_path, GOOD)) == GOOD


def _with(**changes):
    return {**GOOD, **changes}


@pytest.mark.parametrize(("manifest", "message"), [
    ("[1, 2]", "a LuPRRT manifest is a JSON object with patient_id and sessions"),
    ({"patient_id": "P1"}, "missing key 'sessions'"),
    ({"sessions": []}, "missing key 'patient_id'"),
    (_with(sessions={"c1": {}}), "'sessions' must be a list of visits (objects)"),
    (_with(sessions=["c1"]), "'sessions' must be a list of visits (objects)"),
    (_with(administrations=[7400.0]), "administration 1 is not an object with cycle and activity_mbq"),
    (_with(administrations=[{"cycle": True, "activity_mbq": 7400.0}]),
     "administration 1: cycle True is not a treatment cycle number; write it as e.g. 1"),
    (_with(administrations=[{"cycle": 1, "activity_mbq": "7.4 GBq"}]),
     "administration 1: activity_mbq '7.4 GBq' is not a positive number of MBq; write it as e.g. 7400.0"),
    (_with(sessions=[{"name": "c1", "kind": "cycle", "cycle": "one"}]),
     "session 'c1': cycle 'one' is not a treatment cycle number; write it as e.g. 1"),
    (_with(sessions=[{"name": "c1", "spect": "spect.nrrd"}]),
     "session 'c1': 'spect' must be a list of scans (objects with file and hours_post_injection)"),
    (_with(sessions=[{"spect": [{"file": " "}]}]),
     "session '?': SPECT 1 has no 'file' (the image path relative to the patient folder)"),
    (_with(sessions=[{"name": "c1", "spect": [{"file": "a.nrrd", "hours_post_injection": -4}]}]),
     "session 'c1': SPECT 1 (a.nrrd) has hours_post_injection -4; give the scan time after injection as a "
     "number of hours >= 0, e.g. 24.0"),
], ids=["array", "no sessions", "no patient_id", "sessions object", "session not object", "administration number",
        "boolean cycle", "activity text", "cycle word", "spect not list", "spect without file", "negative hours"])
def test_unusable_manifests_are_refused_naming_the_field(tmp_path, manifest, message):
    folder = _folder(tmp_path, manifest)
    with pytest.raises(ValueError) as error:
        read_manifest(folder)
    assert str(error.value) == f"{folder / 'manifest.json'}: {message}"


def test_missing_folder_manifest_and_broken_json_are_named(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        read_manifest(tmp_path / "absent")
    assert str(error.value) == f"patient folder not found: {tmp_path / 'absent'}"
    with pytest.raises(FileNotFoundError) as error:
        read_manifest(tmp_path)
    assert str(error.value) == f"no manifest.json in patient folder {tmp_path}"
    folder = _folder(tmp_path, '{"patient_id": "P1",')
    with pytest.raises(ValueError, match=r"manifest.json: not a readable JSON manifest \(.*\); repair or rewrite it$"):
        read_manifest(folder)


def test_dose_inputs_refuse_an_administration_without_activity_and_unordered_cycles(tmp_path):
    folder = _folder(tmp_path, _with(administrations=[{"cycle": 1}]))
    with pytest.raises(ValueError) as error:
        read_patient_folder(folder)
    assert str(error.value) == (f"{folder / 'manifest.json'}: a cycle visit or administration lacks a valid "
                                f"'activity_mbq' (cycle, activity_mbq)")
    (folder / "manifest.json").write_text(json.dumps(_with(sessions=[
        {"name": "c1", "kind": "cycle", "cycle": 1}, {"name": "c2", "kind": "cycle", "cycle": 2}])), encoding="utf-8")
    with pytest.raises(ValueError) as error:
        read_patient_folder(folder, cycles=[2, 1])
    assert str(error.value) == "cycles must be given once each in increasing order, got [2, 1]"
    with pytest.raises(ValueError) as error:
        read_patient_folder(folder, cycles=[3])
    assert str(error.value) == f"{folder / 'manifest.json'}: no treatment cycle [3]; the manifest has cycles [1, 2]"
