"""Benchmark of the main job: generate -> ingest -> run -> report, time and peak memory per stage.

Each stage runs in its own Python process so that its peak resident memory is its own
(``ru_maxrss`` of that process). Usage::

    python bench/bench_run.py --customers 1000000 --months 24 [--workdir /tmp/segflow-bench]

Writes a markdown section to bench/results/run.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

STAGE = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path
    stage, workdir, customers, months = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    t0 = time.perf_counter()
    extra = {}
    if stage == "generate":
        from segflow.datasets import generate_demo
        generate_demo(workdir / "data", customers=customers, months=months, seed=1)
    else:
        from segflow.project import Project
        if stage == "ingest":
            import datetime as dt
            from segflow.datasets import demo_project_toml
            start = dt.date(2024, 1, 1)
            end = dt.date(start.year + (months // 12), 1 + months % 12, 1)
            project = Project.init(workdir, toml_text=demo_project_toml("data", max_date=end), overwrite=True)
            report = project.ingest()
            frame = report.to_pandas()
            extra["rows_read"] = int(frame["rows_read"].sum())
        else:
            project = Project.open(workdir)
            if stage == "run":
                summary = project.run()
                extra["assignments"] = summary.assignments_written
                extra["snapshots"] = len(summary.snapshot_dates)
            elif stage == "report":
                project.report(workdir / "report.html")
        project.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"stage": stage, "seconds": time.perf_counter() - t0, "peak_rss_mb": peak_mb, **extra}))
    """
)


def run_stage(stage: str, workdir: Path, customers: int, months: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", STAGE, stage, str(workdir), str(customers), str(months)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/segflow-bench-run"))
    parser.add_argument("--stages", default="generate,ingest,run,report")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for stage in args.stages.split(","):
        result = run_stage(stage, args.workdir, args.customers, args.months)
        print(json.dumps(result), flush=True)
        results.append(result)
    lines = [
        f"## The main job (`segflow run`) on {args.customers:,} customers x {args.months} months",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
        "each stage in its own process (peak RSS is that process's).",
        "",
        "| stage | seconds | peak RSS (MB) | notes |",
        "|---|---:|---:|---|",
    ]
    for r in results:
        notes = ", ".join(f"{k}={v:,}" for k, v in r.items() if k not in {"stage", "seconds", "peak_rss_mb"})
        lines.append(f"| {r['stage']} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | {notes} |")
    out = Path(__file__).parent / "results" / "run.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
