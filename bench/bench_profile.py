"""Where the time of ``segflow run`` goes: a py-spy sampling profile of one run, summarised.

    python bench/bench_profile.py --set 200k [--rate 20]

Runs ``segflow run`` on a fresh copy of the pristine ingested project of ``--set`` (made by
``bench/bench_run.py compare``, or ingested here) under ``py-spy record --format raw`` (Python
and native stacks of the main thread: DuckDB's C++ frames show), then
writes ``bench/results/profile/profile-<set>.md``: the share of samples per kind of work (the
innermost recognisable frame: DuckDB executing a query, Ibis/sqlglot compiling, Arrow/pandas
conversion, other Python) and the segflow functions with the largest inclusive share.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import git_head  # noqa: E402
from bench_run import STAGE, pristine  # noqa: E402

HERE = Path(__file__).resolve().parent
KINDS = [  # (kind, substring of a frame's file), innermost match wins
    ("DuckDB executes SQL (its C++ frames on the main thread)", "duckdb"),
    ("Ibis/sqlglot build and compile expressions", "sqlglot"),
    ("Ibis/sqlglot build and compile expressions", "/ibis/"),
    ("Arrow / pandas / NumPy conversion", "/pyarrow/"),
    ("Arrow / pandas / NumPy conversion", "/pandas/"),
    ("Arrow / pandas / NumPy conversion", "/numpy/"),
    ("model fits (SciPy, scikit-learn)", "/scipy/"),
    ("model fits (SciPy, scikit-learn)", "/sklearn/"),
]


def kind_of(frames: list[str]) -> str:
    """The kind of work of one sampled stack (frames outermost first, py-spy ``--native``)."""
    if any("_duckdb.cpython" in f or "libduckdb" in f for f in frames):
        return KINDS[0][0]
    for frame in reversed(frames):  # innermost first
        if "(" not in frame or ".so" in frame.rsplit("(", 1)[-1]:
            continue
        where = frame[frame.rindex("(") + 1:]
        for kind, needle in KINDS[1:]:
            if needle in where:
                return kind
        if "segflow" in where:
            return "segflow's own Python"
    return "other Python (imports, stdlib, interpreter)"


def summarise(raw: Path) -> tuple[Counter, Counter, int]:
    kinds: Counter = Counter()
    funcs: Counter = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        kinds[kind_of(frames)] += n
        seen = set()
        for f in frames:
            if "/segflow/" in f or "segflow/" in f.split("(")[-1]:
                name = f.split(" (")[0]
                where = f.split("(")[-1].split(":")[0]
                key = f"{where.split('segflow/')[-1]}:{name}"
                if key not in seen:
                    seen.add(key)
                    funcs[key] += n
    return kinds, funcs, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default="200k")
    ap.add_argument("--root", type=Path, default=Path("/tmp/segflow-bench"))
    ap.add_argument("--rate", type=int, default=20, help="samples per second")
    ap.add_argument("--reingest", action="store_true")
    ap.add_argument("--memory-limit", default=None)
    ap.add_argument("--pid", type=int, default=None,
                    help="sample an already running `segflow run` stage process instead (for --duration s)")
    ap.add_argument("--duration", type=int, default=120)
    args = ap.parse_args()
    spy = Path(sys.executable).parent / "py-spy"
    raw = args.root / f"profile-{args.set}.txt"
    if args.pid:
        subprocess.run([str(spy), "record", "--native", "--format", "raw", "--rate", str(args.rate), "-o", str(raw),
                        "--pid", str(args.pid), "--duration", str(args.duration)], check=True)
        write(args, raw, f"a {args.duration} s window of a running `segflow run` (pid {args.pid})")
        return
    proj = pristine(args.root, args.set, args, {"mode": "profile", "set": args.set, "tag": "profile"})
    scratch = args.root / f"profile-{args.set}"
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(proj, scratch)
    subprocess.run([str(spy), "record", "--native", "--format", "raw", "--rate", str(args.rate), "-o", str(raw), "--",
                    sys.executable, "-c", STAGE, "run", str(scratch)], check=True)
    shutil.rmtree(scratch, ignore_errors=True)
    write(args, raw, "the whole run")


def write(args: argparse.Namespace, raw: Path, what: str) -> None:
    import os

    kinds, funcs, total = summarise(raw)
    lines = [f"Profile of `segflow run` on set {args.set}, {what} (commit {git_head()}, py-spy --native "
             f"{args.rate} samples/s of the main thread, {total:,} samples, 1-min load after "
             f"{os.getloadavg()[0]:.1f}):", "",
             "| kind of work (innermost frame) | share of samples |", "|---|---:|"]
    lines += [f"| {k} | {n / total:.0%} |" for k, n in kinds.most_common()]
    lines += ["", "| segflow function (inclusive) | share of samples |", "|---|---:|"]
    lines += [f"| `{k}` | {n / total:.0%} |" for k, n in funcs.most_common(14)]
    out = HERE / "results" / "profile" / f"profile-{args.set}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(json.dumps({"samples": total}))


if __name__ == "__main__":
    main()
