"""The time-activity models a user can choose by name: one registry read by the core, CLI, workflows and panel.

Every entry is ``name -> description``; :data:`TAC_MODELS` is the ordered tuple of names. The
core fits (:mod:`.tac`) implement ``mono``, ``bi``, ``trapezoid`` and the two constrained
bi-exponentials; ``auto``, ``aicc`` and ``trapezoid_mono`` are the region rules of
:mod:`luprrt.workflows.dose_tac`.

Why the constrained bi-exponentials: with four scans the unconstrained bi-exponential
(3 parameters) leaves AICc undefined (n = 4 <= k + 1), so AICc selection can never choose it.
Fixing the uptake rate constant at a population value, or pulling it towards one with a
Gaussian prior (maximum a posteriori), leaves the washout and amplitude to the patient's data;
population information of this kind is how reduced-sampling dosimetry borrows strength
(e.g. Devasia et al., J Nucl Med 2021;62:1118-1125, nonlinear mixed models for
177Lu-DOTATATE). The population value is the site's (the median uptake rate constant of its
fully sampled patients, :func:`luprrt.dosimetry.tac.population_uptake_rate_per_h`).
"""

from __future__ import annotations

TAC_MODEL_DESCRIPTIONS: dict[str, str] = {
    "auto": "rising curve: trapezoid to the maximum + mono-exponential tail; else AICc between mono and bi",
    "aicc": "AICc selection between mono- and bi-exponential for every curve (Glatting et al. 2007)",
    "trapezoid_mono": "trapezoid from A(0) = 0 to the maximum, mono-exponential fitted from the maximum on",
    "mono": "mono-exponential A0 exp(-lambda t)",
    "bi": "bi-exponential uptake-washout A0 (exp(-lambda1 t) - exp(-lambda2 t)), 3 free parameters",
    "trapezoid": "trapezoid through the scans, physical decay after the last one",
    "biexp_fixed_uptake": "bi-exponential with the uptake rate constant fixed at a population value (2 free "
                          "parameters)",
    "biexp_prior": "bi-exponential, maximum a posteriori with a Gaussian population prior on the uptake rate "
                   "constant",
}
TAC_MODELS: tuple[str, ...] = tuple(TAC_MODEL_DESCRIPTIONS)
# Models that need a population uptake rate constant (1/h), and biexp_prior also its SD.
POPULATION_UPTAKE_MODELS: tuple[str, ...] = ("biexp_fixed_uptake", "biexp_prior")
