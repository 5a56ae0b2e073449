"""Voxel S-value kernels of Lu-177 in soft tissue, for any (anisotropic) voxel size.

The kernel entry ``S[k, j, i]`` is the absorbed dose (Gy) in the target voxel displaced by
``(i, j, k)`` voxels along (x, y, z) per MBq h in the source voxel, both uniformly filled, in an
infinite medium of soft tissue of density ``rho`` (default 1.03 g/mL). It integrates the radial
energy-deposition distributions of :mod:`.point_kernels` (electrons by condensed-history
transport, exactly zero beyond their 1.77 mm CSDA range; photons from the full ICRP-107 spectrum
with NIST attenuation, energy absorption and buildup) over source and target voxels:

* near field (target voxels within ``near`` voxels of the source along every axis, ``near`` >= 2
  and covering the electron range): the energy reaching voxel ``n`` from a uniform source voxel,
  for a displacement ``D`` (in voxel units), is the overlap of two unit boxes,
  ``prod_axis max(0, 1 - |D_axis - n_axis|)``: exactly trilinear-interpolation weights. Radial
  shells (two Gauss-Legendre radii each) times quasi-uniform directions (Fibonacci lattice, its
  density growing with the shell area) are *splatted* with trilinear weights onto the lattice.
* fine far field (photons only, target centre within ``radius_mm + taper``): the photon point
  kernel integrated over the box-overlap distribution by a product Gauss-Legendre rule.
* coarse far field (photons only, the whole image): photons travel tens of cm, so their
  cross-dose beyond ``radius_mm`` is convolved on a coarse grid (blocks of 3 x 3 x 3 voxels,
  :meth:`VoxelSValueKernel.coarse_photon_spectrum`) and interpolated back (:mod:`.dose`). The
  photon kernel is split smoothly: weight ``w(r)`` (1 up to ``radius_mm``, a cosine taper over five
  coarse blocks to 0) on the fine lattice, ``1 - w(r)`` on the coarse one, so nothing is counted
  twice or lost and the coarse part is smooth on its grid.

Validation (Testing/core/dosimetry/test_vsv_kernel.py, test_vsv_energy.py): at 2.21 mm
and unit density (the density of the published table) the beta-only kernel (conversion and Auger
electrons left out, photons kept: S(2,0,0) is photon-only) gives S(0,0,0) = 1.661, S(1,0,0) =
4.92e-2, S(1,1,0) = 2.55e-3, S(1,1,1) = 2.54e-4, S(2,0,0) = 8.08e-5 mGy/(MBq s) against the
published 1.66, 4.83e-2, 2.52e-3, 2.50e-4, 7.70e-5 (Lanconelli et al. 2012; +0.1, +1.9, +1.3,
+1.5, +4.9 %); with all electrons 1.869, 5.08e-2, 2.57e-3, 2.54e-4 against 1.88, 5.05e-2, 2.56e-3,
2.52e-4 from the project's own independent transport calculation (not a published table).
The centre of a 159 mm uniform cube gets 1.09 x the local electron deposition; liver- and
kidney-sized ellipsoids give S x mass within 1 % of the OpenDose organs (Chauvin et al. 2020).

References
----------
Lanconelli N, Pacilio M, Lo Meo S, et al. A free database of radionuclide voxel S values for the
dosimetry of nonuniform activity distributions. Phys Med Biol 2012;57:517-533 (Lu-177, soft tissue,
2.21 mm voxels).
Chauvin M, Borys D, Botta F, et al. OpenDose: open-access resource for nuclear medicine dosimetry.
J Nucl Med 2020;61:1514-1519 (organ self S-values, ICRP-110 phantoms).
ICRP Publication 107 (Eckerman K, Endo A). Nuclear decay data for dosimetric calculations. Ann ICRP
2008;38(3) (emission spectra).
Berger MJ, Coursey JS, Zucker MA, Chang J. ESTAR, PSTAR, and ASTAR: computer programs for calculating
stopping-power and range tables for electrons, protons, and helium ions. NIST Standard Reference
Database 124 (CSDA range 1.77 mm at the 497.8 keV endpoint).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import fft

from ..physics import JOULE_PER_KEV, SECONDS_PER_HOUR, SOFT_TISSUE_DENSITY_G_PER_ML
from ..provenance import ProgressCallback, no_progress
from . import point_kernels
from .svalues import GY_PER_MBQ_H_PER_MGY_PER_MBQ_S

# Target voxels within at least this many voxels of the source (every axis) are the near field.
_MIN_NEAR_VOXELS = 2
# Directions per unit of shell area measured in (smallest voxel side)^2 (4 to 32 change S(0,0,0)
# and S(1,0,0) by < 1e-4 relative).
_DIRECTIONS_PER_VOXEL_AREA = 6.0
_MIN_DIRECTIONS = 256
# Gauss-Legendre 2-point rule on a unit box [-1/2, 1/2] (nodes, weights); against the 3-point
# rule the far-field S-values differ by < 0.1 % (3 voxels) and < 0.01 % (10 voxels).
_GL_NODES = np.array([-0.5, 0.5]) / math.sqrt(3.0)
_GL_WEIGHTS = np.array([0.5, 0.5])
# Full-resolution photon radius (mm) and voxels per coarse photon block along every axis: the taper
# (five blocks) and so the fine kernel scale with the voxel size, the coarse grid is a third of the
# image per axis.
DEFAULT_KERNEL_RADIUS_MM = 10.0
COARSE_FACTOR = 3
# keV per decay -> Gy per MBq h in 1 g: 1e6 decays/s x 3600 s x J/keV / 1e-3 kg.
_GY_PER_MBQ_H_PER_KEV_PER_G = 1e6 * SECONDS_PER_HOUR * JOULE_PER_KEV / 1e-3


@dataclass(frozen=True)
class VoxelSValueKernel:
    """A voxel S-value kernel on a (z, y, x) lattice centred on the source voxel.

    Attributes
    ----------
    s_gy_per_mbq_h : numpy.ndarray
        Dose (Gy) per MBq h in the source voxel, electrons and the fine photon part; shape
        (2nz+1, 2ny+1, 2nx+1); tissue of ``density_g_per_ml``.
    electron_s_gy_per_mbq_h : numpy.ndarray
        The electron part of ``s_gy_per_mbq_h`` (same shape; exactly 0 beyond the electron range).
    voxel_size_mm : tuple of float
        Voxel size (x, y, z) in mm, SimpleITK spacing order.
    radius_mm : float
        Photons within this distance are on the fine lattice only; the coarse part starts here.
    density_g_per_ml : float
        Tissue density the kernel is for.
    coarse_factor : tuple of int
        Fine voxels per coarse photon block along (x, y, z).
    include_discrete_electrons : bool
        Conversion and Auger electrons included (False: beta spectrum only, for the published table).
    """

    s_gy_per_mbq_h: np.ndarray
    electron_s_gy_per_mbq_h: np.ndarray
    voxel_size_mm: tuple[float, float, float]
    radius_mm: float
    density_g_per_ml: float
    coarse_factor: tuple[int, int, int]
    include_discrete_electrons: bool = True
    _fine_spectra: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def half_width_voxels(self) -> tuple[int, int, int]:
        """Fine kernel half-width (x, y, z) in voxels."""
        nz, ny, nx = (n // 2 for n in self.s_gy_per_mbq_h.shape)
        return nx, ny, nz

    @property
    def taper_mm(self) -> float:
        """Width of the fine-to-coarse photon transition (five coarse blocks), mm."""
        return 5.0 * float(np.max(np.multiply(self.coarse_factor, self.voxel_size_mm)))

    @property
    def voxel_mass_g(self) -> float:
        """Mass of one voxel (g); 1 mL = 1000 mm^3."""
        return self.density_g_per_ml * float(np.prod(self.voxel_size_mm)) / 1000.0

    def s_value_mgy_per_mbq_s(self, dx: int = 0, dy: int = 0, dz: int = 0) -> float:
        """S-value of the target voxel displaced by (dx, dy, dz) voxels, mGy/(MBq s).

        Complete (all photons) for targets within ``radius_mm`` of the source.
        """
        nx, ny, nz = self.half_width_voxels
        if abs(dx) > nx or abs(dy) > ny or abs(dz) > nz:
            raise ValueError(f"offset ({dx}, {dy}, {dz}) is outside the kernel half-width ({nx}, {ny}, {nz})")
        return float(self.s_gy_per_mbq_h[nz + dz, ny + dy, nx + dx] / GY_PER_MBQ_H_PER_MGY_PER_MBQ_S)

    def matches(self, spacing_mm, rtol: float = 1e-4) -> bool:
        """Whether this kernel was built for voxels of ``spacing_mm`` (x, y, z)."""
        return bool(np.allclose(self.voxel_size_mm, spacing_mm, rtol=rtol, atol=0.0))

    def fine_photon_weight(self, r_mm) -> np.ndarray:
        """Share ``w(r)`` of the photon kernel on the fine lattice (the coarse grid has ``1 - w``)."""
        t = np.clip((np.asarray(r_mm, dtype=float) - self.radius_mm) / self.taper_mm, 0.0, 1.0)
        return 0.5 * (1.0 + np.cos(math.pi * t))

    def fine_spectrum(self, fft_shape) -> np.ndarray:
        """``rfftn`` of ``s_gy_per_mbq_h`` (float32) zero-padded to ``fft_shape``; kept for reuse."""
        key = tuple(int(n) for n in fft_shape)
        if key not in self._fine_spectra:
            if self._fine_spectra:  # one image size at a time (~100 MB for 256^3): bound the memory
                self._fine_spectra.clear()
            self._fine_spectra[key] = fft.rfftn(self.s_gy_per_mbq_h.astype(np.float32), s=key, workers=-1)
        return self._fine_spectra[key]

    def coarse_photon_spectrum(self, node_shape_zyx) -> tuple[np.ndarray, tuple[int, int, int]]:
        """Spectrum of the coarse photon kernel for ``node_shape_zyx`` coarse nodes, and its FFT shape.

        The kernel ``(1 - w(r)) psi(r) / (4 pi r^2 rho)`` (Gy per MBq h at a node) at every node
        offset, on a periodic grid of at least ``2 n - 1`` nodes per axis: a circular convolution
        of that length is the linear one on the ``n`` image nodes (every offset within the image
        appears once), so the photons reach across the whole image. Cached (complex64).
        """
        return _coarse_photon_spectrum(tuple(int(n) for n in node_shape_zyx), self.voxel_size_mm,
                                       self.coarse_factor, self.radius_mm, self.density_g_per_ml)


def build_voxel_s_value_kernel(voxel_size_mm, radius_mm: float = DEFAULT_KERNEL_RADIUS_MM,
                               density_g_per_ml: float = SOFT_TISSUE_DENSITY_G_PER_ML,
                               include_discrete_electrons: bool = True,
                               progress: ProgressCallback | None = None) -> VoxelSValueKernel:
    """Build (or take from the cache) the Lu-177 voxel S-value kernel for voxels of ``voxel_size_mm``.

    Parameters
    ----------
    voxel_size_mm : float or sequence of 3 floats
        Voxel size (x, y, z) in mm (SimpleITK spacing order); a scalar means cubic voxels.
    radius_mm : float
        Photons are on the fine lattice up to this distance, on the coarse grid beyond (after a
        taper of five coarse blocks); at least one voxel.
    density_g_per_ml : float
        Tissue density (g/mL); 1.03 (soft tissue) by default.
    include_discrete_electrons : bool
        Include the conversion and Auger electrons (14.6 keV per decay); False reproduces published
        beta-spectrum-only tables.
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
    if not (np.isfinite(radius_mm) and radius_mm >= size.max()):
        raise ValueError(f"kernel radius {radius_mm} mm must be at least one voxel ({size.max():g} mm)")
    if not (np.isfinite(density_g_per_ml) and density_g_per_ml > 0):
        raise ValueError(f"tissue density must be positive, got {density_g_per_ml} g/mL")
    progress(0.0, "voxel S-value kernel")
    kernel = _cached_kernel(tuple(round(float(v), 9) for v in size), float(radius_mm), float(density_g_per_ml),
                            bool(include_discrete_electrons))
    progress(1.0, "voxel S-value kernel: done")
    return kernel


@lru_cache(maxsize=16)
def _cached_kernel(size_mm: tuple[float, float, float], radius_mm: float, density: float,
                   include_discrete: bool) -> VoxelSValueKernel:
    size = np.array(size_mm)
    coarse = (COARSE_FACTOR,) * 3
    template = VoxelSValueKernel(np.zeros((1, 1, 1)), np.zeros((1, 1, 1)), size_mm, radius_mm, density, coarse,
                                 include_discrete)
    reach_mm = radius_mm + template.taper_mm
    electron_reach_mm = point_kernels.electron_deposition(include_discrete).max_distance_mm / density
    near = max(_MIN_NEAR_VOXELS, math.ceil(electron_reach_mm / size.min()))
    half = np.maximum(np.ceil(reach_mm / size).astype(int), near)  # (x, y, z)
    shape = tuple(2 * half[::-1] + 1)
    electron_kev = np.zeros(shape)
    photon_kev = np.zeros(shape)
    _splat_near_field(electron_kev, size, half, near, *_electron_shells(density, include_discrete))
    _splat_near_field(photon_kev, size, half, near, *_photon_shells(size, near, density, template))
    _add_far_photons(photon_kev, size, half, near, reach_mm, density, template)
    # Photons below 1 keV are absorbed where emitted (0.03 keV per decay): the source voxel.
    photon_kev[tuple(n // 2 for n in shape)] += point_kernels.local_photon_kev()
    electron_kev = _symmetrised(electron_kev, size)
    photon_kev = _symmetrised(photon_kev, size)
    to_gy = _GY_PER_MBQ_H_PER_KEV_PER_G / template.voxel_mass_g
    electron = electron_kev * to_gy
    electron.setflags(write=False)
    total = (electron_kev + photon_kev) * to_gy
    total.setflags(write=False)
    return VoxelSValueKernel(total, electron, size_mm, radius_mm, density, coarse, include_discrete)


def _electron_shells(density: float, include_discrete: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Electron shells at density ``rho``: edges scale by 1/rho, energies are kept."""
    deposition = point_kernels.electron_deposition(include_discrete)
    edges = deposition.edges_mm / density
    return edges[:-1], edges[1:], deposition.energy_kev


def _photon_shells(size: np.ndarray, near: int, density: float,
                   kernel: VoxelSValueKernel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Photon shells reaching the near block (two-point Gauss-Legendre energy per shell)."""
    x_cut = (near + 1) * float(np.linalg.norm(size))
    edges = np.unique(np.concatenate([[0.0], np.geomspace(1e-3, x_cut, 160),
                                      np.arange(0.0, x_cut, 0.125 * size.min()), [x_cut]]))
    lo, hi = edges[:-1], edges[1:]
    gauss = np.array([-1.0, 1.0]) / math.sqrt(3.0)
    radii = 0.5 * (lo + hi)[:, None] + 0.5 * (hi - lo)[:, None] * gauss[None, :]
    psi = point_kernels.photon_radial_kev_per_mm(radii, density) * kernel.fine_photon_weight(radii)
    return lo, hi, psi.sum(axis=1) * 0.5 * (hi - lo)


def _symmetrised(kernel: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Average over the lattice symmetries: reflections, and swaps of equally sized axes.

    Exact for the physics (an isotropic point kernel), and it averages out the direction
    sampling noise of the near field.
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


def _splat_near_field(energy_kev: np.ndarray, size: np.ndarray, half: np.ndarray, near: int,
                      lo_mm: np.ndarray, hi_mm: np.ndarray, shell_kev: np.ndarray) -> None:
    """Splat radial shells (energy per decay between ``lo`` and ``hi``) onto the near block (z, y, x)."""
    gauss = np.array([-1.0, 1.0]) / math.sqrt(3.0)
    corners = np.array([[(c >> axis) & 1 for axis in range(3)] for c in range(8)])  # (8, 3) in x, y, z
    block = 2 * near + 1
    accumulated = np.zeros(block**3)
    for shell in np.flatnonzero(shell_kev):
        lo, hi = lo_mm[shell], hi_mm[shell]
        radii = 0.5 * (lo + hi) + 0.5 * (hi - lo) * gauss
        count = max(_MIN_DIRECTIONS, int(_DIRECTIONS_PER_VOXEL_AREA * 4 * math.pi * (hi / size.min()) ** 2))
        directions = _fibonacci_directions(count, int(shell))
        displacement = (radii[:, None, None] * directions[None, :, :] / size).reshape(-1, 3)  # voxel units
        weight = np.full(displacement.shape[0], shell_kev[shell] / displacement.shape[0])
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


def _box_overlap_samples() -> tuple[np.ndarray, np.ndarray]:
    """Sub-voxel offsets and weights of the source-target box-overlap distribution (27 points)."""
    shifts, inverse = np.unique(np.round(_GL_NODES[:, None] - _GL_NODES[None, :], 12), return_inverse=True)
    shift_weights = np.bincount(inverse.ravel(), (_GL_WEIGHTS[:, None] * _GL_WEIGHTS[None, :]).ravel())
    sx, sy, sz = np.meshgrid(shifts, shifts, shifts, indexing="ij")
    sub = np.stack([sx.ravel(), sy.ravel(), sz.ravel()], 1)
    return sub, np.einsum("i,j,k->ijk", shift_weights, shift_weights, shift_weights).ravel()


def _add_far_photons(energy_kev: np.ndarray, size: np.ndarray, half: np.ndarray, near: int, reach_mm: float,
                     density: float, kernel: VoxelSValueKernel) -> None:
    """Integrate the fine photon point kernel over far-field voxel pairs (product Gauss-Legendre)."""
    hx, hy, hz = half
    z, y, x = np.meshgrid(np.arange(-hz, hz + 1), np.arange(-hy, hy + 1), np.arange(-hx, hx + 1),
                          indexing="ij")
    offsets = np.stack([x.ravel(), y.ravel(), z.ravel()], 1)  # voxel units (x, y, z)
    far = (np.abs(offsets).max(axis=1) > near) & (np.linalg.norm(offsets * size, axis=1) <= reach_mm + size.max())
    sub, sub_w = _box_overlap_samples()
    voxel_volume = float(np.prod(size))
    flat_index = np.flatnonzero(far)
    values = np.empty(flat_index.size)
    chunk = max(1, 2_000_000 // sub.shape[0])
    for start in range(0, flat_index.size, chunk):
        rows = offsets[flat_index[start:start + chunk]]
        r = np.linalg.norm((rows[:, None, :] + sub[None, :, :]) * size, axis=2)
        psi = point_kernels.photon_radial_interpolated(r, density) * kernel.fine_photon_weight(r)
        values[start:start + chunk] = voxel_volume * ((psi / (4.0 * math.pi * r**2)) @ sub_w)  # keV
    energy_kev.ravel()[flat_index] += values


@lru_cache(maxsize=4)
def _coarse_photon_spectrum(node_shape_zyx: tuple[int, int, int], size_mm: tuple[float, float, float],
                            coarse_factor: tuple[int, int, int], radius_mm: float,
                            density: float) -> tuple[np.ndarray, tuple[int, int, int]]:
    """See :meth:`VoxelSValueKernel.coarse_photon_spectrum`."""
    block_mm = np.multiply(size_mm, coarse_factor)[::-1]  # (z, y, x)
    fft_shape = tuple(fft.next_fast_len(2 * n - 1, real=True) for n in node_shape_zyx)
    # Wrapped offsets: index i holds offset i (first half) or i - P (second half).
    axes = [np.where(np.arange(p) <= p // 2, np.arange(p), np.arange(p) - p) * b
            for p, b in zip(fft_shape, block_mm, strict=True)]
    z, y, x = np.meshgrid(*axes, indexing="ij", sparse=True)
    r = np.maximum(np.sqrt(z**2 + y**2 + x**2), 1e-9)
    template = VoxelSValueKernel(np.zeros((1, 1, 1)), np.zeros((1, 1, 1)), size_mm, radius_mm, density,
                                 coarse_factor)
    kev_per_mm3 = (point_kernels.photon_radial_interpolated(r, density) * (1.0 - template.fine_photon_weight(r))
                   / (4 * math.pi * r**2))
    kernel = (kev_per_mm3 * (_GY_PER_MBQ_H_PER_KEV_PER_G / (density / 1000.0))).astype(np.float32)  # g/mm^3
    spectrum = fft.rfftn(kernel, workers=-1)
    spectrum.setflags(write=False)
    return spectrum, fft_shape
