"""Tables and the scaling plot of ``bench/bench_run.py`` and ``bench/bench_spark.py``.

Reads ``bench/results/run.jsonl`` and ``spark.jsonl`` (one JSON line per stage measured) and
writes the markdown tables between the markers ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->`` of ``docs/benchmarks.md`` (the prose around them is left alone), a
copy of every table in ``bench/results/run-tables.md``, and ``docs/img/bench-scaling.png``.
For each (tag, set, stage, step) the latest successful figure counts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "benchmarks.md"
PLOT = HERE.parent / "docs" / "img" / "bench-scaling.png"
SET_ORDER = ["2k", "100k", "200k", "400k", "1m", "10m", "tx1m", "tx10m"]


def _load(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _latest(rows: list[dict], **match) -> dict | None:
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    ok = [r for r in found if r.get("exit_code") == 0]
    return (ok or found or [None])[-1]


def _load_str(r: dict) -> str:
    a, b = r["load_before"], r["load_after"]
    return f"{a[0]:.1f} / {b[0]:.1f}"


def _mem(r: dict) -> str:
    return f"{max(r['peak_rss_mib'], r.get('tree_peak_mib', 0)):,}"


def _secs(r: dict | None) -> str:
    if r is None:
        return "not measured"
    if r.get("exit_code") == -15:
        return f"stopped unfinished after {r['seconds']:,.0f}"
    if r.get("exit_code") != 0:
        return f"failed ({r.get('error', '')[:80]})"
    return f"{r['seconds']:,.1f}"


def data_table(path: Path) -> str:
    """The data sets: rows, generation time and peak memory (bench_data.py's log: the latest
    generation of each set, in set order)."""
    out = ["| set | customers | months | transactions | all source rows | generation (s) | peak RSS (MiB) | "
           "1-min load before / after |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    latest = {r["set"]: r for r in _load(path)}
    order = {name: i for i, name in enumerate(SET_ORDER)}
    for r in sorted(latest.values(), key=lambda r: order.get(r["set"].split(" ")[0], len(order))):
        secs = f"{r['seconds']:,.0f}" if r.get("seconds") else "copied (see note)"
        load = _load_str(r) if "load_before" in r else ""
        out.append(f"| {r['set']} | {sum([r['rows']['customers']]):,} | {r['months']} | "
                   f"{r['rows']['transactions']:,} | {sum(r['rows'].values()):,} | {secs} | "
                   f"{r.get('peak_rss_mib', 0):,.0f} | {load} |")
    return "\n".join(out)


def compare_table(rows: list[dict]) -> str:
    out = ["| code | customers (transactions) | stage | seconds | peak RSS (MiB) | "
           "baseline time / segflow run time | 1-min load before / after | commit | started (UTC) |",
           "|---|---|---|---:|---:|---:|---|---|---|"]
    for tag in ("before", "after"):
        for name in ("2k", "tx1m", "400k", "1m"):
            run = _latest(rows, mode="compare", tag=tag, set=name, stage="ingest")
            if run is None:
                continue
            run = _latest(rows, mode="compare", tag=tag, set=name, stage="run") or run
            size = f"{run['customers']:,} ({run['transactions'] / 1e6:.1f}M)"
            for st in ("ingest", "run", "report", "baseline-all", "baseline-rfm"):
                r = _latest(rows, mode="compare", tag=tag, set=name, stage=st)
                if r is None:
                    continue
                ratio = ""
                if st.startswith("baseline") and r.get("exit_code") == 0 and run.get("exit_code") == 0 \
                        and run["stage"] == "run":
                    ratio = f"{r['seconds'] / run['seconds']:.2f}"
                label = {"baseline-all": "baseline `--schemes all`",
                         "baseline-rfm": "baseline `--schemes rfm`"}.get(st, f"segflow {st}")
                out.append(f"| {tag} | {size} | {label} | {_secs(r)} | {_mem(r)} | {ratio} | "
                           f"{_load_str(r)} | {r['commit']} | {r['started_utc'][11:16]} |")
    return "\n".join(out)


def job_table(rows: list[dict], name: str) -> str:
    out = ["| code | stage | seconds | peak RSS of the process (MiB) | peak RSS of its tree (MiB) | "
           "1-min load before / after | commit | notes |", "|---|---|---:|---:|---:|---|---|---|"]
    for tag in ("before", "after"):
        for st in ("ingest", "run", "report"):
            r = _latest(rows, mode="job", tag=tag, set=name, stage=st)
            if r is None:
                continue
            notes = ", ".join(f"{k}={r[k]:,}" for k in ("rows_read", "assignments", "snapshots") if k in r)
            out.append(f"| {tag} | {st} | {_secs(r)} | {r['peak_rss_mib']:,} | {r.get('tree_peak_mib', 0):,} | "
                       f"{_load_str(r)} | {r['commit']} | {notes} |")
    return "\n".join(out)


def newmonth_table(rows: list[dict]) -> str:
    out = ["| code | step | seconds | peak RSS (MiB) | 1-min load before / after | commit |",
           "|---|---|---:|---:|---|---|"]
    for tag in ("before", "after"):
        for step in ("ingest 23 months", "run 23 months", "ingest month 24", "run with month 24"):
            r = _latest(rows, mode="newmonth", tag=tag, set="1m", step=step)
            if r is not None:
                out.append(f"| {tag} | {step} | {_secs(r)} | {_mem(r)} | {_load_str(r)} | {r['commit']} |")
    return "\n".join(out)


def scaling_points(rows: list[dict], tags: str | tuple[str, ...]) -> dict[str, list[tuple[int, float, int]]]:
    """stage -> [(customers, seconds, peak MiB)] over the sets, from compare and job figures:
    per (set, stage) the latest successful figure among those of ``tags`` (one tag or several,
    e.g. the scaling jobs of one session and its 10M job)."""
    return {st: [(r["customers"], r["seconds"], _peak(r)) for r in found]
            for st, found in scaling_records(rows, tags).items()}


def scaling_records(rows: list[dict], tags: str | tuple[str, ...]) -> dict[str, list[dict]]:
    """stage -> the records :func:`scaling_points` reads, in set order."""
    tags = (tags,) if isinstance(tags, str) else tuple(tags)
    candidates = [x for x in rows if x.get("mode") in ("compare", "job") and "step" not in x
                  and x.get("tag") in tags and x.get("exit_code") == 0]
    out: dict[str, list[dict]] = {}
    for st in ("ingest", "run", "report"):
        for name in SET_ORDER:
            if name in ("2k", "tx1m", "tx10m"):
                continue
            found = [x for x in candidates if x.get("set") == name and x.get("stage") == st]
            if found:
                out.setdefault(st, []).append(found[-1])
    return out


def _peak(r: dict) -> int:
    return max(r["peak_rss_mib"], r.get("tree_peak_mib", 0))


def scaling_table(rows: list[dict], tags: tuple[str, ...] | None = None) -> str:
    """The wall time / peak memory of every stage per set: with ``tags``, one row per stage
    from the latest figures of those tags and the code and date of each cell below the table;
    else one row per stage and tag ``before`` / ``after``."""
    sizes = (100_000, 200_000, 400_000, 1_000_000, 10_000_000)
    out = ["| code | stage | " + " | ".join(f"{n}" for n in ("100k", "200k", "400k", "1M", "10M")) + " |",
           "|---|---|" + "---:|" * 5]
    groups = [(", ".join(tags), tags)] if tags else [(t, (t,)) for t in ("before", "after")]
    sources = []
    for label, group in groups:
        for st, found in scaling_records(rows, group).items():
            by = {r["customers"]: r for r in found}
            cells = []
            for c in sizes:
                r = by.get(c)
                cells.append(f"{r['seconds']:,.1f} s / {_peak(r) / 1024:.1f} GiB" if r else "")
                if r and tags:
                    cpu = f", {r['cpu_s']:,.0f} CPU-s" if r.get("cpu_s") else ""
                    sources.append(f"{r['set']} {st}: {r['commit']}, {r['started_utc']} UTC{cpu}, "
                                   f"1-min load {_load_str(r)}")
            out.append(f"| {label} | {st} | " + " | ".join(cells) + " |")
    if sources:
        out += ["", "Each cell: wall seconds / peak RSS of the stage (its process or its process "
                "tree, the larger). Code, start, CPU and load of each figure:", ""] + [f"- {s}" for s in sources]
    return "\n".join(out)


def spark_table(rows: list[dict]) -> str:
    out = ["| code | transactions | engine | stage | seconds | peak RSS of the process tree (MiB) | "
           "1-min load before / after | commit |", "|---|---|---|---|---:|---:|---|---|"]
    for tag in ("before", "after"):
        for name in ("tx1m", "tx10m"):
            for engine in ("duckdb", "local", "cluster"):
                for st in ("ingest", "run", "report"):
                    r = _latest(rows, tag=tag, set=name, engine=engine, stage=st)
                    if r is None:
                        continue
                    label = {"duckdb": "DuckDB", "local": "Spark local[2]",
                             "cluster": "Spark standalone, 2 workers x 1 core"}[engine]
                    out.append(f"| {tag} | {r['transactions'] / 1e6:.1f}M | {label} | {st} | {_secs(r)} | "
                               f"{r.get('tree_peak_mib', 0):,} | {_load_str(r)} | {r['commit']} |")
    return "\n".join(out)


def plot(rows: list[dict], tags: tuple[str, ...] | None = None) -> None:
    """``docs/img/bench-scaling.png``: wall time and peak memory of every stage against the
    customers, one line per stage (with ``tags``: their latest figures; else per tag
    ``before`` (dashed) and ``after``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12.8, 5.6), dpi=100)
    colours = {"ingest": "#1f77b4", "run": "#d62728", "report": "#2ca02c"}
    series = [("", "-", tags)] if tags else [(" (before)", "--", ("before",)), (" (after)", "-", ("after",))]
    for suffix, style, group in series:
        for st, p in scaling_points(rows, group).items():
            p = sorted(p)
            xs = [c for c, _, _ in p]
            axes[0].plot(xs, [s for _, s, _ in p], style, marker="o", color=colours[st], label=st + suffix)
            axes[1].plot(xs, [m / 1024 for _, _, m in p], style, marker="o", color=colours[st],
                         label=st + suffix)
            for c, secs, _mib in p:
                axes[0].annotate(f"{secs:,.0f} s", (c, secs), textcoords="offset points", xytext=(6, -12),
                                 fontsize=9, color=colours[st])
    for ax, title, unit in ((axes[0], "Wall time per stage", "seconds"),
                            (axes[1], "Peak memory per stage", "GiB (peak RSS)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(5e4, 2e7)
        ax.set_xlabel("customers (24 months; 10M: 12 months)", fontsize=12)
        ax.set_ylabel(unit, fontsize=12)
        ax.set_title(title, fontsize=14)
        ax.grid(True, which="both", alpha=0.3)
        ax.tick_params(labelsize=11)
        ax.legend(fontsize=10)
    axes[0].axhline(900, color="grey", linewidth=1)
    axes[0].text(6e4, 960, "15 minutes: the target of the whole 10M job", fontsize=10, color="grey")
    target = 12e9 / 2**30  # the 12 GB, decimal, on this axis of GiB (11.18)
    axes[1].axhline(target, color="grey", linewidth=1)
    axes[1].text(6e4, target * 1.04, "12 GB target (11.2 GiB)", fontsize=10, color="grey")
    fig.suptitle("segflow main job on the demo data, 2 cores: code, CPU and load of each point in "
                 "docs/benchmarks.md",
                 fontsize=12)
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT)
    print(f"wrote {PLOT}")


def splice(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- bench:{name} -->\n).*?(<!-- /bench:{name} -->)", re.S)
    if not pattern.search(text):
        print(f"docs/benchmarks.md has no <!-- bench:{name} --> marker; table left out")
        return text
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


#: The sections :func:`render` writes (``<!-- bench:NAME -->`` markers of docs/benchmarks.md).
SECTIONS = ("data", "profile", "compare", "job10m", "newmonth", "scaling", "spark")


def render(results: Path, *, scaling_tags: tuple[str, ...] | None = None,
           only: tuple[str, ...] | None = None) -> None:
    """Write the tables and the plot. ``scaling_tags``: the scaling table and plot from the
    latest figures of these tags (else of ``before`` / ``after``, as the other tables);
    ``only``: splice only these sections into docs/benchmarks.md."""
    every = _load(results) + [dict(r, mode="spark") for r in _load(results.parent / "spark.jsonl")]
    rows = [r for r in every if r.get("tag") in ("before", "after")]
    unknown = sorted(set(only or ()) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"render: no section {', '.join(unknown)} (sections: {', '.join(SECTIONS)})")
    if scaling_tags and not scaling_records(every, scaling_tags):
        raise SystemExit(f"render: no successful figure tagged {', '.join(scaling_tags)} in {results}")
    profiles = sorted((results.parent / "profile").glob("profile-*.md"))
    tables = {
        "data": data_table(results.parent / "data.jsonl"),
        "profile": "\n\n".join(p.read_text().strip() for p in profiles) or "not measured yet",
        "compare": compare_table(rows),
        "job10m": job_table(rows, "10m"),
        "newmonth": newmonth_table(rows),
        "scaling": scaling_table(every, scaling_tags),
        "spark": spark_table([r for r in rows if r["mode"] == "spark"]),
    }
    (results.parent / "run-tables.md").write_text(
        "\n\n".join(f"### {k}\n\n{v}" for k, v in tables.items()) + "\n")
    text = DOC.read_text()
    for name, body in tables.items():
        if only is None or name in only:
            text = splice(text, name, body)
    DOC.write_text(text)
    # the sections as bench/results/<area>.md too, so that `run_all.py --merge-only` keeps them
    for area, heading in (("run", "## The main job: "), ("spark", "## Spark and DuckDB")):
        start = text.index(heading)
        end = text.find("\n## ", start + 1)
        (results.parent / f"{area}.md").write_text(text[start:end if end > 0 else None].strip() + "\n")
    if only is None or "scaling" in only:
        plot(every, scaling_tags)
    print(f"wrote {DOC} and {results.parent / 'run-tables.md'}")
