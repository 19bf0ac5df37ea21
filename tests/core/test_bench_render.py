"""The benchmark documents' tooling: which figures the scaling table shows (bench/_render.py), and
how bench/run_all.py merges the areas' sections into docs/benchmarks.md."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "_render.py"


def _render():
    spec = importlib.util.spec_from_file_location("bench_render", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(tag, name, customers, stage, seconds, *, exit_code=0, mib=1024, started="2026-12-04 22:00:00"):
    return {"mode": "job", "tag": tag, "set": name, "customers": customers, "stage": stage,
            "seconds": seconds, "peak_rss_mib": mib, "tree_peak_mib": mib // 2, "exit_code": exit_code,
            "commit": "abc1234", "started_utc": started, "cpu_s": seconds * 2,
            "load_before": [1.0, 1.0, 1.0], "load_after": [2.0, 2.0, 2.0]}


def test_the_scaling_table_takes_the_latest_successful_figure_of_the_tags():
    r = _render()
    rows = [
        _row("s1", "100k", 100_000, "run", 10.0),
        _row("s1", "100k", 100_000, "run", 12.0),  # later: this one counts
        _row("s1", "1m", 1_000_000, "run", 99.0),
        _row("s1", "1m", 1_000_000, "run", 150.0, exit_code=1),  # failed: left out
        _row("other", "1m", 1_000_000, "run", 1.0),  # another tag: left out
        _row("s2", "10m", 10_000_000, "run", 1500.0, mib=10_240),
        {**_row("s1", "1m", 1_000_000, "run", 5.0), "step": "run 23 months"},  # a new-month step
    ]
    points = r.scaling_points(rows, ("s1", "s2"))
    assert points == {"run": [(100_000, 12.0, 1024), (1_000_000, 99.0, 1024), (10_000_000, 1500.0, 10_240)]}
    table = r.scaling_table(rows, ("s1", "s2"))
    line = next(x for x in table.splitlines() if x.startswith("| s1, s2 | run |"))
    assert line == "| s1, s2 | run | 12.0 s / 1.0 GiB |  |  | 99.0 s / 1.0 GiB | 1,500.0 s / 10.0 GiB |"
    assert "- 10m run: abc1234, 2026-12-04 22:00:00 UTC, 3,000 CPU-s, 1-min load 1.0 / 2.0" in table
    # without tags: the rows of `before` and `after` only
    assert "| before |" not in r.scaling_table(rows) and r.scaling_points(rows, "before") == {}


def _run_all():
    spec = importlib.util.spec_from_file_location("bench_run_all", BENCH.parent / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _merged(tmp_path: Path, doc_text: str, files: dict[str, str], *, times: int = 1) -> str:
    """docs text after ``times`` merges of the area files ``files`` (name -> text) into
    ``doc_text``."""
    doc = tmp_path / "benchmarks.md"
    results = tmp_path / "results"
    results.mkdir(exist_ok=True)
    doc.write_text(doc_text)
    for name, text in files.items():
        (results / f"{name}.md").write_text(text)
    for _ in range(times):
        _run_all().merge(doc, results)
    return doc.read_text()


def test_the_merge_replaces_only_the_sections_of_the_area_files(tmp_path):
    files = {"ingest": "## Ingest (`x`)\n\nnew ingest\n", "spark": "## Spark\n\nnew spark\n",
             "btyd": "## BTYD\n\nnew area\n",
             "run-tables": "### data\n\ntables\n",  # a dump, not a section
             "export": "# Export\n\nno section heading\n"}
    doc = ("# Benchmarks\n\nheader\n\n## Server (by hand)\n\nkept\n\n"
           "## Ingest (`x`)\n\nold ingest\n\n## Spark\n\nold spark\nlast line\n")
    want = ("# Benchmarks\n\nheader\n\n## Server (by hand)\n\nkept\n\n"
            "## Ingest (`x`)\n\nnew ingest\n\n## Spark\n\nnew spark\n\n## BTYD\n\nnew area\n")
    assert _merged(tmp_path, doc, files) == want
    assert _merged(tmp_path, doc, files, times=2) == want  # merging again changes nothing


def test_the_merge_matches_whole_headings_and_keeps_subsections(tmp_path):
    doc = ("## Spark and DuckDB\n\nby hand\n\n### sub\n\nkept too\n\n"
           "## Spark\n\nold\n\n### old sub\n\nold too\n\n## After\n\nkept\n")
    files = {"spark": "## Spark\n\nnew\n\n### new sub\n\nnew too\n",
             "first": "## Spark and DuckDB\n\nreplaced\n",  # the heading on the first line
             "two": "## Two\n\none\n\n## Three\n\nanother\n"}  # two sections: left out
    assert _merged(tmp_path, doc, files) == (
        "## Spark and DuckDB\n\nreplaced\n\n## Spark\n\nnew\n\n### new sub\n\nnew too\n\n"
        "## After\n\nkept\n")
