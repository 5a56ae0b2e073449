"""Small cohort tables shared by the figure and report tests (seeded, 8 patients)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from luprrt.cohort.models import EffectTable


@pytest.fixture(scope="module")
def lesion_table() -> pd.DataFrame:
    """Cycle-1 lesions of 8 patients, 2 per lobe; IA lesions about 28 % higher T/N (log effect 0.25)."""
    rng = np.random.default_rng(11)
    patients = np.repeat(np.arange(8), 4)
    route = np.tile(["IA", "IA", "IV", "IV"], 8)
    log_tn = np.log(12.0) + rng.normal(0, 0.3, 8)[patients] + 0.25 * (route == "IA") + rng.normal(0, 0.2, 32)
    return pd.DataFrame(
        {
            "patient_id": [f"P{p}" for p in patients],
            "cycle": 1,
            "route": route,
            "lesion_id": [f"L{i % 4}" for i in range(32)],
            "tn_mean": np.exp(log_tn),
            "kidney_uptake_pct_ia": np.repeat(rng.uniform(1.0, 3.0, 8), 4),
        }
    )


@pytest.fixture(scope="module")
def effects() -> EffectTable:
    """Odds ratios of two predictors, as a GEE logistic model reports them."""
    table = pd.DataFrame(
        {
            "predictor": ["tumour_dose_gy", "fdg_suvmax"],
            "effect_per": ["1 SD = 9.1 Gy", "1 SD = 3 g/mL"],
            "coef_log_odds": [0.9, -0.7],
            "se_log_odds": [0.2, 0.2],
            "odds_ratio": np.exp([0.9, -0.7]),
            "ci_low_or": np.exp([0.5, -1.1]),
            "ci_high_or": np.exp([1.3, -0.3]),
            "p_value": [1e-5, 5e-4],
        }
    )
    return EffectTable(table, "GEE logistic", 100, 20)
