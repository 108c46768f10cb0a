"""Sales' pages, served by ``leadscore serve`` under ``/app``: sign in, the MQL queue, a lead, its
card for the CRM's lead page, and accept or reject in one click. Server-rendered HTML, no scripts,
nothing fetched from elsewhere (the Content-Security-Policy says so), every form with a CSRF token.

The queue and the lead come from the store (``store.queue``); a decision is written as ``feedback
import`` writes one (``service.decisions``), so the SLA report, the alerts and training see it at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from leadscore.errors import UserError
from leadscore.service.decisions import DecisionError, checked_decision, record_decision
from leadscore.service.state import ServiceState
from leadscore.spec.reasons import all_reasons
from leadscore.store.account_answers import qualified_accounts
from leadscore.store.db import Store, error_line, open_store
from leadscore.store.queue import FILTERS, lead_decisions, lead_row, open_mqls
from leadscore.web import views
from leadscore.web.sessions import COOKIE, SIGNIN_COOKIE, Session, new_signin_token, same
from leadscore.web.site import Site

router = APIRouter(prefix="/app", include_in_schema=False)
T = TypeVar("T")
NOTES = {  # what a page says after a redirect (a fixed set: nothing from the URL reaches the page)
    "decided": "Decision recorded.",
    "need-reason": "A rejection needs one of the standard reasons.",
    "signed-out": "Signed out.",
}


def _site(request: Request) -> Site:
    site: Site = request.app.state.leadscore_site
    return site


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.leadscore
    return state


class StoreUnavailable(Exception):
    """The store could not be read or written (the database is down): a 503 page saying so."""


async def _stored(read: Callable[..., T], url: str, *args: Any) -> T:
    """``read(store, *args)`` in a worker thread, the store opened there; a database that cannot
    be reached is ``StoreUnavailable`` (one line), not a traceback."""

    def call() -> T:
        return read(open_store(url), *args)

    try:
        return await asyncio.to_thread(call)
    except UserError as exc:  # open_store's own line (the database cannot be reached or migrated)
        raise StoreUnavailable(str(exc)) from exc
    except Exception as exc:
        raise StoreUnavailable(error_line(exc)) from exc


def _record(store: Store, decision: dict[str, Any]) -> bool:
    return record_decision(store.url, decision)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


async def _form(request: Request) -> dict[str, str]:
    """A URL-encoded form's fields (the first value of each)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _here(request: Request) -> str:
    """This page's path and query (where a form or a sign-in comes back to)."""
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _signin_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/app/sign-in?next={quote(_here(request), safe='')}", status_code=303)


@router.get("")
async def home() -> RedirectResponse:
    return RedirectResponse("/app/queue", status_code=303)


@router.get("/sign-in")
async def sign_in_page(request: Request, next: str = "/app/queue") -> Response:
    site = _site(request)
    token = new_signin_token()
    page = site.page("signin.html", title="Sign in", next=site.local(next), csrf=token, error=None)
    site.set_cookie(page, request, SIGNIN_COOKIE, token, max_age=600)
    return page


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    site = _site(request)
    form = await _form(request)
    client = request.client.host if request.client else "?"
    wait = site.attempts.blocked(client)
    target = site.local(form.get("next", ""))
    if wait:
        error = f"Too many failed sign-ins: try again in {int(wait) // 60 + 1} min."
        return site.page("signin.html", 429, title="Sign in", next=target, csrf="", error=error)
    expected = request.cookies.get(SIGNIN_COOKIE)
    if not expected or not same(form.get("csrf", ""), expected):
        error = "The sign-in form expired: try again."
        return site.page("signin.html", 400, title="Sign in", next=target, csrf="", error=error)
    made = site.sessions.sign_in(form.get("key", ""))
    if made is None:
        site.attempts.failed(client)
        error = "That key does not open the pages (a rep's or an admin's key does)."
        return site.page("signin.html", title="Sign in", next=target, csrf=expected, error=error)  # again
    site.attempts.succeeded(client)
    cookie, session = made
    done = RedirectResponse(target, status_code=303)
    site.set_cookie(done, request, COOKIE, cookie, max_age=site.sessions.seconds)
    done.delete_cookie(SIGNIN_COOKIE, path="/app")
    return done


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    site = _site(request)
    session = site.session(request)
    form = await _form(request)
    if session is None or not site.sessions.csrf_ok(session, form.get("csrf")):
        return site.refused(403, "The form expired: reload the page and try again.")
    done = RedirectResponse("/app/sign-in?note=signed-out", status_code=303)
    done.delete_cookie(COOKIE, path="/app")
    return done


@router.get("/queue")
async def queue(request: Request, page: int = 1, level: str = "lead") -> Response:
    site, state = _site(request), _state(request)
    session = site.session(request)
    if session is None:
        return _signin_redirect(request)
    if level == "account":
        return await _account_queue(request, session, page)
    if level != "lead":
        return site.refused(404, f"level: '{level}' is not lead or account")
    loaded = state.loaded
    if loaded is None:
        return site.refused(503, "No model is loaded.")
    filters = {k: request.query_params.get(k) or None for k in FILTERS}
    now = _now()
    found = await _stored(open_mqls, state.database_url, now, filters, page)
    wanted = {k: v for k, v in filters.items() if v}
    return site.page(
        "queue.html",
        title="MQL queue",
        session=session,
        found=found,
        rows=views.queue_rows(found, loaded, now),
        filters=filters,
        link=lambda n: "/app/queue?" + urlencode({**wanted, "page": n}),
        reasons=all_reasons(loaded.bundle.spec.reject_reasons),
        note=NOTES.get(request.query_params.get("note", "")),
        now=now,
        back=_here(request),
        **site.footer(loaded),
    )


async def _account_queue(request: Request, session: Session, page: int) -> Response:
    """The qualified accounts (each account's last logged answer over the account cutoff), best first."""
    site, state = _site(request), _state(request)
    grade = request.query_params.get("grade") or None
    found = await _stored(qualified_accounts, state.database_url, grade, page)
    return site.page(
        "app_accounts.html",
        title="Qualified accounts",
        session=session,
        found=found,
        grade=grade,
        served=state.accounts is not None,
        link=lambda n: (
            "/app/queue?" + urlencode({"level": "account", **({"grade": grade} if grade else {}), "page": n})
        ),
    )


async def _lead(request: Request, lead_id: str) -> tuple[Any, Any] | Response:
    state = _state(request)
    loaded = state.loaded
    if loaded is None:
        return _site(request).refused(503, "No model is loaded.")
    row = await _stored(lead_row, state.database_url, lead_id)
    if row is None:
        return _site(request).refused(404, "No score for this lead in the score log.")
    return loaded, row


@router.get("/leads/{lead_id}")
async def lead_page(request: Request, lead_id: str) -> Response:
    site, state = _site(request), _state(request)
    session = site.session(request)
    if session is None:
        return _signin_redirect(request)
    found = await _lead(request, lead_id)
    if isinstance(found, Response):
        return found
    loaded, row = found
    now = _now()
    decided = await _stored(lead_decisions, state.database_url, row.lead_id)
    return site.page(
        "app_lead.html",
        title=f"Lead {row.lead_id}",
        session=session,
        view=await asyncio.to_thread(views.lead_view, row, loaded, now),
        decided=decided,
        reasons=all_reasons(loaded.bundle.spec.reject_reasons),
        note=NOTES.get(request.query_params.get("note", "")),
        back=request.url.path,
        **site.footer(loaded),
    )


@router.get("/leads/{lead_id}/card")
async def lead_card(request: Request, lead_id: str) -> Response:
    site = _site(request)
    session = site.session(request)
    if session is None and not site.sessions.card_link_ok(lead_id, request.query_params):
        return site.page("card_signin.html", 401, title="Sign in", frame=True)
    found = await _lead(request, lead_id)
    if isinstance(found, Response):
        return found
    loaded, row = found
    view = await asyncio.to_thread(views.card_view, row, loaded, _now())
    return site.page("card.html", title=f"Lead {row.lead_id}", view=view, frame=True, **site.footer(loaded))


@router.post("/leads/{lead_id}/decision")
async def decide(request: Request, lead_id: str) -> Response:
    site, state = _site(request), _state(request)
    session = site.session(request)
    form = await _form(request)
    if session is None:
        return site.refused(401, "Sign in first: your session ended.")
    if not site.sessions.csrf_ok(session, form.get("csrf")):
        return site.refused(403, "The form expired: reload the page and try again.")
    back = site.local(form.get("back", ""))  # this site's pages only; else the queue
    body = {"decision": form.get("decision"), "reason": form.get("reason") or None}
    own = state.loaded.bundle.spec.reject_reasons if state.loaded is not None else ()
    try:
        decision = checked_decision(lead_id, body, session.name, own)
    except DecisionError as exc:
        if exc.field == "reason":
            return RedirectResponse(_with_note(back, "need-reason"), status_code=303)
        return site.refused(422, str(exc))
    await _stored(_record, state.database_url, decision)
    target = "/app/queue" if back.startswith("/app/queue") else back
    return RedirectResponse(_with_note(target, "decided"), status_code=303)


def _with_note(path: str, note: str) -> str:
    base, _, query = path.partition("?")
    kept = [(k, v) for k, vs in parse_qs(query).items() for v in vs if k != "note"]
    return base + "?" + urlencode([*kept, ("note", note)])
