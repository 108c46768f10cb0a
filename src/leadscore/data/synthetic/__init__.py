"""A realistic synthetic B2B lead generator: accounts, people, events, stages and ground truth.

``generator.py`` draws the tables from a ``GeneratorConfig`` in named steps; each step's module holds
one part of the world: ``vocab`` (what values exist), ``accounts``, ``people``, ``events``, ``truth``
(P(SQL) from what is observable at scoring time), ``stages`` (the status history and the label it
implies) and ``tables`` (Arrow tables, injected data faults, files).
"""

from leadscore.data.synthetic.generator import GeneratorConfig, generate, synthetic_spec
from leadscore.data.synthetic.stages import feedback_from_stages, label_from_stages
from leadscore.data.synthetic.tables import write_dataset
from leadscore.data.synthetic.vocab import DISQUALIFY_REASONS, DRIFT_SOURCE

__all__ = [
    "DISQUALIFY_REASONS",
    "DRIFT_SOURCE",
    "GeneratorConfig",
    "feedback_from_stages",
    "generate",
    "label_from_stages",
    "synthetic_spec",
    "write_dataset",
]
