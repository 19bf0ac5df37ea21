"""The [engine] table of segflow.toml, `--engine` overriding it, and the Spark session builder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from tests._engines import require_spark

from segflow.config import EngineSettings, Settings
from segflow.engine import resolve_engine, warehouse_url
from segflow.errors import ConfigError, SegflowError


def _settings(tmp_path: Path, engine_toml: str) -> Settings:
    (tmp_path / "segflow.toml").write_text(textwrap.dedent(engine_toml))
    return Settings.load(tmp_path)


def test_engine_table_is_read_with_its_defaults(tmp_path):
    assert Settings().engine == EngineSettings(
        kind="duckdb", master="local[*]", warehouse="spark-warehouse", database="segflow"
    )
    s = _settings(tmp_path, """
        [engine]
        kind = "spark"
        master = "spark://127.0.0.1:7077"
        warehouse = "hdfs://namenode:8020/lake"
        database = "retail_seg"
        conf = {"spark.executor.memory" = "2g"}
    """)
    assert (s.engine.kind, s.engine.master, s.engine.database) == (
        "spark", "spark://127.0.0.1:7077", "retail_seg")
    assert s.engine.conf == {"spark.executor.memory": "2g"}


@pytest.mark.parametrize("toml, needle", [
    ('[engine]\nkind = "flink"', "engine.kind"),
    ('[engine]\ndatabase = "my-db"', "engine.database"),
    ('[engine]\nmaster_url = "local[2]"', "engine.master_url"),
])
def test_bad_engine_settings_name_the_setting(tmp_path, toml, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        _settings(tmp_path, toml)


def test_command_line_engine_overrides_the_project_file():
    spark = EngineSettings(kind="spark")
    assert resolve_engine(None, spark) == "spark"
    assert resolve_engine("duckdb", spark) == "duckdb"
    assert resolve_engine(None, None) == "duckdb"
    with pytest.raises(SegflowError, match="unknown engine 'flink'"):
        resolve_engine("flink", spark)


def test_warehouse_paths_become_absolute_urls_and_urls_stay(tmp_path):
    assert warehouse_url("wh", tmp_path) == (tmp_path / "wh").resolve().as_uri()
    assert warehouse_url("s3a://bucket/lake/") == "s3a://bucket/lake"
    assert warehouse_url("hdfs://nn:8020/w") == "hdfs://nn:8020/w"


@pytest.mark.spark
@pytest.mark.slow
def test_session_builder_sets_warehouse_utc_no_ui_and_ansi_off(tmp_path, spark_warehouse):
    require_spark()
    from segflow.engine import session_from_settings

    settings = EngineSettings(kind="spark", master="local[1]", warehouse="wh",
                              conf={"spark.sql.shuffle.partitions": "3"})
    session = session_from_settings(settings, tmp_path)
    conf = session.conf
    assert session.sparkContext.master == "local[1]"
    assert conf.get("spark.sql.warehouse.dir").rstrip("/").endswith(str(tmp_path / "wh"))
    assert conf.get("spark.sql.session.timeZone") == "UTC"
    assert conf.get("spark.ui.enabled") == "false"
    assert conf.get("spark.sql.ansi.enabled") == "false"
    assert conf.get("spark.sql.shuffle.partitions") == "3"  # [engine] conf wins
    # a table created in the catalog lands in the warehouse folder
    session.sql("CREATE DATABASE IF NOT EXISTS probe")
    session.range(3).write.mode("overwrite").saveAsTable("probe.t")
    assert (tmp_path / "wh" / "probe.db" / "t").is_dir()
    assert session.table("probe.t").count() == 3
    # the same settings reuse the session; another warehouse gets a new one (that of the
    # later Spark tests, tests/conftest.py: they reuse this session)
    assert session_from_settings(settings, tmp_path) is session
    other = session_from_settings(settings.model_copy(update={"warehouse": spark_warehouse}),
                                  tmp_path)
    assert other is not session
    assert other.conf.get("spark.sql.warehouse.dir").rstrip("/").endswith(spark_warehouse)


@pytest.mark.spark
@pytest.mark.slow
def test_cache_of_an_expression_with_a_memtable_on_a_fresh_backend(tmp_path):
    """Ibis's PySpark backend caches without registering in-memory tables first, so the
    first ``.cache()`` of an expression joining a memtable failed (TABLE_OR_VIEW_NOT_FOUND)
    unless an earlier query of the backend had registered it: the root cause of the Spark
    one-pass parity test failing in one order of the suite and passing in another."""
    require_spark()
    import ibis

    from segflow.engine import ibis_backend, spark_session

    con = ibis_backend(spark_session("local[1]"))
    t = con.create_table("cache_probe", ibis.memtable({"k": [1, 2, 3]}), overwrite=True)
    lookup = ibis.memtable({"k": [2, 3, 4], "v": ["b", "c", "d"]})  # never executed before
    cached = t.join(lookup, "k").cache()
    assert sorted(cached.to_pyarrow()["v"].to_pylist()) == ["b", "c"]
    cached.release()


@pytest.mark.spark
@pytest.mark.slow
def test_cache_is_eager_and_checkpointed_in_the_run_folder(tmp_path):
    """``cache()`` computes the table before it returns (Spark's own is lazy: a cached table
    whose inputs were released before its first use was computed from scratch), so releasing
    its inputs leaves it intact; with ``checkpoint_dir`` set (``SparkStore.run``) it is also
    written there and read back from the files."""
    require_spark()
    import ibis

    from segflow.engine import ibis_backend, spark_session

    con = ibis_backend(spark_session("local[1]"))
    sc = con._session.sparkContext

    def cached_partitions() -> int:
        return sum(info.numCachedPartitions() for info in sc._jsc.sc().getRDDStorageInfo())

    t = con.create_table("eager_probe", ibis.memtable({"k": [1, 2, 3, 4]}), overwrite=True)
    before = cached_partitions()
    inner = t.filter(t.k > 1).cache()
    assert cached_partitions() > before  # stored now, not at its first use
    outer = inner.mutate(k2=inner.k * 2).cache()
    inner.release()  # the input of a cached table released: the table stays whole
    assert sorted(outer.to_pyarrow()["k2"].to_pylist()) == [4, 6, 8]
    outer.release()
    assert cached_partitions() == before

    folder = tmp_path / "checkpoints"
    sc.setCheckpointDir(str(folder))
    con.checkpoint_dir = str(folder)
    try:
        kept = t.filter(t.k < 3).cache()
        files = [p for p in folder.rglob("part-*")]
        assert files  # Spark's reliable checkpoint: files in the folder
        assert sorted(kept.to_pyarrow()["k"].to_pylist()) == [1, 2]
        kept.release()
    finally:
        con.checkpoint_dir = None


def test_a_spark_session_starts_without_log_lines_on_stderr(tmp_path):
    """The driver's log4j configuration (segflow/engine/log4j2.properties): starting a
    session prints none of Spark's start-up notes on stderr (stdout stays for results)."""
    require_spark()
    import subprocess
    import sys

    code = ("from segflow.engine import spark_session\n"
            "s = spark_session('local[1]')\nprint(s.range(3).count())\ns.stop()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"
    for note in ("log4j profile", "Setting default log level", " WARN ", "loopback address"):
        assert note not in done.stderr, done.stderr


def test_the_spark_run_reports_its_stages_in_order():
    from segflow.warehouse._run import _STAGES, _stages

    calls = []
    step = _stages(lambda label, done, total: calls.append((label, done, total)), 24)
    for stage in _STAGES:
        step(stage)
    step(None)
    assert calls == [(f"24 snapshots: {s}", i, 5) for i, s in enumerate(_STAGES)] + \
        [("24 snapshots done", 5, 5)]
    _stages(None, 24)("results")  # no progress: nothing to tell
