"""Stata/SPSS files with variable and value labels, and the Excel codebook."""

import pandas as pd
import pyreadstat
import pytest
from openpyxl import load_workbook

from instruments.importer import import_raw
from instruments.labelled import write_codebook, write_spss, write_stata
from survey.errors import InstrumentError

from .conftest import TODAY


@pytest.fixture(scope="module")
def result(household, messy_raw):
    return import_raw(messy_raw, household, today=TODAY)


@pytest.mark.parametrize("write,read", [(write_stata, pyreadstat.read_dta),
                                        (write_spss, pyreadstat.read_sav)])
def test_labels_in_the_chosen_language(result, tmp_path, write, read):
    paths = write(result, tmp_path, language="French (fr)")
    assert set(paths) == {"household", "members", "emigrants"}
    df, meta = read(str(paths["household"]))
    assert len(df) == len(result.tables["household"])
    labels = dict(zip(meta.column_names, meta.column_labels))
    assert labels["hh_size"].startswith("Combien de personnes")
    assert labels["rem_uses__food"].endswith("Alimentation et besoins courants")
    vl = meta.variable_value_labels["visit_result"]
    assert vl[1] == "Complété" and vl[3] == "Refus"
    codes = df["visit_result"].map(vl)
    typed = result.tables["household"]["visit_result"].astype(str)
    fr = {c.name: c.labels["French (fr)"]
          for c in result.form.by_name("visit_result").choices.choices}
    assert (codes.fillna("nan").to_numpy() == typed.map(fr).fillna("nan").to_numpy()).all()
    m, _ = read(str(paths["members"]))
    ages = result.tables["members"]["age"].astype("Float64").to_numpy(dtype=float)
    assert pd.Series(m["age"]).equals(pd.Series(ages, name="age"))


def test_direct_identifiers_can_be_left_out(result, tmp_path):
    paths = write_stata(result, tmp_path, drop_direct=True)
    df, _ = pyreadstat.read_dta(str(paths["household"]))
    for col in ("respondent_name", "respondent_phone", "gps__latitude", "comments"):
        assert col not in df.columns
    assert "hh_size" in df.columns and "stratum" in df.columns


def test_unknown_language(result, tmp_path):
    with pytest.raises(InstrumentError, match="English"):
        write_spss(result, tmp_path, language="Klingon")


def test_codebook(result, household, tmp_path):
    path = write_codebook(household, tmp_path / "codebook.xlsx", result)
    wb = load_workbook(path)
    assert wb.sheetnames == ["variables", "choices", "ledger", "problems"]
    rows = list(wb["variables"].values)
    head = rows[0]
    byname = {r[1]: dict(zip(head, r)) for r in rows[1:]}
    assert byname["respondent_phone"]["privacy"] == "direct"
    assert byname["age"]["privacy"] == "key" and byname["age"]["table"] == "members"
    assert byname["rem_amount"]["label::French (fr)"].startswith("Montant")
    assert byname["hh_size"]["answered"] == int(result.tables["household"]["hh_size"].notna().sum())
    led = list(wb["ledger"].values)
    assert led[0][:5] == ("table", "read", "kept", "quarantined", "duplicates")
