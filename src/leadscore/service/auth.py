"""API keys: kept only as SHA-256 hashes, compared in constant time, each with a role: score (the
CRM), rep (a named sales rep: decisions, not scoring) or admin."""

from __future__ import annotations

import hashlib
import hmac
import logging
import stat
from pathlib import Path

from leadscore.errors import UserError

MIN_KEY_CHARS = 16
SCORE = "score"
REP = "rep"
ADMIN = "admin"
ROLES = (SCORE, REP, ADMIN)
log = logging.getLogger(__name__)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


class KeyRing:
    """The accepted keys' hashes and roles. Keys come from the environment (plain) or a file (hashed).

    An admin key may also score; a scoring key gets 403 on ``/v1/admin/*``.
    """

    def __init__(
        self, hashes: list[str], admin_hashes: list[str] | None = None, reps: dict[str, str] | None = None
    ) -> None:
        self._keys = [(h.encode(), SCORE) for h in hashes] + [(h.encode(), ADMIN) for h in admin_hashes or []]
        self._keys += [(h.encode(), REP) for h in reps or {}]
        self._names = {h.encode(): name for h, name in (reps or {}).items()}

    @property
    def empty(self) -> bool:
        return not self._keys

    def role(self, key: str | None) -> str | None:
        """The key's role, or None for a missing or unknown key (no early exit: constant time)."""
        if not key:
            return None
        candidate = hash_key(key).encode()
        found: str | None = None
        for stored, role in self._keys:
            if hmac.compare_digest(candidate, stored) and found != ADMIN:
                found = role
        return found

    def rep_name(self, key: str | None) -> str | None:
        """The sales rep a rep's key names, or None (constant time over the reps' keys)."""
        if not key:
            return None
        candidate = hash_key(key).encode()
        found = None
        for stored, name in self._names.items():
            if hmac.compare_digest(candidate, stored):
                found = name
        return found

    def has_key_id(self, key_id: str, role: str) -> bool:
        """Whether a key whose hash starts with ``key_id`` is still accepted with ``role`` (a page
        session ends when its key is removed)."""
        found = False
        for stored, kind in self._keys:
            if hmac.compare_digest(stored[: len(key_id)], key_id.encode()) and kind == role:
                found = True
        return found and len(key_id) >= 16

    def fingerprint(self) -> str:
        """A digest of every accepted key's hash and role (the pages' default session secret)."""
        joined = "\n".join(sorted(f"{h.decode()} {r}" for h, r in self._keys))
        return hashlib.sha256(joined.encode()).hexdigest()

    def accepts(self, key: str | None) -> bool:
        return self.role(key) is not None

    @classmethod
    def from_settings(
        cls, keys: str, key_file: str, admin_keys: str = "", *, insecure: bool = False
    ) -> KeyRing:
        plain = [k.strip() for k in keys.split(",") if k.strip()]
        admin_plain = [k.strip() for k in admin_keys.split(",") if k.strip()]
        short = [k for k in plain + admin_plain if len(k) < MIN_KEY_CHARS]
        if short and not insecure:
            raise UserError(
                f"LEADSCORE_API_KEYS / LEADSCORE_ADMIN_KEYS: {len(short)} key(s) shorter than {MIN_KEY_CHARS} "
                "characters; use long random keys (e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
            )
        hashes = [hash_key(k) for k in plain]
        admin = [hash_key(k) for k in admin_plain]
        reps: dict[str, str] = {}
        if key_file:
            file_hashes, file_admin, reps = read_key_file(Path(key_file))
            hashes += file_hashes
            admin += file_admin
        return cls(hashes, admin, reps)


def read_key_file(path: Path) -> tuple[list[str], list[str], dict[str, str]]:
    """Scoring and admin key hashes, and reps' key hashes with their names, from a file of
    ``sha256:<hex> [score|admin]`` and ``sha256:<hex> rep <the rep's name>`` lines."""
    try:
        mode = path.stat().st_mode
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the API key file ({exc.strerror})") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "%s: the API key file can be read or written by others (mode %s); run chmod 600 on it",
            path,
            oct(stat.S_IMODE(mode)),
        )
    scoring: list[str] = []
    admin: list[str] = []
    reps: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        digest = parts[0].removeprefix("sha256:").lower()
        role = parts[1].lower() if len(parts) > 1 else SCORE
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise UserError(f"{path}: line {n} is not a SHA-256 hash (make one with `leadscore hash-key`)")
        if role == REP:
            if len(parts) < 3:
                raise UserError(f"{path}: line {n}: a rep's key needs the rep's name after 'rep'")
            reps[digest] = " ".join(parts[2:])[:200]
            continue
        if role not in ROLES or len(parts) > 2:
            raise UserError(
                f"{path}: line {n}: the role must be 'score', 'rep <name>' or 'admin', not '{' '.join(parts[1:])}'"
            )
        (admin if role == ADMIN else scoring).append(digest)
    return scoring, admin, reps


def key_from_headers(headers: dict[bytes, bytes]) -> str | None:
    """The key from ``X-API-Key`` or ``Authorization: Bearer``."""
    key = headers.get(b"x-api-key")
    if key:
        return key.decode("latin-1")
    auth = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None
