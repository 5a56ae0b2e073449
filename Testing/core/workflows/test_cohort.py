"""Cohort batch over a small synthetic study with a known IA effect: tables, analyses, report, resume."""

from __future__ import annotations

import pandas as pd
import pytest

from luprrt.workflows.cohort import discover_patients, make_demo_cohort, run_cohort

IA_TN_FACTOR = 2.5


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    make_demo_cohort(folder, 3, seed=20, ia_tn_factor=IA_TN_FACTOR)
    return folder


@pytest.fixture(scope="module")
def cohort(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    fractions = []
    run = run_cohort(study, out, jobs=2, options={"voxel_dose": False},
                     progress=lambda fraction, message: fractions.append(fraction))
    return run, out, fractions


def test_study_discovery_reads_the_manifest(study):
    entries = discover_patients(study)
    assert [e.ia_side for e in entries] == ["right", "left", "right"]
    assert all((e.folder / "manifest.json").is_file() for e in entries)


def test_every_lesion_has_a_row_per_cycle_with_tn_dose_and_features(cohort, study):
    run, out, fractions = cohort
    assert len(run.processed) == 3 and not run.skipped
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    lesions = pd.read_csv(out / "lesion_table.csv")
    truth_lesions = sum(len(pd.read_json(e.folder / "truth.json", typ="series")["lesions"])
                        for e in discover_patients(study))
    assert len(lesions) == 4 * truth_lesions
    for column in ("tn_mean", "tumour_dose_gy", "cumulative_tumour_dose_gy", "fdg_suvmax", "adc_mean_mm2_per_s",
                   "diameter_change_pct", "lesion_response"):
        assert lesions[column].notna().all(), column
    cumulative = lesions.sort_values("cycle").groupby(["patient_id", "lesion_id"])
    assert cumulative["cumulative_tumour_dose_gy"].last().to_numpy() == pytest.approx(
        cumulative["tumour_dose_gy"].sum().to_numpy(), rel=1e-12)


def test_primary_analysis_sees_the_built_in_ia_effect(cohort):
    _, out, _ = cohort
    primary = pd.read_csv(out / "primary_ia_iv.csv").iloc[0]
    assert primary["n_patients"] == 3
    # Built-in IA/IV lesion uptake factor 2.5; blur and partial volume dilute it but keep its direction.
    assert 1.3 < primary["ratio_ia_iv"] < IA_TN_FACTOR
    assert primary["share_increased"] == 1.0


def test_primary_is_the_trial_definition_with_labelled_sensitivity_analyses(cohort):
    """Up to 3 target lesions > 30 mm per lobe (largest first); all lesions and size-matched beside it."""
    _, out, _ = cohort
    lesions = pd.read_csv(out / "lesion_table.csv")
    cycle1 = lesions[lesions["cycle"] == 1]
    targets = cycle1[cycle1["target_lesion"]]
    assert (targets["longest_diameter_mm"] > 30.0).all()
    assert targets.groupby(["patient_id", "side"]).size().max() <= 3
    # The targets are the largest lesions of their lobe, ranked from 1.
    for (_, _), lobe in cycle1.groupby(["patient_id", "side"]):
        chosen = lobe[lobe["target_lesion"]].sort_values("target_rank")
        largest = lobe[lobe["longest_diameter_mm"] > 30.0].nlargest(3, "longest_diameter_mm")
        assert list(chosen["lesion_id"]) == list(largest["lesion_id"])
    endpoints = pd.read_csv(out / "ia_iv_endpoints.csv")
    assert list(endpoints["analysis"]) == [
        "primary (trial definition: up to 3 target lesions > 30 mm per lobe)", "sensitivity: all lesions",
        "sensitivity: size-matched lesions (IA-IV pairs within a volume ratio of 2)"]
    primary = pd.read_csv(out / "primary_ia_iv.csv").iloc[0]
    assert primary["n_lesions_ia"] + primary["n_lesions_iv"] == len(targets)
    everything = pd.read_csv(out / "ia_iv_sensitivity_all_lesions.csv").iloc[0]
    assert everything["n_lesions_ia"] + everything["n_lesions_iv"] == len(cycle1)
    matched = pd.read_csv(out / "ia_iv_sensitivity_size_matched.csv").iloc[0]
    assert matched["n_lesions_ia"] == matched["n_lesions_iv"]  # pairs


def test_report_is_self_contained_with_every_section(cohort):
    run, _, _ = cohort
    html = run.report.read_text()
    for heading in ("Primary endpoint", "IA vs IV by cycle", "uptake", "absorbed dose by lobe", "Response"):
        assert heading in html
    assert html.count("data:image/png;base64,") >= 3
    assert "http" not in html.split("<h2>Provenance</h2>")[0]


def test_rerun_resumes_and_refuses_to_overwrite_the_report(cohort, study):
    _, out, _ = cohort
    with pytest.raises(FileExistsError, match=r"lesion_table\.csv exists"):
        run_cohort(study, out, jobs=1)
    again = run_cohort(study, out, jobs=1, overwrite=True)
    assert again.processed == [] and len(again.skipped) == 3


def test_redoing_finished_patients_needs_overwrite(cohort, study):
    _, out, _ = cohort
    done_before = sorted(p.stat().st_mtime_ns for p in (out / "patients").glob("*/done.json"))
    assert len(done_before) == 3
    first = discover_patients(study)[0].patient_id
    with pytest.raises(FileExistsError, match=rf"patients \['{first}'.*resume=False.*overwrite=True"):
        run_cohort(study, out, jobs=1, resume=False, analyse=False)
    assert sorted(p.stat().st_mtime_ns for p in (out / "patients").glob("*/done.json")) == done_before


def test_bad_study_inputs_are_named(tmp_path):
    with pytest.raises(NotADirectoryError, match="study folder not found"):
        discover_patients(tmp_path / "missing")
    with pytest.raises(ValueError, match="no patients in"):
        discover_patients(tmp_path)
    (tmp_path / "manifest.csv").write_text("patient_id,folder\nP1,p1\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['ia_side'\]"):
        discover_patients(tmp_path)
