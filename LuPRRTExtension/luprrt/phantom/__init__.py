"""The synthetic PRRT patient: the project's test data, demo and Slicer sample data.

Modules
-------
patient   :func:`make_patient`: a seeded patient with a known truth (CT, segmentations,
          quantitative SPECT at several times per cycle, follow-ups, baseline PET and ADC)
anatomy   analytic abdomen: body, liver with Couinaud segments, kidneys, spleen, marrow,
          lesions of several sizes in both lobes
kinetics  Lu-177 time-activity per organ and lesion, lesion biology and response model
imaging   SPECT grid, camera blur, Poisson counts, PET and ADC maps
truth     the closed-form truth per region and time point (concentrations, activities,
          time-integrated activities, volumes, T/N, diameters)
blood_sampling  blood samples per cycle (kBq/mL, seeded error) and the truth of the blood-based
          red-marrow dose (EANM 2010 formula with the exact kinetics)
writer    :func:`write_patient`: DICOM series, seg.nrrd, truth maps (NRRD) and truth JSON
attenuation  photon attenuation at 208 keV: NIST materials and tissues (truth), bilinear HU-to-mu
          (what a site's reconstruction uses)
calibration_phantoms  uniform cylinder and NEMA IEC body phantom: exact activity, density, mu and
          CT maps on any grid, sphere geometry as data
spect_camera  dual-head camera, medium-energy collimator response and the Lu-177 protocol (parameters)
osem      simulated acquisition (attenuation, collimator response, scatter, Poisson) reconstructed by
          OSEM with pytomography: ``make_patient(spect_model="osem")`` (optional ``sim`` extra)
osem_fixture  builds the committed OSEM fixture (``make sim-data``)

Dependencies run one way: anatomy -> kinetics -> imaging / truth -> patient -> writer.
"""

from .attenuation import LU177_PHOTOPEAK_KEV, hu_to_mu_per_cm, linear_attenuation_per_cm, tissue_mu_per_cm
from .calibration_phantoms import (
    IEC_SPHERE_ANGLES_DEG,
    IEC_SPHERE_DIAMETERS_MM,
    IEC_SPHERE_RING_RADIUS_MM,
    CalibrationPhantom,
    PhantomSphere,
    nema_iec_body_phantom,
    phantom_grid,
    sphere_occupancy,
    uniform_cylinder_phantom,
)
from .patient import FIELD_OF_VIEW_MM, SyntheticPatient, make_patient
from .spect_camera import SIEMENS_ME, Collimator, SpectProtocol
from .writer import write_patient

__all__ = [
    "FIELD_OF_VIEW_MM",
    "IEC_SPHERE_ANGLES_DEG",
    "IEC_SPHERE_DIAMETERS_MM",
    "IEC_SPHERE_RING_RADIUS_MM",
    "LU177_PHOTOPEAK_KEV",
    "SIEMENS_ME",
    "CalibrationPhantom",
    "Collimator",
    "PhantomSphere",
    "SpectProtocol",
    "SyntheticPatient",
    "hu_to_mu_per_cm",
    "linear_attenuation_per_cm",
    "make_patient",
    "nema_iec_body_phantom",
    "phantom_grid",
    "sphere_occupancy",
    "tissue_mu_per_cm",
    "uniform_cylinder_phantom",
    "write_patient",
]
