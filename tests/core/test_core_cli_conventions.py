"""CLI conventions: --version, fast --help (no heavy imports), help text printed as written,
results on stdout and messages on stderr, no "Exception ignored" at exit, README examples
that parse as written, and a suggestion for a mistyped scheme."""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "100"}
HEAVY = ("pandas", "ibis", "sklearn", "plotly", "duckdb", "pyarrow", "scipy")


def _segflow(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    code = "import sys; from segflow.cli import main; sys.argv = ['segflow', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=ENV,
                          input=stdin, timeout=120)


def _in_process(*args: str) -> subprocess.CompletedProcess:
    """``segflow ARGS`` in this process (Click's CliRunner, stdout and stderr apart), for the
    tests of what a command prints rather than of the process: as :func:`_segflow` returns."""
    from typer.testing import CliRunner

    from segflow.cli import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "100"})
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


@pytest.fixture(scope="module")
def demo_like_project(ran_fixture, tmp_path_factory):
    """A project with a completed run on the pipeline fixture (rfm and lifecycle schemes):
    this module's copy of ``ran_fixture`` (tests/conftest.py)."""
    directory = tmp_path_factory.mktemp("cli") / "proj"
    shutil.copytree(ran_fixture[0], directory)
    return directory


def test_version_prints_the_package_version():
    from segflow import __version__

    out = _segflow("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"segflow {__version__}"


def test_help_imports_no_heavy_library_and_is_fast():
    code = (
        "import sys, time; t = time.perf_counter(); c = time.process_time(); from segflow.cli import app; "
        "from typer.main import get_command; get_command(app); "
        "print(time.perf_counter() - t, time.process_time() - c); "
        "print(','.join(m for m in " + repr((*HEAVY, "rich")) + " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    times, loaded = out.stdout.splitlines()
    seconds, cpu_seconds = map(float, times.split())
    # pandas, ibis, scikit-learn, plotly ... load only in the commands using them, and Rich
    # only when a command prints (help is Click's plain text)
    assert loaded == ""
    # measured: 0.13 s of CPU, 0.3 s wall on a machine at load 10 (0.5 s wall before Rich and
    # importlib.metadata were deferred, 1.6 s before the lazy imports). CPU time hardly moves
    # with the machine's load; the wall-clock bound leaves room for a machine shared with others
    assert cpu_seconds < 1.0
    assert seconds < 3.0
    started = time.perf_counter()
    assert _segflow("--help").returncode == 0
    assert time.perf_counter() - started < 5.0  # the interpreter start included, on a loaded machine


def test_help_prints_toml_names_as_written():
    out = _segflow("ingest", "--help")
    assert "[[sources]]" in out.stdout
    assert "[[sources]]" in _segflow("sources", "--help").stdout


def _commands():
    from typer.main import get_command

    from segflow.cli import app

    def walk(cmd, prefix):
        yield prefix
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, [*prefix, name])

    return list(walk(get_command(app), []))


def test_every_help_works_and_goes_to_stdout():
    from typer.testing import CliRunner

    from segflow.cli import app

    runner = CliRunner()
    for path in _commands():
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.stdout


def test_results_on_stdout_messages_on_stderr(tmp_path):
    out = _segflow("init", str(tmp_path / "p"))
    assert out.returncode == 0
    assert out.stdout == ""  # nothing but results on stdout
    assert "[[sources]]" in out.stderr and "created" in out.stderr


def test_result_tables_go_to_stdout_in_full(demo_like_project):
    """A segment table is a result: on stdout (not cut to 80 columns when piped), nothing of
    it on stderr."""
    out = _segflow("segment", "-p", str(demo_like_project), "--scheme", "rfm")
    assert out.returncode == 0, out.stderr
    from segflow.project import Project

    with Project.open(demo_like_project, read_only=True) as project:
        sizes = project.segment_sizes("rfm")
    names = [str(s) for s in sizes["segment"] if int(sizes.loc[sizes["segment"] == s, "customers"].iloc[0]) > 0]
    assert names and all(name in out.stdout for name in names), out.stdout
    assert not any(name in out.stderr for name in names if name not in ("Lost", "New")), out.stderr


def test_result_lines_go_to_stdout(demo_like_project):
    """The lines that state a command's results (the stay rates of `migrate stability`, the
    matrix's stayed/up/down summary, the data-quality score) are on stdout with its tables,
    so `> file` keeps them; they went to stderr with the messages."""
    from segflow.migration import stability
    from segflow.project import Project

    with Project.open(demo_like_project, read_only=True) as project:
        rates = stability(project.store, scheme="rfm").overall
    out = _segflow("migrate", "stability", "-p", str(demo_like_project), "--scheme", "rfm")
    assert out.returncode == 0, out.stderr
    for row in rates.itertuples():
        line = f"{row.from_date} → {row.to_date}: {row.stay_rate:.1%} stayed in their segment"
        assert line in out.stdout and line not in out.stderr, out.stdout
    assert "drift alarm(s)" in out.stdout
    out = _segflow("migrate", "-p", str(demo_like_project), "--scheme", "rfm")
    assert "stayed " in out.stdout and " · up " in out.stdout and "stayed " not in out.stderr
    out = _segflow("audit", "-p", str(demo_like_project))
    assert out.returncode == 0, out.stderr
    assert "data-quality score:" in out.stdout and "data-quality score:" not in out.stderr


def test_errors_are_one_line_on_stderr_with_a_suggestion(tmp_path):
    from segflow.project import Project

    Project.init(tmp_path / "p").close()
    out = _segflow("migrate", "stability", "-p", str(tmp_path / "p"), "--scheme", "lifecycl")
    assert out.returncode == 1 and out.stdout == ""
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "words"), [
    (["nosuch"], ["segflow: no such command 'nosuch'", "see 'segflow --help'"]),
    (["segment", "--bogus"], ["segflow segment: no such option: --bogus", "see 'segflow segment --help'"]),
    (["migrate", "stability", "--bogus"],
     ["segflow migrate stability: no such option: --bogus", "see 'segflow migrate stability --help'"]),
    (["init"], ["segflow init: missing argument 'directory'", "see 'segflow init --help'"]),
    (["churn", "train", "--horizon-days", "x"],
     ["segflow churn train: invalid value for '--horizon-days'", "see 'segflow churn train --help'"]),
    (["campaign", "effect", "--window-days", "0"],
     ["segflow campaign effect: invalid value for '--window-days'", "greater than or equal to 1"]),
    (["run", "--project"], ["segflow run: option '--project' requires an argument", "see 'segflow run --help'"]),
    # was accepted: it listened on 99999 % 65536 = 34463 and printed http://127.0.0.1:99999/
    (["serve", "--port", "99999"], ["segflow serve: invalid value for '--port'", "less than or equal to 65535"]),
])
def test_usage_errors_are_one_line_naming_the_command(args, words):
    """Click's usage errors (unknown command or option, missing argument, bad value): one
    line on stderr naming the command, the problem and the help to read, exit status 2."""
    from typer.testing import CliRunner

    from segflow.cli import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert all(word in lines[0] for word in words), lines[0]


@pytest.mark.parametrize(("command", "args", "option", "value"), [
    ("segment", ["--scheme", "rfm"], "--snapshot", "2024-13-01"),
    ("churn score", [], "--snapshot", "12/2024"),
    ("churn train", [], "--data-end", "2024-02-30"),
    ("clv fit", ["-t", "x.csv"], "--calibration-end", "April"),
    ("clv score", ["-t", "x.csv"], "--snapshot", "2024-13-01"),
    ("migrate", [], "--from", "2024-13-01"),
    ("migrate who", ["--from", "a", "--to", "b"], "--to-date", "latest"),
    ("export segments", ["-s", "rfm", "--to", "x.csv"], "--snapshot", "2024-13-01"),
    ("export", [], "--as-of", "2024-13-01"),
    ("audit", [], "--as-of", "yesterday"),
    ("alerts", [], "--since", "2024-13"),
    ("campaign promotions", ["--scheme", "rfm"], "--snapshot", "2024-13-01"),
    ("segment profile", [], "--snapshot", "2024-13-01"),
    ("generate", ["out"], "--start", "2024-13-01"),
])
def test_a_bad_date_option_is_the_same_line_everywhere(command, args, option, value):
    """Every date option is read by one type (cli._common.DATE over segflow._dates.as_date):
    the same usage error, before anything is opened (no project here), exit status 2. The
    commands said "expected a date as YYYY-MM-DD", "must be a date YYYY-MM-DD, got ...",
    "is not a date (YYYY-MM-DD)" (exit 1), or raised a traceback (campaign)."""
    from typer.testing import CliRunner

    from segflow.cli import app

    result = CliRunner().invoke(app, [*command.split(), *args, option, value])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr == (f"segflow {command}: invalid value for '{option}': '{value}' is not "
                             f"a date; expected YYYY-MM-DD; see 'segflow {command} --help'\n")


def test_a_date_option_keeps_its_other_words(tmp_path):
    """`migrate forecast --start` takes a date or 'first': a bad value names both; 'first'
    and a date pass the type (and fail later, on the missing project, exit status 1)."""
    from typer.testing import CliRunner

    from segflow.cli import app

    base = ["migrate", "forecast", "--project", str(tmp_path)]
    bad = CliRunner().invoke(app, [*base, "--start", "last"])
    assert bad.exit_code == 2
    assert bad.stderr == ("segflow migrate forecast: invalid value for '--start': 'last' is not a "
                          "date; expected YYYY-MM-DD or 'first'; see 'segflow migrate forecast "
                          "--help'\n")
    for good in ("first", "2024-01-01"):
        result = CliRunner().invoke(app, [*base, "--start", good])
        assert result.exit_code == 1 and "invalid value" not in result.stderr, result.stderr


def test_the_date_type_returns_dates_and_its_words():
    import typer

    from segflow.cli._common import DATE, DateType

    assert DATE("2024-02-29") == dt.date(2024, 2, 29)
    assert DATE(None) is None
    assert DateType("first")("first") == "first"
    with pytest.raises(typer.BadParameter, match="^'2023-02-29' is not a date; expected YYYY-MM-DD$"):
        DATE("2023-02-29")


def test_os_errors_are_one_line_naming_the_file(demo_like_project, tmp_path):
    # a path through a file (NotADirectoryError), an output into a folder that cannot be
    # made: the machine's refusal in one line naming the file, exit 1, no traceback
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for args in (("init", str(blocker / "p")),
                 ("report", "-p", str(demo_like_project), "-o", str(blocker / "r.html")),
                 ("segment", "-p", str(demo_like_project), "--scheme", "rfm",
                  "--out", str(blocker / "s.csv"))):
        out = _segflow(*args)
        assert out.returncode == 1 and out.stdout == "", (args, out.stdout)
        # one line in all: no traceback, and no progress bar's last state (not a terminal)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, out.stderr)
        assert str(blocker) in lines[0], lines[0]
        if args[0] == "report":  # its folder to create is the file: not "File exists"
            assert "a file is in the way of a folder to create" in lines[0], lines[0]


def test_an_export_under_a_device_says_it_is_no_folder(demo_like_project):
    # `--to /dev/null/x.csv` said "File exists: /dev/null" (its folder to create)
    for args in (("segments", "--scheme", "rfm"), ("audience",)):
        out = _in_process("export", *args, "-p", str(demo_like_project), "--to", "/dev/null/x.csv")
        assert out.returncode == 1 and out.stdout == "", out.stderr
        assert out.stderr.strip().splitlines() == [
            "error: /dev/null is not a folder: a file is in the way of a folder to create"], out.stderr


def test_mistyped_scheme_on_the_command_line_gets_a_suggestion(demo_like_project, tmp_path):
    for cmd in (["migrate", "stability"], ["segment", "profile"], ["segment"], ["migrate"],
                ["export", "segments", "--to", str(tmp_path / "list.csv")]):
        out = _in_process(*cmd, "-p", str(demo_like_project), "--scheme", "lifecycl")
        assert out.returncode == 1 and out.stdout == ""
        assert "did you mean 'lifecycle'?" in out.stderr, (cmd, out.stderr)


def test_mistyped_column_of_a_file_gets_a_suggestion(tmp_path):
    tx = tmp_path / "tx.csv"
    tx.write_text("customer_id,ts,amount\na,2024-01-02,10\na,2024-02-03,12\nb,2024-01-05,7\n")
    out = _in_process("clv", "fit", "-t", str(tx), "--amount-col", "amout", "--calibration-end", "2024-03-01")
    assert out.returncode == 1 and out.stdout == ""
    assert "column 'amout'" in out.stderr and "did you mean 'amount'?" in out.stderr, out.stderr
    out = _in_process("segment", "cluster", "--input", str(tx), "--id-col", "customerid", "--features", "amount",
                   "--out", str(tmp_path / "seg.csv"))
    assert out.returncode == 1 and "did you mean 'customer_id'?" in out.stderr, out.stderr


def test_mistyped_campaign_gets_a_suggestion():
    import ibis

    from segflow.campaigns import campaign_cohort
    from segflow.errors import InputError

    exposures = ibis.memtable({"campaign_id": ["SPRING_SALE", "WINBACK"], "customer_id": ["a", "b"],
                               "arm": ["treatment", "control"],
                               "ts": [dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 2)]})

    class Source:
        def table(self, name):
            assert name == "campaign_exposures"
            return exposures

    with pytest.raises(InputError, match=r"'WINBAK' .*did you mean 'WINBACK'\? 2 campaigns known: SPRING_SALE, WINBACK"):
        campaign_cohort(Source(), "WINBAK")


def test_mistyped_feature_gets_a_suggestion():
    import ibis

    from segflow.errors import InputError
    from segflow.segments import profile_segments

    features = ibis.memtable({"customer_id": ["a", "b"], "monetary": [1.0, 2.0]})
    assignments = ibis.memtable({"customer_id": ["a", "b"], "segment": ["x", "y"]})
    with pytest.raises(InputError, match="did you mean 'monetary'"):
        profile_segments(features, assignments, numeric=["monetry"])


def test_mistyped_scheme_gets_a_suggestion(tmp_path):
    from segflow.errors import SegflowError
    from segflow.project import Project

    with Project.init(tmp_path / "p") as project:
        with pytest.raises(SegflowError, match="did you mean 'lifecycle'"):
            project.segment_sizes("lifecycl")


def test_closed_stdout_ends_quietly():
    code = (
        "import sys; from segflow.cli import main; sys.argv = ['segflow', '--help']; main()"
    )
    proc = subprocess.run(f"{shlex.quote(sys.executable)} -c {shlex.quote(code)} | head -c 1",
                          shell=True, capture_output=True, text=True, env=ENV, timeout=60)
    assert "Exception ignored" not in proc.stderr and "Traceback" not in proc.stderr


def _readme_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("segflow "):
                commands.append(shlex.split(line)[1:])
    return commands


def _help_commands() -> list[list[str]]:
    """```segflow ...``` examples quoted in any command's help text."""
    from typer.testing import CliRunner

    from segflow.cli import app

    runner = CliRunner()
    found = []
    for path in _commands():
        text = runner.invoke(app, [*path, "--help"], terminal_width=400).stdout
        found += [shlex.split(m)[1:] for m in re.findall(r"`(segflow [^`]+)`", text.replace("\n", " "))]
    return found


def test_readme_and_help_examples_parse_as_written():
    """Every ``segflow ...`` line of the README, and every `segflow ...` example quoted in a
    help text, names real commands and options (Click parses it without error; files it
    names need not exist for parsing)."""
    from typer.main import get_command

    from segflow.cli import app

    root = get_command(app)
    commands = _readme_commands()
    assert len(commands) >= 8
    helps = _help_commands()
    assert ["campaign", "list"] in helps
    for args in commands + helps:
        cmd, rest, ctx_parent = root, list(args), None
        ctx = root.make_context("segflow", list(rest), resilient_parsing=True)
        while hasattr(cmd, "commands") and rest and rest[0] in cmd.commands:
            ctx_parent = ctx
            cmd = cmd.commands[rest.pop(0)]
            ctx = cmd.make_context(cmd.name, list(rest), parent=ctx_parent, resilient_parsing=True)
        # a group takes options itself only when it runs without a subcommand
        assert not hasattr(cmd, "commands") or not rest or cmd.invoke_without_command, args
        if not rest and args in helps and args not in commands:
            continue  # a bare command name in a help text is a cross-reference, not an example
        # strict parse: unknown options or a wrong number of arguments raise here
        cmd.make_context(cmd.name, list(rest), parent=ctx_parent)


def test_profile_of_a_rule_scheme_keeps_the_rule_names(demo_like_project):
    """Rule-based segments are named by their rules: no cluster-style suggested names."""
    import json

    out = _in_process("segment", "profile", "-p", str(demo_like_project), "--scheme", "lifecycle", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["data"]
    assert len(rows) >= 3
    assert [r["name"] for r in rows] == [r["segment"] for r in rows]
    assert all(r["suggested_name"] is None for r in rows)


def test_messages_to_a_pipe_are_not_hard_wrapped(tmp_path):
    """Rich wraps at 80 columns when stderr is not a terminal ("(schema" / "version 8)" on two
    lines): a message to a pipe or a file stays one line however long (no COLUMNS set)."""
    env = {k: v for k, v in ENV.items() if k != "COLUMNS"}
    target = tmp_path / ("a-rather-long-project-folder-name-" * 3 + "p")
    code = "import sys; from segflow.cli import main; sys.argv = ['segflow', *sys.argv[1:]]; main()"
    out = subprocess.run([sys.executable, "-c", code, "init", str(target)], capture_output=True,
                         text=True, env=env, timeout=120)  # stderr: a pipe
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    created = [line for line in lines if line.startswith("created ")]
    assert len(created) == 1 and len(created[0]) > 120, lines
    assert created[0].endswith(")") and "(schema version " in created[0], lines
    assert str(target / "segflow.toml") in created[0]
    assert any(line.startswith("next: edit [[sources]]") and line.endswith("`segflow run`") for line in lines), lines


def test_a_run_stopped_by_a_bad_rule_prints_one_line(tmp_path):
    """The error, and no "Exception ignored ... Connection already closed" tracebacks after
    it (Ibis's cached tables of the stopped run were finalised after the store was closed)."""
    from tests.pipeline._fixture import PROJECT_TOML, fixture_tables

    from segflow.project import Project

    toml = PROJECT_TOML.replace('when = "monetary >= 300"', 'when = "monetary >= 300 and >"')
    assert toml != PROJECT_TOML
    directory = tmp_path / "proj"
    with Project.init(directory, toml_text=toml) as project:
        for name, table in fixture_tables().items():
            project.store.append(name, table)
    res = _segflow("run", "-p", str(directory))
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "rule" in errors[0], res.stderr
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr, res.stderr


def test_run_says_how_many_snapshots_it_computed(tmp_path):
    from tests.pipeline._fixture import PROJECT_TOML, fixture_tables
    from typer.testing import CliRunner

    from segflow.cli import app
    from segflow.project import Project

    directory = tmp_path / "proj"
    with Project.init(directory, toml_text=PROJECT_TOML) as project:
        for name, table in fixture_tables().items():
            project.store.append(name, table)
    first = CliRunner().invoke(app, ["run", "-p", str(directory)])
    assert first.exit_code == 0, first.output
    said = " ".join(first.output.split())  # the line is on stderr, wrapped to the terminal
    n = int(re.search(r": (\d+) snapshots computed x", said).group(1))
    assert n > 0
    again = CliRunner().invoke(app, ["run", "-p", str(directory)])
    said = " ".join(again.output.split())
    assert f": 0 of {n} snapshots computed (the others were up to date)" in said


def test_advice_is_labelled_note_and_printed_as_written(capsys):
    """A scheme check is advice: 'note:' in `segflow segment` as in `segflow run`; its
    '[rfm]' is text, not Rich markup (which dropped it, leaving a double space)."""
    from segflow.cli._common import show_warning
    from segflow.segments import SchemeCheckWarning

    text = "use a longer [rfm] window_days if one is set"
    show_warning(text, SchemeCheckWarning, "", 0)
    show_warning("12 rows quarantined [bold]", UserWarning, "", 0)
    assert capsys.readouterr().err.splitlines() == [
        f"note: {text}", "warning: 12 rows quarantined [bold]"]


def test_secret_warnings_print_paths_as_written(tmp_path, capsys):
    """The warnings of segflow.cli._secrets were Rich markup: a token file under a folder
    named '[x]' lost it from the path, a tab was printed raw. Now as written, control
    characters as escapes (print_labelled)."""
    from segflow.cli import _secrets

    folder = tmp_path / "[x]\tkeys"
    folder.mkdir()
    secret = folder / "[bold]token"
    secret.write_text("tok\n")
    secret.chmod(0o644)
    assert _secrets.read_token(None, secret) == "tok"
    shown = str(secret).replace("\t", "\\t")
    assert capsys.readouterr().err == (f"warning: --token-file {shown} can be read by other users "
                                       "(mode 644); chmod 600 it\n")
    _secrets.warn("a [red]secret[/red] in the --to URL", "use [PGPASSWORD]")
    assert capsys.readouterr().err == (f"warning: a [red]secret[/red] in the --to URL on the command "
                                       f"line {_secrets.SEEN_BY_ALL}; use [PGPASSWORD]\n")
