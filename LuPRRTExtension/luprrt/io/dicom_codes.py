"""The coded vocabulary of LuPRRT's DICOM Structured Reports: quantities, units, methods.

Every number LuPRRT writes into a TID 1500 Measurement Report has a concept name, a UCUM
unit and, where it applies, a derivation (mean, maximum) and a method. Standard codes are
used wherever DICOM PS3.16 has one; the rest come from LuPRRT's private coding scheme
:data:`PRIVATE_SCHEME` (designator ``99LUPRRT``, declared in every SR's Coding Scheme
Identification Sequence as PS3.3 C.12.1.1.2 asks). Its codes, all defined here:

========== ================================================================= =========
code       meaning                                                           unit
========== ================================================================= =========
TNR        Tumour-to-non-tumour activity concentration ratio (lesion, or the
           lesions of a lobe pooled, over the lobe's non-tumour liver mean)  {ratio}
IAIVTNR    IA-lobe T/N over IV-lobe T/N (primary endpoint of the IA-vs-IV
           study)                                                            {ratio}
TIA        Time-integrated activity of a region                              MBq.h
TIAC       Time-integrated activity coefficient (residence time): TIA over
           the administered activity                                         h
BED        Biologically effective dose (linear-quadratic model)              Gy
CUMDOSE    Mean absorbed dose summed over the cycles given so far            Gy
RCCORR     Method: recovery-coefficient (partial-volume) corrected value     -
LOCALDEP   Method: local energy deposition of the region's TIA               -
VOXLOCAL   Method: voxel-wise local deposition, averaged over the region     -
VSV        Method: voxel S-value convolution, averaged over the region       -
SPHERESV   Method: sphere S-value (self-dose of a sphere of the region's
           volume)                                                           -
ORGANSV    Method: organ S-value (reference-phantom self-dose, mass scaled)  -
NEWLESION  Value of "RECIST 1.1 lesion role": new lesion after baseline       -
RECISTROLE Concept: RECIST 1.1 lesion role (target, non-target, new)         -
========== ================================================================= =========

Standard codes used: SCT 118565006 Volume; DCM 110821 Nuclear Medicine Tomographic Activity
(the activity concentration, as in the real-world value maps of NM images); SCT 373098007
Mean and SCT 56851009 Maximum (CID 7464 derivations); DCM 128533 Mean Absorbed Radiation
Dose; SCT 103339001 Long axis and SCT 103340004 Short axis with DCM 126081 RECIST 1.1 as
method; DCM 112074/112075 Target / Non-Target Lesion at Baseline (CID 6145) as values of the
RECIST role; SCT 371572003
Nuclear medicine procedure as the procedure reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..segments import Code

PRIVATE_SCHEME = "99LUPRRT"
PRIVATE_SCHEME_NAME = "LuPRRT private codes for PRRT quantification"
PRIVATE_SCHEME_VERSION = "1"


def private(value: str, meaning: str) -> Code:
    """A code of LuPRRT's private coding scheme."""
    return Code(PRIVATE_SCHEME, value, meaning)


MEAN = Code("SCT", "373098007", "Mean")
MAXIMUM = Code("SCT", "56851009", "Maximum")
RECIST_1_1 = Code("DCM", "126081", "RECIST 1.1")
RECOVERY_CORRECTED = private("RCCORR", "Recovery-coefficient corrected")
NUCLEAR_MEDICINE_PROCEDURE = Code("SCT", "371572003", "Nuclear medicine procedure")

UNITS = {
    "ml": Code("UCUM", "ml", "milliliter"),
    "Bq/ml": Code("UCUM", "Bq/ml", "becquerels per milliliter"),
    "ratio": Code("UCUM", "{ratio}", "ratio"),
    "MBq.h": Code("UCUM", "MBq.h", "megabecquerel hour"),
    "h": Code("UCUM", "h", "hour"),
    "Gy": Code("UCUM", "Gy", "Gray"),
    "mm": Code("UCUM", "mm", "millimeter"),
    "MBq": Code("UCUM", "MBq", "megabecquerel"),
    "%": Code("UCUM", "%", "percent"),
}

# Dose methods of the dose table (luprrt.workflows.dose_cycle) and their codes.
DOSE_METHODS = {
    "local_deposition": private("LOCALDEP", "Local energy deposition"),
    "voxel_local_deposition": private("VOXLOCAL", "Voxel-wise local deposition"),
    "voxel_s_value": private("VSV", "Voxel S-value convolution"),
    "sphere_s_value": private("SPHERESV", "Sphere S-value"),
    "organ_s_value": private("ORGANSV", "Organ S-value"),
}

RECIST_ROLE = private("RECISTROLE", "RECIST 1.1 lesion role")
LESION_ROLES = {
    "target": Code("DCM", "112074", "Target Lesion at Baseline"),
    "non_target": Code("DCM", "112075", "Non-Target Lesion at Baseline"),
    "new": private("NEWLESION", "New lesion"),
}


@dataclass(frozen=True)
class Quantity:
    """A LuPRRT quantity as SR codes: concept, unit and derivation (mean/maximum) if any."""

    key: str
    concept: Code
    unit: Code
    derivation: Code | None = None


_CONCENTRATION = Code("DCM", "110821", "Nuclear Medicine Tomographic Activity")
_TN = private("TNR", "Tumour-to-non-tumour activity concentration ratio")
_IA_IV = private("IAIVTNR", "IA-lobe T/N over IV-lobe T/N")
QUANTITIES = {q.key: q for q in (
    Quantity("volume_ml", Code("SCT", "118565006", "Volume"), UNITS["ml"]),
    Quantity("mean_bq_per_ml", _CONCENTRATION, UNITS["Bq/ml"], MEAN),
    Quantity("max_bq_per_ml", _CONCENTRATION, UNITS["Bq/ml"], MAXIMUM),
    Quantity("tn_mean", _TN, UNITS["ratio"], MEAN),
    Quantity("tn_max", _TN, UNITS["ratio"], MAXIMUM),
    Quantity("tn_mean_ia_over_iv", _IA_IV, UNITS["ratio"], MEAN),
    Quantity("tn_max_ia_over_iv", _IA_IV, UNITS["ratio"], MAXIMUM),
    Quantity("activity_mbq", Code("DCM", "110821", "Nuclear Medicine Tomographic Activity"), UNITS["MBq"]),
    Quantity("tia_mbq_h", private("TIA", "Time-integrated activity"), UNITS["MBq.h"]),
    Quantity("tiac_h", private("TIAC", "Time-integrated activity coefficient"), UNITS["h"]),
    Quantity("dose_gy", Code("DCM", "128533", "Mean Absorbed Radiation Dose"), UNITS["Gy"]),
    Quantity("bed_gy", private("BED", "Biologically effective dose"), UNITS["Gy"]),
    Quantity("cumulative_dose_gy", private("CUMDOSE", "Cumulative mean absorbed dose"), UNITS["Gy"]),
    Quantity("longest_diameter_mm", Code("SCT", "103339001", "Long axis"), UNITS["mm"]),
    Quantity("short_axis_mm", Code("SCT", "103340004", "Short axis"), UNITS["mm"]),
)}


def quantity_of(concept_value: str, scheme: str, unit_value: str, derivation_value: str | None) -> Quantity | None:
    """The LuPRRT quantity with these code values, or None."""
    for quantity in QUANTITIES.values():
        if ((quantity.concept.value, quantity.concept.scheme, quantity.unit.value) == (concept_value, scheme, unit_value)
                and (quantity.derivation.value if quantity.derivation else None) == derivation_value):
            return quantity
    return None
