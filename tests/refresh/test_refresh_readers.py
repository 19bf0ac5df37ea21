"""Commands that only read the store work while a refresh of it runs in another process.

A refresh holds ``<store>.refresh.lock`` and refuses every process that opens the store for
writing (tests/refresh/test_refresh_writers.py). The reading commands open it read-only, so
they print exactly what they print without a refresh, and write nothing to the store; a
writing command (``segment --save``) is still refused with one line.
"""

from __future__ import annotations

import hashlib
import shutil

import pytest
from tests.refresh.test_refresh_writers import _error_lines, _holder
from typer.testing import CliRunner

from segflow.cli import app
from segflow.store import SCHEMA_VERSION, Store, StoreNeedsUpgrade, open_reading

#: A cluster scheme without a stored model: ``segment --scheme clusters`` fits one, and
#: must not save it in a read-only store.
CLUSTER_SCHEME = '\n[[schemes]]\nname = "clusters"\nkind = "cluster"\nk = 3\n'

#: The reading commands (after ``segflow``; ``-p PROJECT`` is added).
READERS = (
    ("segment", "--scheme", "rfm"),
    ("segment", "--scheme", "clusters"),
    ("segment", "profile", "--scheme", "rfm"),
    ("segment", "cluster", "--k", "3", "--bootstrap", "0"),
    ("migrate", "--scheme", "lifecycle"),
    ("audit", "--as-of", "2024-07-01"),
    ("customers", "explain", "C001"),
)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reading_commands_work_during_a_refresh_and_writers_are_refused(ran_fixture, tmp_path):
    root, _summary = ran_fixture
    project = tmp_path / "proj"
    shutil.copytree(root, project)
    with open(project / "segflow.toml", "a", encoding="utf-8") as toml:
        toml.write(CLUSTER_SCHEME)
    store_file = project / "segflow.duckdb"
    before = _digest(store_file)

    def invoke(command: tuple[str, ...]):  # noqa: ANN202
        return CliRunner().invoke(app, [*command, "-p", str(project)])

    alone = {}
    for command in READERS:
        result = invoke(command)
        assert result.exit_code == 0, (command, result.output)
        alone[command] = result.stdout
    holder = _holder(store_file)
    try:
        for command in READERS:
            result = invoke(command)
            assert result.exit_code == 0, (command, result.output)
            assert result.stdout == alone[command], command
        saved = invoke(("segment", "--scheme", "rfm", "--save"))
        assert saved.exit_code == 1, saved.output
        errors = _error_lines(saved.output)
        assert len(errors) == 1 and errors[0].startswith(
            f"error: a refresh of {store_file} is running (pid {holder.pid}, started "), \
            saved.output
        assert "Traceback" not in saved.output
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert _digest(store_file) == before  # nothing written: no run log, no cluster model
    assert not store_file.with_name(store_file.name + ".wal").exists()


def test_an_older_store_opened_read_only_is_one_line_and_open_reading_upgrades_it(
        tmp_path, monkeypatch):
    path = tmp_path / "s.duckdb"
    Store(path).close()
    monkeypatch.setattr("segflow.store._store.SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr("segflow.store._store.MIGRATIONS", [
        *__import__("segflow.store._schema", fromlist=["MIGRATIONS"]).MIGRATIONS,
        ["CREATE TABLE added_in_next_version (x INTEGER)"]])
    with pytest.raises(StoreNeedsUpgrade) as raised:
        Store(path, read_only=True)
    message = str(raised.value)
    assert "\n" not in message and f"schema version {SCHEMA_VERSION}, older" in message
    assert "run a command that writes the store once" in message
    with open_reading(path) as store:  # upgraded by one writing open, then read-only
        assert store.read_only and store.schema_version == SCHEMA_VERSION + 1
        assert "added_in_next_version" in store.tables()
    with pytest.raises(Exception, match="no store at"):
        Store(tmp_path / "missing.duckdb", read_only=True)
