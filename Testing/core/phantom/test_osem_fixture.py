"""The committed OSEM fixture (Testing/data/osem): complete, small, calibrated, and consistent with its truth.

No torch: the images are read from disk, the patient and phantom truths are rebuilt from the
stored arguments with luprrt.phantom.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from osem_realism import FIXTURE_DIR, fixture

from luprrt.io import read_volume
from luprrt.phantom import nema_iec_body_phantom, sphere_occupancy, uniform_cylinder_phantom


@pytest.fixture(scope="module")
def meta():
    return fixture()


def _image(name: str, units: str) -> sitk.Image:
    return read_volume(FIXTURE_DIR / name, units).image


def test_fixture_is_complete_small_and_carries_units(meta):
    files = [meta["calibration"]["file"], *(i["file"] for i in meta["iec"]), *(s["file"] for s in meta["patient"]["scans"])]
    assert len(files) == 1 + 4 + 4  # cylinder, IEC at 4, 10, 20 and 40:1, four patient scans
    total = sum((FIXTURE_DIR / f).stat().st_size for f in [*files, "fixture.json", "README.md"])
    assert total < 25e6
    assert read_volume(FIXTURE_DIR / files[0]).units == "counts"
    for name in files[1:]:
        image = read_volume(FIXTURE_DIR / name)
        assert image.units == "Bq/mL"
        assert image.image.GetSpacing() == pytest.approx((4.42, 4.42, 4.42))
    assert [s["hours_post_injection"] for s in meta["patient"]["scans"]] == [4.0, 24.0, 96.0, 168.0]
    assert meta["seeds"]["patient_seed"] != 7 and meta["seeds"]["noise_seed"] != 1  # not the tuning seeds


def test_clinical_counts_and_a_physical_calibration_factor(meta):
    scans = {s["hours_post_injection"]: s for s in meta["patient"]["scans"]}
    # Clinical counts at 24 h after 7.4 GBq: the sensitivity gives 6.0 M for the tuning patient (971 MBq in
    # the field of view); this patient holds less (725 MBq), so 4-8 M covers it and any plausible uptake.
    assert 4.0e6 < scans[24.0]["total_counts"] < 8.0e6
    # Counts follow the activity in the field of view: counts per MBq stay within a few per cent
    # (only the attenuation of the changing distribution moves them).
    truth = {tp["hours_post_injection"]: tp["total_activity_mbq"] for tp in meta["patient"]["truth"]["cycles"][0]
             ["time_points"]}
    per_mbq_24h = scans[24.0]["total_counts"] / truth[24.0]
    for h in (4.0, 96.0, 168.0):
        assert scans[h]["total_counts"] / truth[h] == pytest.approx(per_mbq_24h, rel=0.06), h
    for scan in [*scans.values(), *(i["scan"] for i in meta["iec"]), meta["cylinder"]["scan"]]:
        assert 0.08 < scan["scatter_fraction"] < 0.35  # Lu-177 208 keV window, water-like bodies
    # Counts / (A T) of an attenuation-corrected reconstruction = the in-air sensitivity of both heads.
    protocol = meta["protocol"]
    in_air = protocol["n_heads"] * protocol["counts_per_mbq_per_view"] / protocol["time_per_view_s"]
    assert meta["calibration"]["calibration_factor_cps_per_mbq"] == pytest.approx(in_air, rel=0.05)
    cylinder = _image(meta["calibration"]["file"], "counts")  # kept: the array below is a view of its memory
    counts = sitk.GetArrayViewFromImage(cylinder)
    assert counts.sum() / (1000.0 * meta["calibration"]["acquisition_duration_s"]) == pytest.approx(
        meta["calibration"]["calibration_factor_cps_per_mbq"], rel=1e-5)


def test_calibrated_phantoms_hold_their_true_activity(meta):
    grid = _image(meta["iec"][0]["file"], "Bq/mL")
    cylinder = uniform_cylinder_phantom(grid, activity_mbq=meta["calibration"]["activity_mbq"])
    truth_centre = cylinder.truth["concentration_bq_per_ml"]
    factor = meta["calibration"]["calibration_factor_cps_per_mbq"] * meta["calibration"]["acquisition_duration_s"]
    voxel_ml = 4.42**3 / 1000.0
    cylinder = _image(meta["calibration"]["file"], "counts")  # kept: the array below is a view of its memory
    counts = sitk.GetArrayViewFromImage(cylinder)
    concentration = counts / factor * 1e6 / voxel_ml
    # A 100 mm x 100 mm central cylinder of the cylinder: mean within 3 % of the truth (1 % noise,
    # OSEM's residual non-uniformity of an attenuation-corrected uniform cylinder).
    z, y, x = np.meshgrid(*(np.arange(n) - (n - 1) / 2 for n in counts.shape), indexing="ij")
    core = (x**2 + y**2 < (50 / 4.42) ** 2) & (np.abs(z) < 50 / 4.42)
    assert concentration[core].mean() == pytest.approx(truth_centre, rel=0.03)
    for record in meta["iec"]:
        image = _image(record["file"], "Bq/mL")
        values = sitk.GetArrayViewFromImage(image)
        phantom = nema_iec_body_phantom(image, background_bq_per_ml=record["background_bq_per_ml"],
                                        sphere_to_background=record["sphere_to_background"])
        assert values.sum() * voxel_ml * 1e-6 == pytest.approx(phantom.total_activity_mbq, rel=0.05)
        # Background far from spheres, lung insert and walls (a slab 40-70 mm below the sphere plane).
        truth = sitk.GetArrayViewFromImage(phantom.concentration)
        axis = record["axis_mm"]
        zc = (np.arange(values.shape[0]) * 4.42 + image.GetOrigin()[2])[:, None, None]
        yc = (np.arange(values.shape[1]) * 4.42 + image.GetOrigin()[1])[None, :, None]
        xc = (np.arange(values.shape[2]) * 4.42 + image.GetOrigin()[0])[None, None, :]
        r = np.hypot(xc - axis[0], yc - axis[1])
        slab = (zc < record["sphere_plane_z_mm"] - 40) & (zc > record["sphere_plane_z_mm"] - 70)
        background = slab & (r > 45) & (r < 100) & (truth == record["background_bq_per_ml"])
        assert values[background].mean() == pytest.approx(record["background_bq_per_ml"], rel=0.05)
        # The spheres are where the truth says: each sphere's mean is well above the background.
        for sphere in record["spheres"]:
            box, fraction = sphere_occupancy(image, sphere["centre_mm"], sphere["diameter_mm"] / 2)
            inside = fraction > 0.99
            if sphere["diameter_mm"] >= 22:
                assert values[box][inside].mean() > 1.5 * record["background_bq_per_ml"]
