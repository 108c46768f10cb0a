"""``leadscore spec init``: a first dataset spec drafted from an export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli._util import JsonOpt, echo_json, info, user_errors
from leadscore.errors import UserError

app = typer.Typer()
spec_group = typer.Typer(help="Dataset specs: draft one from an export.", no_args_is_help=True)
app.add_typer(spec_group, name="spec")

CRMS = ("salesforce", "hubspot")


@spec_group.command("init")
@user_errors
def init(
    data: Annotated[Path, typer.Argument(help="The export: a folder of tables, or one file.")],
    out: Annotated[Path, typer.Option("--out", help="The spec file to write (YAML).")],
    crm: Annotated[
        str | None, typer.Option("--crm", help="salesforce or hubspot: extend the shipped spec.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="The dataset's name (default: the file's).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing spec file.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Draft a commented dataset spec from an export: id, time, label, logs, and what is kept out."""
    from leadscore.data.sources import atomic_path
    from leadscore.jobs.drafting import draft_spec
    from leadscore.spec import load_spec

    if crm is not None and crm not in CRMS:
        raise UserError(f"--crm: unknown CRM '{crm}' (use {' or '.join(CRMS)})")
    if out.exists() and not force:
        raise UserError(f"--out: {out} exists (use --force to replace it)")
    draft = draft_spec(data, name or out.stem, crm)
    with atomic_path(out) as tmp:
        tmp.write_text(draft.text(), encoding="utf-8")
    load_spec(str(out))  # the draft is a valid spec (its CHANGE ME values are the user's to fill)
    if json_out:
        echo_json({"out": str(out), **draft.found})
        return
    info(
        f"wrote {out}: leads from '{draft.found['leads']}', {len(draft.found.get('excluded', {}))} columns kept out"
    )
