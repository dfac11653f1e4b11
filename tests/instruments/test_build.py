"""The bundled questionnaires convert with pyxform and carry what the survey needs."""

import pytest
from openpyxl import load_workbook
from pyxform.xls2xform import convert

from instruments.build import BUNDLED_FORMS, build_form, form_path, form_source
from survey.errors import InstrumentError

PRELOAD = ["name", "label", "hh_id", "ea_id", "stratum", "group", "L_hig", "m_hig", "pi1", "pi2"]


@pytest.mark.parametrize("name", BUNDLED_FORMS)
def test_bundled_workbook_converts_without_warnings(name):
    result = convert(xlsform=str(form_path(name)))
    assert result.warnings == []
    assert "<h:html" in result.xform and 'lang="French (fr)"' in result.xform


@pytest.mark.parametrize("name", BUNDLED_FORMS)
def test_build_reproduces_the_shipped_workbook(name, tmp_path):
    out = build_form(name, tmp_path / f"{name}.xlsx")
    built = {ws.title: list(ws.values) for ws in load_workbook(out)}
    shipped = {ws.title: list(ws.values) for ws in load_workbook(form_path(name))}
    assert built == shipped
    assert convert(xlsform=str(out)).xform == convert(xlsform=str(form_path(name))).xform


def test_household_preloads_every_sampling_column_with_pulldata():
    text = form_source("household").read_text(encoding="utf-8")
    assert "select_one_from_file households.csv | hh_id" in text
    for col in PRELOAD[3:]:
        assert f"pulldata('households', '{col}', 'name', ${{hh_id}})" in text


def test_unknown_bundled_form_is_an_instrument_error():
    with pytest.raises(InstrumentError, match="household, listing"):
        form_path("census")
