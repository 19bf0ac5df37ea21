"""Session 31 bench: the DuckDB ingest with its stored audit, old code against new, alternated.

    nice -n 10 python bench/bench_audit.py --set tx1m --old /tmp/old/src --new src --pairs 2

Each measurement is a fresh project on the set's Parquet files (``bench_run.make_project``,
DuckDB ``memory_limit`` 3GB) ingested in its own process (``bench/_measure.py``: CPU of the
process tree, wall, peak RSS, load before and after) with ``PYTHONPATH`` the code under test:
the loads (:func:`segflow.sources.ingest`), then the stored audit
(:func:`segflow.summaries.store_audit`), as ``segflow ingest`` runs them; the process also
reports the CPU seconds of each part (``time.process_time``: DuckDB's threads included) and
of the ``duplicate_rows`` check alone (run once more on every table after the audit).
Records go to ``bench/results/audit.jsonl``.

Session 32: ``--audit-only`` ingests the set once (this tree's code, ``<work>/<set>-base``)
and then measures :func:`segflow.quality.audit` alone on that store, old and new alternated,
each in a fresh process (``cpu_s``: the process's CPU seconds, DuckDB's threads included;
``audit_cpu_s``/``audit_s``: the audit call alone); every report's rows must equal the
first one's (``digest``)::

    nice -n 10 python bench/bench_audit.py --set 200k --audit-only --old /tmp/old/src --new src --pairs 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import measure, record  # noqa: E402
from bench_run import data_info, make_project  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "audit.jsonl"

STAGE = """
import json, sys, time, warnings
from pathlib import Path
from segflow.project import Project
from segflow.quality._audit import _duplicates
from segflow.sources import ingest
from segflow.store import CANONICAL_TABLES
from segflow.summaries import store_audit
warnings.simplefilter("ignore")
out = {}
with Project.open(Path(sys.argv[1])) as p:
    c0, w0 = time.process_time(), time.perf_counter()
    with p.store.run("ingest", {}):
        ingest(p.store, p.settings, p.directory)
        c1, w1 = time.process_time(), time.perf_counter()
        store_audit(p.store)
    c2, w2 = time.process_time(), time.perf_counter()
    dup = {}
    for name in CANONICAL_TABLES:
        t = p.store.table(name)
        n = int(t.count().execute())
        c = time.process_time()
        k = _duplicates(name, t, n).count
        dup[name] = [k, round(time.process_time() - c, 2)]
    out = {"loads_cpu_s": round(c1 - c0, 2), "audit_cpu_s": round(c2 - c1, 2),
           "loads_s": round(w1 - w0, 2), "audit_s": round(w2 - w1, 2),
           "duplicates_cpu_s": round(sum(v[1] for v in dup.values()), 2), "duplicates": dup}
print(json.dumps(out))
"""


INGEST = """
import sys, warnings
from pathlib import Path
from segflow.project import Project
from segflow.sources import ingest
warnings.simplefilter("ignore")
with Project.open(Path(sys.argv[1])) as p, p.store.run("ingest", {}):
    ingest(p.store, p.settings, p.directory)
"""

AUDIT = """
import hashlib, json, sys, time, warnings
from pathlib import Path
from segflow.project import Project
from segflow.quality import audit
warnings.simplefilter("ignore")
with Project.open(Path(sys.argv[1])) as p:
    c0, w0 = time.process_time(), time.perf_counter()
    report = audit(p.store)
    c1, w1 = time.process_time(), time.perf_counter()
    frame = report.to_pandas()
    digest = hashlib.sha1((frame.to_csv(index=False) + repr((round(report.score, 9), report.as_of,
                           report.data_end))).encode()).hexdigest()
print(json.dumps({"audit_cpu_s": round(c1 - c0, 2), "audit_s": round(w1 - w0, 2),
                  "checks": len(frame), "digest": digest}))
"""


def audit_only(args: argparse.Namespace, info: dict) -> None:
    """Ingest once, then the audit alone, old and new alternated (see the module notes)."""
    base = args.work / f"{args.set}-base"
    if not (base / "done").exists():
        make_project(base, args.root / f"data-{args.set}", dt.date.fromisoformat(info["end"]), "3GB")
        result = measure([sys.executable, "-c", INGEST, str(base)], label="ingest")
        if result.get("exit_code"):
            raise SystemExit(result.get("error"))
        (base / "done").write_text(json.dumps(result))
    digest = None
    for i in range(args.pairs):
        for which, src in (("old", args.old), ("new", args.new)):
            result = measure([sys.executable, "-c", AUDIT, str(base)],
                             env={"PYTHONPATH": str(src.resolve())}, label=f"{which} {i + 1}")
            result.update(set=args.set, code=which, src=str(src), pair=i + 1, tag=args.tag,
                          mode="audit-only")
            record(RESULTS, result)
            digest = digest or result.get("digest")
            if result.get("digest") != digest:
                raise SystemExit(f"the {which} audit differs from the first one")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", default="tx1m")
    ap.add_argument("--root", type=Path, default=Path("/tmp/segflow-bench"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/segflow-bench-audit"))
    ap.add_argument("--old", type=Path, required=True, help="src/ of the old code")
    ap.add_argument("--new", type=Path, required=True, help="src/ of the new code")
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--tag", default="s31")
    ap.add_argument("--audit-only", action="store_true", help="the audit alone (session 32)")
    args = ap.parse_args()
    info = data_info(args.root, args.set)
    if args.audit_only:
        audit_only(args, info)
        return
    for i in range(args.pairs):
        for which, src in (("old", args.old), ("new", args.new)):
            proj = args.work / f"{args.set}-{which}"
            make_project(proj, args.root / f"data-{args.set}", dt.date.fromisoformat(info["end"]), "3GB")
            result = measure([sys.executable, "-c", STAGE, str(proj)],
                             env={"PYTHONPATH": str(src.resolve())}, label=f"{which} {i + 1}")
            result.update(set=args.set, code=which, src=str(src), pair=i + 1, tag=args.tag)
            record(RESULTS, result)
    print(json.dumps({"results": str(RESULTS)}))


if __name__ == "__main__":
    main()
