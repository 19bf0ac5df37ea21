"""Every example of the README and of each command's ``--help`` runs as written.

The examples assume the README's set-up: ``myproject/`` is a project made by ``segflow init``
whose ``[[sources]]`` were then filled in (here: the session's demo project, copied, stands
for that editing step), and ``demo-data/`` is written by the ``segflow generate`` example.
They run in that order in one folder, in-process through the Click app (the same code as
the ``segflow`` script, without an interpreter start per command); ``segflow serve`` runs as
a real process, is asked for its login page on 127.0.0.1:8000, and is stopped.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVE = "segflow serve -p myproject"


def _join_continuations(text: str) -> list[str]:
    return [line for line in re.sub(r"\\\n\s*", " ", text).splitlines()]


def readme_examples() -> list[str]:
    """``segflow ...`` lines of the README's ``bash`` blocks (comments cut, continuations joined)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in _join_continuations(block):
            line = re.split(r"\s{2,}#", line)[0].strip()
            if line.startswith("segflow "):
                found.append(" ".join(line.split()))
    return found


def help_examples() -> list[str]:
    """The lines under "Examples:" at the end of every command's ``--help``."""
    from typer.main import get_command
    from typer.testing import CliRunner

    from segflow.cli import app

    def walk(cmd, prefix):  # noqa: ANN001, ANN202
        yield prefix
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, [*prefix, name])

    runner = CliRunner()
    found = []
    for path in walk(get_command(app), []):
        text = runner.invoke(app, [*path, "--help"], terminal_width=100).stdout
        if "Examples:" not in text:
            continue
        for line in _join_continuations(text.split("Examples:", 1)[1]):
            if line.strip().startswith("segflow "):
                found.append(" ".join(line.split()))
    return found


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _check_output(line: str, result) -> None:  # noqa: ANN001
    assert result.exit_code == 0, f"{line}\nstdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr, line
    if "--json" in line.split():
        json.loads(result.stdout)  # stdout holds one JSON document and nothing else
    else:
        assert (result.stdout + result.stderr).strip(), f"{line}: printed nothing"


def _run_inprocess(line: str):  # noqa: ANN202
    from typer.testing import CliRunner

    from segflow.cli import app

    return CliRunner().invoke(app, shlex.split(line)[1:], terminal_width=120)


def test_the_examples_are_found():
    readme, helps = readme_examples(), help_examples()
    assert readme[0] == "segflow init myproject" and SERVE in readme and len(readme) >= 12
    assert "segflow report -p myproject" in helps and len(helps) >= 20
    from typer.main import get_command

    from segflow.cli import app
    from segflow.cli._examples import EXAMPLES

    def leaves(cmd, prefix):  # noqa: ANN001, ANN202
        subs = getattr(cmd, "commands", {})
        if not subs:
            yield " ".join(prefix)
        for name, sub in subs.items():
            yield from leaves(sub, [*prefix, name])

    assert not [path for path in leaves(get_command(app), []) if path not in EXAMPLES]  # every command has one

    def groups(cmd, prefix):  # noqa: ANN001, ANN202
        subs = getattr(cmd, "commands", {})
        if subs:
            yield " ".join(prefix), len(subs)
        for name, sub in subs.items():
            yield from groups(sub, [*prefix, name])

    # every group too ("" is `segflow` itself): 2-4 lines (1 for a group of one command), each
    # a line its --help shows and, but for the group's own invocation, that a command of the
    # group shows as its own (the run test runs a line once, however many helps show it)
    found = dict(groups(get_command(app), []))
    assert {"", "campaign", "warehouse", "customers", "migrate"} <= found.keys()
    for group, commands in found.items():
        lines = EXAMPLES.get(group, [])
        assert min(2, commands) <= len(lines) <= 4, group
        assert all(" ".join(line.split()) in helps for line in lines), group
        subs = [line for path, more in EXAMPLES.items() if path.startswith(f"{group} ".lstrip())
                and path != group for line in more]
        assert all(line in subs for line in lines if not line.startswith(f"segflow {group} -")), group
    # a continued line is one example, its options on it
    assert any(line.startswith("segflow clv fit -t demo-data/") and "--holdout-end" in line for line in readme)


@pytest.mark.slow  # ~25 s on an idle machine, most of it the report (one example)
def test_every_readme_and_help_example_runs_as_written(demo_project, tmp_path, monkeypatch):
    import warnings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # the CLI replaces it
    readme = readme_examples()
    lines = list(dict.fromkeys(readme + help_examples()))
    ran = []
    from segflow.cli._examples import NOT_RUN

    not_run = [line for line in lines if line.startswith(tuple(NOT_RUN))]
    assert len(not_run) == 9 and not [failure for line in not_run if (failure := _parse_failure(line))]
    for line in lines:
        if line == SERVE or line in not_run:
            continue  # a server: run as a process below; the others parsed above
        started = time.perf_counter()
        result = _run_inprocess(line)
        _check_output(line, result)
        ran.append(line)
        print(f"{time.perf_counter() - started:6.2f} s  {line}")  # shown with pytest -s
        if line == "segflow init myproject":
            assert (tmp_path / "myproject" / "segflow.toml").is_file()
            # the README's "$EDITOR myproject/segflow.toml" step: a project with its sources
            shutil.rmtree(tmp_path / "myproject")
            shutil.copytree(demo_project, tmp_path / "myproject")
            (tmp_path / "myproject" / "report.html").unlink(missing_ok=True)
    # what the examples promise was written
    assert (tmp_path / "myproject" / "report.html").stat().st_size > 100_000
    assert (tmp_path / "demo-data" / "transactions.parquet").is_file()
    assert (tmp_path / "scores.csv").is_file() and (tmp_path / "segments.csv").is_file()
    assert (tmp_path / "crm_rfm.csv").is_file()
    assert len(ran) == len(lines) - 1 - len(not_run)
    # the README's notebook example, on the same project
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), flags=re.S)
    assert blocks
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
        if "project" in namespace:  # the example closes it (frees the store for the CLI)
            import segflow

            with pytest.raises(segflow.SegflowError, match="is closed"):
                namespace["project"].summary()
            with segflow.Project.open("myproject", read_only=True) as project:
                assert project.summary().headlines


@pytest.mark.slow
def test_the_serve_example_serves(demo_project, tmp_path):
    """``segflow serve -p myproject`` as written: it answers on 127.0.0.1:8000, then stops."""
    assert SERVE in readme_examples() and SERVE in help_examples()
    if not _port_free(8000):
        pytest.skip("port 8000 is taken by another process on this machine")
    shutil.copytree(demo_project, tmp_path / "myproject")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    code = "import sys; from segflow.cli import main; sys.argv = ['segflow', *sys.argv[1:]]; main()"
    proc = subprocess.Popen([sys.executable, "-c", code, *shlex.split(SERVE)[1:]], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen("http://127.0.0.1:8000/", timeout=5) as response:
                    status = response.status
                break
            except urllib.error.HTTPError as exc:
                status = exc.code
                break
            except OSError:
                time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert status is not None and status < 500, status
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def docs_examples() -> list[tuple[str, str]]:
    """(doc, line) for each ``segflow ...`` line in the ``bash`` blocks of the docs the README
    links to; syntax summaries (``[--name TEXT]``, ``a|b``, ``...``) are not examples."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = []
    for doc in dict.fromkeys(re.findall(r"\]\((docs/[\w.-]+\.md)\)", text)):
        body = (REPO / doc).read_text(encoding="utf-8")
        for block in re.findall(r"```(?:bash|sh|console)?\n(.*?)```", body, flags=re.S):
            for line in _join_continuations(block):
                line = re.split(r"\s+#|\s[>|]\s", line)[0].strip()  # comments, redirections
                if line.startswith("segflow ") and not re.search(r"\[-|\||\.\.\.|<\w", line):
                    found.append((doc, " ".join(line.split())))
    return found


def test_docs_examples_parse_as_written():
    """Every example in the docs the README links to names real commands and options (Click
    parses it strictly; the files and projects it names are the reader's own, so it is not
    run)."""
    examples = docs_examples()
    assert len(examples) >= 30
    failures = [f"{doc}: {failure}" for doc, line in examples if (failure := _parse_failure(line))]
    assert not failures, "\n".join(failures)


def _parse_failure(line: str) -> str | None:
    """Why Click's strict parsing refuses the ``segflow ...`` command ``line``, else None."""
    from typer.main import get_command

    from segflow.cli import app

    args = shlex.split(line)[1:]
    root = get_command(app)
    cmd, parent = root, root.make_context("segflow", [], resilient_parsing=True)
    while hasattr(cmd, "commands") and args and args[0] in cmd.commands:
        cmd = cmd.commands[args.pop(0)]
        parent = cmd.make_context(cmd.name, list(args), parent=parent, resilient_parsing=True)
    try:
        if hasattr(cmd, "commands") and args and not getattr(cmd, "invoke_without_command", False):
            raise ValueError(f"no command {args[0]!r}")
        cmd.make_context(cmd.name, list(args), parent=parent.parent or parent)
    except Exception as exc:  # noqa: BLE001 - reported with the line
        return f"{line}: {exc}"
    return None
