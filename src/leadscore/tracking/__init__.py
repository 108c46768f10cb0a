"""Everything MLflow: the store, training and monitoring runs, export, champions and promotion, loading by URI."""

from leadscore.tracking.loading import load_bundle

__all__ = ["load_bundle"]
