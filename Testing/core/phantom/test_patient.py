"""The synthetic patient generator against its own closed-form truth.

Patients are built on the small grid (4 x 4 x 5 mm CT voxels, 4.42 mm SPECT voxels,
12 mm FWHM) once per module: ``patient`` (noisy, ellipsoid lesions, 4 cycles x 4 SPECTs),
``twin`` (the same call again), ``clean`` (noise-free, spherical lesions) and ``left``
(another seed, IA into the left artery, one SPECT).
"""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import integrate, ndimage

from luprrt.phantom import kinetics as pk
from luprrt.phantom import make_patient, write_patient
from luprrt.phantom.anatomy import COUINAUD_LEFT, COUINAUD_RIGHT
from luprrt.phantom.imaging import (
    FWHM_PER_SIGMA,
    camera_blur,
    partial_volume_average,
    simulate_spect,
    spect_grid,
)
from luprrt.phantom.truth import LESION_LABEL_OFFSET, REGION_LABEL
from luprrt.physics import LU177_DECAY_CONSTANT_PER_H, LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G

SIGMA_MM = 12.0 / FWHM_PER_SIGMA
# Deeper than this inside uniform tissue, blur spill-in from an edge is < Phi(-3.5) = 2.3e-4 of
# the contrast: 3.5 sigma plus half the diagonal of a 4.42 mm SPECT voxel.
DEEP_MM = 3.5 * SIGMA_MM + 0.5 * math.sqrt(3) * 4.42


@pytest.fixture(scope="module")
def patient():
    return make_patient(0, small=True)


@pytest.fixture(scope="module")
def twin():
    return make_patient(0, small=True)


@pytest.fixture(scope="module")
def clean():
    return make_patient(0, small=True, noise=False, lesion_shape="sphere")


@pytest.fixture(scope="module")
def left():
    return make_patient(3, small=True, ia_side="left", n_cycles=1, hours_post_injection=(24.0,), noise=False,
                        followup_weeks=())


def voxel_ml(image: sitk.Image) -> float:
    return float(np.prod(image.GetSpacing())) / 1000.0


def array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def region_means(p, cycle: int, hours: float) -> dict[str, float]:
    """Mean of the truth map over every kinetic region, from the label map (one bincount)."""
    session = p.session(f"cycle{cycle}")
    labels = array(session.region_labels).ravel()
    values = array(p.truth_concentration(cycle, hours)).ravel().astype(float)
    sums = np.bincount(labels, weights=values)
    counts = np.bincount(labels)
    return {name: sums[label] / counts[label] for label, name in p.truth.region_labels.items()
            if label < counts.size and counts[label] > 0}


def far_from_edges(p, cycle: int, hours: float, min_distance_mm: float,
                   spect: sitk.Image | None = None) -> tuple[np.ndarray, float]:
    """SPECT values whose voxel centre is >= min_distance_mm inside non-tumour liver, and its truth."""
    session = p.session(f"cycle{cycle}")
    spect = spect or p.spect(cycle, hours).image
    labels = array(session.region_labels)
    nontumour = np.isin(labels, [REGION_LABEL["nontumour_right"], REGION_LABEL["nontumour_left"]])
    distance = ndimage.distance_transform_edt(nontumour, sampling=session.ct.GetSpacing()[::-1])
    o, s, n = spect.GetOrigin(), spect.GetSpacing(), spect.GetSize()
    centres = [o[a] + s[a] * np.arange(n[a]) for a in (2, 1, 0)]
    ct_o, ct_s, ct_n = session.ct.GetOrigin(), session.ct.GetSpacing(), session.ct.GetSize()
    index = [np.clip(np.rint((c - ct_o[a]) / ct_s[a]).astype(int), 0, ct_n[a] - 1)
             for c, a in zip(centres, (2, 1, 0), strict=True)]
    sampled = distance[np.ix_(*index)]
    assert sampled.shape == array(spect).shape
    truth = p.truth.time_point(cycle, hours).mean_bq_per_ml["nontumour_right"]
    return array(spect)[sampled >= min_distance_mm], truth


# --- reproducibility -------------------------------------------------------------------------------

def test_same_seed_gives_identical_patient(patient, twin):
    assert json.dumps(patient.truth.to_json_dict()) == json.dumps(twin.truth.to_json_dict())
    for a, b in zip(patient.sessions, twin.sessions, strict=True):
        np.testing.assert_array_equal(array(a.ct), array(b.ct))
        for la, lb in zip(a.segmentation.layers, b.segmentation.layers, strict=True):
            np.testing.assert_array_equal(array(la), array(lb))
        for sa, sb in zip(a.spect, b.spect, strict=True):
            np.testing.assert_array_equal(array(sa.image), array(sb.image))
    assert [a.datetime for a in patient.administrations] == [a.datetime for a in twin.administrations]


def test_other_seed_and_options_keep_their_own_streams(patient, clean, left):
    # Another seed: other lesion positions. Same seed without noise and with spheres:
    # the same centres, kinetics and schedule (independent random streams per purpose).
    assert left.truth.lesions[0].centre_mm != patient.truth.lesions[0].centre_mm
    for a, b in zip(patient.truth.lesions, clean.truth.lesions, strict=True):
        assert a.centre_mm == b.centre_mm
        assert a.tn_at_24h == b.tn_at_24h
    assert patient.truth.cycle(2).tia_mbq_h["kidney_left"] == clean.truth.cycle(2).tia_mbq_h["kidney_left"]
    noise_hu = array(patient.ct) - array(clean.ct)
    body = array(patient.session("cycle1").tissue) != 0
    lesions = array(patient.session("cycle1").region_labels) >= LESION_LABEL_OFFSET
    lesions |= array(clean.session("cycle1").region_labels) >= LESION_LABEL_OFFSET
    assert np.std(noise_hu[body & ~lesions]) == pytest.approx(12.0, rel=0.02)


# --- anatomy and segmentation -------------------------------------------------------------------

def test_segmentation_tags_cover_every_structure(patient, left):
    for p in (patient, left):
        for session in p.sessions:
            seg = session.segmentation
            for role in ("body", "liver", "spleen", "marrow", "blood"):
                seg.find_one(role)
            for side in ("right", "left"):
                route = "IA" if side == p.ia_side else "IV"
                seg.find_one("lobe", side=side, route=route)
                seg.find_one("kidney", side=side)
            for lesion in p.truth.lesions:
                found = seg.find_one("lesion", lesion_id=lesion.lesion_id)
                assert (found.tags.side, found.tags.route) == (lesion.side, lesion.route)
                assert lesion.route == ("IA" if lesion.side == p.ia_side else "IV")
    assert {le.route for le in left.truth.lesions if le.side == "left"} == {"IA"}


def test_lobes_follow_the_cantlie_plane_and_hold_their_lesions(patient):
    session = patient.session("cycle3")
    seg = session.segmentation
    liver = seg.mask_array(seg.find_one("liver").segment_id)
    right = seg.mask_array(seg.find_one("lobe", side="right").segment_id)
    lobe_left = seg.mask_array(seg.find_one("lobe", side="left").segment_id)
    np.testing.assert_array_equal(right | lobe_left, liver)
    assert not (right & lobe_left).any()
    o, s, n = session.ct.GetOrigin(), session.ct.GetSpacing(), session.ct.GetSize()
    x, y, z = (o[a] + s[a] * np.arange(n[a]) for a in range(3))
    plane = patient.truth.cantlie_plane
    distance = plane.signed_distance_mm(x[None, None, :], y[None, :, None], z[:, None, None])
    assert (distance[lobe_left] > 0).all() and (distance[right] <= 0).all()
    for lesion in patient.truth.lesions:
        mask = seg.mask_array(seg.find_one("lesion", lesion_id=lesion.lesion_id).segment_id)
        lobe = right if lesion.side == "right" else lobe_left
        assert (mask & ~lobe).sum() == 0
    # Segment voxel counts equal the truth volumes.
    kidney = seg.mask_array(seg.find_one("kidney", side="left").segment_id)
    volumes = patient.truth.volumes_ml["cycle3"]
    assert kidney.sum() * voxel_ml(session.ct) == pytest.approx(volumes["kidney_left"], rel=1e-12)
    assert liver.sum() * voxel_ml(session.ct) == pytest.approx(volumes["liver"], rel=1e-12)


def test_couinaud_segments_split_into_the_lobes(patient):
    couinaud = array(patient.truth.couinaud)
    seg = patient.segmentation
    right = seg.mask_array(seg.find_one("lobe", side="right").segment_id)
    liver = seg.mask_array(seg.find_one("liver").segment_id)
    np.testing.assert_array_equal(couinaud > 0, liver)
    np.testing.assert_array_equal(np.isin(couinaud, COUINAUD_RIGHT), right)
    volumes = np.bincount(couinaud.ravel(), minlength=9)[1:] * voxel_ml(patient.ct)
    assert (volumes > 5.0).all()  # every segment I-VIII exists
    left_share = volumes[np.asarray(COUINAUD_LEFT) - 1].sum() / volumes.sum()
    assert 0.25 < left_share < 0.45  # left lobe ~ 1/3 of the liver
    assert 1200.0 < patient.truth.volumes_ml["cycle1"]["liver"] < 1800.0


def test_sphere_volumes_within_the_voxelisation_bound(clean):
    # A voxel is inside when its centre is: every point deeper than h (half the voxel
    # diagonal) inside the sphere lies in a counted voxel and every counted voxel lies
    # within r + h, so 4/3 pi (r - h)^3 <= V_voxels <= 4/3 pi (r + h)^3.
    h = 0.5 * math.dist((0, 0, 0), clean.ct.GetSpacing())
    errors = []
    for lesion in clean.truth.lesions:
        for session, diameter in lesion.diameter_mm.items():
            r = diameter / 2.0
            analytic = 4.0 / 3.0 * math.pi * r**3 / 1000.0
            assert lesion.analytic_volume_ml[session] == pytest.approx(analytic, rel=1e-12)
            measured = clean.truth.volumes_ml[session][lesion.lesion_id]
            assert 4.0 / 3.0 * math.pi * max(r - h, 0.0) ** 3 / 1000.0 <= measured
            assert measured <= 4.0 / 3.0 * math.pi * (r + h) ** 3 / 1000.0
            if r >= 3 * h:
                errors.append(measured / analytic - 1.0)
    # Over random sub-voxel offsets the voxel count is unbiased, so large spheres agree closely.
    assert len(errors) >= 12
    assert np.sqrt(np.mean(np.square(errors))) < 0.05


def test_lesion_diameters_follow_the_growth_rule(patient):
    weeks = {s.name: s.weeks_since_first_cycle for s in patient.sessions}
    assert weeks == {"cycle1": 0.0, "cycle2": 11.0, "cycle3": 22.0, "cycle4": 33.0, "followup1": 45.0,
                     "followup2": 59.0}
    first = patient.truth.lesions[0]
    assert first.diameter_mm["cycle1"] == 46.0
    for lesion in patient.truth.lesions:
        b = lesion.biology
        rate = pk.growth_rate_per_week(b.fdg_suv, lesion.tn_at_24h[1], b.adc_mm2_per_s, 0.0)
        assert abs(b.growth_rate_per_week - rate) <= 5 * pk.RESPONSE_MODEL["noise_sd_per_week"] + 1e-12
        for name, w in weeks.items():
            expected = lesion.diameter_mm["cycle1"] * math.exp(b.growth_rate_per_week * w)
            assert lesion.diameter_mm[name] == pytest.approx(expected, rel=1e-12)
    assert patient.session("followup1").datetime - patient.administrations[-1].datetime == timedelta(weeks=12)
    assert not patient.session("followup1").spect


# --- kinetics and truth tables --------------------------------------------------------------------

def test_tia_equals_quadrature_of_the_activity_curve(patient):
    for cycle in (patient.truth.cycle(1), patient.truth.cycle(4)):
        for region in cycle.kinetics:
            numeric, _ = integrate.quad(lambda t, c=cycle, r=region: float(c.activity_mbq(r, t)), 0.0, np.inf,
                                        epsabs=0.0, epsrel=1e-10, limit=200)
            assert cycle.tia_mbq_h[region] == pytest.approx(numeric, rel=1e-6), region
            assert min(cycle.kinetics[region].rates_per_h) >= LU177_DECAY_CONSTANT_PER_H
        assert cycle.tia_mbq_h["liver"] == pytest.approx(
            cycle.tia_mbq_h["lobe_right"] + cycle.tia_mbq_h["lobe_left"], rel=1e-12)


def test_truth_maps_match_the_truth_tables(patient):
    for cycle, hours in ((1, 4.0), (2, 96.0)):
        means = region_means(patient, cycle, hours)
        tp = patient.truth.time_point(cycle, hours)
        for region, value in means.items():
            assert value == pytest.approx(tp.mean_bq_per_ml[region], rel=1e-5), region
        total = array(patient.truth_concentration(cycle, hours)).sum(dtype=float)
        total *= voxel_ml(patient.ct) * 1e-6
        assert total == pytest.approx(tp.total_activity_mbq, rel=1e-5)
    tia = array(patient.tia_map(3)).sum(dtype=float) * voxel_ml(patient.ct)
    assert tia == pytest.approx(patient.truth.cycle(3).tia_mbq_h["body"], rel=1e-5)


def test_kinetic_magnitudes_are_realistic(patient):
    cycle = patient.truth.cycle(1)
    gbq = cycle.administration.activity_mbq / 1000.0
    assert cycle.administration.activity_mbq == pytest.approx(7400.0, rel=0.04)
    volumes = patient.truth.volumes_ml["cycle1"]
    for region, low, high in (("kidney_right", 0.25, 0.8), ("nontumour_right", 0.1, 0.5),
                              ("spleen", 0.5, 2.0)):
        dose_gy = cycle.tia_mbq_h[region] / volumes[region] * LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G
        assert low < dose_gy / gbq < high, region
    tn = np.array(list(cycle.time_points[1].tn_ratio.values()))
    assert cycle.time_points[1].hours_post_injection == 24.0
    assert tn.min() > 3.0 and tn.max() < 45.0
    # Lesions take up (peak after injection), organs clear; all decay by the last SPECT.
    lesion = cycle.kinetics["L01"]
    assert lesion.concentration_bq_per_ml(0.0) == 0.0
    assert lesion.concentration_bq_per_ml(24.0) > lesion.concentration_bq_per_ml(4.0) * 0.9


def test_ia_lesion_tn_follows_the_factor(patient):
    factor = patient.truth.ia_tn_factor
    for lesion in patient.truth.lesions:
        ia = factor if lesion.route == "IA" else 1.0
        expected = patient.truth.median_tn * lesion.biology.tn_variation * ia
        assert lesion.tn_at_24h[1] == pytest.approx(expected, rel=1e-12)
        # The kinetics reproduce the designed T/N at 24 h in every cycle.
        for cycle in (1, 4):
            tn = patient.truth.time_point(cycle, 24.0).tn_ratio[lesion.lesion_id]
            assert tn == pytest.approx(lesion.tn_at_24h[cycle], rel=1e-10)
    # In expectation over lesions: E[T/N | IA] / E[T/N | IV] = factor (same variation law).
    n = 20000
    biology = pk.draw_lesion_biology(np.random.default_rng(7), ["IA", "IV"] * n, 1.3, 12.0)
    tn = np.array([b.tn_at_24h(1, 12.0) for b in biology]).reshape(n, 2)
    cv = np.sqrt(np.exp(0.4**2) - 1.0)  # lognormal coefficient of variation
    assert tn[:, 0].mean() / tn[:, 1].mean() == pytest.approx(1.3, abs=1.3 * 4 * cv * math.sqrt(2.0 / n))


def test_exponential_sum_rejects_clearance_slower_than_decay():
    with pytest.raises(ValueError, match="slower than Lu-177 physical decay"):
        pk.ExponentialSum((1.0,), (LU177_DECAY_CONSTANT_PER_H / 2,))
    with pytest.raises(ValueError, match="one rate per coefficient"):
        pk.ExponentialSum((1.0, 2.0), (0.01,))


# --- SPECT ----------------------------------------------------------------------------------------

def test_partial_volume_average_is_exact_box_overlap():
    values = np.zeros((30, 40, 50), dtype=np.float32)
    values[:, :, :23] = 1000.0  # x < 23 mm, every y (0-50 mm) and z (0-60 mm)
    fine = sitk.GetImageFromArray(values)
    fine.SetSpacing((1.0, 1.25, 2.0))
    fine.SetOrigin((0.5, 0.625, 1.0))  # voxel boxes start at 0 mm
    coarse = sitk.Image([12, 13, 15], sitk.sitkFloat32)
    coarse.SetSpacing((4.42, 4.42, 4.42))
    coarse.SetOrigin((-2.0, -3.0, -4.0))  # boxes start at -4.21, -5.21, -6.21 mm
    out = partial_volume_average(fine, coarse)
    lo = -4.21 + 4.42 * np.arange(12)
    share_x = np.clip(np.minimum(lo + 4.42, 23.0) - np.maximum(lo, 0.0), 0, None) / 4.42
    ylo = -5.21 + 4.42 * np.arange(13)
    share_y = np.clip(np.minimum(ylo + 4.42, 50.0) - np.maximum(ylo, 0.0), 0, None) / 4.42
    zlo = -6.21 + 4.42 * np.arange(15)
    share_z = np.clip(np.minimum(zlo + 4.42, 60.0) - np.maximum(zlo, 0.0), 0, None) / 4.42
    expected = 1000.0 * share_z[:, None, None] * share_y[None, :, None] * share_x[None, None, :]
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-9)
    assert out.sum() * 4.42**3 == pytest.approx(1000.0 * 23.0 * 50.0 * 60.0, rel=1e-12)


def test_noise_free_spect_conserves_activity(clean):
    for cycle in (1, 4):
        for acq in clean.session(f"cycle{cycle}").spect:
            total = array(acq.image).sum(dtype=float) * voxel_ml(acq.image) * 1e-6
            truth = clean.truth.time_point(cycle, acq.hours_post_injection).total_activity_mbq
            assert total == pytest.approx(truth, rel=0.005)
    spect = clean.spect(1, 24.0).image
    assert spect.GetSpacing() == pytest.approx((4.42, 4.42, 4.42))
    # The SPECT grid covers the CT field of view plus the kernel's 4-sigma reach on each side.
    ct_extent = np.array(clean.ct.GetSize()) * clean.ct.GetSpacing()
    assert (np.array(spect.GetSize()) * 4.42 >= ct_extent + 8 * SIGMA_MM).all()


def test_noise_free_spect_equals_truth_in_uniform_liver(clean):
    # Deeper than 3.5 sigma + the SPECT voxel half diagonal inside uniform non-tumour liver,
    # partial volume and blur leave the concentration unchanged (spill-in < 1e-3 relative).
    for hours in (4.0, 24.0, 168.0):
        values, truth = far_from_edges(clean, 1, hours, DEEP_MM)
        assert values.size >= 10
        np.testing.assert_allclose(values, truth, rtol=0.02)
        assert values.mean() == pytest.approx(truth, rel=0.002)


def test_camera_blur_sigma_is_fwhm_over_2_3548_per_axis():
    # A unit point blurred on an anisotropic grid: per-axis variance (sigma / spacing)^2 voxels^2,
    # centre unchanged, total conserved.
    spacing_zyx = (2.0, 3.0, 4.42)
    values = np.zeros((41, 41, 41))
    values[20, 20, 20] = 1.0
    out = camera_blur(values, spacing_zyx, 12.0)
    assert out.sum() == pytest.approx(1.0, rel=1e-12)
    index = np.arange(41) - 20
    for axis, s in enumerate(spacing_zyx):
        profile = out.sum(axis=tuple(a for a in range(3) if a != axis))
        assert (profile * index).sum() == pytest.approx(0.0, abs=1e-12)
        assert (profile * index**2).sum() == pytest.approx((12.0 / 2.3548 / s) ** 2, rel=1e-3)


def test_poisson_noise_variance_equals_mean_in_counts(clean):
    truth = clean.truth_concentration(1, 168.0)
    grid = spect_grid(clean.ct, 4.42, 12.0)
    expected = array(simulate_spect(truth, grid, fwhm_mm=12.0, counts_per_mbq=1e4, rng=None)).astype(float)
    noisy = array(simulate_spect(truth, grid, fwhm_mm=12.0, counts_per_mbq=1e4, rng=np.random.default_rng(5)))
    gain = clean.spect(1, 168.0).counts_per_bq_per_ml
    assert gain == pytest.approx(4.42**3 / 1000.0 * 1e-6 * 1e4)
    mu, n = expected * gain, noisy.astype(float) * gain
    np.testing.assert_allclose(n, np.rint(n), atol=2e-3)  # whole counts
    used = mu > 5.0
    assert used.sum() > 20000
    assert np.mean((n[used] - mu[used]) ** 2 / mu[used]) == pytest.approx(1.0, abs=0.03)
    total = mu[used].sum()
    assert (n[used] - mu[used]).sum() / total == pytest.approx(0.0, abs=4.0 / math.sqrt(total))


def test_patient_spect_noise_is_relative_to_its_counts(patient):
    # At 168 h the liver holds fewer counts than at 24 h: larger relative noise.
    cov = {}
    for hours in (24.0, 168.0):
        values, truth = far_from_edges(patient, 1, hours, DEEP_MM)
        gain = patient.spect(1, hours).counts_per_bq_per_ml
        cov[hours] = values.std() / truth
        assert values.mean() == pytest.approx(truth, rel=6.0 / math.sqrt(truth * gain * values.size))
        assert cov[hours] == pytest.approx(1.0 / math.sqrt(truth * gain), rel=0.3)
    assert cov[168.0] > cov[24.0]


def test_baseline_images_hold_the_lesion_truth(clean):
    lesion = max(clean.truth.lesions, key=lambda le: le.diameter_mm["cycle1"])
    labels = array(clean.session("cycle1").region_labels)
    core = ndimage.binary_erosion(labels == lesion.label_value, iterations=2)
    for image, value in ((clean.pet_image("FDG", fwhm_mm=0.0), lesion.biology.fdg_suv),
                         (clean.pet_image("GA68", fwhm_mm=0.0), lesion.biology.ga68_suv),
                         (clean.adc_image(fwhm_mm=0.0), lesion.biology.adc_mm2_per_s)):
        np.testing.assert_allclose(array(image)[core], value, rtol=1e-6)
    with pytest.raises(ValueError, match="unknown PET tracer 'PSMA'"):
        clean.pet_image("PSMA")


# --- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"ia_side": "middle"}, "ia_side must be 'right' or 'left', got 'middle'"),
    ({"hours_post_injection": (24.0, 4.0)}, "positive and increasing"),
    ({"n_cycles": 0}, "n_cycles must be between 1 and 8, got 0"),
    ({"lesion_diameters_mm": {"right": (80.0,)}}, "lesion diameter 80.0 mm in the right lobe"),
    ({"lesion_diameters_mm": {"centre": (20.0,)}}, "keys must be 'right'/'left'"),
    ({"lesion_diameters_mm": {"left": (50.0, 50.0, 50.0)}}, "cannot place lesion L0"),
    ({"lesion_shape": "cube"}, "unknown lesion shape 'cube'"),
    ({"ct_spacing_mm": (4.0, 0.0, 5.0)}, "CT spacing must be three positive values"),
    ({"followup_weeks": (-3.0,)}, "followup_weeks must be positive"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make_patient(0, small=True, **kwargs)


# --- files ----------------------------------------------------------------------------------------

def test_written_patient_reads_back(left, tmp_path):
    from luprrt.io import read_ct_series, read_nm_spect, read_pet_series, read_seg_nrrd

    fractions = []
    folder = write_patient(left, tmp_path / "patient", progress=lambda f, m: fractions.append(f))
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["ia_side"] == "left" and manifest["administrations"][0]["route"] == "IA"
    assert manifest["administrations"][0]["artery"] == "left hepatic artery"
    spect_entry = manifest["sessions"][0]["spect"][0]
    read = read_nm_spect(folder / spect_entry["file"])
    assert read.hours_post_injection == pytest.approx(24.0, abs=1e-6)
    assert read.injected_activity_mbq == pytest.approx(left.administrations[0].activity_mbq, rel=1e-6)
    np.testing.assert_allclose(array(read.image), array(left.spect(1, 24.0).image), rtol=2e-3,
                               atol=2e-3 * array(left.spect(1, 24.0).image).max())
    # Deep in uniform non-tumour liver the DICOM SPECT gives the truth concentration.
    values, truth = far_from_edges(left, 1, 24.0, DEEP_MM, spect=read.image)
    assert values.size >= 10
    np.testing.assert_allclose(values, truth, rtol=0.02)
    ct = read_ct_series(folder / manifest["sessions"][0]["ct"])
    assert ct.GetSpacing() == pytest.approx(left.ct.GetSpacing())
    assert ct.GetOrigin() == pytest.approx(left.ct.GetOrigin())
    np.testing.assert_allclose(array(ct), array(left.ct), atol=0.51)
    seg = read_seg_nrrd(folder / manifest["sessions"][0]["segmentation"])
    assert seg.find_one("lobe", side="left").tags.route == "IA"
    assert {s.tags.lesion_id for s in seg.find(role="lesion")} == {le.lesion_id for le in left.truth.lesions}
    truth = json.loads((folder / "truth.json").read_text())
    tp = truth["cycles"][0]["time_points"][0]
    expected = left.truth.time_point(1, 24.0).mean_bq_per_ml["nontumour_left"]
    assert tp["mean_bq_per_ml"]["nontumour_left"] == expected
    tia = sitk.ReadImage(str(folder / manifest["truth_tia_mbq_h_per_ml"]["1"]))
    total_tia = array(tia).sum(dtype=float) * voxel_ml(tia)
    assert total_tia == pytest.approx(truth["cycles"][0]["tia_mbq_h"]["body"], rel=1e-5)
    # Baseline FDG PET in Bq/mL gives back the SUV map: SUV = C W / (A exp(-ln2 t / T1/2)).
    pet = read_pet_series(folder / manifest["baseline"]["fdg_pet"]["folder"])
    decayed_bq = pet.injected_activity_mbq * 1e6 * 0.5 ** (pet.hours_post_injection / pet.pet.half_life_h)
    suv = array(pet.image) * pet.pet.patient_weight_kg * 1000.0 / decayed_bq
    expected_suv = array(left.pet_image("FDG"))
    np.testing.assert_allclose(suv, expected_suv, atol=1e-3 * expected_suv.max())
    with pytest.raises(FileExistsError, match="not empty"):
        write_patient(left, folder)
