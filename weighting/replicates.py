"""Re-running the weighting chain on every replicate, and exporting replicate weights."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from survey.design import Design
from survey.errors import WeightingError
from survey.repweights import make_replicates

__all__ = ["export_replicates", "rerun_on_replicates"]

Step = Callable[[Design], Design] | tuple


def rerun_on_replicates(design: Design, steps: Sequence[Step], method: str = "jkn", **replicate_options) -> Design:
    """Make replicate weights from the base-weight design, then run every weighting
    step on the full sample and on every replicate.

    Parameters
    ----------
    design
        The design with base weights (before nonresponse, calibration, trimming).
    steps
        The weighting chain, in order: callables ``Design -> Design`` (e.g.
        ``lambda d: weighting.rake(d, margins)``) or ``(function, {keyword: value})``
        pairs such as ``(weighting.nonresponse, {"responded": "resp", "cells": ["h"]})``.
    method, **replicate_options
        Passed to :func:`survey.repweights.make_replicates` (``"jkn"``, ``"jk1"``,
        ``"brr"``, ``"fay"``, ``"bootstrap"`` with ``replicates=`` and ``rng=``).

    Returns
    -------
    Design
        The final design, whose replicate weights went through the same chain, so
        that replicate SEs reflect nonresponse adjustment, calibration and trimming.

    Notes
    -----
    Each step adjusts all replicates at once (one array operation per cell or
    margin; Newton systems for calibration are batched), as R's ``svrepdesign``
    methods of ``postStratify``/``rake``/``calibrate`` do one replicate at a time.
    :func:`weighting.nonresponse` with ``method="propensity"`` refits the response
    model and recomputes the propensity classes on every replicate (its default
    ``refit="each"``; the R fits are one batched Newton iteration); ``refit="once"``
    keeps the full-sample classes, which leaves their variability out of the SEs.
    A nonresponse cell left without respondents by a replicate is collapsed in that
    replicate under ``collapse="next"``.

    References
    ----------
    Valliant, R. (2004). The effect of multiple weighting steps on variance
    estimation. *J. Off. Stat.* 20, 1-18.
    Wolter (2007), ch. 4.
    """
    d = make_replicates(design, method, **replicate_options)
    for i, step in enumerate(steps):
        if callable(step):
            d = step(d)
        elif isinstance(step, tuple) and step and callable(step[0]):
            fn, *rest = step
            kwargs = rest[-1] if rest and isinstance(rest[-1], dict) else {}
            args = rest[0] if rest and isinstance(rest[0], tuple | list) else ()
            d = fn(d, *args, **kwargs)
        else:
            raise WeightingError(f"step {i + 1} is not a function or a (function, options) pair")
        if not isinstance(d, Design) or d.replicates is None:
            raise WeightingError(f"step {i + 1} did not return a replicate design",
                                 hint="each step takes a Design and returns the adjusted Design")
    return d


def export_replicates(design: Design, path: str | Path | None = None, *, prefix: str = "repw_",
                      keep: Sequence[str] = ()) -> pd.DataFrame:
    """The final weight and the replicate weights as columns, for Stata, SPSS or CSV users.

    Parameters
    ----------
    design
        A replicate design.
    path
        Optional file: ``.dta`` (Stata), ``.sav`` (SPSS, via pyreadstat), ``.csv`` or
        ``.parquet``.
    prefix
        Names of the replicate columns: ``repw_1 ... repw_R``.
    keep
        Other columns of the data to include (ids, strata).

    Returns
    -------
    DataFrame
        ``keep`` columns, the weight, and the replicate columns. ``attrs`` holds the
        method, ``scale``, ``rscales`` and the Stata ``svyset`` command.
    """
    info = design.replicates
    if info is None:
        raise WeightingError("the design has no replicate weights",
                             hint='make them with design.replicate("jkn") or rerun_on_replicates()')
    R = info.n_replicates
    names = [f"{prefix}{i + 1}" for i in range(R)]
    out = pd.concat([design.data[list(keep)].reset_index(drop=True),
                     pd.DataFrame({design.weights: design.w}),
                     pd.DataFrame(info.weights, columns=names)], axis=1)
    mse = " mse" if info.mse else ""
    if info.method in ("jk1", "jkn"):
        mult = " ".join(f"{x:.12g}" for x in info.scale * info.rscales)
        vce = f"vce(jackknife) jkrweight({names[0]}-{names[-1]}, multiplier({mult})){mse}"
    elif info.method in ("brr", "fay"):
        fay = f" fay({info.rho:g})" if info.rho else ""
        vce = f"vce(brr) brrweight({names[0]}-{names[-1]}){fay}{mse}"
    else:
        vce = f"vce(bootstrap) bsrweight({names[0]}-{names[-1]}){mse}"
    out.attrs.update(method=info.method, scale=info.scale, rscales=np.asarray(info.rscales).tolist(),
                     svyset=f"svyset [pw={design.weights}], {vce}")
    if path is not None:
        p = Path(path)
        suffix = p.suffix.lower()
        plain = pd.DataFrame(out)
        plain.attrs = {}
        if suffix == ".dta":
            plain.to_stata(p, write_index=False, data_label=out.attrs["svyset"][:80])
        elif suffix == ".sav":
            import pyreadstat

            pyreadstat.write_sav(plain, str(p))
        elif suffix == ".csv":
            plain.to_csv(p, index=False)
        elif suffix == ".parquet":
            plain.to_parquet(p, index=False)
        else:
            raise WeightingError(f"unknown export format {suffix!r}", hint="use .dta, .sav, .csv or .parquet")
    return out
