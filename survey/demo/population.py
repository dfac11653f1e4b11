"""Households of the demo country, with confounding and known effects of migration.

Households are simulated only for the EAs passed in (in practice the listed EAs),
with a migration group and covariates. Migration is more likely in high-migration
EAs, in larger households and in better-educated ones; the same covariates (and
region and urban/rural) drive the outcomes, so raw migrant vs non-migrant
differences are confounded while adjusted estimates recover the effects.

The outcome model is additive with a constant effect per group (see
:data:`EFFECTS`), so the effect on migrant households (ATT) equals the average
effect (ATE) and equals the constant: a regression or IPW estimate with the
controls head's age, sex, education, household size, urban/rural and region should
have 95% intervals covering it about 95% of the time.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import pandas as pd

__all__ = ["EFFECTS", "EMIGRANT_SHARE_OF_MIGRANTS", "GROUPS", "simulate_households"]

#: Listing groups: a current emigrant, a returnee, or no migrant.
GROUPS = ("emigrant", "returnee", "none")

#: Among migrant households, the share with a current emigrant (the rest: returnees).
EMIGRANT_SHARE_OF_MIGRANTS = 0.6

#: Known effects of migration on household outcomes, relative to the same household
#: without a migrant, by group (``none`` is the reference, effect 0):
#:
#: - ``education_spending``: annual education spending, local currency (additive);
#:   the emigrant effect echoes DotM Ghana (US$107 more a year).
#: - ``receives_remittances``: probability of receiving money or goods from abroad
#:   in the recall period.
#: - ``enrolled``: probability that a 6-17 year old attends school (per child).
#: - ``health_insurance``: probability that the household has health insurance.
#: - ``female_head``: probability that the head is a woman (emigrant households
#:   often have a woman at the head while the man is abroad).
EFFECTS = MappingProxyType({
    "education_spending": MappingProxyType({"emigrant": 107.0, "returnee": 45.0}),
    "receives_remittances": MappingProxyType({"emigrant": 0.55, "returnee": 0.15}),
    "enrolled": MappingProxyType({"emigrant": 0.06, "returnee": 0.03}),
    "health_insurance": MappingProxyType({"emigrant": 0.08, "returnee": 0.05}),
    "female_head": MappingProxyType({"emigrant": 0.25, "returnee": 0.0}),
})

# Confounding: log-odds of migration rise with household size and education.
_MIGRATION_SIZE_LOGIT = 0.30
_MIGRATION_EDUCATION_LOGIT = 0.06
# Outcome model coefficients (additive; chosen so probabilities stay within (0, 1)).
_SPEND_BASE, _SPEND_URBAN, _SPEND_SIZE, _SPEND_EDU, _SPEND_SD = 120.0, 80.0, 60.0, 15.0, 120.0
_ENROL_BASE, _ENROL_URBAN, _ENROL_EDU = 0.78, 0.06, 0.005
_INSURE_BASE, _INSURE_URBAN, _INSURE_EDU = 0.15, 0.15, 0.01
_REMIT_BASE, _REMIT_RURAL = 0.03, 0.02
_FEMALE_BASE, _FEMALE_URBAN = 0.18, 0.04


def _effect(name: str, group: np.ndarray) -> np.ndarray:
    out = np.zeros(len(group))
    for g, value in EFFECTS[name].items():
        out[group == g] = value
    return out


def _region_effect(region: np.ndarray, spread: float) -> np.ndarray:
    """A fixed, deterministic effect per region name, in [-spread, spread]."""
    names, codes = np.unique(region.astype(str), return_inverse=True)
    # A stable value per name (not Python's salted hash): the sum of its code points.
    vals = np.array([(sum(map(ord, n)) % 11) / 5.0 - 1.0 for n in names]) * spread
    return vals[codes]


def simulate_households(frame: pd.DataFrame, rng: np.random.Generator, *,
                        size: str = "households") -> pd.DataFrame:
    """Simulate every household of the EAs in ``frame``.

    Parameters
    ----------
    frame
        EAs to populate (rows of :func:`~survey.demo.make_country`), with ``ea_id``,
        ``region``, ``urban``, ``migrant_share`` and the size column.
    rng
        Random generator.
    size
        Column with the number of households per EA (the census count M_hi is used
        as the listed count: the demo has no growth since the census).

    Returns
    -------
    pandas.DataFrame
        One row per household: ``ea_id``, ``hh_number`` (1..M in the EA),
        ``hh_id``, ``region``, ``urban``, ``group``, covariates ``hh_size``,
        ``head_age``, ``head_female``, ``head_education`` (years), the counts
        ``n_emigrants``, ``n_returnees``, ``n_children`` (aged 6-17),
        ``n_enrolled``, ``p_enrolled`` (each child's probability of attending school) and
        outcomes ``receives_remittances``, ``remittances``
        (annual amount, 0 if none), ``education_spending``, ``health_insurance``.

    Notes
    -----
    The input is not modified. The effects of migration are :data:`EFFECTS`.
    """
    sizes = frame[size].to_numpy(dtype=np.int64)
    n = int(sizes.sum())
    ea_pos = np.repeat(np.arange(len(frame)), sizes)
    starts = np.cumsum(sizes) - sizes
    hh_number = np.arange(n) - np.repeat(starts, sizes) + 1
    ea_id = frame["ea_id"].astype(str).to_numpy()[ea_pos]
    region = frame["region"].astype(str).to_numpy()[ea_pos]
    is_urban = (frame["urban"].astype(str).to_numpy() == "urban")[ea_pos]
    share = np.clip(frame["migrant_share"].to_numpy(dtype=float)[ea_pos], 1e-4, 1 - 1e-4)

    hh_size = np.clip(1 + rng.poisson(np.where(is_urban, 2.6, 3.4)), 1, 20)
    head_age = np.clip(np.round(rng.normal(47, 13, n)), 18, 95).astype(np.int64)
    head_education = np.clip(np.round(rng.normal(6.5 + 3 * is_urban, 3.5)), 0, 20).astype(np.int64)

    # Confounded selection into migration, centred so the EA share is roughly kept.
    logit = (np.log(share / (1 - share))
             + _MIGRATION_SIZE_LOGIT * (hh_size - hh_size.mean())
             + _MIGRATION_EDUCATION_LOGIT * (head_education - head_education.mean()))
    migrant = rng.random(n) < 1 / (1 + np.exp(-logit))
    emigrant = migrant & (rng.random(n) < EMIGRANT_SHARE_OF_MIGRANTS)
    group = np.where(emigrant, "emigrant", np.where(migrant, "returnee", "none"))
    n_emigrants = np.where(emigrant, 1 + rng.poisson(0.4, n), 0)
    n_returnees = np.where(migrant & ~emigrant, np.minimum(1 + rng.poisson(0.2, n), hh_size), 0)

    urban_f = is_urban.astype(float)
    edu_c = head_education - 8.0
    p_female = _FEMALE_BASE + _FEMALE_URBAN * urban_f + _effect("female_head", group)
    head_female = rng.random(n) < p_female

    n_children = rng.binomial(hh_size - 1, 0.3)
    p_enrol = (_ENROL_BASE + _ENROL_URBAN * urban_f + _ENROL_EDU * edu_c
               + _region_effect(region, 0.03) + _effect("enrolled", group))
    n_enrolled = rng.binomial(n_children, np.clip(p_enrol, 0, 1))

    p_remit = _REMIT_BASE + _REMIT_RURAL * (1 - urban_f) + _effect("receives_remittances", group)
    receives = rng.random(n) < p_remit
    remittances = np.where(receives, np.round(rng.lognormal(7.0, 0.8, n), -1), 0.0)

    spending = (_SPEND_BASE + _SPEND_URBAN * urban_f + _SPEND_SIZE * hh_size
                + _SPEND_EDU * head_education + _region_effect(region, 60.0)
                + _effect("education_spending", group) + rng.normal(0, _SPEND_SD, n))
    p_insure = (_INSURE_BASE + _INSURE_URBAN * urban_f + _INSURE_EDU * edu_c
                + _region_effect(region, 0.05) + _effect("health_insurance", group))
    insured = rng.random(n) < np.clip(p_insure, 0, 1)

    return pd.DataFrame({
        "ea_id": pd.array(ea_id, dtype="string"),
        "hh_number": hh_number,
        "hh_id": pd.array(np.char.add(np.char.add(ea_id.astype(str), "-"),
                                      np.char.zfill(hh_number.astype(str), 4)), dtype="string"),
        "region": pd.array(region, dtype="string"),
        "urban": pd.array(np.where(is_urban, "urban", "rural"), dtype="string"),
        "group": pd.array(group, dtype="string"),
        "hh_size": hh_size,
        "head_age": head_age,
        "head_female": head_female.astype(np.int64),
        "head_education": head_education,
        "n_emigrants": n_emigrants,
        "n_returnees": n_returnees,
        "n_children": n_children,
        "n_enrolled": n_enrolled,
        "p_enrolled": np.round(np.clip(p_enrol, 0, 1), 6),
        "receives_remittances": receives.astype(np.int64),
        "remittances": remittances,
        "education_spending": np.round(np.maximum(spending, 0.0), 0),
        "health_insurance": insured.astype(np.int64),
    })
