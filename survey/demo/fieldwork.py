"""Simulated fieldwork in the demo country: the listing, and interviews that answer the form.

The listing is the demo population of the selected EAs (:func:`simulate_households`),
screened into migration groups. The interviews are those of
:func:`instruments.simulate.simulate_submissions` (skip logic, constraints, visit
results with nonresponse, edits, duplicates, conflicting copies, rejected
submissions and bad values), with the answers that carry the demo's known effects
taken from the simulated households: household size, emigrants, remittances and
education spending are preloaded; the head's sex and schooling, health insurance,
school attendance of children and returnees in the roster are set afterwards,
consistently with the form's relevance rules and calculations.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from survey.demo.population import simulate_households

__all__ = ["distinctive_identities", "listing_table", "simulate_fieldwork", "simulate_listing",
           "write_central_export"]

#: Returnee answers filled in for roster members turned into returnees.
_RET_COUNTRIES = ("fr", "gb", "us", "it", "es", "de", "ru", "gr", "tr", "ae")
_RET_REASONS = ("job_ended", "family", "savings_target", "deported", "health")


def simulate_listing(selected_eas: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Every household of the selected EAs, with its group and (hidden) outcomes.

    Parameters
    ----------
    selected_eas
        The selected EAs (``ea_id``, ``region``, ``urban``, ``migrant_share``,
        ``households``).
    rng
        Random generator.

    Returns
    -------
    pandas.DataFrame
        :func:`~survey.demo.simulate_households` of those EAs: the truth from which
        the listing (:func:`listing_table`) and the interviews are drawn.
    """
    return simulate_households(selected_eas, rng)


def listing_table(households: pd.DataFrame) -> pd.DataFrame:
    """What a listing team records: EA, household id, number in the EA, migration group."""
    return households[["ea_id", "hh_id", "hh_number", "group"]].copy()


def _uniform(keys: pd.Series, salt: str, seed: int) -> np.ndarray:
    """A uniform number per key, the same wherever the key appears (duplicates stay exact)."""
    out = np.empty(len(keys))
    for i, k in enumerate(keys.astype(str).to_numpy()):
        h = hashlib.blake2b(f"{seed}:{salt}:{k}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(h, "little") / 2.0 ** 64
    return out


def _pick(choices: tuple[str, ...], u: np.ndarray) -> np.ndarray:
    return np.asarray(choices, dtype=object)[np.minimum((u * len(choices)).astype(int),
                                                         len(choices) - 1)]


def _edu_level(years: np.ndarray) -> np.ndarray:
    return np.select([years <= 0, years <= 6, years <= 9, years <= 12],
                     ["none", "primary", "lower_secondary", "upper_secondary"],
                     "tertiary").astype(object)


def _roster(members: pd.DataFrame, root: pd.DataFrame, truth: pd.DataFrame,
            seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Set the roster answers that carry known effects; return members and n_returnees."""
    m = members.copy()
    hh_of = root.drop_duplicates("key").set_index("key")["hh_id"]
    t = truth.set_index("hh_id")
    hh = m["parent_key"].map(hh_of)
    row = t.reindex(hh.to_numpy())
    pos = pd.to_numeric(m["key"].str.extract(r"\[(\d+)\]$")[0], errors="coerce").to_numpy()
    age = pd.to_numeric(m["age"], errors="coerce").to_numpy()
    head = pos == 1
    known = hh.notna().to_numpy() & row["group"].notna().to_numpy()

    female = row["head_female"].to_numpy(dtype=float) == 1
    m["sex"] = np.where(head & known, np.where(female, "female", "male"), m["sex"]).astype(object)
    edu = row["head_education"].to_numpy(dtype=float)
    set_edu = head & known & (age >= 5)
    level = _edu_level(np.nan_to_num(edu))
    m["edu_level"] = np.where(set_edu, level, m["edu_level"]).astype(object)
    years = np.minimum(np.nan_to_num(edu), np.nan_to_num(age)).astype(int).astype(str)
    m["edu_years"] = np.where(set_edu, np.where(level == "none", "", years),
                              m["edu_years"]).astype(object)

    insured = row["health_insurance"].to_numpy(dtype=float) == 1
    m["insured"] = np.where(known, np.where(insured, "yes", "no"), m["insured"]).astype(object)

    child = known & (age >= 6) & (age <= 17)
    attends = _uniform(m["key"], "school", seed) < row["p_enrolled"].to_numpy(dtype=float)
    m["attends_school"] = np.where(child, np.where(attends, "yes", "no"),
                                   m["attends_school"]).astype(object)

    asked = known & (age >= 15) & m["returnee"].fillna("").ne("").to_numpy()
    rank = pd.Series(asked.astype(int), index=m.index).groupby(m["parent_key"]).cumsum().to_numpy()
    n_ret = np.where(row["group"].to_numpy(dtype=object) == "returnee",
                     row["n_returnees"].to_numpy(dtype=float), 0)
    is_ret = asked & (rank <= n_ret)
    was = m["returnee"].eq("yes").fillna(False).to_numpy(dtype=bool)
    m["returnee"] = np.where(asked, np.where(is_ret, "yes", "no"), m["returnee"]).astype(object)
    new, gone = is_ret & ~was, asked & ~is_ret
    u = _uniform(m["key"], "return", seed)
    fills = {"ret_country": _pick(_RET_COUNTRIES, u),
             "ret_year": (2012 + (u * 14).astype(int)).astype(str),
             "ret_months_abroad": (3 + (u * 997 % 117).astype(int)).astype(str),
             "ret_reason": _pick(_RET_REASONS, (u * 7.3) % 1)}
    for col, val in fills.items():
        m[col] = np.where(new, val, np.where(gone, "", m[col].fillna(""))).astype(object)
    flag = m["returnee"].eq("yes").fillna(False).to_numpy(dtype=bool)
    m["is_returnee"] = np.where(flag, "1", "0").astype(object)
    n_returnees = pd.Series(flag.astype(int), index=m.index).groupby(m["parent_key"]).sum()
    return m, n_returnees


def simulate_fieldwork(form, preload: pd.DataFrame, truth: pd.DataFrame,
                       rng: np.random.Generator, *, nonresponse: float | None = None,
                       edits: int = 3, duplicates: int = 3, conflicts: int = 1, rejected: int = 2,
                       bad_values: int = 2):
    """Interviews of the sampled households, as an ODK server would hold them.

    Parameters
    ----------
    form
        The household form (:func:`instruments.read_form` of the bundled form).
    preload
        The preload table of the households to visit (``instruments.simulate.PRELOAD_COLUMNS``).
    truth
        The simulated households (:func:`simulate_listing`), by ``hh_id``.
    rng
        Random generator.
    nonresponse, edits, duplicates, conflicts, rejected, bad_values
        Field problems, as :func:`instruments.simulate.simulate_submissions` takes them.

    Returns
    -------
    instruments.raw.RawData
        Raw submissions (strings), ready for a writer such as
        :func:`write_central_export`.
    """
    from instruments.simulate import PRELOAD_COLUMNS, simulate_submissions

    t = preload[list(PRELOAD_COLUMNS)].merge(truth, on="hh_id", how="left",
                                             suffixes=("", "_truth"))
    emigrant = t["group"].eq("emigrant").fillna(False).to_numpy(dtype=bool)
    received = t["receives_remittances"].to_numpy(dtype=float) == 1
    answers = preload[list(PRELOAD_COLUMNS)].assign(
        hh_size=t["hh_size"].astype("Int64").astype("string").to_numpy(),
        any_emigrant=np.where(emigrant, "yes", "no"),
        n_emigrants=np.where(emigrant, t["n_emigrants"].clip(lower=1).astype("Int64").astype("string"), ""),
        rem_received=np.where(received, "yes", "no"),
        rem_amount=np.where(received, [f"{max(v, 10.0):.2f}" for v in t["remittances"]], ""),
        spend_edu_year=[f"{v:.2f}" for v in t["education_spending"]],
    )
    raw = simulate_submissions(form, answers, rng, nonresponse=nonresponse, edits=edits,
                               duplicates=duplicates, conflicts=conflicts, rejected=rejected,
                               bad_values=bad_values)
    root = form.form_id
    tables = dict(raw.tables)
    seed = int(rng.integers(0, 2**31))
    if "members" in tables and len(tables["members"]):
        members, n_ret = _roster(tables["members"], tables[root], truth, seed)
        tables["members"] = members
        r = tables[root]
        filled = r["n_returnees"].fillna("").ne("")
        count = r["key"].map(n_ret).fillna(0).astype(int).astype(str)
        tables[root] = r.assign(n_returnees=r["n_returnees"].where(~filled, count))
    return distinctive_identities(dataclasses.replace(raw, tables=tables), rng)


_LETTERS = "bcdfghjklmnpqrstvwxz"


def _hashed(keys: pd.Series, salt: str, seed: int) -> list[bytes]:
    """Eight bytes per key, the same wherever the key appears (duplicates stay exact)."""
    return [hashlib.blake2b(f"{seed}:{salt}:{k}".encode(), digest_size=8).digest()
            for k in keys.astype(str).to_numpy()]


def _codes(keys: pd.Series, salt: str, seed: int) -> np.ndarray:
    """A six-letter code per key (20^6 = 64 million codes)."""
    return np.array(["".join(_LETTERS[b % 20] for b in h[:6]) for h in _hashed(keys, salt, seed)],
                    dtype=object)


def distinctive_identities(raw, rng: np.random.Generator):
    """Give the direct identifiers values that no other output could contain by chance.

    Respondent, member and emigrant names become ``"Xylqor Vandrex <code>"``-style
    strings, phone numbers ``"+999 77dddddd"``, free-text comments name a made-up
    river, and GPS points lie in the open South Pacific around one made-up centre per
    EA (households within about 700 m of it). Values follow the household id (or the
    roster row's key), so duplicate submissions stay exact duplicates; fields the form
    skipped stay empty. Searching any output for these values
    (:func:`instruments.disclosure.find_leaks`) then shows whether an identifier escaped.

    Returns
    -------
    instruments.raw.RawData
        A copy of ``raw`` with the identifiers replaced; ``raw`` is not modified.
    """
    seed = int(rng.integers(0, 2**31))
    tables = dict(raw.tables)

    def fill(df: pd.DataFrame, col: str, values: np.ndarray) -> pd.DataFrame:
        if col not in df.columns:
            return df
        s = df[col]
        has = s.notna().to_numpy() & s.astype("string").fillna("").ne("").to_numpy()
        return df.assign(**{col: np.where(has, values, s.astype(object)).astype(object)})

    for t, df in tables.items():
        if "respondent_name" in df.columns:
            hh = df["hh_id"].astype("string").fillna(df["key"].astype("string"))
            u = np.array([[int.from_bytes(h[i:i + 2], "little") / 65536.0 for i in (0, 2, 4)]
                          for h in _hashed(hh, "gps", seed)]).reshape(-1, 3)
            ea = df["ea_id"].astype("string").fillna("").to_numpy(dtype=object)
            _, code = np.unique(ea, return_inverse=True)
            lat = -47.0 - 0.0137 * code + 0.012 * (u[:, 0] - 0.5)
            lon = -131.0 - 0.0113 * code + 0.012 * (u[:, 1] - 0.5)
            gps = np.array([f"{a:.6f} {b:.6f} {int(3 + 30 * c)}.0 {4 + 5 * c:.1f}"
                            for a, b, c in zip(lat, lon, u[:, 2])], dtype=object)
            phones = [f"+999 77{int.from_bytes(h[:4], 'little') % 900_000 + 100_000:06d}"
                      for h in _hashed(hh, "phone", seed)]
            df = fill(df, "respondent_name", "Xylqor Vandrex " + _codes(hh, "name", seed))
            df = fill(df, "respondent_phone", np.asarray(phones, dtype=object))
            df = fill(df, "gps", gps)
            df = fill(df, "comments", "Lives by the Wkzqyth river, house " + _codes(hh, "c", seed))
        if "key" in df.columns:
            df = fill(df, "member_name", "Xylqor Membrix " + _codes(df["key"], "m", seed))
            df = fill(df, "em_name", "Xylqor Awayne " + _codes(df["key"], "e", seed))
        tables[t] = df
    return dataclasses.replace(raw, tables=tables)


def write_central_export(raw, path: str | Path, form) -> Path:
    """Write the submissions as ODK Central's CSV zip export."""
    from instruments.formats.odk_central import write_odk_central_zip

    return write_odk_central_zip(raw, path, form)
