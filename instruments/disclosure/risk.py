"""Re-identification risk on key variables, and local suppression to k-anonymity.

A *key* is the combination of a record's key-variable values. Its sample frequency
``f_k`` counts the records sharing it; its estimated population frequency ``F_k`` sums
their sampling weights. A missing value (including one blanked by local suppression)
matches every category, as in sdcMicro's ``freqCalc``: a record counts for every
record it could be confused with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from survey.errors import InstrumentError

__all__ = ["RiskMeasures", "frequencies", "individual_risk", "local_suppression",
           "measure_risk"]

#: sdcMicro's measure_risk subtracts this from p_k = f_k / F_k so that p_k = 1 stays finite.
PK_OFFSET = 1e-4


def _codes(df: pd.DataFrame, keys: Sequence[str]) -> np.ndarray:
    """Integer codes (n x m), -1 for missing, one column per key variable."""
    out = np.empty((len(df), len(keys)), dtype=np.int64)
    for j, k in enumerate(keys):
        out[:, j] = pd.factorize(df[k], use_na_sentinel=True)[0]
    return out


def _combine(codes: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """One group id per row for the combination of the given code columns."""
    comb = np.zeros(len(codes), dtype=np.int64)
    for j in np.flatnonzero(cols):
        comb = pd.factorize(comb * (codes[:, j].max() + 2) + codes[:, j] + 1)[0].astype(np.int64)
    return comb


def _weights(df: pd.DataFrame, weights) -> np.ndarray | None:
    if weights is None:
        return None
    w = df[weights] if isinstance(weights, str) else pd.Series(weights)
    w = pd.to_numeric(w, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if len(w) != len(df):
        raise InstrumentError(f"{len(w)} weights for {len(df)} records",
                              hint="pass one weight per record or a column name")
    if not np.isfinite(w).all() or (w <= 0).any():
        raise InstrumentError("sampling weights must be positive and finite",
                              column=weights if isinstance(weights, str) else None,
                              hint="compute weights before measuring disclosure risk")
    return w


def frequencies(df: pd.DataFrame, keys: Sequence[str], weights=None) -> pd.DataFrame:
    """Sample and weighted population frequency of each record's key.

    Parameters
    ----------
    df
        The records.
    keys
        Key-variable columns.
    weights
        A column of ``df``, or one weight per record, or None (``F_k = f_k``).

    Returns
    -------
    DataFrame
        ``fk`` (records sharing the key) and ``Fk`` (sum of their weights), on
        ``df``'s index.

    Notes
    -----
    Record *j* counts for record *i* when they agree on every key variable both have
    (a missing value matches any category; sdcMicro ``freqCalc`` with ``alpha = 1``).
    The counts are computed once per pair of missing-value patterns, with group sums
    over all records, so the cost grows with the number of patterns, not of records.

    References
    ----------
    Templ, M., Kowarik, A. and Meindl, B. (2015). Statistical disclosure control for
    micro-data using the R package sdcMicro. *Journal of Statistical Software* 67(4).
    """
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise InstrumentError(f"key variable(s) {missing} not in the table",
                              hint=f"choose among {list(df.columns)[:20]}")
    w = _weights(df, weights)
    n = len(df)
    codes = _codes(df, keys)
    miss = codes < 0
    bits = (miss * (1 << np.arange(len(keys)))).sum(axis=1) if len(keys) else np.zeros(n, int)
    patterns = np.unique(bits)
    fk = np.zeros(n)
    Fk = np.zeros(n)
    wt = np.ones(n) if w is None else w
    for a in patterns:
        targets = bits == a
        for b in patterns:
            contrib = bits == b
            observed = ~(miss[targets][0] | miss[contrib][0])
            comb = _combine(codes, observed)
            size = comb.max() + 1
            fk[targets] += np.bincount(comb[contrib], minlength=size)[comb[targets]]
            Fk[targets] += np.bincount(comb[contrib], weights=wt[contrib],
                                       minlength=size)[comb[targets]]
    return pd.DataFrame({"fk": fk.astype(np.int64), "Fk": Fk}, index=df.index)


def individual_risk(fk, Fk, weighted: bool = True) -> np.ndarray:
    """Individual re-identification risk (Benedetti-Franconi approximation).

    Parameters
    ----------
    fk, Fk
        Sample and estimated population frequencies of each record's key.
    weighted
        If False the risk is ``1 / f_k`` (the data are the population).

    Returns
    -------
    ndarray
        Risk per record, in [0, 1].

    Notes
    -----
    With ``p_k = f_k / F_k`` (less sdcMicro's offset :data:`PK_OFFSET`, which keeps
    ``p_k = 1`` finite, and capped at 1 when weights are below 1):

    - ``f_k = 1``: ``r = p/(1-p) * log(1/p)``
    - ``f_k = 2``: ``r = p/(1-p) - (p/(1-p))^2 * log(1/p)``
    - ``f_k > 2``: ``r = p / (f_k - (1-p))``

    as computed by sdcMicro's ``measure_risk`` (Templ et al. 2015, sec. 3.2), the
    approximation of Benedetti and Franconi (1998) to the expected value of
    ``1/F_k`` given ``f_k`` under a negative-binomial superpopulation model.

    References
    ----------
    Benedetti, R. and Franconi, L. (1998). Statistical and technological solutions for
    controlled data dissemination. *Pre-proceedings of New Techniques and Technologies
    for Statistics*, 225-232.
    Templ, M., Kowarik, A. and Meindl, B. (2015). *Journal of Statistical Software* 67(4).
    """
    fk = np.asarray(fk, dtype=float)
    Fk = np.asarray(Fk, dtype=float)
    if not weighted:
        return np.where(fk > 0, 1.0 / np.maximum(fk, 1), 0.0)
    p = np.minimum(fk / Fk, 1.0) - PK_OFFSET
    q = 1.0 - p
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = p / q * np.log(1.0 / p)
        r2 = p / q - (p / q) ** 2 * np.log(1.0 / p)
        r3 = p / (fk - q)
    return np.select([fk == 1, fk == 2, fk > 2], [r1, r2, r3], 0.0)


@dataclass(frozen=True)
class RiskMeasures:
    """Disclosure risk of one table on its key variables.

    Attributes
    ----------
    keys
        The key variables.
    records
        Per record: ``fk``, ``Fk``, ``risk`` (on the table's index).
    expected_reidentifications
        Sum of the individual risks (sdcMicro's ``global_risk_ER``).
    global_risk
        Mean individual risk (sdcMicro's ``global_risk``).
    """

    keys: tuple[str, ...]
    records: pd.DataFrame
    expected_reidentifications: float
    global_risk: float

    def violations(self, k: int) -> int:
        """Records whose key is shared by fewer than ``k`` records."""
        return int((self.records["fk"] < k).sum())

    def summary(self, ks: Sequence[int] = (2, 3, 5)) -> dict:
        r = self.records["risk"]
        out = {"records": len(self.records), "keys": ", ".join(self.keys),
               "expected_reidentifications": self.expected_reidentifications,
               "global_risk": self.global_risk,
               "max_risk": float(r.max()) if len(r) else 0.0}
        out.update({f"below_k{k}": self.violations(k) for k in ks})
        return out


def measure_risk(df: pd.DataFrame, keys: Sequence[str], weights=None) -> RiskMeasures:
    """Frequencies, individual risk and global risk of ``df`` on ``keys``.

    Parameters
    ----------
    df
        The records.
    keys
        Key-variable columns (what an intruder may know of a respondent).
    weights
        Sampling weights (a column of ``df`` or one per record); None means ``df`` is
        the whole population and the risk is ``1 / f_k``.

    Returns
    -------
    RiskMeasures

    Notes
    -----
    The global risk is the expected number of re-identifications, the sum of the
    individual risks, and its rate per record (Templ et al. 2015; Hundepool et al.
    2012, sec. 3.3). A record violates ``k``-anonymity when ``f_k < k`` (Sweeney 2002).

    References
    ----------
    Sweeney, L. (2002). k-anonymity: a model for protecting privacy. *International
    Journal of Uncertainty, Fuzziness and Knowledge-Based Systems* 10(5), 557-570.
    Hundepool, A. et al. (2012). *Statistical Disclosure Control*. Wiley.
    """
    keys = tuple(keys)
    freq = frequencies(df, keys, weights)
    risk = individual_risk(freq["fk"], freq["Fk"], weighted=weights is not None)
    records = freq.assign(risk=risk)
    er = float(risk.sum())
    return RiskMeasures(keys, records, er, er / len(df) if len(df) else 0.0)


def local_suppression(
    df: pd.DataFrame,
    keys: Sequence[str],
    k: int = 3,
    *,
    suppressible: Sequence[str] | None = None,
    importance: Sequence[str] | None = None,
    max_rounds: int = 10_000,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Blank key values in the fewest records until every key is shared by ``k`` records.

    Parameters
    ----------
    df
        The records (not modified).
    keys
        Key variables on which k-anonymity must hold.
    k
        Required minimum frequency.
    suppressible
        Key variables that may be blanked (default all); the others (e.g. household
        variables copied onto members) only take part in the counts.
    importance
        Suppressible variables from the one to keep most to the one to blank first.
        Default: by number of categories, most categories blanked first (a blank on
        age loses less than a blank on sex, and separates more records).
    max_rounds
        Safety bound on the rounds of suppression.

    Returns
    -------
    (DataFrame, DataFrame)
        The treated copy, and a boolean frame (``df``'s index, the suppressible
        columns) marking the values set to missing.

    Raises
    ------
    InstrumentError
        If k-anonymity cannot be reached by blanking the suppressible variables (the
        fixed ones alone already single records out).

    Notes
    -----
    Each round, the records with the smallest frequency below ``k`` blank one value
    each: among the variables whose blanking lifts the record to ``k``, the one
    leaving fewest records at risk overall (ties: the least important); if none
    lifts it, the one raising its frequency most. Blanking only ever raises
    frequencies (a missing value matches every category) and each round blanks at
    least one value, so the rounds end.
    This is the greedy heuristic of sdcMicro's ``localSuppression`` (Templ et al.
    2015, sec. 4.2; Hundepool et al. 2012, sec. 3.4.4).
    """
    keys = list(keys)
    sup = list(suppressible if suppressible is not None else keys)
    if importance is not None:
        order = [c for c in reversed(list(importance)) if c in sup]
        order += [c for c in sup if c not in order]
    else:
        order = sorted(sup, key=lambda c: (-df[c].nunique(dropna=True), keys.index(c)))
    out = df.copy()
    flags = pd.DataFrame(False, index=df.index, columns=sup)
    for _ in range(max_rounds):
        fk = frequencies(out, keys)["fk"].to_numpy()
        if (fk >= k).all():
            return out, flags
        # the records most at risk first: fixing them often lifts the others too
        bad = fk == fk[fk < k].min()
        gains = np.full((len(out), len(order)), -1, dtype=np.int64)
        left = np.full(len(order), np.iinfo(np.int64).max)
        for j, c in enumerate(order):
            can = bad & out[c].notna().to_numpy()
            if can.any():
                trial = out.assign(**{c: out[c].where(~pd.array(can))})
                tfk = frequencies(trial, keys)["fk"].to_numpy()
                gains[can, j] = tfk[can]
                left[j] = int((tfk < k).sum())
        # per record: a variable whose blank lifts it to k (the one leaving fewest
        # records at risk overall, then the least important), else the biggest gain
        rank = np.argsort(np.argsort(left, kind="stable"), kind="stable")
        lift_score = np.where(gains >= k, len(order) - rank, 0)
        pick = np.where(lift_score.max(axis=1) > 0, lift_score.argmax(axis=1),
                        gains.argmax(axis=1))
        pick = np.where(gains.max(axis=1, initial=-1) >= 0, pick, -1)
        stuck = bad & (pick < 0)
        if stuck.any():
            raise InstrumentError(
                f"{int(stuck.sum())} record(s) stay below k={k} with every suppressible "
                "key variable blank",
                hint=f"coarsen or blank the fixed key variables "
                     f"{sorted(set(keys) - set(order))}, or lower k",
            )
        for j, c in enumerate(order):
            hit = bad & (pick == j)
            if hit.any():
                out[c] = out[c].where(~pd.array(hit))
                flags[c] = flags[c].to_numpy() | hit
    raise InstrumentError(f"local suppression did not reach k={k} in {max_rounds} rounds")
