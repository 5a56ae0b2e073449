"""LuPRRT core: Slicer-independent quantitative imaging for 177Lu-dotatate PRRT.

Shared by the LobeQuant, LesionDosimetry and ResponseAssess Slicer modules, the ``luprrt``
command line and cohort batch runs. Nothing here imports ``slicer`` except :mod:`luprrt.mrml`.

Where things are
----------------
Shared plumbing
    :mod:`~luprrt.physics` (Lu-177 decay data, unit constants), :mod:`~luprrt.grid` (voxel grid
    geometry and same-grid checks), :mod:`~luprrt.regionstats` (statistics of many regions in one
    pass), :mod:`~luprrt.registration` (CT-to-CT rigid and deformable), :mod:`~luprrt.provenance`
    (progress callbacks, input hashes), :mod:`~luprrt.tables` (CSV rows with units).
:mod:`luprrt.segments`
    Tagged structures (role, lobe side, IA/IV route, lesion tracking id) and their transfer onto
    another grid (nearest neighbour or fractional occupancy).
:mod:`luprrt.io`
    DICOM CT/NM/PET in and out, volumes with units, Slicer ``.seg.nrrd``.
:mod:`luprrt.liver` (LobeQuant)
    Lobe split methods, IA/IV routes, lesions, T/N per lesion and lobe, organ uptake.
:mod:`luprrt.dosimetry` (LesionDosimetry)
    Time-activity fits, time-integrated activity, S-values, voxel dose kernels, DVH, limits.
:mod:`luprrt.response` (ResponseAssess)
    Lesion diameters, lesion tracking, RECIST 1.1, lesion outcome.
:mod:`luprrt.features`
    SUV (FDG, 68Ga), ADC and per-lesion baseline features for outcome prediction.
:mod:`luprrt.phantom`
    The synthetic patient with a known truth (tests, demo, Slicer sample data).
:mod:`luprrt.cohort`
    Trial statistics, predictive models, figures and the HTML report (extra ``luprrt[cohort]``).
:mod:`luprrt.workflows`, :mod:`luprrt.cli`
    End-to-end runs over files and the ``luprrt`` command line.
:mod:`luprrt.mrml`
    The only adapter to Slicer: nodes <-> images, segmentations, tables, charts.
"""

__version__ = "0.1.0"
