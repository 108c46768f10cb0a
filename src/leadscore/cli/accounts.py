"""``leadscore accounts``: leads matched to their accounts (and, later steps, the accounts' features)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli._util import JsonOpt, echo_json, info, user_errors

app = typer.Typer()
accounts_group = typer.Typer(help="Accounts: leads matched to them.", no_args_is_help=True)
app.add_typer(accounts_group, name="accounts")


@accounts_group.command("match")
@user_errors
def match(
    folder: Annotated[Path, typer.Argument(help="A data folder with the leads and accounts tables.")],
    spec: Annotated[str, typer.Option("--spec", help="Dataset spec with an 'accounts' block.")],
    out: Annotated[
        Path, typer.Option("--out", help="Where to write lead_id, account_id, method (.csv/.parquet).")
    ],
    json_out: JsonOpt = False,
) -> None:
    """Match every lead to its account: its own account column, else email domain, else company name."""
    from leadscore.data.accounts import read_account_tables
    from leadscore.data.matching import matched_line
    from leadscore.data.sources import write_frame
    from leadscore.spec import load_spec

    tables = read_account_tables(folder, load_spec(spec))
    write_frame(tables.matches.frame, out)
    counts = {**tables.matches.counts, **tables.counts}
    if json_out:
        echo_json({"out": str(out), "leads": len(tables.matches.frame), "counts": counts})
        return
    c = tables.matches.counts
    info(
        f"wrote {out}: {len(tables.matches.frame):,} leads {matched_line(c)}; "
        f"{c['free_mail']:,} with free mail"
    )
