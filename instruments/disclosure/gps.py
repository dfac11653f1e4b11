"""Random displacement of GPS points as the DHS Program does it.

Urban points move up to 2 km, rural points up to 5 km, and one rural point in 100 up to
10 km, in a uniformly random direction and by a uniformly random distance; when the
administrative areas are known, a point is displaced again until it stays in the area
it started in (Burgert et al. 2013).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from survey.errors import InstrumentError

__all__ = ["EARTH_RADIUS_KM", "displace", "haversine_km", "polygon_lookup"]

#: mean Earth radius (IUGG), km.
EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in km between points given in decimal degrees."""
    p1, p2 = np.radians(np.asarray(lat1, float)), np.radians(np.asarray(lat2, float))
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2, float) - np.asarray(lon1, float))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def _destination(lat, lon, bearing, dist_km):
    """Point reached from (lat, lon) going ``dist_km`` along ``bearing`` (radians)."""
    p1, l1 = np.radians(lat), np.radians(lon)
    d = dist_km / EARTH_RADIUS_KM
    p2 = np.arcsin(np.sin(p1) * np.cos(d) + np.cos(p1) * np.sin(d) * np.cos(bearing))
    l2 = l1 + np.arctan2(np.sin(bearing) * np.sin(d) * np.cos(p1),
                         np.cos(d) - np.sin(p1) * np.sin(p2))
    return np.degrees(p2), (np.degrees(l2) + 540) % 360 - 180


def polygon_lookup(polygons: Mapping[str, np.ndarray]) -> Callable:
    """An area lookup from polygons: ``lookup(lat, lon)`` -> area name or None.

    Parameters
    ----------
    polygons
        Area name -> array of vertices ``(lon, lat)`` (one ring, first vertex not
        repeated needed). Areas should not overlap; the first that holds a point wins.

    Notes
    -----
    Even-odd ray casting, vectorised over points (one pass per polygon edge).
    """
    rings = {k: np.asarray(v, dtype=float) for k, v in polygons.items()}

    def lookup(lat, lon) -> np.ndarray:
        lat, lon = np.asarray(lat, float), np.asarray(lon, float)
        out = np.full(lat.shape, None, dtype=object)
        for name, ring in rings.items():
            x, y = ring[:, 0], ring[:, 1]
            xj, yj = np.roll(x, 1), np.roll(y, 1)
            inside = np.zeros(lat.shape, dtype=bool)
            for a, b, c, d in zip(x, y, xj, yj):
                cross = (b > lat) != (d > lat)
                with np.errstate(divide="ignore", invalid="ignore"):
                    xint = (c - a) * (lat - b) / (d - b) + a
                inside ^= cross & (lon < xint)
            out[inside & (out == None)] = name  # noqa: E711 - elementwise on objects
        return out

    return lookup


def displace(
    lat,
    lon,
    rng: np.random.Generator,
    *,
    urban=None,
    area: Callable | None = None,
    urban_km: float = 2.0,
    rural_km: float = 5.0,
    far_km: float = 10.0,
    far_share: float = 0.01,
    max_tries: int = 100,
) -> pd.DataFrame:
    """Displace points at random within the DHS distance bounds.

    Parameters
    ----------
    lat, lon
        Points in decimal degrees (missing points stay missing).
    rng
        Random generator.
    urban
        Boolean per point (True = urban); None treats every point as rural (the larger
        displacement).
    area
        ``area(lat, lon) -> area codes`` (e.g. :func:`polygon_lookup`, or a lookup on
        a raster of admin areas). When given, a displaced point that leaves the area of
        its original point is drawn again (same maximum distance), up to ``max_tries``
        times; points that never land inside are dropped (missing).
    urban_km, rural_km, far_km, far_share
        Maximum distances, and the share of rural points allowed up to ``far_km``.
    max_tries
        Redraws allowed per point.

    Returns
    -------
    DataFrame
        ``latitude, longitude`` (displaced), ``max_km`` (the bound drawn for the
        point), ``distance_km`` and ``dropped`` (True where no draw stayed inside).

    Notes
    -----
    Direction uniform on [0, 2 pi), distance uniform on [0, max_km]: the DHS scheme,
    which protects the location of a village while keeping it in its district, so
    analyses linking to district-level covariates stay valid; points near a district
    border are moved within a smaller effective range (Burgert et al. 2013; Perez-
    Heydrich et al. 2013).

    References
    ----------
    Burgert, C. R., Colston, J., Roy, T. and Zachary, B. (2013). *Geographic
    displacement procedure and georeferenced data release policy for the Demographic
    and Health Surveys*. DHS Spatial Analysis Reports No. 7. ICF International.
    Perez-Heydrich, C. et al. (2013). *Guidelines on the use of DHS GPS data*. DHS
    Spatial Analysis Reports No. 8.
    """
    lat = pd.to_numeric(pd.Series(lat), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    lon = pd.to_numeric(pd.Series(lon), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if lat.shape != lon.shape:
        raise InstrumentError("latitude and longitude differ in length")
    n = len(lat)
    is_urban = np.zeros(n, bool) if urban is None else np.asarray(urban, dtype=bool)
    far = ~is_urban & (rng.random(n) < far_share)
    max_km = np.where(is_urban, urban_km, np.where(far, far_km, rural_km))
    ok = ~(np.isnan(lat) | np.isnan(lon))
    home = area(lat, lon) if area is not None else None
    new_lat, new_lon, dist = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    todo = ok.copy()
    for _ in range(max_tries if area is not None else 1):
        idx = np.flatnonzero(todo)
        if len(idx) == 0:
            break
        bearing = rng.uniform(0, 2 * np.pi, len(idx))
        d = rng.uniform(0, 1, len(idx)) * max_km[idx]
        la, lo = _destination(lat[idx], lon[idx], bearing, d)
        inside = np.ones(len(idx), bool) if area is None else (
            np.asarray(area(la, lo), dtype=object) == np.asarray(home, dtype=object)[idx])
        keep = idx[inside]
        new_lat[keep], new_lon[keep], dist[keep] = la[inside], lo[inside], d[inside]
        todo[keep] = False
    return pd.DataFrame({"latitude": new_lat, "longitude": new_lon, "max_km": max_km,
                         "distance_km": dist, "dropped": ok & todo})
