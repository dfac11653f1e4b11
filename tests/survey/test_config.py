"""Tests of survey.toml parsing and validation."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from survey.config import (
    CONFIG_FILE,
    Config,
    FrameSection,
    SurveySection,
    default_config_text,
    load_config,
    parse_config,
)
from survey.errors import ConfigError

MINIMAL = '[survey]\ncountry = "Testland"\n[frame]\nfile = "data/frame.csv"\n'


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / CONFIG_FILE
    p.write_text(text, encoding="utf-8")
    return p


def test_default_text_parses_to_the_schema_defaults():
    cfg = parse_config(tomllib.loads(default_config_text("Georgia")))
    expected = Config(
        survey=SurveySection(country="Georgia",
                             title="Georgia migration and development household survey"),
        frame=FrameSection(file="data/frame.csv"),
    )
    assert cfg == expected
    assert dict(cfg.takes) == {"emigrant": 7, "returnee": 7, "none": 7}
    assert cfg.groups == ("emigrant", "returnee", "none")
    assert cfg.indicators.remittance_recall_months == 12
    assert cfg.indicators.school_age == (6, 17)
    assert cfg.indicators.school_age_bands == ((6, 11), (12, 14), (15, 17))


def test_minimal_file_gets_defaults_and_root(tmp_path):
    cfg = load_config(_write(tmp_path, MINIMAL))
    assert cfg.survey.country == "Testland"
    assert cfg.allocation.method == "proportional"
    assert cfg.root == tmp_path
    assert cfg.path(cfg.frame.file) == tmp_path / "data" / "frame.csv"
    # a folder is accepted as well as the file
    assert load_config(tmp_path) == cfg


def test_config_is_frozen(tmp_path):
    cfg = load_config(_write(tmp_path, MINIMAL))
    with pytest.raises(AttributeError):
        cfg.survey = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.takes["emigrant"] = 3  # type: ignore[index]


def test_missing_required_key(tmp_path):
    p = _write(tmp_path, '[survey]\ncountry = "X"\n[frame]\nsheet = "EAs"\n')
    with pytest.raises(ConfigError) as info:
        load_config(p)
    err = info.value
    assert err.key == "frame.file"
    assert err.file == str(p)
    assert "missing required key 'frame.file'" in str(err)


def test_missing_required_section(tmp_path):
    with pytest.raises(ConfigError, match=r"missing required section \[frame\]") as info:
        load_config(_write(tmp_path, '[survey]\ncountry = "X"\n'))
    assert info.value.key == "frame"


def test_misspelled_key_suggests_the_right_one(tmp_path):
    text = MINIMAL + "[allocation]\nmetod = \"neyman\"\n"
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    err = info.value
    assert err.key == "allocation.metod"
    assert "did you mean 'method'?" in err.hint
    assert "n_eas" in err.hint  # lists what is allowed


def test_misspelled_section_suggests_the_right_one(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, MINIMAL + "[calibraton]\nmethod = \"raking\"\n"))
    assert info.value.key == "calibraton"
    assert "did you mean 'calibration'?" in info.value.hint


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ('[allocation]\nmethod = "neymann"\n', "allocation.method", ["'neymann'", "neyman", "proportional"]),
        ('[allocation]\nn_eas = 0\n', "allocation.n_eas", ["0", "1 or more"]),
        ('[allocation]\nn_eas = "100"\n', "allocation.n_eas", ["'100'", "an integer"]),
        ('[allocation]\nn_eas = true\n', "allocation.n_eas", ["True", "an integer"]),
        ('[takes]\nemigrant = "seven"\n', "takes.emigrant", ["'seven'", "an integer"]),
        ('[takes]\nemigrant = -1\n', "takes.emigrant", ["-1", "0 or more"]),
        ('[indicators]\nremittance_recall_months = 36\n', "indicators.remittance_recall_months", ["36", "24 or less"]),
        ('[indicators]\nschool_age = [6]\n', "indicators.school_age", ["2 values"]),
        ('[indicators]\nschool_age = [17, 6]\n', "indicators.school_age", ["[17, 6]"]),
        ('[indicators]\nmethods = ["raw", "ipww"]\n', "indicators.methods[1]", ["'ipww'", "did you mean 'ipw'"]),
        ('[indicators]\ncomparison = "nobody"\n', "indicators.comparison", ["'nobody'", "emigrant"]),
        ('[strata]\nby = "region"\n', "strata.by", ["a list of a string"]),
        ('[trimming]\nlower = 4.0\nupper = 3.0\n', "trimming.lower", ["4.0"]),
        ('[calibration]\nbounds = [1.5, 2.0]\n', "calibration.bounds", ["bracket 1"]),
        ('[output]\nformats = ["xlsx", "pdf"]\n', "output.formats[1]", ["'pdf'", "parquet"]),
        ('[[indicators.custom]]\nname = "big spender"\nexpression = "x > 1"\n',
         "indicators.custom[0].name", ["'big spender'"]),
        ('[[indicators.custom]]\nname = "big"\nexpression = "x >"\n',
         "indicators.custom[0].expression", ["'x >'", "expression"]),
        ('[[indicators.custom]]\nexpression = "x > 1"\n', "indicators.custom[0].name", ["missing"]),
    ],
)
def test_bad_values_name_key_value_and_what_is_allowed(tmp_path, extra, key, words):
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, MINIMAL + extra))
    err = info.value
    assert err.key == key
    text = str(err)
    for w in words:
        assert w in text, (w, text)


def test_custom_indicators_are_parsed(tmp_path):
    text = MINIMAL + (
        '[[indicators.custom]]\nname = "big"\nexpression = "education_spending > 500"\n'
        'kind = "proportion"\n'
    )
    cfg = load_config(_write(tmp_path, text))
    (ind,) = cfg.indicators.custom
    assert (ind.name, ind.table, ind.kind) == ("big", "household", "proportion")


def test_takes_define_the_groups(tmp_path):
    cfg = load_config(_write(tmp_path, MINIMAL + "[takes]\nemigrant = 10\nnone = 5\n"
                             "[indicators]\ncomparison = \"none\"\n"))
    assert cfg.groups == ("emigrant", "none")
    with pytest.raises(ConfigError, match="no group has a positive take"):
        load_config(_write(tmp_path, MINIMAL + "[takes]\nemigrant = 0\nnone = 0\n"))


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[survey\ncountry = 1"))
    with pytest.raises(ConfigError, match="not found") as info:
        load_config(tmp_path / "nowhere" / CONFIG_FILE)
    assert "survey init" in info.value.hint


def test_country_name_cannot_break_the_template():
    with pytest.raises(ConfigError):
        default_config_text('Bad"land')
    assert 'country = "Côte d\'Ivoire"' in default_config_text("Côte d'Ivoire")
