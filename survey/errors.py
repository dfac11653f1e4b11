"""One error hierarchy for the whole toolkit.

Every error a user can cause is a :class:`SurveyError`. Its message says *where*
(file, sheet, row, column, stratum, PSU), *what* was expected versus what was found,
and *what to do*. The CLI prints ``str(err)`` without a traceback and exits with
:data:`USER_ERROR_EXIT`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "ConfigError",
    "did_you_mean",
    "DesignError",
    "EstimationError",
    "InstrumentError",
    "SamplingError",
    "StoreError",
    "SurveyError",
    "SurveyWarning",
    "WeightingError",
]

#: Exit code of the CLI for a user error (bad input, bad configuration).
USER_ERROR_EXIT = 2
#: Exit code of the CLI for an internal failure (a bug: please report it).
FAILURE_EXIT = 1

_WHERE = ("file", "sheet", "row", "column", "stratum", "psu", "key", "field")


class SurveyError(Exception):
    """Base class of every user-facing error.

    Parameters
    ----------
    message
        What went wrong, in one sentence.
    hint
        What the user should do about it.
    **where
        Location of the problem: any of ``file``, ``sheet``, ``row``, ``column``,
        ``stratum``, ``psu``, ``key``, ``field``. Stored as attributes and printed
        as a prefix.
    """

    def __init__(self, message: str, *, hint: str | None = None, **where: Any) -> None:
        unknown = set(where) - set(_WHERE)
        if unknown:  # a programming error, not a user error
            raise TypeError(f"unknown location keys {sorted(unknown)}")
        self.message = message
        self.hint = hint
        self.where = {k: where[k] for k in _WHERE if where.get(k) is not None}
        for k in _WHERE:
            setattr(self, k, where.get(k))
        super().__init__(self._render())

    def _render(self) -> str:
        loc = ", ".join(f"{k} {v!r}" if isinstance(v, str) else f"{k} {v}" for k, v in self.where.items())
        text = f"{loc}: {self.message}" if loc else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


def did_you_mean(name: object, choices: Iterable[object], otherwise: str | None = None) -> str | None:
    """A hint naming up to three close matches of ``name`` among ``choices``
    ("did you mean 'a', 'b'?"), or ``otherwise`` when none is close."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=3)
    return f"did you mean {', '.join(repr(c) for c in close)}?" if close else otherwise


class DesignError(SurveyError):
    """The sample design is invalid (columns, weights, strata, PSUs, fpc)."""


class EstimationError(SurveyError):
    """An estimate cannot be computed from the design and variables given."""


class SamplingError(SurveyError):
    """Frame, allocation, listing or selection input is invalid."""


class InstrumentError(SurveyError):
    """A questionnaire (XLSForm) or a field-data export cannot be read."""


class WeightingError(SurveyError):
    """A weighting step (nonresponse, calibration, trimming, replicates) failed."""


class ConfigError(SurveyError):
    """``survey.toml`` or a command-line option is invalid."""


class StoreError(SurveyError):
    """The project store is missing, corrupt, or a stage ran out of order."""


class SurveyWarning(UserWarning):
    """A recoverable problem the user should know about (e.g. collapsed cells)."""
