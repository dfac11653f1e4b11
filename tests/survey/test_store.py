"""Tests of the DuckDB project store: transactions, replacement, idempotent imports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from survey.errors import StoreError
from survey.store import STORE_FILE, Store


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / STORE_FILE, create=True) as st:
        yield st


def _frame(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"ea_id": [f"E{i:03d}" for i in range(n)],
                         "households": rng.integers(50, 200, n),
                         "region": ["North", "South"] * (n // 2) + ["North"] * (n % 2)})


def test_replace_stage_round_trip(store):
    frame = _frame()
    before = frame.copy()
    rec = store.replace_stage("frame", {"frame": frame}, detail="5 EAs")
    pd.testing.assert_frame_equal(frame, before)  # input not mutated
    assert rec.counts == {"frame": 5}
    back = store.read("frame")
    assert back["ea_id"].tolist() == frame["ea_id"].tolist()
    assert back["households"].tolist() == frame["households"].tolist()
    done = store.stage_done("frame")
    assert done.tables == ("frame",) and done.detail == "5 EAs"
    assert store.stage_done("weight") is None


def test_rerun_replaces_outputs_cleanly(store):
    store.replace_stage("weight", {"weights": _frame(5), "replicate_weights": _frame(3)})
    store.replace_stage("weight", {"weights": _frame(4)})
    assert store.count("weights") == 4
    assert not store.has("replicate_weights")  # the old output is gone, not stale
    assert store.stage_done("weight").tables == ("weights",)
    assert [r.stage for r in store.stages()] == ["weight"]


def test_failed_stage_leaves_store_as_it_was(store, monkeypatch):
    store.replace_stage("select_eas", {"selected_eas": _frame(5)}, counts={"eas": 5})
    first = store.stage_done("select_eas")
    calls = {"n": 0}
    real = Store._write_table

    def failing(self, name, df):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full (simulated)")
        real(self, name, df)

    monkeypatch.setattr(Store, "_write_table", failing)
    with pytest.raises(RuntimeError, match="simulated"):
        store.replace_stage("select_eas", {"selected_eas": _frame(9), "other": _frame(2)})
    monkeypatch.undo()
    assert calls["n"] == 2
    assert store.count("selected_eas") == 5
    assert not store.has("other")
    assert store.stage_done("select_eas") == first


def test_failed_import_leaves_store_as_it_was(store, monkeypatch):
    hh = pd.DataFrame({"key": ["a", "b"], "size": [3, 4]})
    store.import_batch("one.csv", "h1", {"household": hh})

    def failing(self, table, df):
        raise RuntimeError("crash in the middle (simulated)")

    monkeypatch.setattr(Store, "_insert", failing)
    more = pd.DataFrame({"key": ["c"], "size": [5]})
    with pytest.raises(RuntimeError):
        store.import_batch("two.csv", "h2", {"household": more, "members": more})
    monkeypatch.undo()
    assert store.count("data.household") == 2
    assert not store.has("data.members")
    assert store.count("import_batches") == 1
    assert store.batch_for("h2") is None


def test_same_file_twice_changes_nothing(store):
    hh = pd.DataFrame({"key": ["a", "b", "c"], "size": [3, 4, 5]})
    problems = pd.DataFrame({"code": ["E101"], "table": ["household"], "key": ["z"],
                             "field": ["size"], "value": ["-1"], "message": ["negative"]})
    ledger = pd.DataFrame({"table": ["household"], "read": [5], "kept": [3],
                           "quarantined": [1], "duplicates": [1]})
    b1 = store.import_batch("export.zip", "abc", {"household": hh}, problems=problems,
                            ledger=ledger, keys={"household": "key"})
    assert b1.new and (b1.read, b1.kept, b1.quarantined, b1.duplicates) == (5, 3, 1, 1)
    snapshot = {t: store.read(t) for t in ("import_batches", "import_ledger", "problems")}
    b2 = store.import_batch("export-copy.zip", "abc", {"household": hh}, problems=problems,
                            ledger=ledger, keys={"household": "key"})
    assert not b2.new and b2.batch_id == b1.batch_id and b2.source == "export.zip"
    assert store.count("data.household") == 3
    for t, df in snapshot.items():
        pd.testing.assert_frame_equal(store.read(t), df)


def test_overlapping_export_counts_known_keys_as_duplicates(store):
    first = pd.DataFrame({"key": ["a", "b"], "size": [3, 4]})
    second = pd.DataFrame({"key": ["a", "b", "c"], "size": [3, 4, 6], "phone_owner": [1, 0, 1]})
    store.import_batch("day1.csv", "h1", {"household": first}, keys={"household": "key"})
    b = store.import_batch("day2.csv", "h2", {"household": second}, keys={"household": "key"})
    assert (b.read, b.kept, b.duplicates) == (3, 1, 2)
    assert b.read == b.kept + b.quarantined + b.duplicates
    hh = store.read("data.household").sort_values("key")
    assert hh["key"].tolist() == ["a", "b", "c"]
    assert hh["batch_id"].tolist() == [1, 1, 2]
    assert hh["phone_owner"].isna().tolist() == [True, True, False]  # new column added


def test_clear_imports(store):
    store.import_batch("a.csv", "h1", {"household": pd.DataFrame({"key": ["a"]})})
    store.clear_imports()
    assert store.tables("data") == [] and store.count("import_batches") == 0
    assert store.stage_done("import") is None


def test_require_names_the_missing_stage(store):
    with pytest.raises(StoreError) as info:
        store.require("select_eas", by="survey select households")
    assert "select_eas" in str(info.value)
    assert "survey select eas" in info.value.hint


def test_missing_store(tmp_path):
    with pytest.raises(StoreError, match="not found") as info:
        Store(tmp_path / STORE_FILE)
    assert "survey init" in info.value.hint


def test_corrupt_store(tmp_path):
    p = tmp_path / STORE_FILE
    p.write_bytes(b"this is not a database" * 500)
    with pytest.raises(StoreError, match="cannot open") as info:
        Store(p)
    assert "backup" in info.value.hint
    assert p.read_bytes() == b"this is not a database" * 500  # nothing touched


def test_foreign_duckdb_file_is_refused(tmp_path):
    import duckdb

    p = tmp_path / STORE_FILE
    con = duckdb.connect(str(p))
    con.execute("CREATE TABLE something (x INTEGER)")
    con.close()
    with pytest.raises(StoreError, match="not a survey project store"):
        Store(p, create=True)


def test_reopen_keeps_everything(tmp_path):
    with Store(tmp_path, create=True) as st:
        st.replace_stage("frame", {"frame": _frame()}, counts={"eas": 5})
    with Store(tmp_path, read_only=True) as st:
        assert st.count("frame") == 5
        assert st.stage_done("frame").counts == {"eas": 5}
        summary = st.summary()
    assert summary["stages"]["frame"]["counts"] == {"eas": 5}
    assert summary["tables"]["frame"] == 5 and summary["problems"] == 0


def test_bad_table_names_are_refused(store):
    with pytest.raises(StoreError, match="invalid table name"):
        store.replace_stage("frame", {"frame; DROP TABLE stages": _frame()})
    with pytest.raises(StoreError, match="not in the project store"):
        store.read("nothing_here")
