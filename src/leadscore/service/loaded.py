"""The model a service answers with: the bundle and its lead checker, swapped as one on reload."""

from __future__ import annotations

import itertools
import pickle
from dataclasses import dataclass, field

from leadscore.scoring.bundle import ModelBundle
from leadscore.service.leads import LeadChecker

_serials = itertools.count(1)


@dataclass
class Loaded:
    """A model ready to answer: the bundle and its lead checker, swapped as one on reload."""

    bundle: ModelBundle
    checker: LeadChecker
    source: str
    serial: int = field(default_factory=lambda: next(_serials))
    _pickled: bytes | None = field(default=None, repr=False)

    @property
    def model_version(self) -> str:
        return self.bundle.model_version

    def pickled(self) -> bytes:
        """The bundle as a scorer process receives it (made once per model)."""
        if self._pickled is None:
            self._pickled = pickle.dumps(self.bundle, protocol=pickle.HIGHEST_PROTOCOL)
        return self._pickled
