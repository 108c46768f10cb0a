"""``leadscore serve``, ``hash-key`` and ``demo``: the scoring API and the whole path on synthetic data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from leadscore.cli._util import info, user_errors
from leadscore.errors import UserError

app = typer.Typer()
WORKER_START_TIMEOUT = 120  # seconds a new worker may take to load the model


ExposedOpt = Annotated[
    bool,
    typer.Option(
        "--allow-exposed-insecure",
        help="Confirm --insecure-dev on a host other than loopback (anyone who reaches it can use it).",
    ),
]


@app.command()
@user_errors
def serve(
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="Model folder or MLflow URI (default: LEADSCORE_MODEL or models/synthetic)."
        ),
    ] = None,
    accounts_model: Annotated[
        str | None,
        typer.Option("--accounts-model", help="An account model to answer POST /v1/accounts/score with."),
    ] = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes (one per core).")] = 1,
    insecure_dev: Annotated[
        bool, typer.Option("--insecure-dev", help="Serve without API keys (local development only).")
    ] = False,
    allow_exposed_insecure: ExposedOpt = False,
) -> None:
    """Serve the scoring API for the CRM (FastAPI + uvicorn)."""
    import os
    import shutil
    import tempfile

    import uvicorn

    from leadscore.config import get_settings
    from leadscore.service.telemetry import uvicorn_log_config
    from leadscore.web.app import create_app

    settings = get_settings()
    insecure = insecure_dev or settings.insecure_dev
    if insecure and not _loopback(host) and not allow_exposed_insecure:
        raise UserError(
            f"--insecure-dev on --host {host} serves without keys to everyone who reaches it; "
            "add --allow-exposed-insecure to confirm, or serve on 127.0.0.1"
        )
    app_obj = create_app(model, insecure=insecure, accounts_model=accounts_model)  # fails fast, one line
    if insecure_dev:
        info("warning: --insecure-dev: the API accepts requests without a key; never expose this server")
    source = model or settings.model
    info(f"serving {source} on http://{host}:{port} (docs at /docs, sales pages at /app)")
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        "log_level": "warning",
        "log_config": uvicorn_log_config("warning"),
    }
    if workers == 1:
        uvicorn.run(app_obj, **common)
        return
    os.environ["LEADSCORE_MODEL"] = source
    if accounts_model:
        os.environ["LEADSCORE_ACCOUNTS_MODEL"] = accounts_model
    os.environ["LEADSCORE_WORKERS"] = str(workers)
    board = tempfile.mkdtemp(prefix="leadscore-reload-")  # where the workers coordinate reloads
    os.environ["LEADSCORE_RELOAD_DIR"] = board
    if insecure:
        os.environ["LEADSCORE_INSECURE_DEV"] = "true"
    try:
        # A worker uvicorn restarts (after a crash) loads the model before it is ready; uvicorn's
        # default of 5 s is too short for a models:/ champion on a busy machine.
        uvicorn.run(
            "leadscore.web.app:create_app_from_env",
            factory=True,
            workers=workers,
            timeout_worker_healthcheck=WORKER_START_TIMEOUT,
            **common,
        )
    finally:
        shutil.rmtree(board, ignore_errors=True)


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command("hash-key")
@user_errors
def hash_key_cmd(
    key: Annotated[str, typer.Argument(help="An API key to store in a key file.")],
    admin: Annotated[
        bool, typer.Option("--admin", help="The key may also call /v1/admin/* (reload).")
    ] = False,
    rep: Annotated[
        str | None,
        typer.Option("--rep", help="A sales rep's key, named: it records decisions, it does not score."),
    ] = None,
) -> None:
    """Print the SHA-256 line to put in LEADSCORE_API_KEY_FILE for a key."""
    from leadscore.service.auth import MIN_KEY_CHARS, hash_key

    if len(key.strip()) < MIN_KEY_CHARS:
        raise UserError(f"the key is shorter than {MIN_KEY_CHARS} characters; use a long random key")
    if rep is not None and (admin or not rep.strip()):
        raise UserError("--rep: a rep's key is named (--rep 'Dana Ortiz') and is not also --admin")
    role = f" rep {' '.join(rep.split())}" if rep is not None else (" admin" if admin else "")
    typer.echo(f"sha256:{hash_key(key)}{role}")


@app.command("card-link")
@user_errors
def card_link_cmd(
    lead_id: Annotated[str, typer.Argument(help="The lead whose card the link opens.")],
    base_url: Annotated[
        str, typer.Option("--base-url", help="Where the service is reached (default: LEADSCORE_PUBLIC_URL).")
    ] = "",
    days: Annotated[float, typer.Option("--days", min=0.01, help="How long the link works.")] = 365.0,
) -> None:
    """Print a signed, read-only link to one lead's card, for a CRM frame that carries no session
    (the server must run with the same keys or LEADSCORE_SESSION_SECRET)."""
    from leadscore.config import get_settings
    from leadscore.features.values import id_problem, lead_key
    from leadscore.web.site import card_links

    key = lead_key(lead_id)
    problem = id_problem(key) if key else "an empty lead id"
    if problem:
        raise UserError(f"LEAD_ID: {problem}")
    typer.echo(card_links(get_settings(), base_url, days)(key))


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
