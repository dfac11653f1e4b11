"""The demo country's census frame: regions, urban and rural EAs, migrant shares.

Only the frame (one row per enumeration area) is built for the whole country; the
households of an EA are simulated on demand (:mod:`survey.demo.population`), so a
country of 3 million households costs 20,000 rows until EAs are listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_REGIONS", "Region", "census_totals", "make_country"]


@dataclass(frozen=True)
class Region:
    """One region of the demo country.

    Parameters
    ----------
    name
        Region name.
    share
        Share of the country's EAs in the region (normalised over regions).
    urban
        Share of the region's EAs that are urban.
    migration
        Share of households with a current emigrant or a returnee (census).
    """

    name: str
    share: float
    urban: float
    migration: float


#: Regions of "Demoland": migration is common in the East and North, rare in the
#: Highlands and the Capital, so a proportional sample finds few migrants there.
DEFAULT_REGIONS: tuple[Region, ...] = (
    Region("Capital", 0.22, 0.95, 0.06),
    Region("North", 0.18, 0.35, 0.20),
    Region("South", 0.20, 0.30, 0.12),
    Region("East", 0.15, 0.25, 0.28),
    Region("West", 0.15, 0.40, 0.10),
    Region("Highlands", 0.10, 0.15, 0.04),
)

#: Migration is less common in towns than in the countryside at equal region.
URBAN_MIGRATION_FACTOR = 0.8
#: Concentration of the Beta distribution of EA migrant shares around the region mean.
EA_SHARE_CONCENTRATION = 12.0


def _round_to_total(x: np.ndarray, total: int) -> np.ndarray:
    """Integers >= 1 with the given total, closest to ``x`` (largest remainders)."""
    base = np.maximum(np.floor(x), 1).astype(np.int64)
    short = total - int(base.sum())
    if short > 0:
        order = np.argsort(-(x - np.floor(x)), kind="stable")
        base[order[:short]] += 1
    elif short < 0:  # only when many EAs were lifted to 1; take from the largest
        order = np.argsort(-base, kind="stable")
        base[order[:-short]] -= 1
    return base


def make_country(rng: np.random.Generator, n_eas: int = 20_000, households: int = 3_000_000,
                 regions: Sequence[Region] = DEFAULT_REGIONS) -> pd.DataFrame:
    """Simulate a census frame of enumeration areas.

    Parameters
    ----------
    rng
        Random generator (the only source of randomness).
    n_eas
        Number of EAs.
    households
        Total census households; EA sizes add up to it exactly.
    regions
        The regions, with their EA shares, urban shares and migration prevalence.

    Returns
    -------
    pandas.DataFrame
        One row per EA: ``ea_id`` (text, zero-padded), ``region``, ``urban``
        (``"urban"``/``"rural"``), ``stratum`` (``"region / urban"``), ``households``
        (M_hi) and ``migrant_share`` (census share of migrant households).

    Notes
    -----
    EA sizes are log-normal (urban EAs about 30% larger); EA migrant shares are Beta
    around the region's prevalence times :data:`URBAN_MIGRATION_FACTOR` for urban EAs,
    so migrants cluster in some EAs, as they do in real countries.
    """
    if n_eas < len(regions) * 2:
        raise ValueError(f"n_eas must be at least {len(regions) * 2}")
    if households < n_eas:
        raise ValueError("households must be at least n_eas")
    shares = np.array([r.share for r in regions], dtype=float)
    region_idx = rng.choice(len(regions), size=n_eas, p=shares / shares.sum())
    region_idx[: len(regions)] = np.arange(len(regions))  # every region appears
    urban_p = np.array([r.urban for r in regions])[region_idx]
    is_urban = rng.random(n_eas) < urban_p
    is_urban[: len(regions)] = True
    is_urban[len(regions): 2 * len(regions)] = False
    region_idx[len(regions): 2 * len(regions)] = np.arange(len(regions))

    raw = rng.lognormal(0.0, 0.4, n_eas) * np.where(is_urban, 1.3, 1.0)
    sizes = _round_to_total(raw / raw.sum() * households, households)

    prevalence = np.array([r.migration for r in regions])[region_idx]
    mean = np.clip(prevalence * np.where(is_urban, URBAN_MIGRATION_FACTOR, 1.0), 0.005, 0.9)
    share = rng.beta(mean * EA_SHARE_CONCENTRATION, (1 - mean) * EA_SHARE_CONCENTRATION)

    names = np.array([r.name for r in regions], dtype=object)[region_idx]
    urban = np.where(is_urban, "urban", "rural")
    width = max(5, len(str(n_eas)))
    return pd.DataFrame({
        "ea_id": pd.array([f"EA{i:0{width}d}" for i in range(1, n_eas + 1)], dtype="string"),
        "region": pd.array(names, dtype="string"),
        "urban": pd.array(urban, dtype="string"),
        "stratum": pd.array(names + " / " + urban.astype(object), dtype="string"),
        "households": sizes,
        "migrant_share": np.round(np.clip(share, 0.001, 0.95), 4),
    })


def census_totals(frame: pd.DataFrame, by: Sequence[str] = ("region", "urban")) -> pd.DataFrame:
    """Census household totals per margin, for calibration.

    Returns a long table with columns ``margin``, ``level``, ``total``: one block of
    rows per variable in ``by``.
    """
    parts = []
    for var in by:
        t = frame.groupby(var, sort=True, observed=True)["households"].sum()
        parts.append(pd.DataFrame({"margin": var, "level": t.index.astype("string"),
                                   "total": t.to_numpy(dtype=np.int64)}))
    return pd.concat(parts, ignore_index=True)
