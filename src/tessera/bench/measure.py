"""Measuring child processes: wall time, wait4 peak RSS and a sampled RSS of the whole process tree."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _ppid(pid: str) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: the fields start after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(root: int) -> list[int]:
    """The pids of `root` and everything it started (a scan of /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            parent = _ppid(entry.name)
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


@dataclass
class TreeSampler:
    """Samples the summed RSS of a process tree every `interval` seconds in a thread.

    The tree (dbt's own subprocess included) is re-scanned every `rescan` samples: scanning
    /proc costs a few milliseconds, reading known pids' statm almost nothing.
    """

    root: int
    interval: float = 0.1
    rescan: int = 5
    samples: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        pids: list[int] = [self.root]
        i = 0
        while not self._stop.is_set():
            if i % self.rescan == 0:
                pids = descendants(self.root)
            total = sum(rss_bytes(p) for p in pids)
            if total:
                self.samples.append((time.time(), total))
            i += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> int | None:
        return max((v for _, v in self.samples), default=None)


@dataclass
class ChildRun:
    """One measured child process."""

    returncode: int
    seconds: float
    started_at: float
    maxrss_bytes: int
    samples: list[tuple[float, int]]
    stderr_tail: str

    @property
    def sampled_peak(self) -> int | None:
        return max((v for _, v in self.samples), default=None)

    @property
    def peak_rss_bytes(self) -> int:
        """The larger of the sampled tree peak and wait4's peak of the biggest single process."""
        return max(self.maxrss_bytes, self.sampled_peak or 0)


def run_child(
    args: list[str], env: dict[str, str], cwd: Path, log_path: Path, interval: float = 0.1
) -> ChildRun:
    """Run `args`, stream its output to `log_path`, and measure time and memory.

    Peak memory is measured twice: wait4's ru_maxrss (exact, but the peak of the largest single
    process in the tree) and the sampled sum of the tree's RSS (catches dbt's subprocess running
    beside Dagster, but can miss a spike shorter than the interval).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as out:
        started_at = time.time()
        t0 = time.perf_counter()
        # Its own process group, so an interrupted benchmark also stops dbt's subprocess.
        proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            with TreeSampler(proc.pid, interval=interval) as sampler:
                _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, 0)
            raise
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    tail = log_path.read_text(errors="replace")[-4000:]
    return ChildRun(
        returncode=proc.returncode,
        seconds=seconds,
        started_at=started_at,
        # Linux reports ru_maxrss in KiB.
        maxrss_bytes=usage.ru_maxrss * 1024,
        samples=sampler.samples,
        stderr_tail=tail,
    )


def best_of(repeats: int, fn) -> float:
    """The fastest of `repeats` timed calls of `fn()` (a floor is what the machine can do)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
