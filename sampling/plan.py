"""Sample size and the cost of oversampling migrant households.

``plan`` turns per-stratum inputs (households, EAs, expected share of each migration
group, outcome, intra-EA correlation, response rate, costs) and a design (number of
EAs, take per group per EA) into the expected sample: EAs per stratum, households per
group per EA, effective sample sizes, margins of error of a national estimate and of
the migrant minus non-migrant difference, the Kish design effect and the cost.
``tradeoff`` walks from a proportional to an equal split between groups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from survey.errors import SamplingError

from .allocation import Method, _per_stratum, allocate

__all__ = ["SamplePlan", "kish_deff", "plan", "tradeoff", "tradeoff_figure", "weighting_deff"]

GROUPS = ("emigrant", "returnee", "none")
MIGRANT = ("emigrant", "returnee")


def kish_deff(population_shares: Sequence[float], sample_shares: Sequence[float]) -> float:
    """Kish design effect of disproportionate allocation: ``sum_g W_g**2 / k_g``.

    Parameters
    ----------
    population_shares
        W_g, the share of each group in the population (summing to 1).
    sample_shares
        k_g, the share of each group in the sample (summing to 1).

    Notes
    -----
    With weights constant within groups, ``w_g = W_g / k_g`` up to a constant, and
    ``sum W_g^2 / k_g = n sum w^2 / (sum w)^2 = 1 + CV^2(w)``: the variance inflation of
    a mean of a variable with the same variance in every group. Migrant households at
    10% of the population sampled half and half: 0.1^2/0.5 + 0.9^2/0.5 = 1.64.

    References
    ----------
    Kish, L. (1965). *Survey Sampling*, section 11.7. Kish, L. (1992). Weighting for
    unequal P_i. *Journal of Official Statistics* 8, 183-200.
    """
    w = np.asarray(population_shares, dtype=float)
    k = np.asarray(sample_shares, dtype=float)
    if w.shape != k.shape or (k <= 0).any() or (w < 0).any():
        raise SamplingError(
            "shares must be paired, non-negative, and sample shares positive",
            hint="give one population and one sample share per group",
        )
    return float((w / w.sum()) ** 2 @ (1 / (k / k.sum())))


def weighting_deff(weights: Sequence[float]) -> float:
    """Kish design effect of unequal weights: ``n sum(w^2) / (sum w)^2 = 1 + CV^2(w)``.

    The CV uses the population standard deviation of the weights (divisor n).
    """
    w = np.asarray(weights, dtype=float)
    return float(len(w) * (w @ w) / w.sum() ** 2)


@dataclass(frozen=True)
class SamplePlan:
    """Expected sample of a design.

    Attributes
    ----------
    strata
        One row per stratum and group: ``eas`` allocated, expected listed households
        per EA ``L``, sampled ``m`` and respondents ``r`` per EA, respondents ``n``,
        population households ``N``.
    groups
        One row per group, plus ``migrant`` (emigrant and returnee) and ``all``:
        respondents ``n``, weighting deff, cluster deff, effective ``n_eff``, ``moe``.
    summary
        Scalars: ``eas``, ``households`` sampled, ``respondents``, ``moe_national``,
        ``moe_difference``, ``kish_deff`` (sum W_g^2/k_g), ``deff_weighting`` (all
        strata and groups), ``cost``.
    """

    strata: pd.DataFrame
    groups: pd.DataFrame
    summary: dict


def _share_table(table: pd.DataFrame, shares, stratum: str, groups: Sequence[str]) -> np.ndarray:
    """Shares of each group in each stratum, H x G, summing to one per stratum."""
    shares = shares or {g: f"share_{g}" for g in groups}
    out = np.full((len(table), len(groups)), np.nan)
    for j, g in enumerate(groups):
        v = shares.get(g)
        last = j == len(groups) - 1
        if v is None or (last and isinstance(v, str) and v not in table.columns):
            continue  # the last group's share is one minus the others
        out[:, j] = _per_stratum(v, table, stratum, f"share of {g}")
    last = np.isnan(out[:, -1])
    if last.any():
        out[last, -1] = 1 - np.nansum(out[last, :-1], axis=1)
    if np.isnan(out).any():
        raise SamplingError(
            "a group share is missing", hint=f"give shares for {', '.join(groups[:-1])}"
        )
    bad = (out < 0).any(axis=1) | ~np.isclose(out.sum(axis=1), 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SamplingError(
            f"group shares must be between 0 and 1 and sum to 1, got {out[i].round(4).tolist()}",
            stratum=str(table[stratum].iloc[i]),
            hint="check the expected migrant shares",
        )
    return out


def plan(
    strata: pd.DataFrame,
    n_eas: int | None,
    take: Mapping[str, float],
    *,
    stratum: str = "stratum",
    size: str = "households",
    eas: str = "eas",
    shares: Mapping[str, object] | None = None,
    p: float | Mapping[str, float] = 0.5,
    sd: float | Mapping[str, float] | None = None,
    icc: float = 0.05,
    deff: float | None = None,
    response_rate: float | object = 0.9,
    cost_ea: float | object = 0.0,
    cost_hh: float | object = 0.0,
    allocation: Method = "proportional",
    minimum: int = 2,
    confidence: float = 0.95,
    target_moe: float | None = None,
    groups: Sequence[str] = GROUPS,
    migrant: Sequence[str] = MIGRANT,
) -> SamplePlan:
    """Expected sample sizes, precision and cost of a two-stage migration survey design.

    Parameters
    ----------
    strata
        One row per stratum: ``stratum``, ``households`` (M_h), ``eas`` (number of EAs)
        and the expected share of each group, by default in columns ``share_emigrant``,
        ``share_returnee`` (and ``share_none``, else one minus the others).
    n_eas
        Total EAs, allocated to strata with ``allocation`` and ``minimum``. With
        ``n_eas=None`` and ``target_moe``, the smallest number of EAs whose margin of
        error of the migrant minus non-migrant difference is at most ``target_moe``.
    take
        Households to sample per EA in each group (a fixed take; an EA with fewer
        listed households of a group is expected to give all of them).
    shares
        Mapping group -> column name, mapping stratum -> share, or a number.
    p, sd
        Outcome: a proportion (variance p(1-p)) or a standard deviation (for a mean),
        one value or one per group.
    icc, deff
        Intra-EA correlation (cluster deff = 1 + (b - 1) icc with b respondents per
        EA in the domain), or a cluster design effect used as given.
    response_rate, cost_ea, cost_hh
        Expected household response rate; cost of listing an EA (including travel);
        cost per household interviewed. A number, a column or a mapping per stratum.
    confidence
        Confidence level of the margins of error (default 95%).

    Returns
    -------
    SamplePlan

    Notes
    -----
    Respondents of group g in stratum h: n_hg = a_h min(take_g, L_hg) r_h, with a_h EAs
    and L_hg = (M_h / E_h) share_hg the expected listing per EA. Weights are constant
    within stratum x group (N_hg / n_hg), so the weighting design effect of a domain is
    n sum_hg N_hg^2 / n_hg / N^2 (Kish 1992); the cluster effect is 1 + (b - 1) icc.
    The effective sample size is n / (deff_w deff_c), and the margin of error
    z sqrt(S^2 / n_eff). The difference between migrant and non-migrant households
    treats the two means as independent, which overstates its variance slightly when
    they share EAs (conservative). Finite population corrections are ignored.

    References
    ----------
    Kish, L. (1965). *Survey Sampling*, sections 5.4 and 11.7.
    Valliant, R., Dever, J. A. and Kreuter, F. (2018). *Practical Tools for Designing
    and Weighting Survey Samples*, 2nd ed., chapters 9-10.
    """
    if n_eas is None:
        if target_moe is None:
            raise SamplingError("give n_eas or target_moe", hint="n_eas=100, or target_moe=0.05")
        return _search(strata, take, target_moe, locals())
    table = strata.reset_index(drop=True)
    groups = list(groups)
    if set(take) - set(groups):
        raise SamplingError(
            f"take names unknown groups {sorted(set(take) - set(groups))}",
            hint=f"groups are {groups}",
        )
    alloc = allocate(
        table, int(n_eas), allocation, stratum=stratum, size=size, eas=eas, minimum=minimum
    )
    if eas not in table.columns:
        raise SamplingError(
            f"strata table has no column {eas!r} (number of EAs)",
            column=eas,
            hint="build it with sampling.strata_summary(frame)",
        )
    a = alloc["n"].to_numpy(dtype=float)
    M = _per_stratum(size, table, stratum, "households")
    E = _per_stratum(eas, table, stratum, "eas")
    W = _share_table(table, shares, stratum, groups)  # H x G
    rr = (
        _per_stratum(response_rate, table, stratum, "response_rate")
        if isinstance(response_rate, (str, Mapping))
        else np.full(len(table), float(response_rate))
    )
    if ((rr <= 0) | (rr > 1)).any():
        raise SamplingError("response_rate must be in (0, 1]", hint="e.g. 0.9")
    t = np.array([float(take.get(g, 0)) for g in groups])
    L = (M / E)[:, None] * W  # expected listed per EA
    m = np.minimum(t[None, :], L)
    r = m * rr[:, None]
    n_hg = a[:, None] * r
    N_hg = M[:, None] * W

    def domain(cols: list[int]) -> dict:
        n = n_hg[:, cols]
        N = N_hg[:, cols]
        nt, Nt = n.sum(), N.sum()
        if nt <= 0:
            return {"n": 0.0, "N": Nt, "deff_w": np.nan, "deff_c": np.nan, "n_eff": 0.0}
        has = n > 0
        deff_w = (
            nt * (N[has] ** 2 / n[has]).sum() / Nt**2 if np.isclose(N[has].sum(), Nt) else np.inf
        )
        b = nt / a.sum()  # respondents of the domain per EA
        deff_c = float(deff) if deff is not None else 1 + (b - 1) * icc
        return {
            "n": nt,
            "N": Nt,
            "deff_w": deff_w,
            "deff_c": deff_c,
            "n_eff": nt / (deff_w * deff_c),
        }

    idx = {g: j for j, g in enumerate(groups)}
    rows = {g: domain([idx[g]]) for g in groups}
    rows["migrant"] = domain([idx[g] for g in migrant])
    rows["all"] = domain(list(range(len(groups))))
    gtab = pd.DataFrame.from_dict(rows, orient="index").rename_axis("group").reset_index()

    Wg = N_hg.sum(axis=0) / N_hg.sum()
    if sd is not None:
        var = {g: (sd[g] if isinstance(sd, Mapping) else sd) ** 2 for g in groups}
        var["migrant"] = np.average(
            [var[g] for g in migrant], weights=Wg[[idx[g] for g in migrant]]
        )
        var["all"] = float(np.average([var[g] for g in groups], weights=Wg))
    else:
        pg = {g: float(p[g] if isinstance(p, Mapping) else p) for g in groups}
        pm = float(np.average([pg[g] for g in migrant], weights=Wg[[idx[g] for g in migrant]]))
        pa = float(np.average([pg[g] for g in groups], weights=Wg))
        var = {g: pg[g] * (1 - pg[g]) for g in groups} | {
            "migrant": pm * (1 - pm),
            "all": pa * (1 - pa),
        }
    z = stats.norm.ppf(0.5 + confidence / 2)
    gtab["variance"] = gtab["group"].map(var).astype(float)
    with np.errstate(divide="ignore"):
        gtab["moe"] = z * np.sqrt(gtab["variance"] / gtab["n_eff"])
    non = [g for g in groups if g not in migrant]
    nonrow = domain([idx[g] for g in non])
    var_non = float(np.average([var[g] for g in non], weights=Wg[[idx[g] for g in non]]))
    moe_diff = z * np.sqrt(var["migrant"] / rows["migrant"]["n_eff"] + var_non / nonrow["n_eff"])

    cea = _per_stratum(cost_ea, table, stratum, "cost_ea")
    chh = _per_stratum(cost_hh, table, stratum, "cost_hh")
    cost = float(a @ cea + n_hg.sum(axis=1) @ chh)
    kshares = n_hg.sum(axis=0)
    summary = {
        "eas": int(a.sum()),
        "households": float((a[:, None] * m).sum()),
        "respondents": float(n_hg.sum()),
        "moe_national": float(gtab.loc[gtab["group"] == "all", "moe"].iloc[0]),
        "moe_difference": float(moe_diff),
        "kish_deff": kish_deff(Wg, kshares) if (kshares > 0).all() else float("inf"),
        "deff_weighting": float(rows["all"]["deff_w"]),
        "cost": cost,
    }
    long = pd.DataFrame(
        {
            stratum: np.repeat(table[stratum].to_numpy(), len(groups)),
            "group": np.tile(groups, len(table)),
            "eas": np.repeat(a.astype(int), len(groups)),
            "L": L.ravel(),
            "m": m.ravel(),
            "r": r.ravel(),
            "n": n_hg.ravel(),
            "N": N_hg.ravel(),
        }
    )
    return SamplePlan(strata=long, groups=gtab, summary=summary)


def _search(strata: pd.DataFrame, take, target: float, kw: dict) -> SamplePlan:
    """Smallest number of EAs whose difference MOE is at most ``target`` (bisection)."""
    kw = {k: v for k, v in kw.items() if k not in ("strata", "n_eas", "take", "target_moe")}
    E = strata[kw["eas"]].to_numpy()
    lo, hi = int(np.minimum(kw["minimum"], E).sum()), int(E.sum())
    best = plan(strata, hi, take, **kw)
    if best.summary["moe_difference"] > target:
        raise SamplingError(
            f"even all {hi} EAs give a difference MOE of {best.summary['moe_difference']:.4f} "
            f"> {target}",
            hint="raise the take per group or accept a larger margin",
        )
    lo = max(lo, 1)
    while lo < hi:
        mid = (lo + hi) // 2
        if plan(strata, mid, take, **kw).summary["moe_difference"] <= target:
            hi = mid
        else:
            lo = mid + 1
    return plan(strata, hi, take, **kw)


def tradeoff(
    strata: pd.DataFrame,
    n_eas: int,
    per_ea: float,
    *,
    steps: int = 11,
    groups: Sequence[str] = GROUPS,
    **kwargs,
) -> pd.DataFrame:
    """Precision and cost from a proportional to an equal split of each EA's take.

    At step ``s`` in [0, 1], group g gets ``per_ea ((1 - s) W_g + s / G)`` households
    per EA, W_g its national share: s = 0 is self-weighting, s = 1 the equal take
    (7 + 7 + 7 of 21). Other keywords go to :func:`plan`.

    Returns
    -------
    pandas.DataFrame
        One row per step: ``split``, ``take_<group>``, ``n_eff_<group>``,
        ``moe_national``, ``moe_difference``, ``kish_deff``, ``cost``.
    """
    groups = list(groups)
    table = strata.reset_index(drop=True)
    W = _share_table(table, kwargs.get("shares"), kwargs.get("stratum", "stratum"), groups)
    M = table[kwargs.get("size", "households")].to_numpy(dtype=float)
    Wg = (M[:, None] * W).sum(axis=0) / M.sum()
    rows = []
    for s in np.linspace(0.0, 1.0, steps):
        take = dict(zip(groups, per_ea * ((1 - s) * Wg + s / len(groups))))
        pl_ = plan(table, n_eas, take, groups=groups, **kwargs)
        g = pl_.groups.set_index("group")
        row = {"split": s} | {f"take_{k}": v for k, v in take.items()}
        row |= {f"n_eff_{k}": g.loc[k, "n_eff"] for k in [*groups, "migrant", "all"]}
        row |= {k: pl_.summary[k] for k in ("moe_national", "moe_difference", "kish_deff", "cost")}
        rows.append(row)
    return pd.DataFrame(rows)


def tradeoff_figure(table: pd.DataFrame):
    """Plotly figure of a :func:`tradeoff` table: both margins of error and the cost."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(
            x=table["split"],
            y=table["moe_national"],
            name="MOE, national estimate",
            mode="lines+markers",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=table["split"],
            y=table["moe_difference"],
            name="MOE, migrant minus non-migrant",
            mode="lines+markers",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=table["split"], y=table["cost"], name="cost", mode="lines", line={"dash": "dot"}
        ),
        secondary_y=True,
    )
    fig.update_xaxes(
        title_text="split of each EA's take: 0 = proportional, 1 = equal between groups"
    )
    fig.update_yaxes(title_text="margin of error", secondary_y=False)
    fig.update_yaxes(title_text="cost", secondary_y=True)
    fig.update_layout(title="National precision versus migrant comparison", template="plotly_white")
    return fig
