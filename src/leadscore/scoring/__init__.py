"""Scoring: the model bundle (one scoring core), its calibrator, grades, reasons, batch scoring,
the written points model and the cutoff contract. No MLflow and no training code here."""

from leadscore.scoring.batch import score_file, score_output
from leadscore.scoring.bundle import ModelBundle, Scored
from leadscore.scoring.contract import CutoffContract, load_contract, write_contract
from leadscore.scoring.meta import BundleMeta
from leadscore.scoring.points import PointsModel, load_rules
from leadscore.scoring.reasons import Reason

__all__ = [
    "BundleMeta",
    "CutoffContract",
    "ModelBundle",
    "PointsModel",
    "Reason",
    "Scored",
    "load_contract",
    "load_rules",
    "score_file",
    "score_output",
    "write_contract",
]
