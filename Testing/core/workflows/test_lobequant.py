"""LobeQuant end to end on written synthetic patients: T/N rows, partial-volume truth, IA/IV direction, files.

The synthetic SPECT is the truth concentration averaged over 4.42 mm voxels and blurred
with a 12 mm FWHM Gaussian, so measured T/N is lower than the truth by the partial-volume
effect. For spherical lesions that loss has a closed form (:func:`sphere_recovery`), which
gives the expected measured lobe T/N without running any imaging code.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import integrate, stats

from luprrt.io import read_image, read_seg_nrrd, write_seg_nrrd, write_volume
from luprrt.liver import LobeSplit
from luprrt.phantom import make_patient, write_patient
from luprrt.segments import Segment, SegmentTags
from luprrt.tables import read_rows_csv
from luprrt.workflows.lobequant import (
    PROVENANCE_FILE,
    RATIO_FILE,
    TN_FILE,
    TRIAL_FILE,
    TRIAL_RATIO_FILE,
    UPTAKE_FILE,
    LobeQuantInputs,
    SpectInput,
    lobe_split_from_options,
    parse_spect_argument,
    run_lobequant,
)

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def written_patient(folder, **options):
    """A small synthetic patient with spherical lesions and 24 h SPECTs, written to ``folder``."""
    options = {"small": True, "n_cycles": 1, "hours_post_injection": (24.0,), "followup_weeks": (),
               "lesion_shape": "sphere"} | options
    write_patient(make_patient(options.pop("seed", 3), **options), folder)
    return folder


@pytest.fixture(scope="module")
def noisy_patient(tmp_path_factory):
    """Two cycles, left artery injected, lesions of the IA lobe 2.5 times hotter (in expectation)."""
    return written_patient(tmp_path_factory.mktemp("noisy"), n_cycles=2, ia_side="left", ia_tn_factor=2.5)


@pytest.fixture(scope="module")
def clean_patient(tmp_path_factory):
    """One cycle without noise: the measured numbers differ from the truth by blur and voxels only."""
    return written_patient(tmp_path_factory.mktemp("clean"), noise=False)


@pytest.fixture(scope="module")
def inverse_patient(tmp_path_factory):
    """IA lobe lesions at 0.4 times the IV lobe's T/N (the effect in the other direction)."""
    return written_patient(tmp_path_factory.mktemp("inverse"), seed=4, ia_tn_factor=0.4)


@pytest.fixture(scope="module")
def noisy_run(noisy_patient):
    return run_lobequant(noisy_patient, uptake=False)


@pytest.fixture(scope="module")
def clean_runs(clean_patient):
    return {occupancy: run_lobequant(clean_patient, occupancy=occupancy, uptake=False)
            for occupancy in ("nearest", "fractional")}


def load_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def sphere_recovery(radius_mm: float, sigma_mm: float) -> float:
    """Share of a uniform sphere's activity that an isotropic Gaussian blur keeps inside the sphere.

    A point uniform in the sphere moves by a Gaussian displacement whose length d follows a
    Maxwell distribution (scale sigma); it stays inside with probability equal to the
    sphere's overlap with itself shifted by d, 1 - 3d/(4R) + d^3/(16 R^3) for d < 2R. The
    mean blurred concentration over the sphere is then c_L P + c_around (1 - P).
    """
    def integrand(d):
        overlap = 1 - 0.75 * d / radius_mm + d ** 3 / (16 * radius_mm ** 3)
        return overlap * stats.maxwell.pdf(d, scale=sigma_mm)

    return integrate.quad(integrand, 0.0, 2 * radius_mm, limit=200)[0]


def truth_lobes(folder, cycle: int = 1, hours: float = 24.0) -> dict:
    """Per side: true lobe T/N (lesions pooled by volume), lesions' (volume, mean, radius), non-tumour."""
    truth = load_json(folder / "truth.json")
    session = f"cycle{cycle}"
    point = next(tp for c in truth["cycles"] if c["cycle"] == cycle for tp in c["time_points"]
                 if tp["hours_post_injection"] == hours)
    mean, volumes = point["mean_bq_per_ml"], truth["volumes_ml"][session]
    lobes = {}
    for side in ("right", "left"):
        lesions = [(volumes[le["lesion_id"]], mean[le["lesion_id"]], le["semi_axes_mm"][0])
                   for le in truth["lesions"] if le["side"] == side and volumes[le["lesion_id"]] > 0]
        v, c, _ = np.array(lesions).T
        nontumour = mean[f"nontumour_{side}"]
        lobes[side] = {"tn": float((v * c).sum() / v.sum() / nontumour), "lesions": lesions,
                       "nontumour_bq_per_ml": nontumour}
    return lobes


def row(rows, cycle, role, side):
    return next(r for r in rows if r["cycle"] == cycle and r["role"] == role and r["side"] == side)


def test_every_lesion_of_every_cycle_has_a_tn_row(noisy_patient, noisy_run):
    run = noisy_run
    truth = load_json(noisy_patient / "truth.json")
    assert run.ia_side == "left"  # from the manifest's administrations
    for cycle in (1, 2):
        volumes = truth["volumes_ml"][f"cycle{cycle}"]
        expected = {le["lesion_id"]: le["side"] for le in truth["lesions"] if volumes[le["lesion_id"]] > 0}
        lesions = {r["lesion_id"]: r for r in run.tn_rows if r["cycle"] == cycle and r["role"] == "lesion"}
        assert set(lesions) == set(expected) and len(expected) == 9
        for lesion_id, r in lesions.items():
            assert r["side"] == expected[lesion_id]  # lesion-to-lobe assignment agrees with the truth
            assert r["route"] == ("IA" if r["side"] == "left" else "IV")
            # Lesions are hotter than liver (true T/N 4-80) and blur cannot invert that.
            assert 1.0 < r["tn_mean"] <= r["tn_max"] < 100.0
            nontumour = row(run.tn_rows, cycle, "non-tumour", r["side"])
            assert r["nontumour_mean_bq_per_ml"] == nontumour["mean_bq_per_ml"]
        for side in ("right", "left"):
            assert row(run.tn_rows, cycle, "tumour", side)["tn_mean"] > 1.0


def test_pooled_lesion_concentration_follows_the_closed_form_partial_volume_loss(clean_patient, clean_runs):
    """Noise-free: each lobe's pooled lesion mean equals sum V (P c_L + (1 - P) c_N) / sum V within 6 %.

    Tolerance: the closed form treats every lesion as an isolated sphere in uniform non-tumour
    liver and the 4.42 mm voxel average as a Gaussian of equal variance (s^2/12 per axis);
    lesions closer than the blur reach (2 sigma = 10.5 mm) to the liver surface or to another
    lesion see other surroundings. The large lesions that dominate the voxel-weighted mean are
    the least affected; over seeds 0-5 the deviation stays below 5.2 %. The non-tumour reference
    itself is within 10 % of the truth: it loses activity at the liver surface and gains the
    lesions' spill-in beyond the one-voxel margin.
    """
    parameters = load_json(clean_patient / "manifest.json")["provenance"]["parameters"]
    # Camera blur and the voxel average (a box of variance s^2/12 per axis) add their variances.
    sigma = math.hypot(parameters["spect_fwhm_mm"] / FWHM_PER_SIGMA,
                       parameters["spect_spacing_mm"] / math.sqrt(12))
    truth = truth_lobes(clean_patient)
    for occupancy, run in clean_runs.items():
        for side, lobe in truth.items():
            v, c, r = np.array(lobe["lesions"]).T
            p = np.array([sphere_recovery(radius, sigma) for radius in r])
            expected_mean = float((v * (p * c + (1 - p) * lobe["nontumour_bq_per_ml"])).sum() / v.sum())
            tumour = row(run.tn_rows, 1, "tumour", side)
            assert tumour["mean_bq_per_ml"] == pytest.approx(expected_mean, rel=0.06), (occupancy, side)
            assert tumour["nontumour_mean_bq_per_ml"] == pytest.approx(lobe["nontumour_bq_per_ml"], rel=0.10)
            # The predicted loss is large (30-40 %): the measured lobe T/N is far below the truth.
            assert tumour["tn_mean"] < 0.8 * lobe["tn"]


def test_fractional_occupancy_brings_the_lobe_tn_closer_to_the_truth(clean_patient, clean_runs):
    truth = truth_lobes(clean_patient)
    bias = {occupancy: {side: run.tn.lobe_tn(1, side)[0] / truth[side]["tn"] - 1 for side in truth}
            for occupancy, run in clean_runs.items()}
    for side in truth:
        # Nearest neighbour counts rim voxels, diluted by the blur, with full weight.
        assert abs(bias["fractional"][side]) < abs(bias["nearest"][side]), (side, bias)


@pytest.mark.parametrize("patient, factor", [("noisy_patient", 2.5), ("inverse_patient", 0.4)])
def test_ia_iv_ratio_direction_follows_the_ia_tn_factor(patient, factor, request):
    folder = request.getfixturevalue(patient)
    if patient == "noisy_patient":
        run = request.getfixturevalue("noisy_run")
    else:
        run = run_lobequant(folder, uptake=False)
    truth = load_json(folder / "truth.json")
    assert truth["ia_tn_factor"] == factor
    assert {r["cycle"] for r in run.ratio_rows} == {c["cycle"] for c in truth["cycles"]}
    for ratio in run.ratio_rows:
        lobes = truth_lobes(folder, ratio["cycle"])
        true_ratio = lobes[truth["ia_side"]]["tn"] / lobes[truth["iv_side"]]["tn"]
        assert ratio["ia_side"] == truth["ia_side"]
        assert ratio["tn_mean_ia_over_iv"] == pytest.approx(ratio["tn_mean_ia"] / ratio["tn_mean_iv"],
                                                            rel=1e-12)
        assert np.sign(math.log(ratio["tn_mean_ia_over_iv"])) == np.sign(math.log(true_ratio)) \
            == np.sign(math.log(factor))


def test_outputs_carry_provenance_and_are_never_overwritten(noisy_patient, tmp_path):
    out = tmp_path / "out"
    run = run_lobequant(noisy_patient, ia_side="left", out_dir=out, occupancy="fractional", margin_mm=6.0)
    assert [p.name for p in run.files] == [TN_FILE, RATIO_FILE, TRIAL_FILE, TRIAL_RATIO_FILE, UPTAKE_FILE,
                                           PROVENANCE_FILE]
    tn = read_rows_csv(out / TN_FILE)
    assert len(tn) == len(run.tn_rows) == 2 * (3 * 2 + 9)  # per cycle: 3 rows per lobe and 9 lesions
    assert float(tn[0]["volume_ml"]) == run.tn_rows[0]["volume_ml"]  # no digit lost
    ratios = read_rows_csv(out / RATIO_FILE)
    assert [float(r["tn_mean_ia_over_iv"]) for r in ratios] == [r["tn_mean_ia_over_iv"]
                                                                 for r in run.ratio_rows]
    uptake = read_rows_csv(out / UPTAKE_FILE)
    assert {r["region"] for r in uptake} == {"left kidney", "right kidney", "kidneys", "liver", "right lobe",
                                             "left lobe", "extrahepatic"}
    manifest = load_json(noisy_patient / "manifest.json")
    for r in uptake:  # % of the administered activity decayed to the scan (Lu-177, 159.528 h)
        administered = next(a["activity_mbq"] for a in manifest["administrations"]
                            if a["cycle"] == int(r["cycle"]))
        at_scan = administered * math.exp(-math.log(2) * float(r["hours_post_injection"]) / 159.528)
        assert float(r["uptake_percent_of_administered"]) == pytest.approx(
            100 * float(r["activity_mbq"]) / at_scan, rel=1e-9)
    record = load_json(out / PROVENANCE_FILE)
    assert record["parameters"]["margin_mm"] == 6.0 and record["parameters"]["occupancy"] == "fractional"
    assert record["parameters"]["ia_side"] == "left"
    assert str(noisy_patient / "manifest.json") in record["inputs"]
    assert str(noisy_patient / "cycle2" / "spect_24h" / "spect.dcm") in record["inputs"]
    assert all(len(h) == 64 for h in record["inputs"].values())

    before = (out / TN_FILE).read_bytes()
    with pytest.raises(FileExistsError, match=r"lobequant_tn\.csv"):
        run_lobequant(noisy_patient, out_dir=out)
    assert (out / TN_FILE).read_bytes() == before
    again = run_lobequant(noisy_patient, out_dir=out, overwrite=True)  # nearest now: new numbers
    assert float(read_rows_csv(out / TN_FILE)[2]["tn_mean"]) == again.tn_rows[2]["tn_mean"]


@pytest.fixture(scope="module")
def explicit_files(noisy_patient, tmp_path_factory):
    """Cycle 1 of the noisy patient as separate files: lobe-less segmentation, NRRD SPECT (Bq/mL)."""
    folder = tmp_path_factory.mktemp("explicit")
    segmentation = read_seg_nrrd(noisy_patient / "segmentation.seg.nrrd")
    lobe_ids = [s.segment_id for s in segmentation.find(role="lobe")]
    write_seg_nrrd(segmentation.without(lobe_ids), folder / "liver.seg.nrrd")
    spect = read_image(noisy_patient / "cycle1" / "spect_24h" / "spect.dcm")
    write_volume(spect, folder / "spect.nrrd", "Bq/mL")  # keeps the injection and scan times
    return {"ct": noisy_patient / "ct", "seg": folder / "liver.seg.nrrd", "spect": folder / "spect.nrrd",
            "folder": folder}


def test_plane_and_couinaud_splits_reproduce_the_folder_run(noisy_patient, noisy_run, explicit_files):
    truth = load_json(noisy_patient / "truth.json")
    plane = truth["cantlie_plane"]
    reference = noisy_run
    inputs = LobeQuantInputs.from_files(None, explicit_files["seg"],
                                        [SpectInput(explicit_files["spect"], 1)])
    splits = {"plane": LobeSplit.plane(plane["point_mm"], plane["normal_towards_left_lobe"]),
              "couinaud": LobeSplit.couinaud(noisy_patient / truth_couinaud(noisy_patient))}
    for name, split in splits.items():
        run = run_lobequant(inputs, ia_side="left", lobe_method=split, uptake=False)
        expected = [r for r in reference.tn_rows if r["cycle"] == 1]
        assert len(run.tn_rows) == len(expected), name
        for ours, theirs in zip(run.tn_rows, expected, strict=True):
            assert (ours["region"], ours["side"], ours["route"]) == (theirs["region"], theirs["side"],
                                                                    theirs["route"]), name
            assert ours["volume_ml"] == theirs["volume_ml"], name
            for key in ("mean_bq_per_ml", "tn_mean", "tn_max"):
                assert ours[key] == pytest.approx(theirs[key], rel=1e-12, nan_ok=True), (name, key)
        assert run.parameters["lobe_split"]["method"] == name


def truth_couinaud(folder):
    return load_json(folder / "manifest.json")["truth_couinaud"]


def test_text_options_become_lps_splits_and_spect_arguments():
    split = lobe_split_from_options(plane="10,-20,5:1,0,0", ras=True)
    assert split.point_lps_mm == (-10.0, 20.0, 5.0) and split.normal_lps == (-1.0, -0.0, 0.0)
    cantlie = lobe_split_from_options(cantlie="0,0,0;0,10,0;0,0,10")
    assert cantlie.cantlie_points_lps_mm == ((0.0, 0.0, 0.0), (0.0, 10.0, 0.0), (0.0, 0.0, 10.0))
    vessels = lobe_split_from_options(right_vessels="-50,0,0;-60,0,0", left_vessels="40,0,0")
    assert len(vessels.right_points_lps_mm) == 2 and vessels.left_points_lps_mm == ((40.0, 0.0, 0.0),)
    assert lobe_split_from_options() is None
    assert parse_spect_argument("2@96.5:a/b.nrrd") == (2, 96.5, Path("a/b.nrrd"))
    assert parse_spect_argument("1:c:/x.dcm")[2].as_posix() == "c:/x.dcm"
    with pytest.raises(ValueError, match="give one lobe split, not plane and couinaud"):
        lobe_split_from_options(plane="0,0,0:1,0,0", couinaud="c.nrrd")
    with pytest.raises(ValueError, match="right and the left hepatic artery"):
        lobe_split_from_options(right_vessels="1,2,3")
    with pytest.raises(ValueError, match="needs 3 points"):
        lobe_split_from_options(cantlie="0,0,0;1,1,1")
    with pytest.raises(ValueError, match=r"SPECT 'x.dcm': expected CYCLE:PATH"):
        parse_spect_argument("x.dcm")


def test_bad_inputs_are_named(noisy_patient, explicit_files, tmp_path):
    files = explicit_files
    spect = [SpectInput(files["spect"], 1)]
    plane = LobeSplit.plane((0.0, 0.0, 0.0), (1.0, 0.0, 0.0))
    lobeless = LobeQuantInputs.from_files(files["ct"], files["seg"], spect)
    with pytest.raises(ValueError, match="IA side is missing"):
        run_lobequant(lobeless, lobe_method=plane)
    with pytest.raises(ValueError, match=r"IA side 'right' contradicts .*manifest\.json.*left hepatic art"):
        run_lobequant(noisy_patient, ia_side="right")
    with pytest.raises(ValueError, match=r"liver.seg.nrrd: the segmentation has no lobe segments"):
        run_lobequant(lobeless, ia_side="left")

    # An image in HU given as SPECT is not an activity concentration.
    image = sitk.ReadImage(str(files["spect"]))
    write_volume(image, tmp_path / "hu.nrrd", "HU")
    with pytest.raises(ValueError, match=r"hu.nrrd: SPECT voxel values are in HU, not Bq/mL"):
        run_lobequant(LobeQuantInputs.from_files(None, files["seg"], [SpectInput(tmp_path / "hu.nrrd", 1)]),
                      ia_side="left", lobe_method=plane)
    # A SPECT, and a CT, a metre away from the segmentation.
    image.SetOrigin(tuple(np.add(image.GetOrigin(), [0.0, 0.0, 1000.0])))
    write_volume(image, tmp_path / "moved.nrrd", "Bq/mL")
    write_volume(image, tmp_path / "moved_ct.nrrd", "HU")
    with pytest.raises(ValueError, match=r"moved.nrrd: geometry mismatch: .*does not overlap"):
        run_lobequant(LobeQuantInputs.from_files(None, files["seg"],
                                                 [SpectInput(tmp_path / "moved.nrrd", 1, 24.0)]),
                      ia_side="left", lobe_method=plane, uptake=False)
    with pytest.raises(ValueError, match=r"liver.seg.nrrd does not fit the CT .*moved_ct.nrrd: segmentation grid .* does not overlap"):
        run_lobequant(LobeQuantInputs.from_files(tmp_path / "moved_ct.nrrd", files["seg"], spect),
                      ia_side="left", lobe_method=plane)
    with pytest.raises(FileNotFoundError, match=r"missing\.dcm"):
        run_lobequant(LobeQuantInputs.from_files(None, files["seg"],
                                                 [SpectInput(tmp_path / "missing.dcm", 1)]),
                      ia_side="left", lobe_method=plane)

    # A lesion in the kidney and an empty lesion segment.
    segmentation = read_seg_nrrd(noisy_patient / "segmentation.seg.nrrd")
    kidney = segmentation.mask_array(segmentation.find_one("kidney", side="right").segment_id)
    outside = segmentation.copy()
    outside.add_segment(kidney, SegmentTags("lesion", lesion_id="L99"), name="renal lesion")
    write_seg_nrrd(outside, tmp_path / "outside.seg.nrrd")
    with pytest.raises(ValueError,
                       match=r"outside.seg.nrrd: lesions outside the liver .*'renal lesion' \(0.0 % in"):
        run_lobequant(LobeQuantInputs.from_files(None, tmp_path / "outside.seg.nrrd", spect), ia_side="left")
    empty = segmentation.copy()
    empty.segments.append(Segment("lesion_L98", "lesion L98", SegmentTags("lesion", lesion_id="L98"), 1, 250))
    write_seg_nrrd(empty, tmp_path / "empty.seg.nrrd")
    with pytest.raises(ValueError,
                       match=r"empty.seg.nrrd: lesion segment 'lesion L98' \(lesion_L98\) is empty"):
        run_lobequant(LobeQuantInputs.from_files(None, tmp_path / "empty.seg.nrrd", spect), ia_side="left")
    with pytest.raises(ValueError, match="unknown occupancy 'partial'"):
        run_lobequant(noisy_patient, occupancy="partial")
    with pytest.raises(FileNotFoundError, match=r"has no manifest\.json"):
        run_lobequant(tmp_path)
