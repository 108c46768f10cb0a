"""The ``leadscore`` command line: one Typer app per concern, merged into one; each command a thin
wrapper over a job or a library call. Library code logs; this is where logs are shown."""

from __future__ import annotations

import typer

from leadscore.cli import accounts, backtest, data, models, ops, reports, serve, specs
from leadscore.cli._util import show_logs

app = typer.Typer(
    name="leadscore",
    help="Predict which B2B leads become SQLs, explain why, and apply the agreed MQL cutoff.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Predict which B2B leads become SQLs, explain why, and apply the agreed MQL cutoff."""
    show_logs()


for _module in (data, specs, accounts, models, backtest, serve, reports, ops):
    app.add_typer(_module.app)


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
