"""Where the service's helper processes come from: a fork server that imported their code once.

Batch scorers and the score log's writer process are forked from a fork server that imported
``FORKSERVER_PRELOAD``: the scorer's module (and with it the scoring core and the store's code)
and LightGBM, which a scorer otherwise imported when it unpickled its first model (with
scikit-learn and SciPy: about 1.5 s of CPU in every new or replacing scorer, taken from the batches
scored meanwhile). Importing LightGBM starts no OpenMP threads, so forking after it is safe.
"""

from __future__ import annotations

import multiprocessing

FORKSERVER_PRELOAD = ["leadscore.service.scorer_process", "lightgbm"]


def scorer_context() -> multiprocessing.context.BaseContext:
    """Never a fork of the threaded server itself, and a new scorer starts and loads its model in
    milliseconds instead of importing again. Where there is no fork server (Windows), each scorer
    is spawned (it imports on its own)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    assert isinstance(ctx, multiprocessing.context.ForkServerContext)
    ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
    return ctx
