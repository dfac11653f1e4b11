"""The bundled questionnaires: markdown sources built into XLSForm workbooks.

Each bundled form lives in ``instruments/forms/<name>.md`` as markdown tables, one per
sheet (the format pyxform's own test-suite uses), so that a change to a question is a
one-line diff a reviewer can read. :func:`build_form` turns a source into the ``.xlsx``
that is uploaded to ODK Central, KoboToolbox or SurveyCTO; the built workbooks are
shipped next to their sources.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from openpyxl import Workbook
from pyxform.xls2json_backends import md_to_dict

from survey.errors import InstrumentError

__all__ = ["BUNDLED_FORMS", "build_form", "form_path", "form_source"]

#: Names of the questionnaires shipped with the package.
BUNDLED_FORMS = ("household", "listing")

_SHEETS = ("survey", "choices", "settings")


def form_source(name: str) -> Path:
    """Path of the markdown source of a bundled form."""
    _check_name(name)
    return Path(str(resources.files("instruments") / "forms" / f"{name}.md"))


def form_path(name: str) -> Path:
    """Path of the built ``.xlsx`` of a bundled form (shipped as package data)."""
    _check_name(name)
    return Path(str(resources.files("instruments") / "forms" / f"{name}.xlsx"))


def _check_name(name: str) -> None:
    if name not in BUNDLED_FORMS:
        raise InstrumentError(
            f"no bundled form called {name!r}",
            hint=f"choose one of {', '.join(BUNDLED_FORMS)}",
        )


def build_form(name: str, path: str | Path) -> Path:
    """Write the XLSForm workbook of a bundled questionnaire.

    Parameters
    ----------
    name
        ``"household"`` or ``"listing"`` (see :data:`BUNDLED_FORMS`).
    path
        Where to write the ``.xlsx``; parent folders are created.

    Returns
    -------
    Path
        The path written.

    Notes
    -----
    The markdown is split into sheets by pyxform's own reader, so the workbook holds
    exactly the cells pyxform would convert from the source. Column order follows the
    source; empty cells stay empty (never the string ``"None"``).
    """
    sheets = md_to_dict(form_source(name).read_text(encoding="utf-8"))
    wb = Workbook()
    wb.remove(wb.active)
    for sheet in _SHEETS:
        if sheet not in sheets:
            continue
        header = list(sheets[f"{sheet}_header"][0]) if sheets.get(f"{sheet}_header") else []
        ws = wb.create_sheet(sheet)
        ws.append(header)
        for row in sheets[sheet]:
            ws.append([row.get(col) for col in header])
        ws.freeze_panes = "A2"
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    wb.save(out)
    return out
