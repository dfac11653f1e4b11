"""Statistical disclosure control: public-use files that identify no one.

>>> from instruments.disclosure import public_use, find_leaks
>>> res = public_use(tables, form, weights="weight", k=3, rng=rng)   # doctest: +SKIP
>>> res.tables, res.report, res.crosswalk                            # doctest: +SKIP

Direct identifiers (names, phones, GPS, free text) are dropped, GPS displaced as DHS
does, ages and amounts top-coded, rare categories grouped, identifiers replaced by
random codes, and key values blanked until k-anonymity holds; the report gives the risk
before and after (sdcMicro's measures) and how far estimates moved.
"""

from .classify import Classification, classify
from .gps import displace, haversine_km, polygon_lookup
from .leaks import coordinate_strings, find_leaks
from .public import PublicUse, public_use
from .report import DisclosureReport
from .risk import frequencies, individual_risk, local_suppression, measure_risk
from .treat import TopCode
from .write import write_public_use

__all__ = [
    "Classification", "DisclosureReport", "PublicUse", "TopCode", "classify",
    "coordinate_strings", "displace", "find_leaks", "frequencies", "haversine_km",
    "individual_risk", "local_suppression", "measure_risk", "polygon_lookup", "public_use",
    "write_public_use",
]  # fmt: skip
