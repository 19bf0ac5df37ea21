"""Run one benchmark stage in its own process; its wall time, peak memory and the load.

Two memory figures per stage:

- ``peak_rss_mib``: ``ru_maxrss`` of the stage's own process (``os.wait4``), the kernel's
  high-water mark of its resident set; exact, but blind to child processes (Spark's JVM);
- ``tree_peak_mib``: the largest sum of resident sets over the process and all its
  descendants, sampled with psutil every 0.25 s (may miss a peak shorter than that).

Two CPU figures per stage:

- ``cpu_s``: user + system CPU seconds of the stage's process and the children it waited for
  (``os.wait4``); blind to children it did not wait for (Spark's JVM and its Python workers);
- ``tree_cpu_s``: the same for the whole process tree: this process becomes a child
  subreaper (Linux ``PR_SET_CHILD_SUBREAPER``), so the descendants orphaned when the stage's
  process exits (the JVM) are reparented to it and reaped here, and their CPU (with that of
  the processes they waited for: the Python workers) is read from ``RUSAGE_CHILDREN``; plus,
  for the ``also`` processes (a Spark master and workers, which outlive the stage), the CPU
  they used during the stage (psutil, their own and their waited-for children's).

The load averages (1, 5, 15 minutes) before and after go with every figure, since the machine
is shared: on 2 cores a 1-minute load of 4 means the stage had about half the CPU it asked for.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

SRC = Path(__file__).resolve().parents[1] / "src"


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def _subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); whether it worked."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def tree_cpu() -> float:
    """CPU seconds (user + system) of this process and its live descendants so far, with
    the children they have waited for: a JVM and its Python workers included."""
    me = psutil.Process()
    return _cpu([me, *me.children(recursive=True)])


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def _reap(pids: set[int], timeout: float = 120.0) -> None:
    """Wait (up to ``timeout`` s in all) for those of ``pids`` that became children of this
    process (orphans reparented to the subreaper), so that their CPU counts in
    ``RUSAGE_CHILDREN``."""
    end = time.time() + timeout
    for pid in pids:
        while True:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break  # not a child of this process (reaped by its own parent)
            if done or time.time() > end:
                break
            time.sleep(0.1)


def measure(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
            nice: int = 0, label: str = "", also: tuple[int, ...] | list[int] = ()) -> dict:
    """Run ``argv`` to completion; its last stdout line parsed as JSON (if it is JSON) plus
    ``seconds``, ``cpu_s`` (user + system CPU seconds of the child and its waited-for
    children), ``peak_rss_mib``, ``tree_peak_mib``, ``load_before``, ``load_after``,
    ``exit_code`` and, on failure, the last lines of its stderr as ``error``. ``also``: pids
    of other processes (a Spark master and workers) whose trees count in ``tree_peak_mib``."""
    full_env = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    reaper = _subreaper()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    others0 = [psutil.Process(pid) for pid in also]
    others_cpu0 = _cpu(others0)
    mine0 = {c.pid for c in psutil.Process().children()}
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=full_env, cwd=cwd,
                                preexec_fn=(lambda: os.nice(nice)) if nice else None)
        peak = [0]
        seen: set[int] = set()  # the stage's descendants
        done = threading.Event()

        def sample() -> None:
            try:
                ps = psutil.Process(proc.pid)
                others = [psutil.Process(pid) for pid in also]
                while not done.is_set():
                    seen.update(c.pid for c in ps.children(recursive=True))
                    peak[0] = max(peak[0], _tree_rss(ps) + sum(_tree_rss(o) for o in others))
                    done.wait(0.25)
            except psutil.NoSuchProcess:
                pass

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
        if reaper:  # the sampled descendants, and orphans reparented here since
            _reap(seen | ({c.pid for c in psutil.Process().children()} - mine0 - set(also)))
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        tree_cpu = (children1.ru_utime + children1.ru_stime - children0.ru_utime - children0.ru_stime
                    + _cpu(others0) - others_cpu0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    result: dict = {}
    lines = stdout.strip().splitlines()
    if lines:
        try:
            parsed = json.loads(lines[-1])
            if isinstance(parsed, dict):
                result.update(parsed)
        except json.JSONDecodeError:
            pass
    result.update(
        label=label, started_utc=started, seconds=round(seconds, 2),
        cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
        tree_cpu_s=round(tree_cpu, 2) if reaper else None,
        peak_rss_mib=round(usage.ru_maxrss / 1024), tree_peak_mib=round(peak[0] / 2**20),
        load_before=[round(x, 2) for x in load_before],
        load_after=[round(x, 2) for x in os.getloadavg()], exit_code=proc.returncode,
    )
    if proc.returncode != 0:
        result["error"] = " | ".join(stderr.strip().splitlines()[-3:])
    return result


def python_stage(code: str, *args: str, **kw) -> dict:
    """:func:`measure` a ``python -c code args...`` child (this interpreter, segflow from src/)."""
    return measure([sys.executable, "-c", code, *args], **kw)


def record(path: Path, result: dict) -> None:
    """Append ``result`` as one JSON line to ``path`` and echo it on stdout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(result) + "\n")
    print(json.dumps(result), flush=True)


def git_head() -> str:
    """The last commit that changed src/ in the checkout the bench runs (short hash, ``+dirty``
    when src/ has uncommitted changes): the code measured, not the bench scripts."""
    root = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "log", "-1", "--format=%h", "--", "src"], cwd=root, capture_output=True,
                          text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=root,
                           capture_output=True, text=True).stdout.strip()
    return head + ("+dirty" if dirty else "")
