"""A process's resident memory, read from /proc (benchmarks that sample a child's peak)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path


def rss_kb(pid: int) -> int:
    """The process's resident set in kB now (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_sampled(
    cmd: list[str], env: dict[str, str] | None, measure: Callable[[int], dict[str, int]], every: float
) -> tuple[str, float, dict[str, int]]:
    """Run one command to its end: its standard output, its seconds, and the peak of each figure
    ``measure(pid)`` gives (sampled every ``every`` seconds while it runs). A failure stops the
    benchmark with the command's last error lines."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks: dict[str, int] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for key, value in measure(proc.pid).items():
                peaks[key] = max(peaks.get(key, 0), value)
            stop.wait(every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    stop.set()
    sampler.join()
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return out, seconds, peaks
