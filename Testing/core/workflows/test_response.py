"""Lesion tracking and diameters over a synthetic patient's visits, against the generator's truth."""

from __future__ import annotations

import json
import logging
import math
from datetime import date

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.io import write_seg_nrrd
from luprrt.phantom import make_patient, write_patient
from luprrt.response.recist import assess_patient
from luprrt.segments import Segmentation, SegmentTags
from luprrt.workflows.response import Visit, measure_patient, measure_segmentations


@pytest.fixture(scope="module")
def patient_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("patient") / "P"
    write_patient(make_patient(1, small=True, noise=False), folder)
    return folder


@pytest.fixture(scope="module")
def measured(patient_folder):
    return measure_patient(patient_folder)


def _truth(patient_folder):
    return json.loads((patient_folder / "truth.json").read_text())


def test_every_lesion_keeps_its_tracking_id_at_every_visit(patient_folder, measured):
    truth = _truth(patient_folder)
    visits = {row["visit"] for row in measured.measurements}
    assert len(visits) == 6  # four cycles and two follow-ups
    for lesion in truth["lesions"]:
        rows = [r for r in measured.measurements if r["lesion_id"] == lesion["lesion_id"]]
        assert {r["visit"] for r in rows} == visits, lesion["lesion_id"]
    assert all(e["kind"] == "matched" for e in measured.tracking_events)
    assert not [r for r in measured.measurements if r["lesion_type"] == "new"]


def test_longest_diameters_follow_the_truth_within_one_voxel_diagonal(patient_folder, measured):
    truth = {lesion["lesion_id"]: lesion["longest_axial_diameter_mm"] for lesion in _truth(patient_folder)["lesions"]}
    # The small patient has 4 x 4 mm axial pixels: voxel-corner diameters of a rasterised ellipse lie
    # within one pixel diagonal of the analytic diameter, in either direction.
    pixel_diagonal_mm = math.hypot(4.0, 4.0)
    errors = [row["longest_diameter_mm"] - truth[row["lesion_id"]][row["visit"]] for row in measured.measurements
              if row["diameter_source"] == "segment"]
    assert len(errors) == len(measured.measurements)
    assert max(abs(e) for e in errors) <= pixel_diagonal_mm
    assert abs(sum(errors) / len(errors)) < 4.0  # no gross bias beyond the corner convention


def test_baseline_targets_follow_recist_selection(measured):
    baseline = min(row["date"] for row in measured.measurements)
    first = [r for r in measured.measurements if r["date"] == baseline]
    targets = sorted((r for r in first if r["lesion_type"] == "target"), key=lambda r: -r["longest_diameter_mm"])
    # All lesions are liver metastases: at most two targets per organ, the two largest measurable ones.
    assert len(targets) == 2
    others = [r["longest_diameter_mm"] for r in first if r["lesion_type"] == "non_target"]
    assert min(t["longest_diameter_mm"] for t in targets) >= max(others)
    assert {r["non_target_status"] for r in first if r["lesion_type"] == "non_target"} == {"present"}


def test_recist_sum_matches_the_two_target_diameters(measured):
    responses = assess_patient(measured.measurements)
    assert len(responses) == 5
    for tp in responses:
        targets = [r for r in measured.measurements if r["date"] == tp.date and r["lesion_type"] == "target"]
        # Sums are written to the measurements' precision, at most 6 decimals: within 5e-7 mm.
        assert tp.sum_of_diameters_mm == pytest.approx(sum(r["longest_diameter_mm"] for r in targets), abs=5e-7)


def test_missing_manifest_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no manifest\.json"):
        measure_patient(tmp_path)


def test_unusable_visits_are_named(tmp_path, caplog):
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"patient_id": "P1", "sessions": [{"name": "base", "segmentation": "base.seg.nrrd"}]}), encoding="utf-8")
    with pytest.raises(ValueError) as error:
        measure_patient(tmp_path)
    assert str(error.value) == (f"{tmp_path / 'manifest.json'}: every visit needs name, datetime (ISO) and "
                                f"segmentation (KeyError: 'datetime')")
    with pytest.raises(ValueError) as error:
        measure_segmentations("P1", [])
    assert str(error.value) == "patient P1: no visit to measure"
    absent = Visit("base", date(2024, 5, 1), tmp_path / "absent.seg.nrrd")
    with pytest.raises(FileNotFoundError) as error:
        measure_segmentations("P1", [absent])
    assert str(error.value) == f"segmentation of visit base not found: {tmp_path / 'absent.seg.nrrd'}"
    empty = tmp_path / "empty.seg.nrrd"
    liver_only = Segmentation.empty_like(sitk.Image(8, 8, 8, sitk.sitkFloat32))
    mask = np.zeros((8, 8, 8), dtype=bool)
    mask[2:6, 2:6, 2:6] = True
    liver_only.add_segment(mask, SegmentTags(role="liver"), segment_id="liver")
    write_seg_nrrd(liver_only, empty)
    with caplog.at_level(logging.WARNING, logger="luprrt.workflows.response"), pytest.raises(ValueError) as error:
        measure_segmentations("P1", [Visit("base", date(2024, 5, 1), empty)])
    assert str(error.value).startswith(f"{empty}: the baseline has no lesion segment (role=lesion); ")
    assert f"{empty} holds no lesion segment (role=lesion): every lesion counts as gone" in caplog.text
