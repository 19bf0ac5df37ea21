"""The DuckDB memory limit: the setting reaches every store connection."""

from __future__ import annotations

import os

import pytest

from segflow.config import Settings
from segflow.errors import ConfigError, StoreError
from segflow.store import Store
from segflow.store._memory import AUTO_SHARE, resolve_memory_limit

RAM = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _gib(text: str) -> float:
    """DuckDB's report of a size ('11.7 GiB', '512.0 MiB') in GiB."""
    number, unit = text.split()
    return float(number) * {"KiB": 2**-20, "MiB": 2**-10, "GiB": 1.0, "TiB": 2**10}[unit]


def test_auto_is_half_the_physical_ram():
    with Store(":memory:") as store:
        assert _gib(store.memory_limit) == pytest.approx(RAM * AUTO_SHARE / 2**30, rel=0.01)
        # below DuckDB's own default of 80 %
        assert _gib(store.memory_limit) < 0.8 * RAM / 2**30


@pytest.mark.parametrize(("value", "gib"), [("1.5GiB", 1.5), ("512MiB", 0.5), ("2GB", 2e9 / 2**30)])
def test_sizes(value, gib):
    with Store(":memory:", memory_limit=value) as store:
        assert _gib(store.memory_limit) == pytest.approx(gib, abs=0.1)  # shown to 0.1 GiB, truncated


def test_share_of_ram():
    assert resolve_memory_limit("25%") == f"{int(RAM * 0.25 / 2**20)}MiB"


@pytest.mark.parametrize("value", ["lots", "0%", "150%", "8 parsecs", ""])
def test_bad_values_are_refused(value):
    with pytest.raises(StoreError, match="memory_limit"):
        resolve_memory_limit(value)


def test_project_file_setting_reaches_the_store(tmp_path):
    from segflow.project import Project

    (tmp_path / "segflow.toml").write_text('[project]\nmemory_limit = "768MiB"\n')
    with Project.open(tmp_path) as project:
        assert _gib(project.store.memory_limit) == pytest.approx(0.75, rel=0.01)
    # a read-only connection gets it too
    with Project.open(tmp_path, read_only=True) as project:
        assert _gib(project.store.memory_limit) == pytest.approx(0.75, rel=0.01)


def test_bad_setting_names_the_field(tmp_path):
    (tmp_path / "segflow.toml").write_text('[project]\nmemory_limit = "huge"\n')
    with pytest.raises(ConfigError, match=r"project\.memory_limit.*expected 'auto'"):
        Settings.load(tmp_path)


def test_running_out_of_memory_is_one_clear_line(capsys):
    """DuckDB's out-of-memory error (a real one, under a 20 MB limit) reaches the user as
    one line naming the setting, exit status 1, no traceback."""
    import duckdb
    import typer

    from segflow.cli._common import user_errors

    con = duckdb.connect()
    con.execute("SET memory_limit = '20MB'")
    con.execute("SET threads = 1")
    with pytest.raises(typer.Exit) as stopped, user_errors():
        con.execute("SELECT list(range::VARCHAR || 'x') FROM range(20000000)").fetchall()
    assert stopped.value.exit_code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("error: the engine ran out of memory (Out of Memory Error")
    assert "memory_limit under [project] in segflow.toml" in err and "Traceback" not in err
