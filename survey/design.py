"""The sample design: which columns hold weights, strata, PSUs and fpc, per stage.

A :class:`Design` is built once, validated at construction, and frozen. Every
estimator and weighting step takes it first and returns new objects. The design
factorises strata and PSU codes once (:class:`Stage`), and every variance estimate
reuses them.

The semantics follow R's ``survey::svydesign`` (Lumley 2004, 2010) so that estimates
and standard errors agree with R to rounding error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import pandas as pd

from survey.errors import DesignError, did_you_mean

if TYPE_CHECKING:
    from survey.replicates import ReplicateInfo

__all__ = ["Calibration", "Design", "LonelyPSU", "Stage"]

LonelyPSU = Literal["fail", "adjust", "average", "certainty", "remove"]
_LONELY = ("fail", "adjust", "average", "certainty", "remove")


class Calibration(Protocol):
    """What a weighting step leaves on a design so that variances account for it.

    The variance engine passes the matrix of weighted influence values ``z``
    (rows x estimates) through each calibration's :meth:`residualize`, in order,
    before summing within PSUs, as R's ``svyrecvar`` does with ``postStrata``.
    """

    def residualize(self, z: np.ndarray) -> np.ndarray:  # pragma: no cover - protocol
        ...


@dataclass(frozen=True, eq=False)
class Stage:
    """Factorised codes of one sampling stage.

    ``group`` is the stratum at this stage, nested in the unit of the stage above
    (as R's ``svydesign`` builds it: stratum x previous-stage cluster); ``unit`` is
    the sampling unit at this stage, unique across the design.
    """

    group: np.ndarray  # (n,) int64 codes 0..G-1
    unit: np.ndarray  # (n,) int64 codes 0..U-1
    unit_group: np.ndarray  # (U,) group of each unit
    n_units: np.ndarray  # (G,) number of sampled units per group (R's sampsize)
    popsize: np.ndarray  # (G,) population units per group; inf when no fpc
    parent: np.ndarray  # (G,) unit code at the stage above (0 at stage 1)
    group_labels: Sequence[str]  # readable stratum names for messages (indexable by group)
    multiplier: np.ndarray  # (G,) product of sampling fractions of stages above

    @property
    def n_groups(self) -> int:
        return len(self.n_units)

    @property
    def n_unit_total(self) -> int:
        return len(self.unit_group)

    @property
    def fpc_factor(self) -> np.ndarray:
        """``1 - n/N`` per group (1 with replacement), R's ``f`` in ``onestrat``."""
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(np.isinf(self.popsize), 1.0, (self.popsize - self.n_units) / self.popsize)
        return f


def _as_list(x: str | Sequence[str | None] | None) -> list[str | None]:
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    return list(x)


def _countable(size: int, n: int) -> bool:
    """Whether integer keys in [0, size) are coded by counting (an array of the key
    space, about the size of the data) rather than by hashing or sorting."""
    return size <= 4 * n + 1024


def _dense_codes(key: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes of integer keys in [0, size) (-1 = none): (codes, sorted unique keys).

    A counting pass when the key space is small, a sort otherwise.
    """
    keep = key >= 0
    if _countable(size, len(key)):
        seen = np.zeros(size + 1, dtype=bool)
        seen[np.where(keep, key, size)] = True
        seen[size] = False
        uniq = np.flatnonzero(seen)
        lookup = np.full(size + 1, -1, dtype=np.int64)
        lookup[uniq] = np.arange(len(uniq))
        return lookup[np.where(keep, key, size)], uniq
    uniq, inv = np.unique(np.where(keep, key, -1), return_inverse=True)
    if len(uniq) and uniq[0] == -1:
        return inv - 1, uniq[1:]
    return inv, uniq


def _codes(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the sorted distinct values (as ``pd.factorize(sort=True)``)."""
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if arr.dtype.kind in "iu" and len(arr):
        lo, hi = int(arr.min()), int(arr.max())
        if _countable(hi - lo + 1, len(arr)):
            codes, uniq = _dense_codes(arr.astype(np.int64) - lo, hi - lo + 1)
            return codes, (uniq + lo).astype(arr.dtype)
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int64), np.asarray(uniques)


def _combine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Codes of the pairs (a, b), dense from 0, in (a, b) order."""
    span = int(b.max()) + 1 if len(b) else 1
    key = a.astype(np.int64) * span + b
    size = (int(a.max()) + 1) * span if len(a) else 0
    if len(key) and _countable(size, len(key)):
        return _dense_codes(key, size)[0]
    codes, _ = pd.factorize(key, sort=True)
    return codes.astype(np.int64)


def _first_rows(codes: np.ndarray) -> np.ndarray:
    """The first row of each code 0..K-1 (every code present), in O(n)."""
    first = np.full(int(codes.max()) + 1 if len(codes) else 0, len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    return first


@dataclass(frozen=True, eq=False)
class Design:
    """A complex sample design over a DataFrame.

    Parameters
    ----------
    data
        One row per sampled unit (household, person).
    weights
        Column of sampling weights. When absent, weights are derived from the fpc
        columns as the product over stages of population over sample counts (as R
        does for ``apiclus2``); with neither, every weight is 1 (with a warning-free
        equal-probability design, as R assumes).
    strata
        A column for stage-1 strata, or a list with one entry per stage (``None``
        where a stage has none).
    psu
        A column of PSU ids, or a list of unit ids per stage. ``None`` with no
        strata means each row is its own unit.
    fpc
        Per stage, a column of population counts (values > 1) or sampling fractions
        (values <= 1), as R's ``svydesign``. Omitted: sampling with replacement.
    lonely_psu
        What to do with a stratum that has one PSU: ``"fail"`` (default) raises;
        ``"adjust"`` centres its PSU total at zero (R's ``survey.lonely.psu="adjust"``,
        which for a total means the whole PSU total counts); ``"average"`` replaces
        its contribution by the average of the other strata; ``"certainty"`` and
        ``"remove"`` let it contribute nothing.
    nest
        PSU ids repeat across strata (1, 2, ... within each stratum): make them
        unique by pairing with the stratum. Without it, a PSU found in two strata is
        an error.

    Notes
    -----
    Variance is Taylor linearisation: the with-replacement (ultimate cluster)
    formula at stage 1, with ``1 - n/N`` factors when fpc is given, plus later-stage
    terms scaled by the earlier sampling fractions when every stage above has an
    fpc (R's ``svyrecvar`` with ``survey.ultimate.cluster = FALSE``).

    References
    ----------
    Lumley, T. (2010). *Complex Surveys: A Guide to Analysis Using R*. Wiley.
    Wolter, K. (2007). *Introduction to Variance Estimation*, 2nd ed. Springer.
    """

    data: pd.DataFrame
    weights: str
    strata: tuple[str | None, ...] = ()
    psu: tuple[str | None, ...] = ()
    fpc: tuple[str | None, ...] = ()
    lonely_psu: LonelyPSU = "fail"
    stages: tuple[Stage, ...] = field(default=(), repr=False)
    calibrations: tuple[Calibration, ...] = field(default=(), repr=False)
    replicates: ReplicateInfo | None = field(default=None, repr=False)
    history: tuple[str, ...] = field(default=(), repr=False)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __init__(
        self,
        data: pd.DataFrame,
        weights: str | None = None,
        strata: str | Sequence[str | None] | None = None,
        psu: str | Sequence[str | None] | None = None,
        fpc: str | Sequence[str | None] | None = None,
        lonely_psu: LonelyPSU = "fail",
        nest: bool = False,
    ) -> None:
        if not isinstance(data, pd.DataFrame):
            raise DesignError(
                f"data must be a pandas DataFrame, got {type(data).__name__}",
                hint="pass the sample as a DataFrame, one row per sampled unit",
            )
        if lonely_psu not in _LONELY:
            raise DesignError(
                f"lonely_psu={lonely_psu!r} is not one of {', '.join(_LONELY)}",
                hint='use "fail" to be told of single-PSU strata, or "adjust"/"average"/"certainty"/"remove"',
            )
        if len(data) == 0:
            raise DesignError("the data has no rows", hint="pass the sampled units")
        strata_l, psu_l, fpc_l = _as_list(strata), _as_list(psu), _as_list(fpc)
        n_stages = max(len(psu_l), len(strata_l), len(fpc_l), 1)
        if len(psu_l) < n_stages:
            psu_l += [None] * (n_stages - len(psu_l))
        if len(strata_l) > n_stages or len(fpc_l) > n_stages:
            raise DesignError(
                f"{len(psu_l)} stage(s) of PSUs but {len(strata_l)} strata and {len(fpc_l)} fpc entries",
                hint="give one entry per stage in psu=, strata= and fpc= lists",
            )
        used = [c for c in [weights, *strata_l, *psu_l, *fpc_l] if c is not None]
        _check_columns(data, used)
        w, stages = _build(data, weights, strata_l, psu_l, fpc_l, n_stages, nest, lonely_psu)
        data = data.copy(deep=False)
        if weights is None:
            weights = "_weight"
            data[weights] = w
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "strata", tuple(strata_l))
        object.__setattr__(self, "psu", tuple(psu_l))
        object.__setattr__(self, "fpc", tuple(fpc_l))
        object.__setattr__(self, "lonely_psu", lonely_psu)
        object.__setattr__(self, "stages", stages)
        object.__setattr__(self, "calibrations", ())
        object.__setattr__(self, "replicates", None)
        object.__setattr__(self, "history", ())
        object.__setattr__(self, "_cache", {})

    # -- construction of derived designs ------------------------------------------

    @classmethod
    def from_replicates(
        cls,
        data: pd.DataFrame,
        weights: str,
        replicate_weights: Sequence[str] | str,
        method: str = "jk1",
        *,
        scale: float | None = None,
        rscales: Sequence[float] | np.ndarray | float | None = None,
        rho: float | None = None,
        mse: bool = False,
        combined_weights: bool = True,
    ) -> Design:
        """A design whose variances come from replicate weights (R's ``svrepdesign``).

        Parameters
        ----------
        data
            The sample, with the full-sample weight and the replicate weight columns.
        weights
            Full-sample weight column.
        replicate_weights
            List of replicate weight columns, or a regular-expression pattern.
        method
            ``"jk1"``, ``"jkn"``, ``"brr"``, ``"fay"``, ``"bootstrap"``, ``"other"``.
        scale, rscales
            Variance is ``scale * sum_r rscales[r] * (theta_r - centre)^2``. Defaults
            as R: jk1 ``(R-1)/R``; brr ``1/R``; fay ``1/(R (1-rho)^2)``; bootstrap
            ``1/(R-1)``; jkn needs ``rscales`` (``(n_h - 1)/n_h`` of the PSU's
            stratum); other ``scale=1``.
        rho
            Fay's coefficient for ``method="fay"``.
        mse
            Centre at the full-sample estimate (True) or at the mean of the
            replicates (False, R's default).
        combined_weights
            Replicate columns already include the sampling weights (R's default).
            When False they are multiplied by the full-sample weight.
        """
        from survey.replicates import replicate_design

        return replicate_design(
            data, weights, replicate_weights, method, scale=scale, rscales=rscales,
            rho=rho, mse=mse, combined_weights=combined_weights,
        )

    def replicate(self, method: str = "jkn", **kwargs: Any) -> Design:
        """Convert to a replicate-weight design (R's ``as.svrepdesign``).

        See :func:`survey.repweights.make_replicates` for methods and options
        (``"jk1"``, ``"jkn"``, ``"brr"``, ``"fay"``, ``"bootstrap"``).
        """
        from survey.repweights import make_replicates

        return make_replicates(self, method, **kwargs)

    def with_weights(
        self,
        values: np.ndarray | pd.Series,
        name: str,
        *,
        calibration: Calibration | None = None,
        step: str | None = None,
        replicate_values: np.ndarray | None = None,
    ) -> Design:
        """A new design whose weights are ``values``, stored in a new column ``name``.

        Earlier weight columns stay in ``data`` for comparison. ``calibration`` is
        appended to the design's calibrations so that linearised variances account
        for the adjustment. For a replicate design, ``replicate_values`` (rows x
        replicates) replaces the replicate weights. Zero weights are allowed here
        (units dropped by an adjustment); negative and non-finite ones are not.
        """
        w = np.asarray(values, dtype=float)
        if w.shape != (len(self.data),):
            raise DesignError(f"new weights have shape {w.shape}, expected ({len(self.data)},)",
                              column=name)
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DesignError(f"new weight is {w[i]} (negative or not finite)", column=name, row=i + 1,
                              hint="a weighting step produced an invalid weight; check its inputs")
        data = self.data.copy(deep=False)
        data[name] = w
        new = self._evolve(data=data, weights=name, history=(*self.history, step or name))
        if calibration is not None:
            object.__setattr__(new, "calibrations", (*self.calibrations, calibration))
        if self.replicates is not None and replicate_values is not None:
            object.__setattr__(new, "replicates", self.replicates.with_weights(replicate_values))
        return new

    # -- derived quantities ------------------------------------------------------------

    @property
    def w(self) -> np.ndarray:
        """The weights as a float array."""
        return self.data[self.weights].to_numpy(dtype=float)

    @property
    def n(self) -> int:
        return len(self.data)

    @property
    def is_replicate(self) -> bool:
        return self.replicates is not None

    @property
    def strata_codes(self) -> np.ndarray:
        """Stage-1 stratum code of every row."""
        return self.stages[0].group

    @property
    def psu_codes(self) -> np.ndarray:
        """Stage-1 PSU code of every row (unique across strata)."""
        return self.stages[0].unit

    def degf(self, mask: np.ndarray | None = None) -> int:
        """Design degrees of freedom: PSUs minus strata at stage 1 (R's ``degf``).

        With ``mask``, only rows with nonzero weight inside the mask count.
        """
        if self.replicates is not None:
            if mask is None:
                if "degf" not in self._cache:  # a rank of the replicate weights: compute once
                    self._cache["degf"] = self.replicates.degf(self)
                return self._cache["degf"]
            return self.replicates.degf(self, mask)
        st = self.stages[0]
        inset = self.w != 0
        if mask is not None:
            inset &= mask
        units = np.bincount(st.unit[inset], minlength=st.n_unit_total) > 0
        groups = np.bincount(st.group[inset], minlength=st.n_groups) > 0
        return int(units.sum() - groups.sum())

    def column(self, name: str) -> pd.Series:
        """A column of the data, with an error that suggests close names."""
        _check_columns(self.data, [name])
        return self.data[name]

    def map(self, fn: Callable[[pd.DataFrame], pd.DataFrame]) -> Design:
        """A design over ``fn(data)``, which must keep the rows and their order."""
        new_data = fn(self.data)
        if len(new_data) != len(self.data):
            raise DesignError("the function changed the number of rows",
                              hint="add columns only; use a domain (by= or a mask) instead of filtering")
        return self._evolve(data=new_data)

    def _evolve(self, **changes: Any) -> Design:
        """A copy with some fields changed, skipping validation (the codes stay valid)."""
        new = object.__new__(Design)
        for f in dataclasses.fields(self):
            object.__setattr__(new, f.name, changes.get(f.name, getattr(self, f.name)))
        # derived values depend on the weights: a changed design starts a fresh cache
        object.__setattr__(new, "_cache", {})
        return new

    def __repr__(self) -> str:
        st = self.stages[0]
        kind = f"replicate ({self.replicates.method}, {self.replicates.n_replicates} replicates)" \
            if self.replicates is not None else f"{len(self.stages)}-stage"
        return (f"<Design {kind}: {self.n} rows, {st.n_groups} strata, {st.n_unit_total} PSUs, "
                f"weights={self.weights!r}, lonely_psu={self.lonely_psu!r}>")


# -- validation and factorisation ---------------------------------------------------------


def _check_columns(data: pd.DataFrame, names: Sequence[str]) -> None:
    for c in names:
        if c not in data.columns:
            raise DesignError("column not found in the data", column=c,
                              hint=did_you_mean(c, data.columns, "check the column name against the data"))


def _check_weights(data: pd.DataFrame, col: str) -> np.ndarray:
    s = data[col]
    if not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):
        raise DesignError(f"weights must be numeric, got dtype {s.dtype}", column=col,
                          hint="convert the weight column to numbers")
    w = s.to_numpy(dtype=float, na_value=np.nan)
    for bad, what in ((np.isnan(w), "missing"), (~np.isfinite(w) & ~np.isnan(w), "infinite"),
                      (w < 0, "negative"), (w == 0, "zero")):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DesignError(
                f"{int(bad.sum())} weight(s) are {what} (first at row {i + 1}: {w[i]})",
                column=col, row=i + 1,
                hint="every sampled unit needs a positive weight; to estimate for part of the "
                     "sample use a domain (by= or a mask), not zero weights",
            )
    return w


def _check_missing(data: pd.DataFrame, col: str, what: str) -> None:
    na = data[col].isna().to_numpy()
    if na.any():
        i = int(np.flatnonzero(na)[0])
        raise DesignError(f"{int(na.sum())} missing value(s) in the {what} column", column=col,
                          row=i + 1, hint=f"every row needs its {what}")


def _fpc_popsize(data: pd.DataFrame, col: str, group: np.ndarray, n_units: np.ndarray,
                 labels: Sequence[str], stage: int) -> np.ndarray:
    """Population size per group from a count or fraction column, checked as R does."""
    s = data[col]
    if not pd.api.types.is_numeric_dtype(s):
        raise DesignError(f"fpc must be numeric, got dtype {s.dtype}", column=col)
    v = s.to_numpy(dtype=float, na_value=np.nan)
    _check_missing(data, col, "fpc")
    if (v <= 0).any():
        i = int(np.flatnonzero(v <= 0)[0])
        raise DesignError(f"fpc is {v[i]}; it must be a population count or a fraction in (0, 1]",
                          column=col, row=i + 1)
    lo = pd.Series(v).groupby(group).agg(["min", "max"])
    varying = np.flatnonzero(lo["min"].to_numpy() != lo["max"].to_numpy())
    if len(varying):
        g = int(lo.index[varying[0]])
        raise DesignError(
            f"fpc varies within a stratum at stage {stage} "
            f"({lo['min'].iloc[varying[0]]} to {lo['max'].iloc[varying[0]]})",
            column=col, stratum=labels[g],
            hint="the fpc is the stratum's population size (or sampling fraction): one value per stratum",
        )
    per_group = lo["max"].reindex(range(len(n_units))).to_numpy()
    # R: any value > 1 means population counts, and then none may be below 1
    is_count = bool((per_group > 1).any())
    if is_count and (per_group < 1).any():
        raise DesignError("fpc mixes population counts (> 1) and sampling fractions (< 1)",
                          column=col, hint="give all counts or all fractions")
    popsize = per_group if is_count else n_units / per_group
    small = popsize < n_units - 1e-9 * n_units
    if small.any():
        g = int(np.flatnonzero(small)[0])
        raise DesignError(
            f"fpc implies more than 100% sampling at stage {stage}: population {popsize[g]:g} "
            f"but {int(n_units[g])} units sampled",
            column=col, stratum=labels[g],
            hint="the fpc must be at least the number of sampled units in the stratum",
        )
    return popsize


def _build(data: pd.DataFrame, weights: str | None, strata: list[str | None], psu: list[str | None],
           fpc: list[str | None], n_stages: int, nest: bool,
           lonely_psu: str) -> tuple[np.ndarray, tuple[Stage, ...]]:
    n = len(data)
    w = _check_weights(data, weights) if weights is not None else None
    parent_unit = np.zeros(n, dtype=np.int64)
    stages: list[Stage] = []
    multiplier_rows = np.ones(n)
    prob = np.ones(n)
    strata_all = strata + [None] * (n_stages - len(strata))
    fpc_all = fpc + [None] * (n_stages - len(fpc))
    has_strata = any(s is not None for s in strata_all)
    for s in range(n_stages):
        scol, ucol, fcol = strata_all[s], psu[s], fpc_all[s]
        if scol is not None:
            _check_missing(data, scol, "strata")
            sc, s_uniq = _codes(data[scol])
        else:
            sc, s_uniq = np.zeros(n, dtype=np.int64), np.array([""], dtype=object)
        group = _combine(parent_unit, sc)
        first = _first_rows(group)
        labels = _GroupLabels(data, s, scol, psu[s - 1] if s else None, first)
        if ucol is not None:
            _check_missing(data, ucol, "PSU" if s == 0 else f"stage-{s + 1} unit")
            uc, u_uniq = _codes(data[ucol])
        else:
            uc, u_uniq = np.arange(n, dtype=np.int64), np.arange(1, n + 1)
        if s == 0 and not nest and scol is not None and ucol is not None:
            _check_nested(uc, sc, u_uniq, s_uniq, ucol, scol)
        if s == 0 and ucol is not None and len(u_uniq) == 1 and not (nest and has_strata):
            raise DesignError("the design has only one PSU", column=ucol,
                              hint="a variance needs at least two PSUs; check the psu= column")
        # units are unique within the parent unit (R's interaction of ids[, 1:i]) and,
        # with nest=True, within the stratum too
        unit = _combine(parent_unit, uc)
        if nest:
            unit = _combine(group, unit)
        elif s > 0 and scol is not None and ucol is not None:
            _check_nested_below(unit, group, data, s, scol, ucol, psu[s - 1])
        unit_first = _first_rows(unit)
        unit_group = group[unit_first]
        n_units = np.bincount(unit_group).astype(float)
        if fcol is not None:
            popsize = _fpc_popsize(data, fcol, group, n_units, labels, s + 1)
        else:
            popsize = np.full(len(n_units), np.inf)
        g_first = first
        stages.append(Stage(
            group=group, unit=unit, unit_group=unit_group, n_units=n_units, popsize=popsize,
            parent=parent_unit[g_first], group_labels=labels,
            multiplier=multiplier_rows[g_first].copy(),
        ))
        # sampling fraction of this stage, for the stage below and derived weights
        frac = n_units / popsize  # 0 when popsize is inf
        multiplier_rows = multiplier_rows * frac[group]
        prob = prob * np.where(np.isinf(popsize), 1.0, frac)[group]
        parent_unit = unit
    if w is None:
        w = 1.0 / prob
    _check_lonely(stages, lonely_psu, psu)
    return w, tuple(stages)


def _check_nested(uc: np.ndarray, sc: np.ndarray, u_uniq: np.ndarray, s_uniq: np.ndarray,
                  ucol: str, scol: str) -> None:
    U = len(u_uniq)
    s_min = np.full(U, len(s_uniq), dtype=np.int64)
    s_max = np.full(U, -1, dtype=np.int64)
    np.minimum.at(s_min, uc, sc)
    np.maximum.at(s_max, uc, sc)
    split = np.flatnonzero(s_min != s_max)  # PSUs found in more than one stratum
    if len(split):
        u = int(split[0])
        in_strata = sorted(str(s_uniq[x]) for x in np.unique(sc[uc == u]))
        raise DesignError(
            f"PSU is not nested in strata: it appears in strata {', '.join(in_strata)}",
            column=ucol, psu=str(u_uniq[u]),
            hint=f"if PSU ids restart within each {scol!r}, pass nest=True",
        )


def _check_nested_below(unit: np.ndarray, group: np.ndarray, data: pd.DataFrame, s: int,
                        scol: str, ucol: str, parent_col: str | None) -> None:
    """Units of a later stage must each lie in one of that stage's strata."""
    U = int(unit.max()) + 1
    g_min = np.full(U, np.iinfo(np.int64).max, dtype=np.int64)
    g_max = np.full(U, -1, dtype=np.int64)
    np.minimum.at(g_min, unit, group)
    np.maximum.at(g_max, unit, group)
    split = np.flatnonzero(g_min != g_max)
    if len(split):
        rows = np.flatnonzero(unit == split[0])
        r = int(rows[0])
        in_strata = sorted({str(x) for x in data[scol].to_numpy()[rows]})
        where = f" in {parent_col} {data[parent_col].iloc[r]!s}" if parent_col else ""
        raise DesignError(
            f"stage-{s + 1} unit {data[ucol].iloc[r]!s}{where} is not nested in the stage-{s + 1} "
            f"strata: it appears in strata {', '.join(in_strata)}",
            column=ucol, row=r + 1,
            hint=f"if {ucol!r} ids restart within each {scol!r}, pass nest=True; otherwise check the ids")


def _check_lonely(stages: Sequence[Stage], lonely_psu: str, psu: Sequence[str | None]) -> None:
    if lonely_psu != "fail":
        return
    for s, st in enumerate(stages):
        # a single unit taken with certainty (n == N) contributes no variance: R allows it
        lonely = (st.n_units == 1) & ~(st.fpc_factor < 1e-7)
        # later stages only count when the stage above has an fpc (R's recursion)
        if s > 0:
            lonely &= st.multiplier > 0
        if lonely.any():
            g = int(np.flatnonzero(lonely)[0])
            raise DesignError(
                f"stratum has only one PSU at stage {s + 1} ({int(lonely.sum())} such strata)",
                stratum=st.group_labels[g],
                hint='a variance needs two PSUs per stratum: collapse strata, or choose '
                     'lonely_psu="adjust", "average", "certainty" or "remove"',
            )


class _GroupLabels(Sequence[str]):
    """Readable names of the strata of one stage, made only when a message needs one."""

    def __init__(self, data: pd.DataFrame, stage: int, strata_col: str | None,
                 parent_col: str | None, first_row: np.ndarray) -> None:
        self._data, self._stage, self._s, self._p, self._first = data, stage, strata_col, parent_col, first_row

    def __len__(self) -> int:
        return len(self._first)

    def __getitem__(self, g):  # type: ignore[override]
        i = int(self._first[g])
        name = str(self._data[self._s].iloc[i]) if self._s is not None else ""
        if self._stage == 0:
            return name or "(no strata)"
        parent = f"{self._p} {self._data[self._p].iloc[i]}" if self._p is not None else f"row {i + 1}"
        return f"{name} within {parent}" if name else parent
