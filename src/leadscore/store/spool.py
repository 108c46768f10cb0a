"""A batch run's score-log rows, held back until the run's output is complete.

``leadscore score --log`` scores a file chunk by chunk; logging each chunk as it went left the rows
of a run stopped halfway (a bad cell at row 55,002, a kill) in the store, and a rerun logged them
again. The rows now wait in an anonymous temporary file (gone with the process, whatever stops it)
and are written in one transaction once the output is complete, just before it replaces the target:
a run logs all its answers or none.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from leadscore.store.db import Store
from leadscore.store.scores import write_score_chunks


class LogSpool:
    """Log rows of one run: added chunk by chunk, committed to the store at once."""

    def __init__(self, store: Store, directory: Path | None = None) -> None:
        self.store = store
        self.rows = 0
        self._file = tempfile.TemporaryFile(dir=directory)  # unlinked at once: nothing left behind

    def add(self, rows: Sequence[tuple[Any, ...]]) -> None:
        pickle.dump(list(map(tuple, rows)), self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.rows += len(rows)

    def _chunks(self) -> Iterator[list[tuple[Any, ...]]]:
        self._file.flush()
        self._file.seek(0)
        while True:
            try:
                yield pickle.load(self._file)
            except EOFError:
                return

    def commit(self) -> int:
        """Write every held row in one transaction; the rows written."""
        return write_score_chunks(self.store, self._chunks())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> LogSpool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
