"""Who is looking at the pages: a rep's or an admin's key exchanged once for a signed session cookie,
CSRF tokens bound to the session, and a limit on sign-in attempts.

The cookie holds the role, the rep's name, an expiry and the key's hash prefix, signed with
HMAC-SHA256; nothing is kept on the server, so every worker reads it. Its key is
``LEADSCORE_SESSION_SECRET`` or, unset, one derived from the accepted keys' hashes: removing a key
from the key file ends its sessions, and so does changing the secret. A scoring key of the CRM
never gets a session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import orjson

from leadscore.features.values import lead_key
from leadscore.service.auth import ADMIN, REP, KeyRing, hash_key

COOKIE = "leadscore_session"
SIGNIN_COOKIE = "leadscore_signin"  # the sign-in form's own CSRF token (there is no session yet)
PAGE_ROLES = (REP, ADMIN)


@dataclass(frozen=True)
class Session:
    """A signed-in person: ``name`` is the rep's (an admin key has none: "admin")."""

    role: str
    name: str
    expires: int  # epoch seconds
    key_id: str  # the first 16 hex characters of the key's hash: the session ends with the key
    token: str  # the cookie's signature: what the CSRF token is bound to


class Sessions:
    """Make and read session cookies and CSRF tokens for one service."""

    def __init__(self, keys: KeyRing, secret: str, hours: float) -> None:
        self.keys = keys
        basis = secret.encode() if secret else keys.fingerprint().encode()
        self._key = hashlib.sha256(b"leadscore-session\0" + basis).digest()
        self.card_key = hashlib.sha256(b"leadscore-card\0" + basis).digest()  # signed card links
        self.seconds = max(60, int(hours * 3600))

    def sign_in(self, key: str) -> tuple[str, Session] | None:
        """The cookie value and session for a rep's or admin's key; None for any other key."""
        role = self.keys.role(key)
        if role not in PAGE_ROLES:
            return None
        name = (self.keys.rep_name(key) if role == REP else None) or "admin"
        expires, key_id = int(time.time()) + self.seconds, hash_key(key)[:16]
        payload = _b64(orjson.dumps({"r": role, "n": name, "e": expires, "k": key_id}))
        token = self._sign(payload)
        return f"{payload}.{token}", Session(role, name, expires, key_id, token)

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, or None (missing, forged, expired or its key removed)."""
        if not cookie or cookie.count(".") != 1:
            return None
        payload, token = cookie.split(".")
        if not same(token, self._sign(payload)):
            return None
        try:
            body = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            session = Session(str(body["r"]), str(body["n"]), int(body["e"]), str(body["k"]), token)
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires < time.time() or session.role not in PAGE_ROLES:
            return None
        if not self.keys.has_key_id(session.key_id, session.role):
            return None
        return session

    def csrf(self, session: Session) -> str:
        """The token every form of this session carries."""
        return self._sign("csrf." + session.token)

    def csrf_ok(self, session: Session, given: str | None) -> bool:
        return bool(given) and same(str(given), self.csrf(session))

    def card_link(self, lead_id: str, hours: float = 24 * 365) -> str:
        """A signed link to one lead's card (read only), for a CRM frame that carries no cookie."""
        expires = int(time.time() + hours * 3600)
        shown = quote(lead_id, safe="")
        return f"/app/leads/{shown}/card?exp={expires}&sig={self._card_sig(lead_id, expires)}"

    def card_link_ok(self, lead_id: str, query: Mapping[str, str]) -> bool:
        exp, sig = query.get("exp", ""), query.get("sig", "")
        if not exp.isdigit() or int(exp) < time.time() or not sig:
            return False
        return same(sig, self._card_sig(lead_id, int(exp)))

    def _card_sig(self, lead_id: str, expires: int) -> str:
        text = f"card:{lead_key(lead_id)}:{expires}"
        return hmac.new(self.card_key, text.encode(), hashlib.sha256).hexdigest()[:32]

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())


def same(given: str, expected: str) -> bool:
    """Two tokens compared in constant time, as bytes: a token sent with other than ASCII letters is
    simply not the one expected (``compare_digest`` refuses such text with an error)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def new_signin_token() -> str:
    return secrets.token_urlsafe(24)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Attempts:
    """At most ``limit`` failed sign-ins per client in ``window`` seconds (per worker process)."""

    def __init__(self, limit: int, window: float = 300.0) -> None:
        self.limit = max(1, limit)
        self.window = window
        self._failed: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, client: str) -> float:
        """Seconds until this client may try again (0: it may now)."""
        now = time.monotonic()
        with self._lock:
            times = self._failed.get(client)
            if not times:
                return 0.0
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) < self.limit:
                return 0.0
            return max(1.0, times[0] + self.window - now)

    def failed(self, client: str) -> None:
        with self._lock:
            if len(self._failed) > 10_000:  # bounded: forget the quiet clients
                self._failed = {k: v for k, v in self._failed.items() if v}
            self._failed.setdefault(client, deque(maxlen=self.limit)).append(time.monotonic())

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failed.pop(client, None)
