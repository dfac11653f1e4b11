"""DHS-style GPS displacement: distances within bounds (haversine), the 1% rural 10 km
share, uniform direction, and points kept in their area. All points are in the open
South Pacific (no land, no people)."""

import numpy as np
import pytest

from instruments.disclosure import displace, haversine_km, polygon_lookup


def test_haversine_known_distances():
    # one degree of latitude on the mean sphere: 2 pi R / 360
    assert haversine_km(0, 0, 1, 0) == pytest.approx(2 * np.pi * 6371.0088 / 360, rel=1e-12)
    # a quarter of the equator
    assert haversine_km(0, 0, 0, 90) == pytest.approx(np.pi * 6371.0088 / 2, rel=1e-12)
    assert haversine_km(-45, -130, -45, -130) == 0


def test_distances_within_bounds_and_far_share():
    rng = np.random.default_rng(2013)
    n = 20_000
    lat = rng.uniform(-48, -44, n)
    lon = rng.uniform(-135, -125, n)
    urban = rng.random(n) < 0.3
    out = displace(lat, lon, rng, urban=urban)
    d = haversine_km(lat, lon, out["latitude"], out["longitude"])
    assert d == pytest.approx(out["distance_km"].to_numpy(), rel=1e-6, abs=1e-9)
    assert (d[urban] <= 2.0 + 1e-9).all()
    far = out["max_km"].to_numpy() == 10.0
    assert (d[~urban & ~far] <= 5.0 + 1e-9).all() and (d[~urban & far] <= 10.0 + 1e-9).all()
    assert not (far & urban).any()
    # 1 in 100 rural points may go up to 10 km: binomial(14 000, 0.01) = 140 +- 12
    share = far[~urban].mean()
    assert 0.0075 < share < 0.0125
    # distances uniform on [0, max]: mean max/2 (urban: 1 km +- 0.02)
    assert d[urban].mean() == pytest.approx(1.0, abs=0.05)
    assert d[~urban & ~far].mean() == pytest.approx(2.5, abs=0.08)
    # uniform direction: the mean displacement vector is near zero
    dy = (out["latitude"] - lat) * 111.2
    dx = (out["longitude"] - lon) * 111.2 * np.cos(np.radians(lat))
    assert abs(dy.mean()) < 0.05 and abs(dx.mean()) < 0.05
    assert not out["dropped"].any()


def test_no_urban_flag_means_rural_and_missing_points_stay_missing():
    rng = np.random.default_rng(1)
    out = displace([-45.0, np.nan], [-130.0, -130.0], rng)
    assert out["max_km"].iloc[0] in (5.0, 10.0)
    assert np.isnan(out["latitude"].iloc[1]) and not out["dropped"].iloc[1]


def test_points_stay_in_their_area():
    """Two made-up districts split at longitude -130; points 0-3 km from the border
    must not cross it."""
    west = np.array([(-131, -46), (-130, -46), (-130, -44), (-131, -44)], float)
    east = np.array([(-130, -46), (-129, -46), (-129, -44), (-130, -44)], float)
    lookup = polygon_lookup({"W": west, "E": east})
    rng = np.random.default_rng(7)
    n = 2000
    lat = rng.uniform(-45.5, -44.5, n)
    lon = -130 + rng.uniform(-0.04, 0.04, n)
    home = lookup(lat, lon)
    assert set(home) == {"W", "E"}
    out = displace(lat, lon, rng, area=lookup)
    moved = lookup(out["latitude"], out["longitude"])
    assert (moved == home).all()
    d = haversine_km(lat, lon, out["latitude"], out["longitude"])
    assert (d <= out["max_km"] + 1e-9).all()
    # without the constraint, about a third of these points would cross the border
    free = displace(lat, lon, np.random.default_rng(7))
    assert (lookup(free["latitude"], free["longitude"]) != home).mean() > 0.1


def test_points_that_cannot_stay_are_dropped():
    tiny = np.array([(-130.0, -45.0), (-129.9999, -45.0), (-129.9999, -44.9999),
                     (-130.0, -44.9999)])
    out = displace([-44.99995], [-129.99995], np.random.default_rng(3),
                   area=polygon_lookup({"T": tiny}), max_tries=5)
    assert out["dropped"].iloc[0] and np.isnan(out["latitude"].iloc[0])
