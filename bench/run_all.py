"""Run every benchmark script in bench/ and merge their sections into docs/benchmarks.md.

    python bench/run_all.py              # run all bench_*.py, then merge
    python bench/run_all.py --merge-only # only merge bench/results/*.md into docs/benchmarks.md

Each bench_*.py writes its own markdown section to bench/results/<area>.md. The benchmarks
are not timed tests: they are run by hand (`make bench`) on a quiet machine.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "benchmarks.md"
ORDER = ["run", "generate", "ingest", "features", "cluster", "migration", "btyd", "churn", "campaigns"]

HEADER = """# Benchmarks

Speed and memory of segflow, measured by the scripts in `bench/` side by side with the tools a
user would otherwise pick, on the same data and the same machine. Every figure below was
produced by the script named in its section; rerun with `make bench` (or one script alone).
Where an issue set a target that was not reached, the section says so with the figure.

Machine for the figures below unless a section says otherwise: {cores} cores, {machine},
Linux, Python {python}. Note: these figures were taken while other work shared the two cores,
so absolute times are pessimistic; ratios between tools run back to back are the fair reading.
"""


def merge() -> None:
    import os

    sections = {p.stem: p.read_text().strip() for p in sorted((HERE / "results").glob("*.md"))}
    ordered = [k for k in ORDER if k in sections] + sorted(k for k in sections if k not in ORDER)
    text = HEADER.format(cores=os.cpu_count(), machine=platform.machine(), python=platform.python_version())
    text += "\n" + "\n\n".join(sections[k] for k in ordered) + "\n"
    DOC.write_text(text)
    print(f"wrote {DOC} ({len(ordered)} sections: {', '.join(ordered)})")


def main() -> None:
    if "--merge-only" not in sys.argv:
        for script in sorted(HERE.glob("bench_*.py")):
            print(f"== {script.name}", flush=True)
            subprocess.run([sys.executable, str(script)], check=False)
    merge()


if __name__ == "__main__":
    main()
