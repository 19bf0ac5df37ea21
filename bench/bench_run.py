"""The main job benchmarks: segflow's run against the all-snapshot baseline, the job at 10M
customers, the run of one new month, and the scaling curve of every stage.

Data: the Parquet sets of ``bench/bench_data.py`` under ``--root`` (default /tmp/segflow-bench).
Every stage runs in its own process (``bench/_measure.py``: wall time, ``ru_maxrss`` of the
process, sampled RSS of its process tree, load averages before and after) and is appended as
one JSON line to ``bench/results/run.jsonl`` with the commit it ran on and a ``--tag``.

    python bench/bench_run.py compare --sets 400k,1m --tag before
        ingest each set once into a pristine project (again when src/segflow/store or
        sources changed since), then back to back on that store: ``segflow run`` (on a fresh
        copy of the pristine store) and ``report``, then the baseline
        (/work/shared/bench/allsnap_baseline.py) with ``--schemes all`` and ``--schemes rfm``
    python bench/bench_run.py job --sets 100k,10m --tag after
        ingest -> run -> report in one project per set (the scaling curve; 10M job)
    python bench/bench_run.py newmonth --sets 1m --tag after
        the store holds 23 months; run; ingest month 24; run again (the timed refresh);
        ``--keep-ingested`` keeps a copy of the store before that run (to replay it)
    python bench/bench_run.py render [--scaling-tags s47-scaling] [--render-only scaling]
        tables into bench/results/run.md and the docs section, plot docs/img/bench-scaling.png
        (the scaling curve from the latest figures of ``--scaling-tags``, else of before/after)

``--memory-limit`` sets ``[project] memory_limit`` of the projects it creates (default: the
project default, "auto"). Generation is excluded from every timing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import git_head, measure, python_stage, record  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "run.jsonl"
BASELINE = Path("/work/shared/bench/allsnap_baseline.py")
DATE_COLUMN = {"customers": "created_at", "transactions": "order_date", "events": "ts",
               "campaign_exposures": "ts", "survey_responses": "ts"}

STAGE = """
import json, sys, time
from pathlib import Path
stage, workdir = sys.argv[1], Path(sys.argv[2])
t0 = time.perf_counter()
extra = {}
from segflow.project import Project
project = Project.open(workdir)
if stage == "ingest":
    frame = project.ingest().to_pandas()
    extra["rows_read"] = int(frame["rows_read"].sum())
    for col in ("rows_accepted", "rows_loaded", "accepted"):
        if col in frame:
            extra["rows_accepted"] = int(frame[col].sum())
            break
elif stage == "run":
    summary = project.run()
    extra["assignments"] = int(summary.assignments_written)
    extra["snapshots"] = len(summary.snapshot_dates)
    extra["run_stages_s"] = {k: round(float(v), 2) for k, v in summary.seconds.items()}
elif stage == "report":
    project.report(workdir / "report.html")
project.close()
print(json.dumps({"inner_seconds": round(time.perf_counter() - t0, 2), **extra}))
"""


# -- projects ---------------------------------------------------------------------------
def data_info(root: Path, name: str) -> dict:
    path = root / f"data-{name}" / "done.json"
    if not path.exists():
        raise SystemExit(f"no data set {name!r} at {path.parent}: run bench/bench_data.py --sets {name}")
    return json.loads(path.read_text())


def make_project(workdir: Path, data_dir: Path, end: dt.date, memory_limit: str | None,
                 folders: bool = False) -> None:
    """A fresh demo project in ``workdir`` reading the Parquet files in ``data_dir`` (or, with
    ``folders``, every Parquet file in ``data_dir/<table>/``)."""
    from segflow.datasets import demo_project_toml
    from segflow.project import Project

    if workdir.exists():
        shutil.rmtree(workdir)
    text = demo_project_toml(str(data_dir), file_format="parquet", max_date=end)
    if folders:
        for table in DATE_COLUMN:
            text = text.replace(f'{table}.parquet"', f'{table}/*.parquet"')
    if memory_limit:
        text = text.replace('currency = "GBP"', f'currency = "GBP"\nmemory_limit = "{memory_limit}"', 1)
    Project.init(workdir, toml_text=text).close()


def stage(name: str, workdir: Path, **meta) -> dict:
    result = python_stage(STAGE, name, str(workdir), label=name)
    result.update(stage=name, commit=git_head(), **meta)
    record(RESULTS, result)
    if result["exit_code"] != 0:
        print(f"stage {name} failed: {result.get('error')}", file=sys.stderr)
    return result


def store_code_changed(since: str) -> bool:
    """Whether the store or ingest code changed between commit ``since`` and the work tree."""
    diff = subprocess.run(["git", "diff", "--quiet", since.split("+")[0], "--", "src/segflow/store",
                           "src/segflow/sources"], cwd=HERE.parent)
    return diff.returncode != 0 or since.endswith("+dirty")


def pristine(root: Path, name: str, args: argparse.Namespace, meta: dict) -> Path:
    """The ingested, never-run project of set ``name`` (ingested again when stale)."""
    info = data_info(root, name)
    proj = root / f"proj-{name}"
    mark = proj / "ingested.json"
    if mark.exists() and not args.reingest and (
            getattr(args, "keep_ingest", False) or not store_code_changed(json.loads(mark.read_text())["commit"])):
        return proj
    make_project(proj, root / f"data-{name}", dt.date.fromisoformat(info["end"]), args.memory_limit)
    result = stage("ingest", proj, **meta)
    if result["exit_code"] == 0:
        mark.write_text(json.dumps({"commit": result["commit"]}))
    return proj


# -- modes -----------------------------------------------------------------------------
def compare(args: argparse.Namespace) -> None:
    for name in args.sets.split(","):
        meta = {"mode": "compare", "set": name, "tag": args.tag, **_size(args.root, name)}
        proj = pristine(args.root, name, args, meta)
        scratch = args.root / f"scratch-{name}"
        if scratch.exists():
            shutil.rmtree(scratch)
        shutil.copytree(proj, scratch)
        only = set(args.only.split(","))
        if "run" in only:
            ok = stage("run", scratch, **meta)["exit_code"] == 0
            if ok and "report" in only and not args.no_report:
                stage("report", scratch, **meta)
        shutil.rmtree(scratch)
        store = proj / "segflow.duckdb"
        for schemes in [s for s in ("all", "rfm") if f"baseline-{s}" in only]:
            out = args.root / "baseline-out.duckdb"
            result = measure([sys.executable, str(BASELINE), "--store", str(store), "--schemes", schemes,
                              "--out", str(out)], label=f"baseline-{schemes}")
            result.update(stage=f"baseline-{schemes}", commit=git_head(), **meta)
            record(RESULTS, result)
            out.unlink(missing_ok=True)


def job(args: argparse.Namespace) -> None:
    for name in args.sets.split(","):
        meta = {"mode": "job", "set": name, "tag": args.tag, **_size(args.root, name)}
        info = data_info(args.root, name)
        proj = args.root / f"job-{name}"
        stages = args.stages.split(",")
        if "ingest" in stages:
            make_project(proj, args.root / f"data-{name}", dt.date.fromisoformat(info["end"]),
                         args.memory_limit)
        elif not (proj / "segflow.toml").exists():
            sys.exit(f"job --stages {args.stages}: no ingested project at {proj} (run the ingest "
                     "stage with --keep first)")
        for s in stages:
            if stage(s, proj, **meta)["exit_code"] != 0:
                break
        if not args.keep:
            shutil.rmtree(proj)


def split_month(data_dir: Path, out: Path, cut: dt.date) -> None:
    """Copy every table of ``data_dir`` into ``out/<table>/part-1.parquet`` (rows before
    ``cut`` or without a date) and ``out/month-24/<table>/part-2.parquet`` (rows from ``cut``)."""
    import duckdb

    con = duckdb.connect()
    for table, col in DATE_COLUMN.items():
        src = data_dir / f"{table}.parquet"
        for part, cond, folder in (("part-1", f"{col} IS NULL OR {col} < DATE '{cut}'", out),
                                   ("part-2", f"{col} >= DATE '{cut}'", out / "month-24")):
            (folder / table).mkdir(parents=True, exist_ok=True)
            target = folder / table / (part + ".parquet")
            con.execute(f"COPY (SELECT * FROM read_parquet('{src}') WHERE {cond}) TO '{target}' (FORMAT parquet)")
            if con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()[0] == 0:
                target.unlink()  # ingest rejects a file without rows (no exposures in the last month)
    con.close()


def newmonth(args: argparse.Namespace) -> None:
    for name in args.sets.split(","):
        info = data_info(args.root, name)
        meta = {"mode": "newmonth", "set": name, "tag": args.tag, **_size(args.root, name)}
        start, months = dt.date.fromisoformat(info["start"]), int(info["months"])
        cut = dt.date(start.year + (start.month - 1 + months - 1) // 12, (start.month - 1 + months - 1) % 12 + 1, 1)
        split = args.root / f"split-{name}"
        if not (split / "done").exists():
            split_month(args.root / f"data-{name}", split, cut)
            (split / "done").write_text(str(cut))
        proj = args.root / f"newmonth-{name}"
        make_project(proj, split, dt.date.fromisoformat(info["end"]), args.memory_limit, folders=True)
        for table in DATE_COLUMN:  # the last month is not there yet
            (split / table / "part-2.parquet").unlink(missing_ok=True)
        ok = stage("ingest", proj, step="ingest 23 months", **meta)["exit_code"] == 0
        ok = ok and stage("run", proj, step="run 23 months", **meta)["exit_code"] == 0
        for table in DATE_COLUMN:
            if (split / "month-24" / table / "part-2.parquet").exists():
                shutil.copy(split / "month-24" / table / "part-2.parquet", split / table / "part-2.parquet")
        ok = ok and stage("ingest", proj, step="ingest month 24", **meta)["exit_code"] == 0
        if ok and args.keep_ingested:  # the store the timed run starts from, to replay it
            ingested = args.root / f"newmonth-{name}-ingested"
            if ingested.exists():
                shutil.rmtree(ingested)
            shutil.copytree(proj, ingested)
        ok = ok and stage("run", proj, step="run with month 24", **meta)["exit_code"] == 0
        for table in DATE_COLUMN:
            (split / table / "part-2.parquet").unlink(missing_ok=True)
        if not args.keep:
            shutil.rmtree(proj)


def _size(root: Path, name: str) -> dict:
    info = data_info(root, name)
    return {"customers": info["customers"], "months": info["months"],
            "transactions": info["rows"]["transactions"], "source_rows": sum(info["rows"].values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["compare", "job", "newmonth", "render"])
    ap.add_argument("--sets", default="400k,1m")
    ap.add_argument("--root", type=Path, default=Path("/tmp/segflow-bench"))
    ap.add_argument("--tag", default="", help="a label stored with every figure (e.g. before, after)")
    ap.add_argument("--memory-limit", default=None, help='[project] memory_limit, e.g. "9GB"')
    ap.add_argument("--reingest", action="store_true", help="compare: ingest again even if current")
    ap.add_argument("--keep-ingest", action="store_true",
                    help="compare: reuse the pristine store even if the store/ingest code changed since "
                         "(the run then opens and upgrades it: the upgrade counts in the run's time)")
    ap.add_argument("--only", default="run,report,baseline-all,baseline-rfm",
                    help="compare: which of run, report, baseline-all, baseline-rfm to measure")
    ap.add_argument("--no-report", action="store_true", help="compare: skip the report stage")
    ap.add_argument("--keep", action="store_true", help="job/newmonth: keep the project folder")
    ap.add_argument("--stages", default="ingest,run,report",
                    help="job: the stages to measure, in order; without ingest they run on the kept "
                         "project <root>/job-<set> (an earlier job --keep)")
    ap.add_argument("--keep-ingested", action="store_true",
                    help="newmonth: also keep a copy of the project after \"ingest month 24\" "
                         "(<root>/newmonth-<set>-ingested: the store the timed run starts from)")
    ap.add_argument("--scaling-tags", default=None,
                    help="render: the scaling table and plot from the latest figures of these tags "
                         "(comma-separated; default: the tags before and after)")
    ap.add_argument("--render-only", default=None,
                    help="render: splice only these sections into docs/benchmarks.md (comma-separated "
                         "of data, profile, compare, job10m, newmonth, scaling, spark)")
    args = ap.parse_args()
    os.environ.setdefault("PYTHONPATH", str(HERE.parent / "src"))
    if args.mode == "render":
        from _render import render

        render(RESULTS, scaling_tags=tuple(args.scaling_tags.split(",")) if args.scaling_tags else None,
               only=tuple(args.render_only.split(",")) if args.render_only else None)
    else:
        {"compare": compare, "job": job, "newmonth": newmonth}[args.mode](args)


if __name__ == "__main__":
    main()
