"""``leadscore report lead|queue|model``: self-contained HTML for sales reps and the quarterly review."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli._accounts import AsOfOpt, as_of_moment
from leadscore.cli._util import JsonOpt, ModelOpt, echo_json, info, user_errors
from leadscore.errors import UserError, not_a_date

report_group = typer.Typer(
    help="Write HTML reports: one lead, today's MQL queue, or the model card.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

DataOpt = Annotated[Path, typer.Option("--data", help="Leads file (CSV or Parquet) or a generator folder.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output .html file, written atomically.")]


def _done(kind: str, out: Path, json_out: bool, **extra: object) -> None:
    if json_out:
        echo_json({"report": kind, "out": str(out), **extra})
    else:
        info(f"{kind} report -> {out}")


@report_group.command("lead")
@user_errors
def lead(
    model: ModelOpt,
    data: DataOpt,
    lead_id: Annotated[str, typer.Option("--lead-id", help="The lead's id in the data.")],
    out: OutOpt,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Score the lead as of this day or time (its activity until then, its stage then); "
            "default: as of its own scoring time.",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """One lead for a sales rep: score, MQL flag, grade, reasons, recent activity, talking points."""
    from leadscore.reports.html import lead_report, write_html
    from leadscore.tracking.loading import load_bundle

    bundle = load_bundle(model)
    moment = as_of_moment(as_of) if as_of is not None else None
    write_html(lead_report(bundle, data, lead_id, moment), out)
    _done("lead", out, json_out, lead_id=lead_id)


@report_group.command("queue")
@user_errors
def queue(
    model: ModelOpt,
    data: DataOpt,
    out: OutOpt,
    day: Annotated[
        str | None,
        typer.Option("--day", help="Day to list (YYYY-MM-DD; default: the latest day in the data)."),
    ] = None,
    days: Annotated[int, typer.Option("--days", min=1, help="Days to cover, ending on --day.")] = 1,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Most MQLs to list.")] = 200,
    level: Annotated[
        str,
        typer.Option("--level", help="lead (MQLs) or account (qualified accounts, with an account model)."),
    ] = "lead",
    as_of: AsOfOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Today's MQLs, highest P(SQL) first, with their top reasons and how fast to respond; with
    --level account, the qualified accounts as of --as-of, best first, with their buying group."""
    from leadscore.reports.html import queue_context, render, write_html
    from leadscore.tracking.loading import load_bundle

    try:
        chosen = date.fromisoformat(day) if day else None
    except ValueError:
        raise not_a_date("--day", day, date_only=True) from None
    if level not in ("lead", "account"):
        raise UserError(f"--level: unknown level '{level}' (use lead or account)")
    bundle = load_bundle(model)
    if level == "account":
        from leadscore.reports.accounts import account_queue_context

        found = account_queue_context(bundle, data, as_of_moment(as_of), limit)
        write_html(render("account_queue.html", **found), out)
        _done(
            "queue",
            out,
            json_out,
            level="account",
            accounts=found["n_accounts"],
            qualified=found["n_qualified"],
        )
        return
    context = queue_context(bundle, data, day=chosen, window=days, limit=limit)
    write_html(render("queue.html", **context), out)
    _done(
        "queue",
        out,
        json_out,
        mql=context["n_mql"],
        leads=context["n_leads"],
        scope=context["scope"],
        expected_sql=context["expected_sql"],
        expected_sql_7d=context["expected_sql_7d"],
        expected_sql_30d=context["expected_sql_30d"],
    )


@report_group.command("account")
@user_errors
def account(
    model: ModelOpt,
    data: DataOpt,
    account_id: Annotated[str, typer.Option("--account-id", help="The account's id in the accounts table.")],
    out: OutOpt,
    as_of: AsOfOpt = None,
    lead_model: Annotated[
        str | None, typer.Option("--lead-model", help="A lead model: show each person's own P(SQL).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """One account for its owner: score against the cutoff, the buying group person by person, the
    roles missing and the timeline of the account's activity."""
    from leadscore.reports.accounts import account_context
    from leadscore.reports.html import render, write_html
    from leadscore.tracking.loading import load_bundle

    leads = load_bundle(lead_model) if lead_model else None
    found = account_context(load_bundle(model), data, account_id, as_of_moment(as_of), leads)
    write_html(render("account.html", **found), out)
    _done("account", out, json_out, account_id=account_id, qualified=bool(found["answer"]["qualified"]))


@report_group.command("model")
@user_errors
def model_card_cmd(model: ModelOpt, out: OutOpt, json_out: JsonOpt = False) -> None:
    """The model card: data and validation, metrics against baselines, calibration, cutoff, SHAP, leaks."""
    from leadscore.reports.html import write_html
    from leadscore.reports.model_card import model_card
    from leadscore.tracking.loading import load_bundle

    bundle = load_bundle(model)
    write_html(model_card(bundle), out)
    _done("model", out, json_out, model_version=bundle.version)


app = typer.Typer()
app.add_typer(report_group, name="report")
