"""Calibration phantoms of quantitative SPECT with their exact truth on any grid.

Two phantoms a site scans on its own camera and protocol:

* a uniform water cylinder of known activity (the calibration factor, cps/MBq;
  Dewaraja et al., MIRD Pamphlet 23, J Nucl Med 2012;53:1310; Ljungberg et al., MIRD Pamphlet
  26, J Nucl Med 2016;57:151 for Lu-177);
* the NEMA IEC body phantom with six fillable spheres (recovery coefficient versus volume).
  Geometry of NEMA NU 2-2012 section 7 and IEC 61675-1 (also IEC 61217 body phantom): body
  interior a half circle of radius 147 mm on one side and a 77 mm deep part with 77 mm corner
  radii on the other (flat side down on the couch), interior length 180 mm, PMMA walls ~3 mm;
  six glass spheres of inner diameter 10, 13, 17, 22, 28 and 37 mm with ~1 mm walls, centres on a
  circle of radius 57.2 mm about the phantom axis, 60 degrees apart, in one transverse plane
  70 mm from the inside of the lid; a central lung insert of ~51 mm diameter and ~0.3 g/mL,
  without activity, the full interior length.

Frame: LPS, mm; the phantom axis is the z axis (scanner axis), the lid at +z; the flat side of
the IEC body is posterior (+y, on the couch). Maps are exact volume averages over each voxel
box: extruded parts (body, walls, lung insert, cylinder) as a supersampled transverse area
fraction x the exact axial overlap; spheres by supersampling only the voxels that their
surface crosses (exact sphere signed distance). The spheres' filling stems are not modelled.

Every map is on the caller's grid (any spacing, axis-aligned): activity concentration (Bq/mL,
volume-weighted mean over the voxel), mass density (g/mL), linear attenuation at 208 keV (1/cm,
the truth the photons meet), and a synthetic CT (HU) of the materials.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..grid import image_on_grid
from .attenuation import (
    LU177_PHOTOPEAK_KEV,
    MATERIAL_DENSITY_G_PER_ML,
    linear_attenuation_per_cm,
    relative_electron_density_hu,
)

# NEMA NU 2-2012 / IEC 61675-1 body phantom (mm).
IEC_SPHERE_DIAMETERS_MM = (10.0, 13.0, 17.0, 22.0, 28.0, 37.0)
IEC_SPHERE_RING_RADIUS_MM = 57.2
IEC_SPHERE_PLANE_FROM_LID_MM = 70.0
IEC_BODY_ARC_RADIUS_MM = 147.0
IEC_BODY_CORNER_RADIUS_MM = 77.0  # also the depth of the flat-bottomed part
IEC_INTERIOR_LENGTH_MM = 180.0
IEC_LUNG_INSERT_DIAMETER_MM = 51.0
# Angle (degrees, from +x towards +y) of each sphere centre on the ring, smallest first: the two
# largest spheres face the arc side, where the body is deepest.
IEC_SPHERE_ANGLES_DEG = (0.0, 60.0, 120.0, 180.0, 240.0, 300.0)
# Phantom axis such that the body's bounding box is centred on the origin (see nema_iec_body_phantom).
IEC_DEFAULT_AXIS_MM = (0.0, (IEC_BODY_ARC_RADIUS_MM - IEC_BODY_CORNER_RADIUS_MM) / 2.0, 0.0)
PMMA_WALL_MM = 3.0
GLASS_WALL_MM = 1.0

_SUPERSAMPLING = 10  # sub-samples per axis for partial voxels


@dataclass(frozen=True)
class PhantomSphere:
    """One fillable sphere: inner diameter and centre (mm), inner volume (mL), filling (Bq/mL)."""

    diameter_mm: float
    centre_mm: tuple[float, float, float]
    concentration_bq_per_ml: float
    wall_mm: float = GLASS_WALL_MM

    @property
    def radius_mm(self) -> float:
        """Inner radius, mm."""
        return self.diameter_mm / 2.0

    @property
    def volume_ml(self) -> float:
        """Analytic inner volume pi d^3 / 6, mL."""
        return math.pi * self.diameter_mm**3 / 6.0 / 1000.0

    def as_dict(self) -> dict:
        """Plain JSON (unit-suffixed keys)."""
        return {"diameter_mm": self.diameter_mm, "centre_mm": list(self.centre_mm), "volume_ml": self.volume_ml,
                "concentration_bq_per_ml": self.concentration_bq_per_ml, "wall_mm": self.wall_mm}


@dataclass
class CalibrationPhantom:
    """A phantom's maps on one grid and its scalar truth (analytic, not voxelised).

    ``concentration`` Bq/mL, ``density`` g/mL, ``mu`` 1/cm at ``energy_kev``, ``ct`` HU, all
    float32 on the same grid; ``spheres`` empty for the cylinder.
    """

    name: str
    concentration: sitk.Image
    density: sitk.Image
    mu: sitk.Image
    ct: sitk.Image
    spheres: tuple[PhantomSphere, ...]
    truth: dict
    energy_kev: float = LU177_PHOTOPEAK_KEV
    parameters: dict = field(default_factory=dict)

    @property
    def total_activity_mbq(self) -> float:
        """Activity in the phantom at the scan time (analytic), MBq."""
        return float(self.truth["total_activity_mbq"])

    def to_json_dict(self) -> dict:
        """Scalar truth and geometry as plain JSON (unit-suffixed keys)."""
        return {"name": self.name, "energy_kev": self.energy_kev, "parameters": self.parameters,
                "spheres": [s.as_dict() for s in self.spheres], **self.truth}


def phantom_grid(spacing_mm: float | Sequence[float], size_mm: Sequence[float]) -> sitk.Image:
    """An empty float32 grid of ``spacing_mm`` voxels centred on the origin, covering ``size_mm`` (x, y, z)."""
    spacing = np.broadcast_to(np.asarray(spacing_mm, dtype=float), (3,))
    if np.any(spacing <= 0) or np.any(np.asarray(size_mm) <= 0):
        raise ValueError(f"spacing and size must be positive mm, got {spacing_mm} and {size_mm}")
    size = np.ceil(np.asarray(size_mm, dtype=float) / spacing).astype(int)
    grid = sitk.Image([int(n) for n in size], sitk.sitkFloat32)
    grid.SetSpacing([float(s) for s in spacing])
    grid.SetOrigin([float(v) for v in -(size - 1) * spacing / 2.0])
    return grid


def _axes(reference: sitk.Image) -> list[np.ndarray]:
    if not np.allclose(reference.GetDirection(), np.eye(3).ravel(), atol=1e-9):
        raise ValueError(f"the phantom grid must have an identity direction (axial, LPS); got "
                         f"{reference.GetDirection()}")
    o, s, n = reference.GetOrigin(), reference.GetSpacing(), reference.GetSize()
    return [o[a] + s[a] * np.arange(n[a]) for a in range(3)]


def axial_overlap_fraction(z_mm: np.ndarray, step_mm: float, lo_mm: float, hi_mm: float) -> np.ndarray:
    """Fraction of each voxel interval [z - step/2, z + step/2] inside [lo, hi] (exact)."""
    lo = np.maximum(z_mm - step_mm / 2.0, lo_mm)
    hi = np.minimum(z_mm + step_mm / 2.0, hi_mm)
    return np.clip(hi - lo, 0.0, None) / step_mm


def transverse_area_fraction(x_mm: np.ndarray, y_mm: np.ndarray, step_mm: tuple[float, float], inside,
                             supersampling: int = 16) -> np.ndarray:
    """(ny, nx) fraction of each pixel's area where ``inside(x, y)`` holds (supersampled, mid-point rule)."""
    offsets = (np.arange(supersampling) + 0.5) / supersampling - 0.5
    out = np.empty((len(y_mm), len(x_mm)))
    xs = (x_mm[None, :, None] + offsets[None, None, :] * step_mm[0])  # (1, nx, n)
    for j, y in enumerate(y_mm):
        ys = y + offsets * step_mm[1]  # (n,)
        hits = inside(xs[:, :, None, :], ys[None, None, :, None])  # (1, nx, n, n)
        out[j] = hits.reshape(len(x_mm), -1).mean(axis=1)
    return out


def sphere_occupancy(reference: sitk.Image, centre_mm: Sequence[float], radius_mm: float,
                     supersampling: int = _SUPERSAMPLING) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """Fraction of each voxel inside a sphere, in the sphere's bounding box of the grid.

    Returns ``(box, fraction)``: ``box`` the (z, y, x) slices of the grid, ``fraction`` float64
    of the box's shape. Voxels whose centre lies farther than half the voxel diagonal from the
    surface are 0 or 1 exactly; the others are supersampled with ``supersampling``^3 points.
    """
    axes = _axes(reference)
    spacing = np.asarray(reference.GetSpacing())
    reach = radius_mm + float(np.linalg.norm(spacing))
    box, local = [], []
    for a in (2, 1, 0):
        lo = int(np.searchsorted(axes[a], centre_mm[a] - reach))
        hi = int(np.searchsorted(axes[a], centre_mm[a] + reach, side="right"))
        box.append(slice(lo, hi))
        local.append(axes[a][lo:hi] - centre_mm[a])
    z, y, x = np.meshgrid(local[0], local[1], local[2], indexing="ij")
    distance = np.sqrt(x**2 + y**2 + z**2) - radius_mm
    half_diagonal = float(np.linalg.norm(spacing)) / 2.0
    fraction = (distance < 0).astype(np.float64)
    partial = np.abs(distance) < half_diagonal
    if partial.any():
        offsets = (np.arange(supersampling) + 0.5) / supersampling - 0.5
        oz, oy, ox = np.meshgrid(offsets * spacing[2], offsets * spacing[1], offsets * spacing[0],
                                 indexing="ij")
        cz, cy, cx = z[partial], y[partial], x[partial]
        inside = ((cx[:, None] + ox.ravel()) ** 2 + (cy[:, None] + oy.ravel()) ** 2
                  + (cz[:, None] + oz.ravel()) ** 2) < radius_mm**2
        fraction[partial] = inside.mean(axis=1)
    return tuple(box), fraction


def _disc(radius_mm: float, cx: float = 0.0, cy: float = 0.0):
    return lambda x, y: (x - cx) ** 2 + (y - cy) ** 2 < radius_mm**2


def iec_body_section(grow_mm: float = 0.0):
    """Inside test of the IEC body cross-section (interior grown by ``grow_mm``, e.g. the wall).

    The section is convex: a half disc of radius 147 mm on the anterior side (y <= 0) and, on the
    posterior side, a 77 mm deep part whose corners are quarter circles of radius 77 mm centred
    at (+-70, 0) and whose flat bottom is y = 77 mm. Growing a convex shape by g keeps arcs
    concentric (radii + g) and moves the flat side out by g.
    """
    arc = IEC_BODY_ARC_RADIUS_MM + grow_mm
    corner = IEC_BODY_CORNER_RADIUS_MM + grow_mm
    half_flat = IEC_BODY_ARC_RADIUS_MM - IEC_BODY_CORNER_RADIUS_MM  # 70 mm

    def inside(x, y):
        anterior = (y <= 0.0) & (x**2 + y**2 < arc**2)
        ax = np.abs(x)
        posterior = (y > 0.0) & (y < corner) & ((ax <= half_flat) | ((ax - half_flat) ** 2 + y**2 < corner**2))
        return anterior | posterior

    return inside


def iec_body_interior_volume_ml() -> float:
    """Analytic interior volume of the IEC body (without inserts), mL (~9.7 L)."""
    r, c = IEC_BODY_ARC_RADIUS_MM, IEC_BODY_CORNER_RADIUS_MM
    area = math.pi * r**2 / 2.0 + 2.0 * (r - c) * c + math.pi * c**2 / 2.0
    return area * IEC_INTERIOR_LENGTH_MM / 1000.0


# Short names of the phantom materials -> attenuation-table material.
_MATERIAL = {"water": "water", "pmma": "pmma", "glass": "borosilicate glass", "lung": "lung insert"}


class _MaterialMaps:
    """Accumulates volume fractions of materials into concentration, density, mu and CT maps."""

    def __init__(self, reference: sitk.Image):
        self.reference = reference
        shape = tuple(reversed(reference.GetSize()))
        self.solid, self.density, self.mu, self.hu, self.concentration = (np.zeros(shape) for _ in range(5))

    def add(self, material: str, fraction: np.ndarray, concentration_bq_per_ml: float = 0.0,
            box: tuple[slice, ...] = (slice(None),) * 3) -> None:
        """Add ``fraction`` (of the grid, or of ``box``) of ``material`` holding the given concentration."""
        name = _MATERIAL[material]
        self.solid[box] += fraction
        self.density[box] += fraction * MATERIAL_DENSITY_G_PER_ML[name]
        self.mu[box] += fraction * linear_attenuation_per_cm(name)
        self.hu[box] += fraction * relative_electron_density_hu(name)
        if concentration_bq_per_ml:
            self.concentration[box] += fraction * concentration_bq_per_ml

    def images(self) -> list[sitk.Image]:
        """(concentration, density, mu, CT) images; air fills what no material occupies."""
        air = np.clip(1.0 - self.solid, 0.0, 1.0)
        self.density += air * MATERIAL_DENSITY_G_PER_ML["air"]
        self.mu += air * linear_attenuation_per_cm("air")
        self.hu += air * -1000.0
        return [image_on_grid(v.astype(np.float32), self.reference)
                for v in (self.concentration, self.density, self.mu, self.hu)]


def uniform_cylinder_phantom(reference: sitk.Image, *, activity_mbq: float = 1000.0,
                             inner_diameter_mm: float = 200.0, inner_length_mm: float = 200.0,
                             wall_mm: float = PMMA_WALL_MM, centre_mm: Sequence[float] = (0.0, 0.0, 0.0),
                             supersampling: int = 16) -> CalibrationPhantom:
    """A water-filled PMMA cylinder (axis = z) holding ``activity_mbq`` uniformly, on ``reference``'s grid.

    Parameters
    ----------
    reference : SimpleITK.Image
        The grid (any spacing; axis-aligned).
    activity_mbq : float
        Activity in the water at the scan time (what the dose calibrator measured, decay-corrected).
    inner_diameter_mm, inner_length_mm, wall_mm : float
        Interior size and PMMA wall thickness (default ~20 cm x 20 cm, 3 mm).
    centre_mm : (x, y, z)
        Centre of the interior.
    supersampling : int
        Sub-samples per pixel axis for the transverse area fractions.
    """
    if activity_mbq <= 0 or inner_diameter_mm <= 0 or inner_length_mm <= 0 or wall_mm < 0:
        raise ValueError(f"cylinder activity and size must be positive (activity {activity_mbq} MBq, "
                         f"diameter {inner_diameter_mm} mm, length {inner_length_mm} mm, wall {wall_mm} mm)")
    x, y, z = _axes(reference)
    s = reference.GetSpacing()
    cx, cy, cz = (float(v) for v in centre_mm)
    r = inner_diameter_mm / 2.0
    inner_xy = transverse_area_fraction(x, y, (s[0], s[1]), _disc(r, cx, cy), supersampling)
    outer_xy = transverse_area_fraction(x, y, (s[0], s[1]), _disc(r + wall_mm, cx, cy), supersampling)
    half = inner_length_mm / 2.0
    inner_z = axial_overlap_fraction(z, s[2], cz - half, cz + half)
    outer_z = axial_overlap_fraction(z, s[2], cz - half - wall_mm, cz + half + wall_mm)
    water = inner_z[:, None, None] * inner_xy[None]
    volume_ml = math.pi * r**2 * inner_length_mm / 1000.0
    concentration = activity_mbq * 1e6 / volume_ml
    maps = _MaterialMaps(reference)
    maps.add("water", water, concentration)
    maps.add("pmma", outer_z[:, None, None] * outer_xy[None] - water)
    truth = {"total_activity_mbq": activity_mbq, "water_volume_ml": volume_ml,
             "concentration_bq_per_ml": concentration}
    parameters = {"inner_diameter_mm": inner_diameter_mm, "inner_length_mm": inner_length_mm,
                  "wall_mm": wall_mm, "centre_mm": [cx, cy, cz], "activity_mbq": activity_mbq}
    return CalibrationPhantom("uniform_cylinder", *maps.images(), spheres=(), truth=truth, parameters=parameters)


def nema_iec_body_phantom(reference: sitk.Image, *, background_bq_per_ml: float = 40.0e3,
                          sphere_to_background: float = 4.0,
                          sphere_diameters_mm: Sequence[float] = IEC_SPHERE_DIAMETERS_MM,
                          sphere_angles_deg: Sequence[float] = IEC_SPHERE_ANGLES_DEG,
                          lung_insert: bool = True, axis_mm: Sequence[float] = IEC_DEFAULT_AXIS_MM,
                          supersampling: int = 16) -> CalibrationPhantom:
    """The NEMA IEC body phantom on ``reference``'s grid (geometry in the module docstring).

    Parameters
    ----------
    reference : SimpleITK.Image
        The grid (any spacing; axis-aligned).
    background_bq_per_ml : float
        Activity concentration of the background water at the scan time.
    sphere_to_background : float
        Sphere concentration / background (e.g. 4 or 10); 0 gives cold spheres.
    sphere_diameters_mm, sphere_angles_deg : sequences of equal length
        Inner diameters and ring angles (from +x towards +y) of the spheres.
    lung_insert : bool
        Include the central cold lung insert (0.3 g/mL).
    axis_mm : (x, y, z)
        Where the phantom axis (centre of the arc, of the sphere ring and of the lung insert)
        meets the middle of the interior length. The default puts the centre of the body's
        bounding box (294 x 224 x 180 mm interior) at the origin: axis at y = +35 mm, interior
        z = -90..+90 mm, lid at +90 mm, sphere plane at z = +20 mm.
    """
    if background_bq_per_ml < 0 or sphere_to_background < 0:
        raise ValueError(f"concentrations must be >= 0 (background {background_bq_per_ml} Bq/mL, "
                         f"sphere-to-background {sphere_to_background})")
    if len(sphere_diameters_mm) != len(sphere_angles_deg):
        raise ValueError(f"{len(sphere_diameters_mm)} sphere diameters but {len(sphere_angles_deg)} angles")
    ax, ay, az = (float(v) for v in axis_mm)
    x, y, z = _axes(reference)
    x, y, z = x - ax, y - ay, z - az  # phantom frame
    s = reference.GetSpacing()
    half = IEC_INTERIOR_LENGTH_MM / 2.0
    interior_z = axial_overlap_fraction(z, s[2], -half, half)
    outer_z = axial_overlap_fraction(z, s[2], -half - PMMA_WALL_MM, half + PMMA_WALL_MM)
    interior = interior_z[:, None, None] * transverse_area_fraction(
        x, y, (s[0], s[1]), iec_body_section(), supersampling)[None]
    maps = _MaterialMaps(reference)
    maps.add("pmma", outer_z[:, None, None] * transverse_area_fraction(
        x, y, (s[0], s[1]), iec_body_section(PMMA_WALL_MM), supersampling)[None] - interior)
    background = interior
    if lung_insert:
        lung = interior_z[:, None, None] * transverse_area_fraction(
            x, y, (s[0], s[1]), _disc(IEC_LUNG_INSERT_DIAMETER_MM / 2.0), supersampling)[None]
        maps.add("lung", lung)
        background -= lung
    plane_z = half - IEC_SPHERE_PLANE_FROM_LID_MM
    sphere_conc = background_bq_per_ml * sphere_to_background
    spheres = tuple(
        PhantomSphere(float(d), (ax + IEC_SPHERE_RING_RADIUS_MM * math.cos(math.radians(a)),
                                 ay + IEC_SPHERE_RING_RADIUS_MM * math.sin(math.radians(a)), az + plane_z),
                      sphere_conc)
        for d, a in zip(sphere_diameters_mm, sphere_angles_deg, strict=True))
    for sphere in spheres:
        box, inner = sphere_occupancy(reference, sphere.centre_mm, sphere.radius_mm)
        box_outer, outer = sphere_occupancy(reference, sphere.centre_mm, sphere.radius_mm + sphere.wall_mm)
        # The glass shell is the outer ball less the inner one; both displace background water.
        maps.add("water", inner, sphere.concentration_bq_per_ml, box)
        maps.add("glass", outer, box=box_outer)
        maps.add("glass", -inner, box=box)
        background[box_outer] -= outer
    maps.add("water", np.clip(background, 0.0, None), background_bq_per_ml)
    lung_ml = (math.pi * (IEC_LUNG_INSERT_DIAMETER_MM / 2.0) ** 2 * IEC_INTERIOR_LENGTH_MM / 1000.0
               if lung_insert else 0.0)
    sphere_outer_ml = sum(math.pi * (sp.diameter_mm + 2 * sp.wall_mm) ** 3 / 6.0 / 1000.0 for sp in spheres)
    background_ml = iec_body_interior_volume_ml() - lung_ml - sphere_outer_ml
    total = (background_bq_per_ml * background_ml + sum(sp.concentration_bq_per_ml * sp.volume_ml
                                                        for sp in spheres)) * 1e-6
    truth = {"total_activity_mbq": total, "background_bq_per_ml": background_bq_per_ml,
             "sphere_to_background": sphere_to_background, "sphere_bq_per_ml": sphere_conc,
             "interior_volume_ml": iec_body_interior_volume_ml(), "background_volume_ml": background_ml,
             "lung_insert_volume_ml": lung_ml, "sphere_plane_z_mm": az + plane_z, "axis_mm": [ax, ay, az]}
    parameters = {"background_bq_per_ml": background_bq_per_ml, "sphere_to_background": sphere_to_background,
                  "sphere_diameters_mm": list(sphere_diameters_mm), "sphere_angles_deg": list(sphere_angles_deg),
                  "lung_insert": lung_insert, "sphere_ring_radius_mm": IEC_SPHERE_RING_RADIUS_MM,
                  "interior_length_mm": IEC_INTERIOR_LENGTH_MM, "pmma_wall_mm": PMMA_WALL_MM,
                  "glass_wall_mm": GLASS_WALL_MM, "lung_insert_diameter_mm": IEC_LUNG_INSERT_DIAMETER_MM}
    return CalibrationPhantom("nema_iec_body", *maps.images(), spheres=spheres, truth=truth, parameters=parameters)
