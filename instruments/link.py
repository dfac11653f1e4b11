"""Link household submissions to the selected sample and give each a final disposition.

The weighting stage needs, for every *sampled* household, whether it responded, refused,
was never contacted, or turned out ineligible (vacant, not found, destroyed: not
nonresponse). Each visit leaves a submission with a result code; a household's final
disposition is the best outcome over its visits (respondent > refusal > ineligible >
non-contact).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd

from survey.errors import InstrumentError

from .importer import ImportResult
from .problems import concat_problems, problem_frame

__all__ = ["DISPOSITIONS", "Linked", "link_sample"]

#: visit result code -> final disposition (override with ``dispositions=``).
DISPOSITIONS: Mapping[str, str] = MappingProxyType({
    "completed": "respondent", "partial": "respondent", "refused": "refusal",
    "no_one_home": "non_contact", "respondent_absent": "non_contact", "other": "non_contact",
    "vacant": "ineligible", "not_found": "ineligible", "destroyed": "ineligible",
})  # fmt: skip
_RANK = {"respondent": 0, "refusal": 1, "ineligible": 2, "non_contact": 3}


@dataclass(frozen=True)
class Linked:
    """The sample with final dispositions, and the linking problems.

    ``sample`` is the input sample plus ``submission_key`` (the submission that decided
    the disposition), ``visits``, ``visit_result`` and ``disposition``.
    """

    sample: pd.DataFrame
    problems: pd.DataFrame


def link_sample(
    result: ImportResult,
    sample: pd.DataFrame,
    *,
    id_column: str = "hh_id",
    sample_id: str = "name",
    dispositions: Mapping[str, str] = DISPOSITIONS,
) -> Linked:
    """Match household submissions to the sample by household id.

    Parameters
    ----------
    result
        An import of the household form.
    sample
        The selected households (the preload table: ``name`` is the id answered).
    id_column
        Field of the root table holding the household id.
    sample_id
        Column of ``sample`` with the same id.
    dispositions
        Visit result -> one of respondent, refusal, non_contact, ineligible.

    Returns
    -------
    Linked

    Notes
    -----
    A submission whose id is not in the sample is a problem (L701); two interviews of
    one household, or two submissions for the same visit, are a problem (L702); a
    sampled household without any submission is a problem (L703) and a non-contact
    (its eligibility is unknown, so it is treated as nonresponse, not as ineligible).
    A completed visit without consent is a refusal.
    """
    root = result.form.form_id
    subs = result.tables[root]
    for col, frame, where in ((id_column, subs, "the household table"),
                              (sample_id, sample, "the sample")):
        if col not in frame.columns:
            raise InstrumentError(f"{where} has no column {col!r}", column=col,
                                  hint="pass id_column= / sample_id=")
    if not sample[sample_id].is_unique:
        dup = sample[sample_id][sample[sample_id].duplicated()].iloc[0]
        raise InstrumentError(f"household id {dup!r} appears twice in the sample",
                              column=sample_id, key=str(dup))
    bad = set(s for s in subs["visit_result"].dropna().astype(str).unique()
              if s not in dispositions) if "visit_result" in subs else set()
    if bad:
        raise InstrumentError(f"visit results without a disposition: {sorted(bad)}",
                              hint="pass dispositions= covering every result code")
    ids = subs[id_column].astype("string")
    result_code = subs["visit_result"].astype("string") if "visit_result" in subs else \
        pd.Series("completed", index=subs.index, dtype="string")
    disp = result_code.map(lambda r: dispositions.get(r, "non_contact") if pd.notna(r)
                           else "non_contact").astype("string")
    if "consent" in subs:
        refused = disp.eq("respondent") & subs["consent"].astype("string").eq("no").fillna(False)
        disp = disp.mask(refused, "refusal")
    visits = pd.DataFrame({"id": ids, "key": subs["key"], "visit_result": result_code,
                           "disposition": disp,
                           "visit": subs["visit_number"] if "visit_number" in subs else 1,
                           "rank": disp.map(_RANK).astype("Int64")})
    problems = []
    sampled = ids.isin(sample[sample_id].astype("string")).fillna(False).to_numpy(dtype=bool)
    if (~sampled).any():
        problems.append(problem_frame("L701", root, subs["key"][~sampled], id_column,
                                      ids[~sampled], "household id is not in the sample"))
    matched = visits[sampled]
    resp = matched["disposition"].eq("respondent").fillna(False)
    two_interviews = resp & matched["id"].where(resp).duplicated(keep=False)
    same_visit = matched.duplicated(["id", "visit"], keep=False)
    flagged = matched[(two_interviews | same_visit).to_numpy(dtype=bool)]
    if len(flagged):
        problems.append(problem_frame("L702", root, flagged["key"], id_column, flagged["id"],
                                      "several interviews or several submissions of one visit"))
    best = matched.sort_values(["id", "rank", "visit"], ascending=[True, True, False],
                               kind="stable").drop_duplicates("id")
    n_visits = matched.groupby("id").size()
    out = sample.copy()
    sid = out[sample_id].astype("string")
    pick = best.set_index("id")
    out["submission_key"] = sid.map(pick["key"]).astype("string")
    out["visits"] = sid.map(n_visits).fillna(0).astype("Int64")
    out["visit_result"] = sid.map(pick["visit_result"]).astype("string")
    out["disposition"] = pd.Categorical(
        sid.map(pick["disposition"]).fillna("non_contact").astype(str),
        categories=list(_RANK))
    missing = out["visits"].eq(0).to_numpy(dtype=bool)
    if missing.any():
        problems.append(problem_frame("L703", root, np.full(missing.sum(), None),
                                      sample_id, sid[missing],
                                      "sampled household without any submission: non-contact"))
    return Linked(sample=out, problems=concat_problems(problems))
