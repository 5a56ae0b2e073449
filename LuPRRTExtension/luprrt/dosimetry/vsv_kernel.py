"""Voxel S-value kernels of Lu-177 in unit-density soft tissue, for any voxel size.

The kernel entry ``S[k, j, i]`` is the absorbed dose (Gy) in the target voxel displaced by
``(i, j, k)`` voxels along (x, y, z) per MBq h in the source voxel, both uniformly filled,
in an infinite water medium. It is built from the radial energy-deposition distributions
of :mod:`.point_kernels` (electrons fitted to the unit-density sphere S-value table of
LU177.md, photons from the attenuated point kernel of the two gamma lines):

* near field (target voxels within 2 voxels of the source along every axis): the energy
  reaching voxel ``n`` from a uniform source voxel, for a displacement ``D`` (in voxel
  units), is the overlap of two unit boxes, ``prod_axis max(0, 1 - |D_axis - n_axis|)``:
  exactly trilinear-interpolation weights. So radial shells (composite 2-point
  Gauss-Legendre in distance) times quasi-uniform directions (Fibonacci lattice, its
  density growing with the shell area) are *splatted* with trilinear weights onto the
  lattice. No singularity at the source: the radial distribution is finite at x = 0.
* far field (all other voxels whose centre is within ``radius_mm``): the point kernel
  ``psi(r) / (4 pi r^2)`` integrated over the box-overlap distribution by a product
  Gauss-Legendre rule (2 points per box per axis, 27 sub-voxel samples).

Beyond ``radius_mm`` the kernel is cut: past 30 mm essentially only photons deposit energy
(electrons: 99.9999 % within 31 mm). With the default 30 mm the kernel holds 1.024 x the
electron energy, so the centre of a large uniform source gets 1.024 x the local-deposition
dose, within LU177.md's "dose -> local deposition x ~1.0-1.04"; photon cross-dose from
farther away (a few % at the centre of a liver-sized source) is neglected. Raising
``radius_mm`` includes it at a larger FFT cost.

Validation (Testing/core/test_dosimetry_kernel.py): at 2.21 mm the kernel gives
S(0,0,0) = 1.81 and S(1,0,0) = 4.86e-2 mGy/(MBq s) against the published 1.66 and
4.83e-2 (LU177.md): +9 % and +1 %; S(1,1,0) agrees within 2 %. The published self value
is low relative to the sphere table: the published 3x3x3 block holds only 90 % of
147.9 keV (as if normalised to the 133.3 keV mean beta energy), and the equal-mass sphere
(r = 1.37 mm) of the sphere table gives 1.85. S(1,1,1) and S(2,0,0) come out 3x and 7x the
published (tiny) values because of the weak long-range electron component that the
sphere table's 5-10 mm escape requires (see :func:`.point_kernels.electron_radial_distribution`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..physics import JOULE_PER_KEV, SECONDS_PER_HOUR
from ..provenance import ProgressCallback, no_progress
from . import point_kernels
from .svalues import GY_PER_MBQ_H_PER_MGY_PER_MBQ_S

# Target voxels within this many voxels of the source (every axis) are the near field.
_NEAR_VOXELS = 2
# Directions per unit of shell area measured in (smallest voxel side)^2: 4 to 32 change
# S(0,0,0) and S(1,0,0) by < 1e-4 relative, so 6 is ample.
_DIRECTIONS_PER_VOXEL_AREA = 6.0
_MIN_DIRECTIONS = 256
# Gauss-Legendre 2-point rule on a unit box [-1/2, 1/2] (nodes, weights); against the 3-point
# rule the far-field S-values differ by < 0.1 % (3 voxels) and < 0.01 % (10 voxels).
_GL_NODES = np.array([-0.5, 0.5]) / math.sqrt(3.0)
_GL_WEIGHTS = np.array([0.5, 0.5])

DEFAULT_KERNEL_RADIUS_MM = 30.0


@dataclass(frozen=True)
class VoxelSValueKernel:
    """A voxel S-value kernel on a (z, y, x) lattice centred on the source voxel.

    Attributes
    ----------
    s_gy_per_mbq_h : numpy.ndarray
        Dose (Gy) per MBq h in the source voxel; shape (2nz+1, 2ny+1, 2nx+1); unit-density
        soft tissue.
    voxel_size_mm : tuple of float
        Voxel size (x, y, z) in mm, SimpleITK spacing order.
    radius_mm : float
        Spherical cut-off of the far field.
    """

    s_gy_per_mbq_h: np.ndarray
    voxel_size_mm: tuple[float, float, float]
    radius_mm: float

    @property
    def half_width_voxels(self) -> tuple[int, int, int]:
        """Kernel half-width (x, y, z) in voxels."""
        nz, ny, nx = (n // 2 for n in self.s_gy_per_mbq_h.shape)
        return nx, ny, nz

    def s_value_mgy_per_mbq_s(self, dx: int = 0, dy: int = 0, dz: int = 0) -> float:
        """S-value of the target voxel displaced by (dx, dy, dz) voxels, mGy/(MBq s)."""
        nx, ny, nz = self.half_width_voxels
        if abs(dx) > nx or abs(dy) > ny or abs(dz) > nz:
            raise ValueError(f"offset ({dx}, {dy}, {dz}) is outside the kernel half-width ({nx}, {ny}, {nz})")
        return float(self.s_gy_per_mbq_h[nz + dz, ny + dy, nx + dx] / GY_PER_MBQ_H_PER_MGY_PER_MBQ_S)

    def matches(self, spacing_mm, rtol: float = 1e-4) -> bool:
        """Whether this kernel was built for voxels of ``spacing_mm`` (x, y, z)."""
        return bool(np.allclose(self.voxel_size_mm, spacing_mm, rtol=rtol, atol=0.0))


def build_voxel_s_value_kernel(voxel_size_mm, radius_mm: float = DEFAULT_KERNEL_RADIUS_MM,
                               progress: ProgressCallback | None = None) -> VoxelSValueKernel:
    """Build the Lu-177 voxel S-value kernel for voxels of ``voxel_size_mm`` (x, y, z) mm.

    Parameters
    ----------
    voxel_size_mm : float or sequence of 3 floats
        Voxel size (x, y, z) in mm (SimpleITK spacing order); a scalar means cubic voxels.
    radius_mm : float
        Far-field cut-off (mm); must be at least 3 voxel diagonals' worth of the near field.
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    VoxelSValueKernel
    """
    progress = progress or no_progress
    size = np.broadcast_to(np.asarray(voxel_size_mm, dtype=float), (3,)).copy()
    if np.any(~np.isfinite(size) | (size <= 0)):
        raise ValueError(f"voxel size must be three positive lengths in mm, got {voxel_size_mm}")
    if not (np.isfinite(radius_mm) and radius_mm >= 3.0 * size.max()):
        raise ValueError(f"kernel radius {radius_mm} mm must be at least 3 voxels ({3 * size.max():g} mm)")
    half = np.maximum(np.ceil(radius_mm / size).astype(int), _NEAR_VOXELS)  # (x, y, z)
    energy_kev = np.zeros(tuple(2 * half[::-1] + 1))
    progress(0.0, "voxel S-value kernel: near field")
    _add_near_field(energy_kev, size, half)
    progress(0.5, "voxel S-value kernel: far field")
    _add_far_field(energy_kev, size, half, radius_mm)
    energy_kev = _symmetrised(energy_kev, size)
    voxel_mass_g = float(np.prod(size)) / 1000.0  # unit density, 1 mL = 1000 mm^3
    # keV per decay -> Gy per MBq h: 1e6 decays/s x 3600 s x J/keV / kg.
    s_gy_per_mbq_h = energy_kev * JOULE_PER_KEV * 1e6 * SECONDS_PER_HOUR / (voxel_mass_g * 1e-3)
    progress(1.0, "voxel S-value kernel: done")
    return VoxelSValueKernel(s_gy_per_mbq_h, tuple(float(v) for v in size), float(radius_mm))


def _symmetrised(kernel: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Average over the lattice symmetries: reflections, and swaps of equally sized axes.

    Exact for the physics (an isotropic point kernel), and it averages out the direction
    sampling noise of the near field (about 0.5 % at 2 voxels before averaging).
    """
    out = kernel
    for axis in range(3):
        out = 0.5 * (out + np.flip(out, axis))
    size_zyx = size[::-1]
    permutations = [p for p in itertools.permutations(range(3)) if np.allclose(size_zyx[list(p)], size_zyx)]
    return sum(np.transpose(out, p) for p in permutations) / len(permutations)


def _fibonacci_directions(count: int, seed: int) -> np.ndarray:
    """``count`` quasi-uniform unit vectors (Fibonacci lattice), randomly rotated per shell."""
    i = np.arange(count) + 0.5
    polar = np.arccos(1.0 - 2.0 * i / count)
    azimuth = math.pi * (1.0 + math.sqrt(5.0)) * i
    sin_polar = np.sin(polar)
    directions = np.stack([np.cos(azimuth) * sin_polar, np.sin(azimuth) * sin_polar, np.cos(polar)], 1)
    rotation, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return directions @ rotation


def _add_near_field(energy_kev: np.ndarray, size: np.ndarray, half: np.ndarray) -> None:
    """Splat radial shells onto the near-field block of ``energy_kev`` (z, y, x)."""
    near = _NEAR_VOXELS
    # Displacements reaching the near block satisfy |D_axis| < (near + 1) voxels.
    x_cut = (near + 1) * float(np.linalg.norm(size))
    edges = np.unique(np.concatenate([[0.0], np.geomspace(1e-3, x_cut, 160),
                                      np.arange(0.0, x_cut, 0.125 * size.min()), [x_cut]]))
    gauss = np.array([-1.0, 1.0]) / math.sqrt(3.0)
    corners = np.array([[(c >> axis) & 1 for axis in range(3)] for c in range(8)])  # (8, 3) in x, y, z
    block = 2 * near + 1
    accumulated = np.zeros(block**3)
    for shell, (lo, hi) in enumerate(itertools.pairwise(edges)):
        radii = 0.5 * (lo + hi) + 0.5 * (hi - lo) * gauss
        shell_kev = point_kernels.total_radial_kev_per_mm(radii) * 0.5 * (hi - lo)
        count = max(_MIN_DIRECTIONS, int(_DIRECTIONS_PER_VOXEL_AREA * 4 * math.pi * (hi / size.min()) ** 2))
        directions = _fibonacci_directions(count, shell)
        displacement = (radii[:, None, None] * directions[None, :, :] / size).reshape(-1, 3)  # voxel units
        weight = np.repeat(shell_kev / count, count)
        base = np.floor(displacement)
        frac = displacement - base
        base = base.astype(int) + near
        for corner in corners:
            index = base + corner
            w = weight * np.prod(np.where(corner == 1, frac, 1.0 - frac), axis=1)
            inside = np.all((index >= 0) & (index < block), axis=1)
            flat = np.ravel_multi_index(index[inside, ::-1].T, (block, block, block))  # (z, y, x)
            accumulated += np.bincount(flat, w[inside], minlength=block**3)
    hz, hy, hx = half[::-1]
    energy_kev[hz - near:hz + near + 1, hy - near:hy + near + 1, hx - near:hx + near + 1] += \
        accumulated.reshape(block, block, block)


def _add_far_field(energy_kev: np.ndarray, size: np.ndarray, half: np.ndarray, radius_mm: float) -> None:
    """Integrate the point kernel over far-field voxel pairs (product Gauss-Legendre)."""
    hx, hy, hz = half
    z, y, x = np.meshgrid(np.arange(-hz, hz + 1), np.arange(-hy, hy + 1), np.arange(-hx, hx + 1),
                          indexing="ij")
    offsets = np.stack([x.ravel(), y.ravel(), z.ravel()], 1)  # voxel units (x, y, z)
    far = (np.abs(offsets).max(axis=1) > _NEAR_VOXELS) & (np.linalg.norm(offsets * size, axis=1) <= radius_mm)
    # Box-overlap (triangle) distribution of s - t, s and t uniform in a voxel: 2-point rule each.
    shifts, inverse = np.unique(np.round(_GL_NODES[:, None] - _GL_NODES[None, :], 12), return_inverse=True)
    shift_weights = np.bincount(inverse.ravel(), (_GL_WEIGHTS[:, None] * _GL_WEIGHTS[None, :]).ravel())
    sx, sy, sz = np.meshgrid(shifts, shifts, shifts, indexing="ij")
    sub = np.stack([sx.ravel(), sy.ravel(), sz.ravel()], 1)
    sub_w = np.einsum("i,j,k->ijk", shift_weights, shift_weights, shift_weights).ravel()
    voxel_volume = float(np.prod(size))
    flat_index = np.flatnonzero(far)
    values = np.empty(flat_index.size)
    chunk = max(1, 2_000_000 // sub.shape[0])
    for start in range(0, flat_index.size, chunk):
        rows = offsets[flat_index[start:start + chunk]]
        r = np.linalg.norm((rows[:, None, :] + sub[None, :, :]) * size, axis=2)
        density = point_kernels.total_radial_kev_per_mm(r) / (4.0 * math.pi * r**2)  # keV/mm^3
        values[start:start + chunk] = voxel_volume * (density @ sub_w)
    energy_kev.ravel()[flat_index] += values
