"""An earlier revision of this repository checked out beside the working tree, for A/B benchmarks:
its sources run through PYTHONPATH with this checkout's virtual environment."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def checkout(revision: str, where: Path) -> Iterator[Path]:
    """A detached git worktree of ``revision`` at ``where``, removed afterwards."""
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(where), revision], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)], check=False)
