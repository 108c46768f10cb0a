"""A process's resident memory, read from /proc (benchmarks that sample a child's peak)."""

from __future__ import annotations

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
