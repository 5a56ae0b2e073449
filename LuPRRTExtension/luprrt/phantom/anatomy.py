"""Anatomy of the synthetic patient: organ shapes, tissue classes, lobes, Couinaud segments, lesions.

Every shape is an analytic solid in patient coordinates (LPS, mm; +x patient left,
+y posterior, +z superior; body axis through the origin), so the same seed gives the
same patient on any voxel grid: a voxel belongs to a structure when its centre lies
inside it. The liver is a smooth union of three ellipsoids with low-frequency bumps;
the right/left lobe border is a Cantlie plane (gallbladder fossa to inferior vena cava)
and the Couinaud segments I-VIII are cut by further planes inside each lobe, so
segments II-IV and I lie wholly in the left lobe and V-VIII wholly in the right lobe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# Tissue classes of the phantom (uint8 codes of the tissue map).
AIR, FAT, SOFT, LUNG, BONE, MARROW, DISC, LIVER, KIDNEY, RENAL_SINUS, SPLEEN, BLOOD, CSF, LESION = range(14)
TISSUE_NAMES = ("air", "fat", "soft tissue", "lung", "cortical bone", "marrow", "intervertebral disc",
                "liver", "kidney", "renal sinus", "spleen", "blood", "cerebrospinal fluid", "lesion")

# Unenhanced CT numbers (HU) per tissue class, typical textbook values for a low-dose
# SPECT/CT (e.g. Hounsfield-scale tables in Bushberg et al., The Essential Physics of
# Medical Imaging, 3rd ed., 2012). Lesions get their own value (see Lesion.hu).
TISSUE_HU = np.array([-1000.0, -100.0, 40.0, -850.0, 350.0, 150.0, 80.0, 60.0, 35.0, -80.0, 45.0, 40.0,
                      10.0, 40.0], dtype=np.float32)

# Couinaud segment labels (TotalSegmentator ``liver_segments`` numbering 1-8).
COUINAUD_NAMES = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII", 8: "VIII"}
COUINAUD_LEFT = (1, 2, 3, 4)
COUINAUD_RIGHT = (5, 6, 7, 8)


@dataclass(frozen=True)
class Plane:
    """A plane through ``point_mm`` with unit ``normal``; signed distance > 0 on the normal's side."""

    point_mm: tuple[float, float, float]
    normal: tuple[float, float, float]

    def signed_distance_mm(self, x, y, z):
        """Signed distance (mm) of points (x, y, z in mm, broadcastable arrays) from the plane."""
        n, p = self.normal, self.point_mm
        return (x - p[0]) * n[0] + (y - p[1]) * n[1] + (z - p[2]) * n[2]


def _plane(point, normal) -> Plane:
    normal = np.asarray(normal, dtype=float)
    return Plane(tuple(float(v) for v in point), tuple(float(v) for v in normal / np.linalg.norm(normal)))


@dataclass(frozen=True)
class Ellipsoid:
    """Solid ellipsoid: centre (mm), semi-axes (mm) along its own axes, rotation matrix (columns = axes)."""

    centre_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]
    rotation: tuple[tuple[float, float, float], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

    def radius(self, x, y, z):
        """Normalised radius: < 1 inside, 1 on the surface (broadcast over x, y, z in mm)."""
        d = (x - self.centre_mm[0], y - self.centre_mm[1], z - self.centre_mm[2])
        r = np.asarray(self.rotation)
        total = 0.0
        for axis in range(3):
            u = d[0] * r[0][axis] + d[1] * r[1][axis] + d[2] * r[2][axis]
            total = total + (u / self.semi_axes_mm[axis]) ** 2
        return np.sqrt(total)

    def contains(self, x, y, z):
        """True where the point (x, y, z) in mm lies inside the ellipsoid (vectorised)."""
        return self.radius(x, y, z) < 1.0

    @property
    def volume_ml(self) -> float:
        """Analytic volume 4/3 pi a b c, in mL."""
        a, b, c = self.semi_axes_mm
        return 4.0 / 3.0 * np.pi * a * b * c / 1000.0


def rotation_matrix(about_x_deg: float = 0.0, about_y_deg: float = 0.0, about_z_deg: float = 0.0):
    """Rotation R = Rz Ry Rx as a tuple of rows (angles in degrees, right-handed)."""
    ax, ay, az = np.radians([about_x_deg, about_y_deg, about_z_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return tuple(tuple(float(v) for v in row) for row in rz @ ry @ rx)


@dataclass(frozen=True)
class Anatomy:
    """The seeded anatomy of one patient (all lengths in mm, LPS)."""

    liver_parts: tuple[Ellipsoid, ...]
    liver_bumps: tuple[tuple[float, float, float, float, float], ...]  # (kx, ky, kz [1/mm], phase, amplitude)
    cantlie: Plane  # normal points into the left lobe
    falciform: Plane  # normal points into the left lateral section (II, III)
    left_portal: Plane  # normal points to segment II (superior-posterior of III)
    right_hepatic: Plane  # normal points to the posterior section (VI, VII)
    right_portal: Plane  # normal points superior (VII, VIII)
    caudate: Ellipsoid
    kidneys: dict[str, Ellipsoid]
    renal_sinus: dict[str, Ellipsoid]
    spleen: Ellipsoid
    lungs: tuple[Ellipsoid, Ellipsoid]
    body_semi_axes_mm: tuple[float, float]
    body_centre_y_mm: float
    fat_thickness_mm: float
    aorta_xy_mm: tuple[float, float, float]  # centre x, centre y, radius
    ivc_xy_mm: tuple[float, float, float]
    vertebra_xy_mm: tuple[float, float, float, float]  # centre x, centre y, semi-axis x, semi-axis y


def draw_anatomy(rng: np.random.Generator) -> Anatomy:
    """Draw one patient's anatomy: a reference adult abdomen with seeded organ sizes and liver shape.

    Organ sizes: liver ~1.5 L, kidneys ~150 mL parenchyma each, spleen ~180 mL, between the
    adult female and male reference masses of ICRP Publication 89 (2002) (liver 1.4/1.8 kg,
    kidney pair 275/310 g, spleen 130/150 g), each scaled by a seeded factor in [0.92, 1.08].
    """
    s_liver, s_kidney, s_spleen = rng.uniform(0.92, 1.08, size=3)
    pivot = np.array([-30.0, -5.0, 30.0])

    def scaled(centre, axes, factor) -> Ellipsoid:
        """An ellipsoid of the liver scaled by ``factor`` about the liver's pivot point."""
        centre = pivot + (np.asarray(centre, dtype=float) - pivot) * factor
        return Ellipsoid(tuple(float(c) for c in centre), tuple(float(a * factor) for a in axes))

    liver_parts = (
        scaled((-62.0, 5.0, 18.0), (56.0, 68.0, 66.0), s_liver),  # right lobe
        scaled((2.0, -28.0, 35.0), (50.0, 46.0, 41.0), s_liver),  # medial part (segment IV, caudate)
        scaled((48.0, -32.0, 46.0), (44.0, 30.0, 26.0), s_liver),  # left lateral section
    )
    wavelengths = rng.uniform(90.0, 160.0, size=3)
    directions = rng.normal(size=(3, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    bumps = tuple((*(2 * np.pi / w * d), float(rng.uniform(0, 2 * np.pi)), 0.035)
                  for w, d in zip(wavelengths, directions, strict=True))
    # Cantlie plane: through the inferior vena cava (posterior-superior) and the gallbladder
    # fossa (anterior-inferior); the normal points into the left lobe (+x).
    cantlie = _plane(pivot + (np.array([-24.0, 12.0, 40.0]) - pivot) * s_liver, (1.0, -0.09, -0.10))
    kidney_rot = {"right": rotation_matrix(about_y_deg=-12.0, about_z_deg=-15.0),
                  "left": rotation_matrix(about_y_deg=12.0, about_z_deg=15.0)}
    kidney_centres = {"right": (-72.0, 62.0, -48.0), "left": (72.0, 62.0, -32.0)}
    kidneys, sinus = {}, {}
    for side, sign in (("right", -1.0), ("left", 1.0)):
        c = np.array(kidney_centres[side])
        kidneys[side] = Ellipsoid(tuple(c), tuple(s_kidney * np.array([30.0, 25.0, 53.0])), kidney_rot[side])
        # Renal sinus: fat and collecting system at the medial hilum.
        sinus[side] = Ellipsoid(tuple(c + np.array([-sign * 16.0 * s_kidney, -4.0, 0.0])),
                                tuple(s_kidney * np.array([14.0, 10.0, 30.0])), kidney_rot[side])
    spleen = Ellipsoid((84.0, 36.0, 50.0), tuple(s_spleen * np.array([24.0, 54.0, 40.0])),
                       rotation_matrix(about_z_deg=-35.0))
    return Anatomy(
        liver_parts=liver_parts,
        liver_bumps=bumps,
        cantlie=cantlie,
        falciform=_plane(pivot + (np.array([16.0, -30.0, 40.0]) - pivot) * s_liver, (1.0, 0.15, 0.0)),
        left_portal=_plane(pivot + (np.array([40.0, -30.0, 44.0]) - pivot) * s_liver, (0.0, 0.6, 1.0)),
        right_hepatic=_plane(pivot + (np.array([-40.0, 18.0, 30.0]) - pivot) * s_liver, (-0.7, 1.0, 0.0)),
        right_portal=_plane(pivot + (np.array([-60.0, 5.0, 22.0]) - pivot) * s_liver, (0.0, 0.15, 1.0)),
        caudate=scaled((-8.0, 22.0, 42.0), (26.0, 18.0, 30.0), s_liver),
        kidneys=kidneys,
        renal_sinus=sinus,
        spleen=spleen,
        lungs=(Ellipsoid((-78.0, 30.0, 168.0), (62.0, 75.0, 100.0)),
               Ellipsoid((78.0, 30.0, 160.0), (58.0, 70.0, 95.0))),
        body_semi_axes_mm=(140.0, 105.0),
        body_centre_y_mm=5.0,
        fat_thickness_mm=15.0,
        aorta_xy_mm=(18.0, 22.0, 11.0),
        ivc_xy_mm=(-24.0, 20.0, 11.0),
        vertebra_xy_mm=(0.0, 56.0, 24.0, 20.0),
    )


def liver_shape(anatomy: Anatomy, x, y, z):
    """Liver solid (before other organs are cut out): smooth union of ellipsoids with bumps."""
    # Smooth minimum of the normalised radii blends the ellipsoids without creases.
    k = 0.12
    radii = [part.radius(x, y, z) for part in anatomy.liver_parts]
    union = -k * np.log(sum(np.exp(-r / k) for r in radii))
    bump = sum(a * np.cos(kx * x + ky * y + kz * z + phase) for kx, ky, kz, phase, a in anatomy.liver_bumps)
    return union + bump < 1.0


def tissue_map(anatomy: Anatomy, x, y, z) -> np.ndarray:
    """Tissue class (uint8 codes above) at points x, y, z (mm, broadcastable arrays, no lesions).

    Later structures win where shapes overlap: body, fat, lung, liver, spleen, kidneys,
    vessels, spine.
    """
    shape = np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z))
    a, b = anatomy.body_semi_axes_mm
    yc = y - anatomy.body_centre_y_mm
    p = 2.3  # super-ellipse exponent: a flatter back and flanks than an ellipse
    outer = (np.abs(x) / a) ** p + (np.abs(yc) / b) ** p < 1.0
    t = anatomy.fat_thickness_mm
    inner = (np.abs(x) / (a - t)) ** p + (np.abs(yc) / (b - t)) ** p < 1.0
    tissue = np.zeros(shape, dtype=np.uint8)
    tissue[np.broadcast_to(outer, shape)] = FAT
    tissue[np.broadcast_to(inner, shape)] = SOFT

    def paint(mask, code):
        tissue[np.broadcast_to(mask, shape) & np.broadcast_to(inner, shape)] = code

    paint(anatomy.lungs[0].contains(x, y, z) | anatomy.lungs[1].contains(x, y, z), LUNG)
    paint(liver_shape(anatomy, x, y, z), LIVER)
    paint(anatomy.spleen.contains(x, y, z), SPLEEN)
    for side in ("right", "left"):
        paint(anatomy.kidneys[side].contains(x, y, z), KIDNEY)
        paint(anatomy.renal_sinus[side].contains(x, y, z), RENAL_SINUS)
    for cx, cy, r in (anatomy.aorta_xy_mm, anatomy.ivc_xy_mm):
        paint((x - cx) ** 2 + (y - cy) ** 2 < r**2, BLOOD)
    _paint_spine(anatomy, x, y, z, paint)
    return tissue


def _paint_spine(anatomy: Anatomy, x, y, z, paint) -> None:
    """Vertebral bodies (cortical shell + marrow) with discs, and the neural arch around the canal."""
    cx, cy, ax, ay = anatomy.vertebra_xy_mm
    period_mm, disc_mm, shell_mm = 36.0, 8.0, 3.0
    r = np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)
    phase = np.mod(z + 14.0, period_mm)
    in_disc = phase < disc_mm
    column = r < 1.0
    paint(column, BONE)
    paint(column & in_disc, DISC)
    # Marrow: inside the shell radially and axially (shell_mm from the end plates).
    inner_r = r < 1.0 - shell_mm / min(ax, ay)
    inside_axially = (phase > disc_mm + shell_mm) & (phase < period_mm - shell_mm)
    paint(inner_r & inside_axially, MARROW)
    canal_y = cy + ay + 12.0
    rc = np.sqrt((x - cx) ** 2 + (y - canal_y) ** 2)
    paint(rc < 17.0, BONE)
    paint(rc < 9.0, CSF)


def couinaud_map(anatomy: Anatomy, x, y, z, liver_mask: np.ndarray) -> np.ndarray:
    """Couinaud segment labels 1-8 (0 outside the liver) by plane cuts inside each lobe."""
    left = anatomy.cantlie.signed_distance_mm(x, y, z) > 0
    lateral = anatomy.falciform.signed_distance_mm(x, y, z) > 0
    seg2_side = anatomy.left_portal.signed_distance_mm(x, y, z) > 0
    posterior = anatomy.right_hepatic.signed_distance_mm(x, y, z) > 0
    superior = anatomy.right_portal.signed_distance_mm(x, y, z) > 0
    caudate = anatomy.caudate.contains(x, y, z) & ~lateral
    labels = np.select(
        [left & caudate, left & lateral & seg2_side, left & lateral, left,
         ~posterior & ~superior, posterior & ~superior, posterior & superior],
        [1, 2, 3, 4, 5, 6, 7],
        default=8,
    ).astype(np.uint8)
    labels = np.broadcast_to(labels, liver_mask.shape).copy()
    labels[~liver_mask] = 0
    return labels


@dataclass(frozen=True)
class LesionPlacement:
    """A lesion's fixed geometry: centre (mm), semi-axes at its baseline size (mm), rotation about z."""

    lesion_id: str
    side: str
    centre_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]
    rotation_about_z_deg: float

    def ellipsoid(self, scale: float = 1.0) -> Ellipsoid:
        """The lesion at ``scale`` times its baseline size."""
        return Ellipsoid(self.centre_mm, tuple(scale * a for a in self.semi_axes_mm),
                         rotation_matrix(about_z_deg=self.rotation_about_z_deg))


def lesion_semi_axes_mm(diameter_mm: float, shape: str,
                        rng: np.random.Generator) -> tuple[float, float, float]:
    """Semi-axes of a lesion whose longest axial (transversal) diameter is ``diameter_mm``.

    Spheres: all equal. Ellipsoids: the in-plane minor axis 0.75-1.0 and the
    cranio-caudal axis 0.75-1.0 of the major one, so the longest axial diameter stays
    ``diameter_mm`` whatever the rotation about z.
    """
    a = diameter_mm / 2.0
    if shape == "sphere":
        return (a, a, a)
    if shape == "ellipsoid":
        u, v = rng.uniform(0.75, 1.0, size=2)
        return (a, float(a * u), float(a * v))
    raise ValueError(f"unknown lesion shape {shape!r}; expected 'sphere' or 'ellipsoid'")


def place_lesions(anatomy: Anatomy, specs: Sequence[tuple[str, str, tuple[float, float, float], float]],
                  rng: np.random.Generator, *, margin_mm: float = 4.0, design_spacing_mm: float = 3.0,
                  attempts: int = 20) -> list[LesionPlacement]:
    """Place lesions inside their lobe, clear of the liver surface, other organs and each other.

    ``specs`` are (lesion_id, side, baseline semi-axes mm, largest size scale over all
    imaging sessions). Centres are points of a ``design_spacing_mm`` grid (so the
    placement does not depend on the CT grid) where the lesion's bounding sphere at its
    largest size stays ``margin_mm`` inside the liver, from the Cantlie plane and from
    every lesion placed before. Largest lesions are placed first, each at a random
    admissible point; when a lesion finds no room, all are placed again (up to ``attempts``
    times, from the same random stream, so the result stays reproducible).
    """
    h = design_spacing_mm
    axes = [np.arange(-150.0, 150.0 + h / 2, h), np.arange(-120.0, 120.0 + h / 2, h),
            np.arange(-70.0, 110.0 + h / 2, h)]
    x, y, z = axes[0][None, None, :], axes[1][None, :, None], axes[2][:, None, None]
    liver = tissue_map(anatomy, x, y, z) == LIVER
    # Distance to the nearest non-liver grid point, less the half grid diagonal: a lower
    # bound of the distance to the liver surface.
    depth = ndimage.distance_transform_edt(liver, sampling=h) - np.sqrt(3.0) * h / 2.0
    sign = {"left": 1.0, "right": -1.0}
    plane_distance = anatomy.cantlie.signed_distance_mm(x, y, z)
    order = sorted(range(len(specs)), key=lambda i: -max(specs[i][2]) * specs[i][3])
    admissible = {}
    for i in order:
        _, side, semi_axes, max_scale = specs[i]
        clear = max(semi_axes) * max_scale + margin_mm
        index = np.argwhere((depth >= clear) & (sign[side] * plane_distance >= clear))
        admissible[i] = np.stack([axes[0][index[:, 2]], axes[1][index[:, 1]], axes[2][index[:, 0]]], axis=1)
    for _ in range(attempts):
        placed: dict[int, LesionPlacement] = {}
        centres, radii = [], []
        for i in order:
            lesion_id, side, semi_axes, max_scale = specs[i]
            radius = max(semi_axes) * max_scale
            points = admissible[i]
            for c, r in zip(centres, radii, strict=True):
                points = points[np.linalg.norm(points - c, axis=1) >= r + radius + margin_mm]
            if not len(points):
                break
            centre = points[rng.integers(len(points))]
            centres.append(centre)
            radii.append(radius)
            placed[i] = LesionPlacement(lesion_id, side, tuple(float(c) for c in centre), tuple(semi_axes),
                                        float(rng.uniform(0.0, 180.0)))
        else:
            return [placed[i] for i in range(len(specs))]
    raise ValueError(f"cannot place lesion {lesion_id} ({2 * max(semi_axes):.1f} mm, growing to "
                     f"x{max_scale:.2f}) in the {side} lobe after {attempts} attempts: no room left; "
                     "use fewer or smaller lesions")


def ellipsoid_voxels(ell: Ellipsoid, origin_mm, spacing_mm, size, x, y, z):
    """Voxels of a grid whose centres lie inside ``ell``: (bounding-box slices (z, y, x), mask in the box).

    ``x``, ``y``, ``z`` are the grid's voxel-centre coordinates as broadcastable (z, y, x) arrays.
    """
    reach = max(ell.semi_axes_mm)
    box = []
    for axis in (2, 1, 0):
        lo = int(np.floor((ell.centre_mm[axis] - reach - origin_mm[axis]) / spacing_mm[axis]))
        hi = int(np.ceil((ell.centre_mm[axis] + reach - origin_mm[axis]) / spacing_mm[axis])) + 1
        box.append(slice(max(lo, 0), min(hi, size[axis])))
    return tuple(box), ell.contains(x[..., box[2]], y[:, box[1], :], z[box[0]])
