"""docs/scale.md's examples name a real API: the Python block (compacting a warehouse into a
new database) compiles and runs against doubles of ``spark_session`` and ``SparkStore`` that
check every call against the real signatures (it needs a Spark warehouse under /data, so it
is not run for real here; the store it calls is tested on the cluster in
tests/spark/test_spark_store.py), and every ``segflow ...`` line of its shell blocks parses
with the CLI's own commands and options. No Spark session is started."""

from __future__ import annotations

import ast
import inspect
import re
import shlex
from pathlib import Path
from unittest import mock

DOC = Path(__file__).resolve().parents[2] / "docs" / "scale.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_scale_doc_python_example_calls_the_real_api(monkeypatch):
    import segflow.engine
    import segflow.store._spark as spark_store
    from segflow.store._spark_layout import VIEWS

    (block,) = _blocks("python")
    ast.parse(block)  # valid syntax (compile below would say so too, less clearly)
    # doubles that refuse a call the real function or method would refuse (autospec binds
    # every call to the real signature) and an attribute the class does not have
    session = mock.create_autospec(segflow.engine.spark_session)
    store = mock.create_autospec(spark_store.SparkStore)
    instance = store.return_value
    assert re.search(r"\bself\.root = ", inspect.getsource(spark_store.SparkStore.__init__))
    instance.root = "file:///data/spark-warehouse/segflow.db"
    view = next(iter(VIEWS))
    instance.tables.return_value = ["customer_scores", view, "retracted", "transactions"]
    instance.run.return_value.__enter__.return_value = "run-1"
    monkeypatch.setattr(segflow.engine, "spark_session", session)
    monkeypatch.setattr(spark_store, "SparkStore", store)
    namespace: dict = {}
    exec(compile(block, str(DOC), "exec"), namespace)
    session.assert_called_once_with("local[2]")
    assert [c.args[1:] for c in store.call_args_list] == [
        ("file:///data/spark-warehouse", "segflow"), ("file:///data/spark-warehouse", "segflow_compact")]
    instance.run.assert_called_once_with("compact", {"from": instance.root})
    # every stored table but the views and the retractions is copied, in the one run
    written = [(c.args[0], c.args[2]) for c in instance.write.call_args_list]
    assert written == [("customer_scores", "run-1"), ("transactions", "run-1")]
    assert [c.args for c in instance.dataframe.call_args_list] == [("customer_scores",), ("transactions",)]


def test_scale_doc_command_lines_parse():
    from typer.main import get_command

    from segflow.cli import app

    root = get_command(app)
    lines = []
    for block in _blocks("bash") + _blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("  #")[0].split("&&"):
                part = part.strip()
                if part.startswith("segflow "):
                    lines.append(shlex.split(part)[1:])
    assert ["demo", "--out", "shop", "--customers", "500", "--months", "6"] in lines and len(lines) >= 7
    for args in lines:
        cmd, rest, parent = root, list(args), None
        ctx = root.make_context("segflow", list(rest), resilient_parsing=True)
        while hasattr(cmd, "commands") and rest and rest[0] in cmd.commands:
            parent = ctx
            cmd = cmd.commands[rest.pop(0)]
            ctx = cmd.make_context(cmd.name, list(rest), parent=parent, resilient_parsing=True)
        assert not hasattr(cmd, "commands"), args  # a command, not a group
        cmd.make_context(cmd.name, list(rest), parent=parent)  # unknown options raise here
