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
writer    :func:`write_patient`: DICOM series, seg.nrrd, truth maps (NRRD) and truth JSON

Dependencies run one way: anatomy -> kinetics -> imaging / truth -> patient -> writer.
"""

from .patient import FIELD_OF_VIEW_MM, SyntheticPatient, make_patient
from .writer import write_patient

__all__ = ["FIELD_OF_VIEW_MM", "SyntheticPatient", "make_patient", "write_patient"]
