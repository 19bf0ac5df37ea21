"""Run every benchmark script in bench/ and merge their sections into docs/benchmarks.md.

    python bench/run_all.py              # run all bench_*.py, then merge
    python bench/run_all.py --merge-only # only merge bench/results/*.md into docs/benchmarks.md

Each bench_*.py writes its own markdown section to bench/results/<area>.md (beginning with its
``## `` heading). The merge replaces, in docs/benchmarks.md, the section under each such
heading by the area's file and appends an area the document lacks; every other section (those
written by hand, such as the server's or the test suite's) stays as it is. The benchmarks are
not timed tests: they are run by hand (`make bench`) on a quiet machine.
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


def merge(doc: Path = DOC, results: Path = HERE / "results") -> None:
    """Splice every ``results/<area>.md`` (but the table dump ``run-tables.md``) into ``doc``
    by its ``## `` heading: the section under that heading (up to the next ``## ``) is
    replaced, an area whose heading the document lacks is appended in :data:`ORDER`; the
    document's header and every section without an area file are kept. A new document
    starts from :data:`HEADER`."""
    import os

    text = doc.read_text() if doc.exists() else HEADER.format(
        cores=os.cpu_count(), machine=platform.machine(), python=platform.python_version())
    files = {f.stem: f.read_text().strip() for f in sorted(results.glob("*.md")) if f.stem != "run-tables"}
    ordered = [k for k in ORDER if k in files] + sorted(k for k in files if k not in ORDER)
    done = []
    for area in ordered:
        body = files[area]
        heading = body.splitlines()[0] if body else ""
        if not heading.startswith("## "):
            print(f"bench/results/{area}.md does not begin with a '## ' heading: left out")
            continue
        if any(line.startswith("## ") for line in body.splitlines()[1:]):
            print(f"bench/results/{area}.md holds more than one '## ' section: left out")
            continue
        found = ("\n" + text).count("\n" + heading + "\n")
        if found > 1:
            print(f"docs/benchmarks.md has the heading {heading!r} {found} times: {area} left out")
            continue
        start = ("\n" + text).find("\n" + heading + "\n") - 1  # -1: a heading on the first line
        if start < -1:
            text = text.rstrip("\n") + "\n\n" + body + "\n"
        else:
            end = text.find("\n## ", start + 1)
            text = text[:start + 1] + body + "\n" + (text[end:] if end >= 0 else "")
        done.append(area)
    doc.write_text(text)
    print(f"wrote {doc} ({len(done)} sections: {', '.join(done)})")


def main() -> None:
    if "--merge-only" not in sys.argv:
        for script in sorted(HERE.glob("bench_*.py")):
            print(f"== {script.name}", flush=True)
            subprocess.run([sys.executable, str(script)], check=False)
    merge()


if __name__ == "__main__":
    main()
