"""A synthetic demo country with known effects of migration.

``make_country`` builds the census frame (regions, urban and rural EAs, migrant
shares); ``simulate_households`` populates only the EAs that are listed, with
confounded selection into migration and outcomes whose true effects are
:data:`EFFECTS`; ``write_demo_inputs`` puts the frame and census totals into a
project's ``data/`` folder.
"""

from survey.demo.country import DEFAULT_REGIONS, Region, census_totals, make_country
from survey.demo.inputs import write_demo_inputs
from survey.demo.population import EFFECTS, GROUPS, simulate_households

__all__ = [
    "DEFAULT_REGIONS",
    "EFFECTS",
    "GROUPS",
    "Region",
    "census_totals",
    "make_country",
    "simulate_households",
    "write_demo_inputs",
]
