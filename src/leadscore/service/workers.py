"""Reloads across worker processes: a shared folder holds a generation number and each worker's status.

``POST /v1/admin/reload`` on any worker bumps the generation and reloads that worker; every other
worker sees the new generation within a second and reloads itself in-process (off the event loop,
swapping the model in one assignment, so no request is dropped). ``GET /v1/admin/reload/status``
reads every live worker's status: which model version it serves, which generation it reached, and
the error if its reload failed. Nothing is restarted, so nothing can be silently kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from leadscore.data.sources import atomic_path, file_lock, process_alive

GENERATION_FILE = "generation"
POLL_SECONDS = 0.5


class ReloadBoard:
    """The shared folder (``LEADSCORE_RELOAD_DIR``, made by ``leadscore serve --workers N``)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def generation(self) -> int:
        try:
            return int((self.folder / GENERATION_FILE).read_text(encoding="utf-8").strip() or 0)
        except (OSError, ValueError):
            return 0

    def bump(self) -> int:
        """Ask every worker to reload; the new generation number."""
        target = self.folder / GENERATION_FILE
        with file_lock(target):
            new = self.generation() + 1
            with atomic_path(target) as tmp:
                tmp.write_text(str(new), encoding="utf-8")
        return new

    def report(self, *, model_version: str | None, generation: int, error: str | None = None) -> None:
        """This worker's status, for the status endpoint."""
        status = {
            "pid": os.getpid(),
            "model_version": model_version,
            "generation": generation,
            "error": error,
            "updated_at": time.time(),
        }
        with atomic_path(self.folder / f"worker-{os.getpid()}.json") as tmp:
            tmp.write_text(json.dumps(status), encoding="utf-8")

    def workers(self) -> list[dict[str, Any]]:
        """The status of every live worker (files of workers that are gone are removed)."""
        out = []
        for path in sorted(self.folder.glob("worker-*.json")):
            try:
                status = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            pid = int(status.get("pid", 0))
            if pid > 0 and process_alive(pid):
                out.append(status)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
        return out

    def summary(self) -> dict[str, Any]:
        generation = self.generation()
        workers = self.workers()
        done = all(w["generation"] >= generation and not w["error"] for w in workers)
        failed = [w for w in workers if w["error"]]
        return {
            "generation": generation,
            "complete": bool(workers) and done,
            "failed": bool(failed),
            "workers": workers,
        }
