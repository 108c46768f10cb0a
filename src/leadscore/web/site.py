"""What every page shares: the templates, the session and sign-in limits, the security headers
(no scripts, nothing from elsewhere, no framing but the card's allowed origins) and cookies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from leadscore.config import Settings
from leadscore.errors import UserError
from leadscore.reports.html import model_ids
from leadscore.service.auth import ADMIN, KeyRing
from leadscore.service.loaded import Loaded
from leadscore.web.sessions import COOKIE, Attempts, Session, Sessions
from leadscore.web.views import environment

PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
)
DEV = Session(ADMIN, "dev", 2**31, "", "dev")  # --insecure-dev: the pages open without a key


def frame_ancestors(value: str) -> list[str]:
    """``LEADSCORE_FRAME_ANCESTORS``: origins (https://host[:port]) that may embed the card."""
    origins = [o.strip().rstrip("/") for o in value.replace(",", " ").split() if o.strip()]
    for origin in origins:
        scheme, _, host = origin.partition("://")
        if scheme not in {"https", "http"} or not host or any(c in host for c in "/;'\" "):
            raise UserError(
                f"LEADSCORE_FRAME_ANCESTORS: '{origin}' is not an origin like https://example.my.salesforce.com"
            )
    return origins


class Site:
    """The pages' shared parts for one service."""

    def __init__(self, settings: Settings, keys: KeyRing, insecure: bool) -> None:
        self.sessions = Sessions(keys, settings.session_secret, settings.session_hours)
        self.attempts = Attempts(settings.signin_attempts)
        self.insecure = insecure
        self.env = environment()
        self.card_origins = frame_ancestors(settings.frame_ancestors)

    def session(self, request: Request) -> Session | None:
        """The signed-in person (``--insecure-dev``: a developer, without signing in)."""
        found = self.sessions.read(request.cookies.get(COOKIE))
        return found if found is not None or not self.insecure else DEV

    def page(self, template: str, status: int = 200, *, frame: bool = False, **context: Any) -> HTMLResponse:
        """A rendered page with the security headers (``frame``: the card, framable by its origins)."""
        session = context.setdefault("session", None)
        context.setdefault("csrf", self.sessions.csrf(session) if session is not None else "")
        context.setdefault("note", None)
        html = self.env.get_template(template).render(**context)
        return self._secured(HTMLResponse(html, status_code=status), frame)

    def refused(self, status: int, message: str) -> HTMLResponse:
        return self.page("refused.html", status, title="Not available", message=message)

    def _secured(self, response: HTMLResponse, frame: bool) -> HTMLResponse:
        ancestors = " ".join(self.card_origins) if frame and self.card_origins else "'none'"
        response.headers["content-security-policy"] = PAGE_POLICY.format(ancestors=ancestors)
        if ancestors == "'none'":
            response.headers["x-frame-options"] = "DENY"
        response.headers["x-content-type-options"] = "nosniff"
        response.headers["referrer-policy"] = "same-origin"
        response.headers["cache-control"] = "no-store"
        return response

    def set_cookie(
        self, response: Response, request: Request, name: str, value: str, *, max_age: int
    ) -> None:
        """A cookie for the pages only: HttpOnly, SameSite=Strict, Secure when served over TLS."""
        secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
        response.set_cookie(
            name, value, max_age=max_age, path="/app", httponly=True, secure=secure, samesite="strict"
        )

    @staticmethod
    def local(target: str) -> str:
        """Where to go after a form: a page of this site only (never another host)."""
        if target.startswith("/app") and not target.startswith("//") and "\\" not in target:
            return target
        return "/app/queue"

    @staticmethod
    def footer(loaded: Loaded) -> dict[str, Any]:
        return model_ids(loaded.bundle)


def card_links(settings: Settings, base_url: str = "", days: float = 365.0) -> Callable[[str], str]:
    """Each lead's signed card link under ``base_url`` (default ``LEADSCORE_PUBLIC_URL``), valid for
    ``days``, signed as the server checks it (its keys or ``LEADSCORE_SESSION_SECRET``)."""
    base = (base_url or settings.public_url).rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise UserError("--base-url: where the service is reached (https://...); or set LEADSCORE_PUBLIC_URL")
    keys = KeyRing.from_settings(settings.api_keys, settings.api_key_file, settings.admin_keys)
    if keys.empty and not settings.session_secret:
        raise UserError(
            "no API key or LEADSCORE_SESSION_SECRET configured: the server could not check the link"
        )
    sessions = Sessions(keys, settings.session_secret, settings.session_hours)
    return lambda lead_id: base + sessions.card_link(lead_id, hours=days * 24)
