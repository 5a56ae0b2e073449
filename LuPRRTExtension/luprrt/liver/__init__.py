"""What LobeQuant computes: liver lobes, IA/IV routes, lesions, T/N and organ uptake.

Modules
-------
lobes       right/left lobe split (plane or Cantlie points, Couinaud segments 1-8, vessel
            territories) and the IA/IV route of each lobe
lobe_split  the registry of lobe-split methods (:data:`LOBE_SPLIT_METHODS`) and :func:`split_lobes`
lesions  lesion-to-lobe assignment, SPECT lesion candidates, tracking ids for new lesions
tn       tumour-to-non-tumour activity-concentration ratios per lesion, per lobe and the
         IA/IV ratio, for every cycle's SPECT in one vectorised pass
tn_corrected  recovery-corrected T/N with a site calibration, with 95 % intervals
targets  the trial's endpoint: up to three target lesions > 3 cm per lobe (Ebbers et al. 2024)
uptake   kidney, liver, lobe and extrahepatic uptake (MBq and % of administered activity)
"""

from .lesions import (
    LesionCandidate,
    accept_lesion_candidates,
    assign_lesions_to_lobes,
    detect_lesion_candidates,
)
from .lobe_split import (
    LOBE_SPLIT_METHODS,
    LobeSplit,
    LobeSplitMethod,
    register_lobe_split_method,
    split_lobes,
)
from .lobes import (
    CAUDATE_OPTIONS,
    assign_routes,
    lobes_from_couinaud,
    lobes_from_vessel_territories,
    plane_from_cantlie_points,
    split_liver_by_plane,
)
from .targets import (
    TRIAL_COLUMNS,
    TRIAL_MIN_DIAMETER_MM,
    TRIAL_RATIO_COLUMNS,
    TRIAL_TARGETS_PER_LOBE,
    select_target_lesions,
    trial_definition,
)
from .tn import (
    OCCUPANCY_MODES,
    RATIO_COLUMNS,
    TN_COLUMNS,
    CycleSpect,
    TNResult,
    build_lobe_regions,
    nontumour_mask,
    tumour_to_nontumour,
)
from .tn_corrected import CORRECTED_COLUMNS, CORRECTED_RATIO_COLUMNS, MAX_NOTE
from .uptake import UPTAKE_COLUMNS, uptake_rows

__all__ = [
    "CAUDATE_OPTIONS",
    "CORRECTED_COLUMNS",
    "CORRECTED_RATIO_COLUMNS",
    "LOBE_SPLIT_METHODS",
    "MAX_NOTE",
    "OCCUPANCY_MODES",
    "RATIO_COLUMNS",
    "TN_COLUMNS",
    "TRIAL_COLUMNS",
    "TRIAL_MIN_DIAMETER_MM",
    "TRIAL_RATIO_COLUMNS",
    "TRIAL_TARGETS_PER_LOBE",
    "UPTAKE_COLUMNS",
    "CycleSpect",
    "LesionCandidate",
    "LobeSplit",
    "LobeSplitMethod",
    "TNResult",
    "accept_lesion_candidates",
    "assign_lesions_to_lobes",
    "assign_routes",
    "build_lobe_regions",
    "detect_lesion_candidates",
    "lobes_from_couinaud",
    "lobes_from_vessel_territories",
    "nontumour_mask",
    "plane_from_cantlie_points",
    "register_lobe_split_method",
    "select_target_lesions",
    "split_liver_by_plane",
    "split_lobes",
    "trial_definition",
    "tumour_to_nontumour",
    "uptake_rows",
]
