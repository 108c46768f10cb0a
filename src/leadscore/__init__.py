"""leadscore: calibrated P(SQL) for B2B leads, with reasons and an agreed MQL cutoff.

The public API is ``__all__`` below (pinned by a test). Names are imported on first use, so
``import leadscore`` stays cheap and scoring never loads MLflow or training code it does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from leadscore._version import __version__

_EXPORTS = {
    # settings, specs, errors
    "DatasetSpec": "leadscore.spec",
    "Settings": "leadscore.config",
    "get_settings": "leadscore.config",
    "load_spec": "leadscore.spec",
    "UserError": "leadscore.errors",
    # data
    "GeneratorConfig": "leadscore.data.synthetic",
    "generate": "leadscore.data.synthetic",
    "write_dataset": "leadscore.data.synthetic",
    "read_table": "leadscore.data.sources",
    "validate_frame": "leadscore.data.validate",
    # training
    "TrainOptions": "leadscore.modeling.options",
    "TrainResult": "leadscore.modeling.train",
    "train_and_log": "leadscore.jobs.workflow",
    # scoring
    "ModelBundle": "leadscore.scoring.bundle",
    "load_bundle": "leadscore.tracking.loading",
    "score_file": "leadscore.scoring.batch",
    "score_output": "leadscore.scoring.batch",
    "PointsModel": "leadscore.scoring.points",
    "load_rules": "leadscore.scoring.points",
    "CutoffContract": "leadscore.scoring.contract",
    "load_contract": "leadscore.scoring.contract",
    "write_contract": "leadscore.scoring.contract",
    # keeping it right
    "monitor": "leadscore.monitoring.monitor",
    "promote": "leadscore.tracking.promotion",
    "rollback": "leadscore.tracking.promotion",
    "describe_champion": "leadscore.tracking.promotion",
    # notebook views
    "make_demo_data": "leadscore.jobs.notebook",
    "read_leads": "leadscore.jobs.notebook",
    "validate": "leadscore.jobs.notebook",
    "train": "leadscore.jobs.notebook",
    "compare_metrics": "leadscore.jobs.notebook",
    "global_importance": "leadscore.jobs.notebook",
    "shap_figures": "leadscore.jobs.notebook",
    "explain_leads": "leadscore.jobs.notebook",
    "cutoff_tradeoff": "leadscore.jobs.notebook",
    "workspace": "leadscore.jobs.notebook",
}

__all__ = [
    "CutoffContract",
    "DatasetSpec",
    "GeneratorConfig",
    "ModelBundle",
    "PointsModel",
    "Settings",
    "TrainOptions",
    "TrainResult",
    "UserError",
    "__version__",
    "compare_metrics",
    "cutoff_tradeoff",
    "describe_champion",
    "explain_leads",
    "generate",
    "get_settings",
    "global_importance",
    "load_bundle",
    "load_contract",
    "load_rules",
    "load_spec",
    "make_demo_data",
    "monitor",
    "promote",
    "read_leads",
    "read_table",
    "rollback",
    "score_file",
    "score_output",
    "shap_figures",
    "train",
    "train_and_log",
    "validate",
    "validate_frame",
    "workspace",
    "write_contract",
    "write_dataset",
]

if TYPE_CHECKING:
    from leadscore.config import Settings, get_settings
    from leadscore.data.sources import read_table
    from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
    from leadscore.data.validate import validate_frame
    from leadscore.errors import UserError
    from leadscore.jobs.notebook import (
        compare_metrics,
        cutoff_tradeoff,
        explain_leads,
        global_importance,
        make_demo_data,
        read_leads,
        shap_figures,
        train,
        validate,
        workspace,
    )
    from leadscore.jobs.workflow import train_and_log
    from leadscore.modeling.options import TrainOptions
    from leadscore.modeling.train import TrainResult
    from leadscore.monitoring.monitor import monitor
    from leadscore.scoring.batch import score_file, score_output
    from leadscore.scoring.bundle import ModelBundle
    from leadscore.scoring.contract import CutoffContract, load_contract, write_contract
    from leadscore.scoring.points import PointsModel, load_rules
    from leadscore.spec import DatasetSpec, load_spec
    from leadscore.tracking.loading import load_bundle
    from leadscore.tracking.promotion import describe_champion, promote, rollback


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'leadscore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
