"""CT registration recovers a known rigid motion of an analytic CT-like phantom."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.registration import body_mask, register_deformable, register_rigid, resample_to

# (centre LPS mm, semi-axes mm, HU) painted in order; a soft edge avoids aliasing.
STRUCTURES = [
    ((0.0, 0.0, 0.0), (115.0, 85.0, 110.0), 30.0),        # body (soft tissue)
    ((-40.0, -5.0, 45.0), (30.0, 35.0, 35.0), -850.0),    # right lung (upper body)
    ((40.0, -5.0, 48.0), (28.0, 35.0, 33.0), -850.0),     # left lung
    ((-45.0, 0.0, -20.0), (50.0, 45.0, 35.0), 65.0),      # liver
    ((40.0, -15.0, -25.0), (22.0, 20.0, 25.0), 45.0),     # spleen
    ((-35.0, 45.0, -55.0), (15.0, 12.0, 25.0), 160.0),    # right kidney (enhanced)
    ((35.0, 45.0, -50.0), (14.0, 12.0, 24.0), 160.0),     # left kidney
    ((0.0, 55.0, 0.0), (14.0, 14.0, 120.0), 500.0),       # spine
    ((-20.0, -30.0, -30.0), (9.0, 9.0, 9.0), 120.0),      # a lesion
    ((10.0, -60.0, -60.0), (60.0, 15.0, 30.0), -100.0),   # anterior fat
]
EDGE_MM = 1.5


def phantom_hu(points: np.ndarray) -> np.ndarray:
    """HU at LPS points (N, 3), air outside the body."""
    values = np.full(len(points), -1000.0)
    for centre, semi_axes, hu in STRUCTURES:
        radius = np.sqrt((((points - centre) / semi_axes) ** 2).sum(axis=1))
        inside = 1.0 / (1.0 + np.exp((radius - 1.0) * min(semi_axes) / EDGE_MM))
        values += inside * (hu - values)
    return values


def ct_grid(size=64, spacing_mm=4.0) -> sitk.Image:
    image = sitk.Image([size] * 3, sitk.sitkFloat32)
    image.SetSpacing([spacing_mm] * 3)
    image.SetOrigin([-(size - 1) * spacing_mm / 2.0] * 3)
    return image


def grid_points(image: sitk.Image) -> np.ndarray:
    """LPS points (N, 3) of every voxel, in numpy (z, y, x) order."""
    size = image.GetSize()
    k, j, i = np.meshgrid(*(np.arange(n) for n in size[::-1]), indexing="ij")
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1).astype(float)
    steps = np.asarray(image.GetDirection()).reshape(3, 3) * np.asarray(image.GetSpacing())
    return np.asarray(image.GetOrigin()) + ijk @ steps.T


def render(reference: sitk.Image, points: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(phantom_hu(points).reshape(reference.GetSize()[::-1]).astype(np.float32))
    image.CopyInformation(reference)
    return image


def known_motion() -> sitk.Euler3DTransform:
    """Fixed -> moving: 5 deg about an oblique axis and (7.5, -4, 10) mm."""
    axis = np.array([0.3, 0.2, 1.0]) / np.linalg.norm([0.3, 0.2, 1.0])
    versor = sitk.VersorRigid3DTransform()
    versor.SetRotation(axis.tolist(), math.radians(5.0))
    euler = sitk.Euler3DTransform()
    euler.SetMatrix(versor.GetMatrix())
    euler.SetTranslation((7.5, -4.0, 10.0))
    return euler


@pytest.fixture(scope="module")
def moved_pair():
    """Fixed CT and a moving CT that satisfy moving(T(x)) = fixed(x), both rendered analytically."""
    fixed_grid = ct_grid()
    points = grid_points(fixed_grid)
    truth = known_motion()
    # moving(y) = phantom(T^-1(y)); T(x) = R x + t (centre 0), so T^-1(y) = R^T (y - t) = (y - t) R in rows.
    rotation = np.asarray(truth.GetMatrix()).reshape(3, 3)
    moved = (points - np.asarray(truth.GetTranslation())) @ rotation
    return render(fixed_grid, points), render(fixed_grid, moved), truth


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = (np.trace(a.T @ b) - 1.0) / 2.0
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def test_rigid_registration_recovers_a_known_motion(moved_pair):
    fixed, moving, truth = moved_pair
    reports = []
    result = register_rigid(fixed, moving, progress=lambda fraction, text: reports.append((fraction, text)))
    estimate = result.transform
    # Compare the two mappings at the corners of a 160 mm box around the body centre.
    corners = np.array([[x, y, z] for x in (-80, 80) for y in (-80, 80) for z in (-80, 80)], dtype=float)
    errors = [np.linalg.norm(np.subtract(estimate.TransformPoint(tuple(c)), truth.TransformPoint(tuple(c))))
              for c in corners]
    assert max(errors) < 1.0
    angle = rotation_angle_deg(np.asarray(estimate.GetMatrix()).reshape(3, 3),
                               np.asarray(truth.GetMatrix()).reshape(3, 3))
    assert angle < 0.5
    # Masks rasterised on 4 mm voxels agree to ~1.5 % at the surface after alignment.
    assert result.body_dice_after > 0.975
    assert result.body_dice_before < 0.95
    assert result.metric_mattes_mi > result.metric_mattes_mi_before > 0.0
    levels = [f"rigid registration: level {k} of 3" for k in (1, 2, 3)]
    assert [text for _, text in reports[:3]] == levels
    assert reports[-1][0] == 1.0


def test_resample_to_brings_the_moving_ct_onto_the_fixed_grid(moved_pair):
    fixed, moving, truth = moved_pair
    aligned = resample_to(moving, fixed, truth, "linear", -1000.0)
    inside = sitk.GetArrayViewFromImage(body_mask(fixed)) > 0
    difference = np.abs(sitk.GetArrayViewFromImage(aligned) - sitk.GetArrayViewFromImage(fixed))[inside]
    # Only linear-interpolation error of a smooth phantom remains.
    assert np.median(difference) < 5.0
    before = np.abs(sitk.GetArrayViewFromImage(moving) - sitk.GetArrayViewFromImage(fixed))[inside]
    assert np.median(difference) < 0.2 * np.median(before)
    identity = resample_to(fixed, fixed, interpolator="nearest")
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(identity), sitk.GetArrayViewFromImage(fixed))
    assert identity.GetPixelID() == fixed.GetPixelID()
    with pytest.raises(ValueError, match="unknown interpolator 'cubic'"):
        resample_to(fixed, fixed, interpolator="cubic")


def test_body_mask_fills_the_lungs_and_drops_the_table():
    grid = ct_grid(48, 5.0)
    ct = render(grid, grid_points(grid))
    array = sitk.GetArrayFromImage(ct)
    array[:, 44:46, :] = 200.0  # a couch below the body, not touching it
    couch = sitk.GetImageFromArray(array)
    couch.CopyInformation(ct)
    mask = sitk.GetArrayViewFromImage(body_mask(couch)) > 0
    points = grid_points(grid).reshape(*array.shape, 3)
    body = (((points / STRUCTURES[0][1]) ** 2).sum(axis=-1) <= 1.0)
    assert not mask[:, 44:46, :].any()
    lung = (((points - STRUCTURES[1][0]) / STRUCTURES[1][1]) ** 2).sum(axis=-1) <= 0.8
    assert mask[lung].all()                      # lungs filled although < -300 HU
    dice = 2 * np.count_nonzero(mask & body) / (mask.sum() + body.sum())
    assert dice > 0.97
    with pytest.raises(ValueError, match="no voxel above -300"):
        body_mask(sitk.Image([8, 8, 8], sitk.sitkInt16) - 1000)


def test_deformable_refinement_improves_on_rigid_for_a_non_rigid_change():
    fixed_grid = ct_grid(32, 8.0)
    points = grid_points(fixed_grid)
    # The moving patient is 6 % wider left-right: no rigid transform explains it.
    fixed, moving = render(fixed_grid, points), render(fixed_grid, points * [1.0 / 1.06, 1.0, 1.0])
    rigid = register_rigid(fixed, moving, shrink_factors=(2, 1), smoothing_sigmas_vox=(1.0, 0.0))
    refined = register_deformable(fixed, moving, initial_transform=rigid.transform, mesh_size=(3, 3, 3),
                                  shrink_factors=(1,), smoothing_sigmas_vox=(0.0,), iterations=10)
    assert refined.body_dice_before == pytest.approx(rigid.body_dice_after)
    assert refined.body_dice_after > rigid.body_dice_after + 0.005
    assert refined.metric_mattes_mi > rigid.metric_mattes_mi
    # A point 100 mm to the left moves to ~106 mm in the moving image.
    assert refined.transform.TransformPoint((100.0, 0.0, 0.0))[0] == pytest.approx(106.0, abs=3.0)


def test_registration_rejects_non_3d_input():
    with pytest.raises(ValueError, match="fixed_ct must be a 3D scalar image"):
        register_rigid(sitk.Image([8, 8], sitk.sitkFloat32), ct_grid(8))
    with pytest.raises(ValueError, match="need one entry per level"):
        register_rigid(ct_grid(8), ct_grid(8), shrink_factors=(2, 1), smoothing_sigmas_vox=(1.0,))


def test_rigid_registration_starts_from_any_rigid_transform(moved_pair):
    fixed, moving, truth = moved_pair
    start = sitk.TranslationTransform(3, (5.0, -2.0, 6.0))
    result = register_rigid(fixed, moving, initial_transform=start, shrink_factors=(2, 1),
                            smoothing_sigmas_vox=(1.0, 0.0))
    centre = (0.0, 0.0, 0.0)
    error = np.linalg.norm(np.subtract(result.transform.TransformPoint(centre), truth.TransformPoint(centre)))
    assert error < 1.0
    # The "before" quality is that of the given start, not of the identity.
    assert result.body_dice_before > 0.92
    stretch = sitk.AffineTransform(3)
    stretch.SetMatrix((1.1, 0, 0, 0, 1, 0, 0, 0, 1))
    with pytest.raises(ValueError, match="initial_transform is not rigid"):
        register_rigid(fixed, moving, initial_transform=stretch)
