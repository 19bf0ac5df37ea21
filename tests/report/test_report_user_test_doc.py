"""docs/report.md's user-test script says what the report's first screen shows: every card,
list and line it names is there, the numbers it quotes are the report's (the dates of the
``segflow demo`` report, the periods of the cards, the file size), and each answer describes
what the first screen holds (five headlines of the kinds it lists, one line per playbook
action, the data-health line's parts)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "report.md"


def _script() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index("## User-test script"):text.index("## CLV diagnostics")]


def _first_screen(report: Path) -> str:
    """The text of the report's Summary section (tags removed, entities decoded)."""
    page = Path(report).read_text(encoding="utf-8")
    start = page.index(">", page.index('id="summary"')) + 1
    fragment = page[start:page.index("</section>", start)]
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())
    return re.sub(r" ([,.;:])", r"\1", text)  # "<b>RFM</b>, ..." reads "RFM, ..."


@pytest.fixture(scope="module")
def screen(demo_report):
    return _first_screen(demo_report)


def test_every_name_the_script_quotes_is_on_the_first_screen(screen):
    names = [" ".join(n.split()) for n in re.findall(r"(?<![*\w])\*([^*]+?)\*(?![*\w])", _script())]  # *italic*
    names = [n for n in names if n not in ("Data quality", "Summary", "win back")]
    assert len(names) >= 8, names
    missing = [n for n in names if n not in screen]
    assert not missing, missing
    assert screen.startswith("Summary")  # "The line under *Summary*"


def test_the_dates_line_is_the_headline_schemes_last_two_snapshots(demo_project, screen):
    from segflow.project import Project
    from segflow.report._format import SCHEME_TITLES

    with Project.open(demo_project, read_only=True) as project:
        scheme = project.settings.schemes[0].name
        dates = project.snapshot_dates(scheme)
    assert scheme == "rfm"
    # the scheme by its title, as in the rest of the report, not by its --scheme name
    assert f"Scheme {SCHEME_TITLES[scheme]}, {dates[-2]} → {dates[-1]}." in screen
    assert f"Scheme {scheme}," not in screen


def test_the_dates_quoted_are_those_of_the_segflow_demo_report(tmp_path):
    """``segflow demo`` (24 months from 2024-01-01): its last two monthly snapshots are the
    dates the script quotes. The dates follow from the data's span and the monthly periods,
    so a small generated set with the demo's months and start gives the same ones."""
    from typer.main import get_command

    from segflow.cli import app
    from segflow.datasets import demo_project_toml, generate_demo
    from segflow.pipeline import resolve_snapshot_dates
    from segflow.project import Project

    quoted = re.search(r'"Scheme RFM, (\d{4}-\d\d-\d\d) → (\d{4}-\d\d-\d\d)"', _script())
    assert quoted, "the script quotes the demo's dates line"
    months = next(p.default for p in get_command(app).commands["demo"].params if p.name == "months")
    data = generate_demo(tmp_path / "data", customers=200, months=months, seed=0)
    with Project.init(tmp_path, toml_text=demo_project_toml("data", max_date=data.end)) as project:
        project.ingest()
        dates = resolve_snapshot_dates(project.store, project.settings)
    assert [str(d) for d in dates[-2:]] == list(quoted.groups())


def test_the_answers_describe_what_the_first_screen_holds(demo_report, screen):
    from segflow.campaigns import load_playbook

    script = _script()
    # 2-4: the cards' periods are those the script names
    assert "365 days" in script and "the 365 days before" in screen
    assert "next 52 weeks" in script and "next 52 weeks" in screen
    assert re.search(r"Customers in the base \d[\d,]* [+−-]?\d[\d,]* since \d{4}-\d\d-\d\d", screen)
    # 5: two moves down (by revenue), the largest move up, the segment that changed most, joiners/leavers
    items = re.findall(r'<li elementtiming="headline">(.*?)</li>', Path(demo_report).read_text(encoding="utf-8"))
    items = [html.unescape(i) for i in items]
    assert len(items) == 5, items
    assert "moved down" in items[0] and "moved down" in items[1] and "moved up" in items[2]
    assert re.search(r"(grew|shrank) the most", items[3]) and ("joined" in items[4] or "left" in items[4])
    assert all(re.search(r"\d+ customers \(\d+\.\d %\)", i) for i in items[:3])
    # 6: one line per playbook action, in the order the script lists them
    listed = re.search(r"one line per playbook action\s+\(([^)]+)\)", script).group(1).split(", ")
    actions = list(dict.fromkeys(load_playbook(None).to_pandas()["action"]))
    assert listed == actions
    shown = re.findall(r'<span class="act act-[\w-]+">([^<]+)</span>', Path(demo_report).read_text(encoding="utf-8"))
    assert shown and all(a in actions for a in shown)
    # 7: the data-health line holds what the script says it holds
    health = screen[screen.index("Data health:"):]
    for part in ("rows read", "accepted", "quarantined", "rules", "duplicates", "reconcile", "audit checks"):
        assert part in health, part


def test_the_file_size_quoted_is_the_reports(demo_report):
    from plotly.offline import get_plotlyjs

    doc = DOC.read_text(encoding="utf-8")
    total, plotly = map(float, re.search(r"about\s+([\d.]+) MB,\s+([\d.]+) MB of which is plotly\.js", doc).groups())
    assert abs(Path(demo_report).stat().st_size / 1e6 - total) <= 0.3
    assert abs(len(get_plotlyjs().encode()) / 1e6 - plotly) <= 0.05

