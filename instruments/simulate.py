"""Simulated answers to a form for a household sample: the fixtures of every test.

:func:`simulate_submissions` walks the form in document order and answers every field
for all rows at once: relevance is evaluated with the form's own expressions (so skip
logic is respected by construction), answers are proposed by type and redrawn where
the constraint fails, calculations are computed, and ``pulldata`` preloads are read
from the sample. Options then add the field problems the importer must handle:
nonresponse, edited submissions (``deprecatedID`` chains), exact and conflicting
duplicates, rejected submissions and bad values.

All names, phones and positions are obviously fake ("Test Person 12", numbers
starting 555, points near 0 N 0 E).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta

import numpy as np
import pandas as pd

from survey.errors import InstrumentError

from .form import Field, Form
from .raw import RawData, raw_columns
from .scope import Scope
from .xpath import Unevaluable

__all__ = ["PRELOAD_COLUMNS", "fake_sample", "simulate_submissions"]

#: columns of the preload CSV ``households.csv`` the sampling stage writes.
PRELOAD_COLUMNS = ("name", "label", "hh_id", "ea_id", "stratum", "group", "L_hig", "m_hig",
                   "pi1", "pi2")
#: visit results and their default probabilities.
RESULTS = {"completed": 0.86, "partial": 0.01, "refused": 0.04, "no_one_home": 0.04,
           "respondent_absent": 0.01, "vacant": 0.02, "not_found": 0.015, "destroyed": 0.005}


def fake_sample(n: int, rng: np.random.Generator, eas: int | None = None) -> pd.DataFrame:
    """A synthetic household sample with the preload columns (for tests and demos).

    Parameters
    ----------
    n
        Number of sampled households.
    rng
        Random generator.
    eas
        Number of enumeration areas (default ``max(1, n // 21)``).
    """
    eas = eas or max(1, n // 21)
    ea = rng.integers(0, eas, n)
    group = np.array(["emigrant", "returnee", "none"])[rng.integers(0, 3, n)]
    hh = np.array([f"HH{i:06d}" for i in range(1, n + 1)], dtype=object)
    L = rng.integers(8, 60, n)
    m = np.minimum(7, L)
    pi1 = np.round(rng.uniform(0.02, 0.5, eas)[ea], 6)
    return pd.DataFrame({
        "name": hh, "label": [f"{h} (EA{e:04d})" for h, e in zip(hh, ea)], "hh_id": hh,
        "ea_id": [f"EA{e:04d}" for e in ea], "stratum": [f"S{e % 4 + 1}" for e in ea],
        "group": group, "L_hig": L, "m_hig": m, "pi1": pi1, "pi2": np.round(m / L, 6),
    })  # fmt: skip


def _uuids(rng: np.random.Generator, n: int) -> np.ndarray:
    raw = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64).view(np.uint64)
    hexs = [f"{a:016x}{b:016x}" for a, b in raw]
    return np.array(
        [f"uuid:{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}" for h in hexs], dtype=object
    )


def _bounds(constraint: str | None, default: tuple[float, float]) -> tuple[float, float]:
    lo, hi = default
    if constraint:
        if m := re.search(r"\.\s*>=\s*(-?\d+(?:\.\d+)?)", constraint):
            lo = float(m.group(1))
        elif m := re.search(r"\.\s*>\s*(-?\d+(?:\.\d+)?)", constraint):
            lo = float(m.group(1)) + 1
        if m := re.search(r"\.\s*<=\s*(-?\d+(?:\.\d+)?)", constraint):
            hi = float(m.group(1))
        elif m := re.search(r"\.\s*<\s*(-?\d+(?:\.\d+)?)", constraint):
            hi = float(m.group(1)) - 1
    return lo, max(lo, hi)


def _ints(a) -> np.ndarray:
    return np.asarray(a).astype(np.int64).astype(str).astype(object)


class _Proposer:
    """Realistic answers for the bundled forms' fields, generic ones for any other."""

    def __init__(self, rng: np.random.Generator, today: date, result_probs: Mapping[str, float]):
        self.rng, self.today, self.result_probs = rng, today, result_probs

    def __call__(self, f: Field, n: int, scope: Scope) -> np.ndarray:
        rng = self.rng
        special = getattr(self, f"_{f.name}", None)
        if special is not None:
            try:
                return special(f, n, scope)
            except (Unevaluable, KeyError):  # same name in another form: answer generically
                pass
        if f.type == "integer":
            lo, hi = _bounds(f.constraint, (0, 10))
            hi = min(hi, lo + 20) if "year" not in f.name else hi
            return _ints(rng.integers(int(lo), int(hi) + 1, n))
        if f.type == "decimal":
            x = np.round(rng.lognormal(5, 1.0, n), 2)
            return np.array([f"{v:.2f}" for v in x], dtype=object)
        if f.type == "select_one":
            names = [c for c in f.choices.names if c not in ("other", "none")] or list(f.choices.names)
            return np.array(names, dtype=object)[rng.integers(0, len(names), n)]
        if f.type == "select_multiple":
            return self._multi(f, n)
        if f.type == "date":
            days = rng.integers(0, 60, n)
            return np.array([(self.today - timedelta(days=int(d))).isoformat() for d in days],
                            dtype=object)
        if f.type == "datetime":
            base = pd.Timestamp(self.today) - pd.to_timedelta(rng.integers(0, 60, n), unit="D")
            ts = base + pd.to_timedelta(rng.integers(8 * 3600, 18 * 3600, n), unit="s")
            if f.name == "end":
                ts = ts + pd.Timedelta(minutes=55)
            return np.array([t.strftime("%Y-%m-%dT%H:%M:%S.000+00:00") for t in ts], dtype=object)
        if f.type == "geopoint":
            lat, lon = rng.uniform(-0.5, 0.5, n), rng.uniform(-0.5, 0.5, n)
            alt, acc = rng.integers(0, 50, n), rng.uniform(3, 15, n)
            return np.array([f"{a:.6f} {b:.6f} {c}.0 {d:.1f}" for a, b, c, d in
                             zip(lat, lon, alt, acc)], dtype=object)
        if f.type == "meta":
            return np.array([f"collect:SIMULATED{i:04d}" for i in rng.integers(0, 50, n)],
                            dtype=object)
        if f.privacy == "direct" and "name" in f.name:
            return np.array([f"Test Person {i}" for i in rng.integers(1, 10_000, n)], dtype=object)
        return np.array([f"simulated {f.name} {i}" for i in rng.integers(1, 1000, n)], dtype=object)

    def _multi(self, f: Field, n: int) -> np.ndarray:
        names = [c for c in f.choices.names if c != "none"]
        k = self.rng.integers(1, min(3, len(names)) + 1, n)
        picks = self.rng.random((n, len(names))).argsort(axis=1)
        out = np.array([" ".join(sorted((names[j] for j in picks[i, : k[i]]),
                                        key=names.index)) for i in range(n)], dtype=object)
        if "none" in f.choices.names:
            out[self.rng.random(n) < 0.05] = "none"
        return out

    # bundled household form: fields whose realistic answers matter to analysts
    def _visit_result(self, f, n, scope):
        names = list(self.result_probs)
        p = np.array([self.result_probs[k] for k in names], dtype=float)
        return np.array(names, dtype=object)[self.rng.choice(len(names), n, p=p / p.sum())]

    def _visit_number(self, f, n, scope):
        return _ints(np.ones(n))

    def _consent(self, f, n, scope):
        return np.where(self.rng.random(n) < 0.97, "yes", "no").astype(object)

    def _respondent_phone(self, f, n, scope):
        return np.array([f"555 01{i:04d}" for i in self.rng.integers(0, 10_000, n)], dtype=object)

    def _hh_size(self, f, n, scope):
        return _ints(np.clip(self.rng.poisson(4.0, n) + 1, 1, 30))

    def _age(self, f, n, scope):
        pos = scope.position(f.table)
        adult = self.rng.integers(18, 85, n)
        anyone = np.minimum(self.rng.exponential(25, n).astype(int), 100)
        return _ints(np.where(pos == 1, adult, anyone))

    def _relation(self, f, n, scope):
        others = np.array(["spouse", "child", "grandchild", "parent", "sibling",
                           "other_relative", "non_relative"], dtype=object)
        pick = others[self.rng.choice(7, n, p=[0.2, 0.5, 0.1, 0.08, 0.06, 0.04, 0.02])]
        return np.where(scope.position(f.table) == 1, "head", pick).astype(object)

    def _edu_years(self, f, n, scope):
        age = pd.to_numeric(pd.Series(scope.column(f.table, "age")), errors="coerce").to_numpy()
        cap = np.clip(np.nan_to_num(age) - 5, 0, 20)
        return _ints(np.floor(self.rng.random(n) * (cap + 1)))

    def _returnee(self, f, n, scope):
        return np.where(self.rng.random(n) < 0.1, "yes", "no").astype(object)

    def _any_emigrant(self, f, n, scope):
        grp = scope.column(f.table, "group")
        p = np.where(grp == "emigrant", 0.9, 0.15)
        return np.where(self.rng.random(n) < p, "yes", "no").astype(object)

    def _n_emigrants(self, f, n, scope):
        return _ints(np.clip(self.rng.poisson(0.6, n) + 1, 1, 20))

    def _rem_received(self, f, n, scope):
        emi = scope.column(f.table, "any_emigrant")
        p = np.where(emi == "yes", 0.6, 0.1)
        return np.where(self.rng.random(n) < p, "yes", "no").astype(object)

    def _em_year_left(self, f, n, scope):
        return _ints(self.rng.integers(2010, self.today.year + 1, n))

    def _ret_year(self, f, n, scope):
        return self._em_year_left(f, n, scope)

    def _n_returnees(self, f, n, scope):  # listing: at most the household size
        size = pd.to_numeric(pd.Series(scope.column(f.table, "n_members")), errors="coerce")
        cap = np.maximum(size.fillna(1).to_numpy(), 1)
        return _ints(1 + np.floor(self.rng.random(n) * np.minimum(cap, 3)))

    def _spend_total_month(self, f, n, scope):
        food = pd.to_numeric(pd.Series(scope.column(f.table, "spend_food_month")),
                             errors="coerce").fillna(0).to_numpy()
        x = food * self.rng.uniform(1.2, 3.0, n)
        return np.array([f"{v:.2f}" for v in x], dtype=object)


def simulate_submissions(
    form: Form,
    sample: pd.DataFrame,
    rng: np.random.Generator,
    *,
    nonresponse: float | None = None,
    edits: int = 0,
    duplicates: int = 0,
    conflicts: int = 0,
    rejected: int = 0,
    bad_values: int = 0,
    orphans: int = 0,
    today: date = date(2026, 3, 15),
) -> RawData:
    """Answer ``form`` for every household of ``sample``.

    Parameters
    ----------
    form
        A form read by :func:`~instruments.read_form` (the bundled household form, or
        any form: fields without a tuned generator get generic answers).
    sample
        One row per sampled household with the preload columns
        (:data:`PRELOAD_COLUMNS`); ``name`` is the ``hh_id`` answered.
    rng
        Random generator (the only source of randomness).
    nonresponse
        Share of visits that do not end in an interview (default: the realistic mix
        in :data:`RESULTS`, about 13%).
    edits
        Number of submissions edited once after upload: both versions are present,
        the new one naming the old in ``deprecated_id``.
    duplicates
        Number of submissions present twice, identically (with their repeat rows).
    conflicts
        Number of submissions whose instance id appears twice with different answers.
    rejected
        Number of submissions marked ``rejected`` in review.
    bad_values
        Number of each kind of bad value: text in an integer field, an unknown choice.
    orphans
        Number of repeat rows whose parent is not in the export, and of repeat rows
        without a key (possible in CSV exports only).
    today
        The interview period ends on this date (``today()`` in constraints).

    Returns
    -------
    RawData
        Raw tables (strings) in the normalised layout.
    """
    missing = {"name"} - set(sample.columns)
    if missing:
        raise InstrumentError(
            f"sample lacks the column(s) {sorted(missing)}",
            hint=f"pass the preload table with columns {', '.join(PRELOAD_COLUMNS)}",
        )
    probs = dict(RESULTS)
    if nonresponse is not None:
        rest = {k: v for k, v in RESULTS.items() if k != "completed"}
        scale = nonresponse / sum(rest.values())
        probs = {"completed": 1 - nonresponse, **{k: v * scale for k, v in rest.items()}}
    n = len(sample)
    root = form.form_id
    keys = _uuids(rng, n)
    frame = pd.DataFrame({
        "key": pd.array(keys, dtype="string"),
        "parent_key": pd.array([None] * n, dtype="string"),
        "instance_id": pd.array(keys, dtype="string"),
        "deprecated_id": pd.array([None] * n, dtype="string"),
        "submission_date": pd.array(
            [f"{today.isoformat()}T18:{i % 60:02d}:00.000Z" for i in range(n)], dtype="string"),
        "submitter": pd.array([f"enumerator{i:02d}" for i in rng.integers(1, 40, n)],
                              dtype="string"),
        "review_state": pd.array([None] * n, dtype="string"),
        "form_version": pd.array([form.version] * n, dtype="string"),
        "status": pd.array([None] * n, dtype="string"),
    })  # fmt: skip
    tables = {t: pd.DataFrame({"key": pd.Series([], dtype="string"),
                               "parent_key": pd.Series([], dtype="string")})
              for t in form.tables if t != root}
    scope = Scope(form, {root: frame, **tables}, today=today)
    propose = _Proposer(rng, today, probs)
    created = {root}
    preload = {c: sample[c].astype("string").fillna("").to_numpy(dtype=object)
               for c in sample.columns}
    for f in form.fields.values():
        if f.table not in created:
            _create_repeat(form, scope, f.table, created)
        m = scope.n(f.table)
        mask = scope.relevant(f.table, f.conditions)
        values = _answer(f, m, scope, propose, preload, root, mask)
        scope.set(f.table, f.column, np.where(mask, values, "").astype(object))
    out = {t: scope.tables[t].reindex(columns=raw_columns(form, t)) for t in form.tables}
    out = _inject(form, out, rng, edits=edits, duplicates=duplicates, conflicts=conflicts,
                  rejected=rejected, bad_values=bad_values, orphans=orphans)
    return RawData(form_id=form.form_id, tables=out, format="simulated")


def _answer(f: Field, m: int, scope: Scope, propose: _Proposer, preload, root, mask) -> np.ndarray:
    if f.calculation:
        try:
            v = scope.evaluate(f.table, f.calculation, f.name)
        except Unevaluable:
            col = preload.get(f.name)
            if col is None or f.table != root:
                return np.full(m, "", dtype=object)
            return col
        if f.type == "integer":
            return np.where(np.isnan(v.num()), "", _ints(np.nan_to_num(v.num())))
        return v.str()
    if f.name == "hh_id" and "name" in preload and f.table == root:
        return preload["name"]
    if f.name in preload and f.table == root:  # the sample knows it (e.g. ea_id)
        return preload[f.name]
    values = propose(f, m, scope)
    if not f.constraint or m == 0:
        return values
    for _ in range(30):
        scope.set(f.table, f.column, values)
        try:
            ok = scope.evaluate(f.table, f.constraint, f.name).bool() | ~mask
        except Unevaluable:
            return values
        if ok.all():
            return values
        values = np.where(ok, values, propose(f, m, scope)).astype(object)
    raise InstrumentError(
        f"cannot simulate answers that satisfy {f.constraint!r}",
        field=f.name, hint="add a generator for this field to instruments.simulate",
    )


def _create_repeat(form: Form, scope: Scope, table: str, created: set[str]) -> None:
    t = form.tables[table]
    if t.parent not in created:
        _create_repeat(form, scope, t.parent, created)
    parent = scope.tables[t.parent]
    live = scope.relevant(t.parent, t.conditions)
    if t.repeat_count:
        count = np.nan_to_num(scope.evaluate(t.parent, t.repeat_count).num()).astype(np.int64)
    else:
        count = np.full(len(parent), 2, dtype=np.int64)
    count = np.where(live, np.maximum(count, 0), 0)
    pk = np.repeat(parent["key"].to_numpy(dtype=object), count)
    idx = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + 1
    keys = [f"{p}/{table}[{i}]" for p, i in zip(pk, idx)]
    scope.tables[table] = pd.DataFrame({"key": pd.array(keys, dtype="string"),
                                        "parent_key": pd.array(pk, dtype="string")})
    scope._parent.pop(table, None)
    scope._position.pop(table, None)
    scope._evals.clear()
    created.add(table)


def _descendants(form: Form, table: str) -> list[str]:
    out = []
    for c in form.children(table):
        out += [c, *_descendants(form, c)]
    return out


def _subtree(form, tables, root_rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The given root rows and every repeat row below them."""
    out = {form.form_id: root_rows}
    for t in _descendants(form, form.form_id):
        parent = out[form.tables[t].parent]
        out[t] = tables[t][tables[t]["parent_key"].isin(parent["key"])]
    return out


def _rekey(form, sub: dict[str, pd.DataFrame], old: str, new: str) -> dict[str, pd.DataFrame]:
    out = {}
    for t, df in sub.items():
        df = df.copy()
        for col in ("key", "parent_key"):
            df[col] = df[col].str.replace(old, new, regex=False)
        out[t] = df
    return out


def _completed(form, tables) -> pd.DataFrame:
    root = tables[form.form_id]
    if "visit_result" in root.columns:
        return root[root["visit_result"] == "completed"]
    return root


def _inject(form: Form, tables: dict[str, pd.DataFrame], rng, *, edits, duplicates, conflicts,
            rejected, bad_values, orphans) -> dict[str, pd.DataFrame]:
    root = form.form_id
    done = _completed(form, tables)
    take = edits + duplicates + conflicts + rejected
    if take > len(done):
        raise InstrumentError(f"asked to alter {take} submissions, only {len(done)} completed")
    chosen = done.iloc[rng.permutation(len(done))[:take]]
    pieces = {t: [df] for t, df in tables.items()}
    edit_rows, dup_rows = chosen.iloc[:edits], chosen.iloc[edits:edits + duplicates]
    conf_rows = chosen.iloc[edits + duplicates:edits + duplicates + conflicts]
    rej_rows = chosen.iloc[edits + duplicates + conflicts:]
    new_ids = _uuids(rng, max(edits, 1))
    for (_, row), new in zip(edit_rows.iterrows(), new_ids):
        sub = _rekey(form, _subtree(form, tables, row.to_frame().T.astype("string")),
                     row["key"], new)
        r = sub[root].assign(instance_id=new, deprecated_id=row["instance_id"],
                             review_state="edited")
        change = "comments" if "comments" in r.columns else r.columns[-1]
        sub[root] = r.assign(**{change: "edited after review"})
        for t, df in sub.items():
            pieces[t].append(df)
    for _, row in dup_rows.iterrows():
        for t, df in _subtree(form, tables, row.to_frame().T.astype("string")).items():
            pieces[t].append(df)
    for _, row in conf_rows.iterrows():
        r = row.to_frame().T.astype("string")
        change = "rooms" if "rooms" in r.columns else r.columns[-1]
        pieces[root].append(r.assign(**{change: "49" if row[change] != "49" else "48"}))
    out = {t: pd.concat(p, ignore_index=True) if len(p) > 1 else p[0] for t, p in pieces.items()}
    if len(rej_rows):
        hit = out[root]["key"].isin(rej_rows["key"])
        out[root] = out[root].assign(review_state=out[root]["review_state"].mask(hit, "rejected"))
    if bad_values:
        out = _bad_values(form, out, rng, bad_values)
    if orphans:
        out = _orphans(form, out, rng, orphans)
    return out


def _bad_values(form, out, rng, k) -> dict[str, pd.DataFrame]:
    root = form.form_id
    r = out[root].copy()
    completed = np.flatnonzero(r["visit_result"].eq("completed").fillna(False).to_numpy()
                               if "visit_result" in r.columns else np.ones(len(r), bool))
    rows = rng.choice(completed, size=min(2 * k, len(completed)), replace=False)
    ints = [f.column for f in form.table_fields(root) if f.type == "integer" and f.name == "rooms"]
    sel = [f.column for f in form.table_fields(root) if f.type == "select_one" and f.name == "floor"]
    if ints:
        r.loc[r.index[rows[:k]], ints[0]] = "three"
    if sel:
        r.loc[r.index[rows[k:]], sel[0]] = "marble"
    out[root] = r
    return out


def _orphans(form, out, rng, k) -> dict[str, pd.DataFrame]:
    root = form.form_id
    for t in form.children(root):
        df = out[t]
        if len(df) < 2 * k:
            continue
        pick = df.iloc[rng.choice(len(df), size=2 * k, replace=False)]
        orphans = pick.iloc[:k].assign(
            parent_key=[f"uuid:orphan-{i}" for i in range(k)],
            key=[f"uuid:orphan-{i}/{t}[1]" for i in range(k)])
        keyless = pick.iloc[k:].assign(key=pd.NA)
        out[t] = pd.concat([df, orphans, keyless], ignore_index=True)
        break
    return out
