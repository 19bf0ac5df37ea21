"""Kill ``segflow ingest`` and ``segflow run`` at many points (SIGKILL, no clean-up), also while
a source file is being rewritten: the store is always as before a load or with the load
complete, and a rerun gives the same store content as an uninterrupted run."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import subprocess
import threading
import time
import warnings
from pathlib import Path

import pytest
from tests.sources.fork_child import run_cli

from segflow.store import Store

pytestmark = pytest.mark.slow
datasets = pytest.importorskip("segflow.datasets")

TABLES = ("customers", "transactions", "events", "campaign_exposures", "survey_responses",
          "quarantine")


def _project(root: Path) -> Path:
    from segflow.project import Project

    ds = datasets.generate_demo(root / "data", customers=300, months=4, seed=3)
    Project.init(root, toml_text=datasets.demo_project_toml("data", max_date=ds.end),
                 overwrite=True).close()
    return root


# Commands run in children forked from a fork server that imported segflow once: SIGKILL ends
# them without any clean-up, as a crash would, and no interpreter start-up is paid per
# command. Not forked from this process: it has DuckDB and Arrow threads, and a fork of a
# threaded process can inherit a lock held by another thread and hang.
_FORK = multiprocessing.get_context("forkserver")
_FORK.set_forkserver_preload(["segflow.cli", "tests.sources.fork_child"])
#: Longest wait for a command that is not killed (a hang fails the test, not the CI run).
_WAIT_SECONDS = 600


class _Command:
    def __init__(self, args: list[str]) -> None:
        self.proc = _FORK.Process(target=run_cli, args=(args,))
        self.proc.start()

    def wait(self, timeout: float | None = _WAIT_SECONDS) -> int:
        self.proc.join(timeout)
        if self.proc.exitcode is None:
            raise subprocess.TimeoutExpired("segflow", timeout or 0)
        return self.proc.exitcode

    def send_signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)


def _cli(root: Path, *args: str) -> _Command:
    return _Command([*args, "-p", str(root)])


def _store(root: Path) -> Path:
    return next(root.glob("*.duckdb"))


def _content(root: Path) -> dict[str, str]:
    """A digest of each table's rows without load ids and times (equal loads, equal digest)."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store = Store(_store(root), read_only=True)
    try:
        for t in TABLES:
            cols = [c for c in store.table(t).columns
                    if c not in ("load_id", "ingested_at", "reason")]
            rows = store.sql(f"SELECT {', '.join(cols)} FROM {t}").to_pylist()
            text = "\n".join(sorted(repr(sorted(r.items())) for r in rows))
            out[t] = hashlib.sha256(text.encode()).hexdigest()
    finally:
        store.close()
    return out


def _consistent(root: Path) -> None:
    """Every stored row belongs to a recorded load, and every load's rows are all there."""
    store = Store(_store(root))  # a read-write open also recovers runs left 'running'
    try:
        loads = {r["load_id"]: r for r in store.sql("SELECT * FROM loads").to_pylist()}
        for t in TABLES[:5]:
            ids = {r["load_id"] for r in store.sql(f"SELECT DISTINCT load_id FROM {t}").to_pylist()}
            assert ids <= set(loads), (t, ids - set(loads))
        for load_id, ld in loads.items():
            q = store.sql("SELECT count(*) FROM quarantine WHERE load_id = ?", [load_id])
            assert q.column(0)[0].as_py() == ld["rows_quarantined"]
        running = store.sql("SELECT count(*) FROM runs WHERE status = 'running'").column(0)[0]
        assert running.as_py() == 0
    finally:
        store.close()


def _kill_after(root: Path, delay: float, *args: str) -> bool:
    """Start the command, SIGKILL it after ``delay`` seconds; True when it was killed."""
    return _timed_kill(root, delay, *args)[0]


def _timed_kill(root: Path, delay: float, *args: str) -> tuple[bool, float]:
    """Start the command, SIGKILL it after ``delay`` seconds: (killed, seconds it ran)."""
    t0 = time.perf_counter()
    proc = _cli(root, *args)
    try:
        proc.wait(timeout=delay)
        return False, time.perf_counter() - t0
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True, time.perf_counter() - t0


def _copy(src: Path, dst: Path) -> None:
    import shutil

    shutil.copytree(src, dst)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict[str, str], float, float, list[dict], Path]:
    root = _project(tmp_path_factory.mktemp("ref") / "p")
    pristine = root.parent / "pristine"
    _copy(root, pristine)
    assert _cli(root, "ingest").wait() == 0  # warms the byte-code caches
    warm = root.parent / "warm"
    _copy(pristine, warm)
    t0 = time.perf_counter()
    assert _cli(warm, "ingest").wait() == 0
    t_ingest = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert _cli(root, "run").wait() == 0
    t_run = time.perf_counter() - t0
    # (the project before ingest, its content after, the times, the run's assignments, the
    # project after an uninterrupted ingest: copy it, never change it)
    return pristine, _content(root), t_ingest, t_run, _assignments(root), warm


def _assignments(root: Path) -> list[dict]:
    with Store(_store(root), read_only=True) as s:
        return s.sql("SELECT scheme, snapshot_date, customer_id, segment FROM segment_assignments "
                     "ORDER BY ALL").to_pylist()


def test_ingest_killed_at_many_points(reference, tmp_path: Path) -> None:
    pristine, expected, t_ingest, _, _, _ = reference
    killed = 0
    for i, frac in enumerate((0.25, 0.5, 0.75, 0.95)):
        # The reference time was taken under whatever load the machine had then: an ingest
        # that completes before its kill point measures a shorter time, and the point is
        # tried again on a fresh copy at that fraction of it (a few times at most).
        for attempt in range(4):
            root = tmp_path / f"k{i}-{attempt}"
            _copy(pristine, root)
            hit, took = _timed_kill(root, frac * t_ingest, "ingest")
            _consistent(root)
            assert _cli(root, "ingest").wait() == 0  # the rerun completes the store
            _consistent(root)
            assert _content(root) == {t: expected[t] for t in expected}
            if hit:
                killed += 1
                break
            t_ingest = min(t_ingest, took)
    assert killed >= 3  # the kill points hit a running ingest


def test_run_killed_at_many_points(reference, tmp_path: Path) -> None:
    _, _, _, t_run, want, ingested = reference
    root = tmp_path / "r"
    _copy(ingested, root)  # an uninterrupted ingest of the pristine project
    killed = 0
    for frac in (0.4, 0.8):
        killed += _kill_after(root, frac * t_run, "run")
        _consistent(root)  # no run stays 'running'
    assert _cli(root, "run").wait() == 0
    got = _assignments(root)
    with Store(_store(root)) as s:
        failed = s.sql("SELECT count(*) FROM runs WHERE status = 'failed'").column(0)[0].as_py()
    assert got == want
    assert failed <= killed  # a killed run is recorded as failed (if it had started)


def test_source_rewritten_during_ingest(reference, tmp_path: Path) -> None:
    """A writer keeps rewriting the transactions file in place (truncate, then write in
    chunks) between an old and a new version while ingest runs and is killed; whatever
    happens, the store never holds a mixture, and a final ingest equals a clean load."""
    pristine, _, t_ingest, _, _, _ = reference
    root = tmp_path / "w"
    _copy(pristine, root)
    target = next((root / "data").glob("transactions*.csv"))
    old = target.read_bytes()
    head, _, rest = old.partition(b"\n")
    lines = rest.splitlines(keepends=True)
    new = head + b"\n" + b"".join(lines[: len(lines) * 2 // 3])  # the new version: fewer rows
    stop = threading.Event()

    def rewrite() -> None:
        k = 0
        while not stop.is_set():
            data = (old, new)[k % 2]
            with target.open("wb") as fh:  # not atomic: readers can see a half-written file
                for j in range(0, len(data), 64 * 1024):
                    fh.write(data[j:j + 64 * 1024])
                    fh.flush()
                    time.sleep(0.001)
            k += 1

    writer = threading.Thread(target=rewrite, daemon=True)
    writer.start()
    try:
        for frac in (0.6, 2.0):  # killed early, late, or let finish (or fail cleanly)
            _kill_after(root, frac * t_ingest, "ingest")
            _consistent(root)
    finally:
        stop.set()
        writer.join()
    target.write_bytes(new)
    # every recorded load of the file has the hash of one whole version
    versions = {hashlib.sha256(old).hexdigest(), hashlib.sha256(new).hexdigest()}
    with Store(_store(root), read_only=True) as s:
        hashes = {r["file_hash"] for r in s.sql(
            "SELECT file_hash FROM loads WHERE source_file LIKE '%transactions%'").to_pylist()}
    assert hashes <= versions
    assert _cli(root, "ingest").wait() == 0
    _consistent(root)
    clean = tmp_path / "clean"
    _copy(pristine, clean)
    (next((clean / "data").glob("transactions*.csv"))).write_bytes(new)
    assert _cli(clean, "ingest").wait() == 0
    got, want = _content(root), _content(clean)
    # The new version has a subset of the old rows: loading old then new stores the same rows
    # as loading new alone, except rows only the old version had (kept, as ingest appends).
    assert got["customers"] == want["customers"]
    with Store(_store(root), read_only=True) as a, Store(_store(clean), read_only=True) as b:
        sql = "SELECT count(*) FROM transactions WHERE source_file LIKE '%transactions%'"
        n_got, n_want = a.sql(sql).column(0)[0].as_py(), b.sql(sql).column(0)[0].as_py()
        n_old = len(lines)
    assert n_want <= n_got <= n_want + (n_old - len(lines) * 2 // 3)
