"""The fixed cost of a small DuckDB run: CPU-seconds of in-process ``Project.run`` calls of
the pipeline fixture (tests/pipeline/_fixture.py: 60 customers, six months, four schemes),
where segflow's Python and Ibis work outweighs DuckDB's.

    python bench/small_run_cpu.py                    # three runs, each on a fresh project
    python bench/small_run_cpu.py --runs 5 --profile /tmp/run.pstats

The first run pays the imports and first compilations; the later ("warm") ones are what each
run of a long-lived process (the test suite, a notebook, the server) costs. CPU is the
process's (``time.process_time``: DuckDB's threads included). With ``--profile`` the last
run is profiled with cProfile (read it with ``python -m pstats``). Run it from the checkout
(the fixture is imported from ``tests``). Figures: docs/benchmarks.md, "The test suite's
time".
"""

from __future__ import annotations

import argparse
import cProfile
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs, each on a fresh project")
    parser.add_argument("--profile", type=Path, help="cProfile the last run into this file")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from tests.pipeline._fixture import new_fixture_project

    warnings.simplefilter("ignore")  # the fixture's scheme notes
    with tempfile.TemporaryDirectory() as scratch:
        for i in range(args.runs):
            project = new_fixture_project(Path(scratch) / f"p{i}")
            profiler = cProfile.Profile() if args.profile and i == args.runs - 1 else None
            start = time.process_time()
            if profiler:
                profiler.enable()
            project.run()
            if profiler:
                profiler.disable()
                profiler.dump_stats(args.profile)
            took = time.process_time() - start
            project.close()
            kind = "first" if i == 0 else "warm" + (" (profiled)" if profiler else "")
            print(f"run {i + 1}: {took:.2f} CPU-s ({kind})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
