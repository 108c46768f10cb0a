"""``leadscore serve``, ``hash-key`` and ``demo``: the scoring API and the whole path on synthetic data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli._util import info, user_errors

app = typer.Typer()
WORKER_START_TIMEOUT = 120  # seconds a new worker may take to load the model


@app.command()
@user_errors
def serve(
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="Model folder or MLflow URI (default: LEADSCORE_MODEL or models/synthetic)."
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes (one per core).")] = 1,
    insecure_dev: Annotated[
        bool, typer.Option("--insecure-dev", help="Serve without API keys (local development only).")
    ] = False,
) -> None:
    """Serve the scoring API for the CRM (FastAPI + uvicorn)."""
    import os

    import uvicorn

    from leadscore.config import get_settings
    from leadscore.service.app import create_app

    settings = get_settings()
    app_obj = create_app(model, insecure=insecure_dev or settings.insecure_dev)  # fails fast, one line
    if insecure_dev:
        info("warning: --insecure-dev: the API accepts requests without a key; never expose this server")
    source = model or settings.model
    info(f"serving {source} on http://{host}:{port} (docs at /docs)")
    common = {
        "host": host,
        "port": port,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        "log_level": "warning",
    }
    if workers == 1:
        uvicorn.run(app_obj, **common)  # type: ignore[arg-type]
        return
    os.environ["LEADSCORE_MODEL"] = source
    os.environ["LEADSCORE_WORKERS"] = str(workers)
    if insecure_dev:
        os.environ["LEADSCORE_INSECURE_DEV"] = "true"
    # A replacement worker loads the model (from the registry, for a models:/ URI) before it is ready;
    # uvicorn's default of 5 s is too short on a busy machine and the reload would be silently aborted.
    uvicorn.run(
        "leadscore.service.app:create_app_from_env",
        factory=True,
        workers=workers,
        timeout_worker_healthcheck=WORKER_START_TIMEOUT,
        **common,  # type: ignore[arg-type]
    )


@app.command("hash-key")
@user_errors
def hash_key_cmd(key: Annotated[str, typer.Argument(help="An API key to store in a key file.")]) -> None:
    """Print the SHA-256 line to put in LEADSCORE_API_KEY_FILE for a key."""
    from leadscore.service.auth import hash_key

    typer.echo(f"sha256:{hash_key(key)}")


@app.command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo data and outputs.")] = Path(
        "data/demo"
    ),
    leads: Annotated[int, typer.Option("--leads", min=1000, help="Synthetic leads to generate.")] = 30_000,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    port: Annotated[int, typer.Option("--port", help="Port for the service at the end.")] = 8000,
) -> None:
    """Run the whole path on synthetic data and say where to look."""
    from leadscore.jobs.demo import run_demo

    run_demo(out=out, leads=leads, seed=seed, port=port)
