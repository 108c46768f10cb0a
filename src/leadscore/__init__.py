"""leadscore: calibrated P(SQL) for B2B leads, with reasons and an agreed MQL cutoff."""

from leadscore.config import DatasetSpec, Settings, UserError, get_settings, load_spec

__version__ = "0.1.0"

__all__ = ["DatasetSpec", "Settings", "UserError", "__version__", "get_settings", "load_spec"]
