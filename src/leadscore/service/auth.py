"""API keys: kept only as SHA-256 hashes, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from leadscore.errors import UserError


def hash_key(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


class KeyRing:
    """The accepted keys' hashes. Keys come from the environment (plain) or a file (hashed)."""

    def __init__(self, hashes: list[str]) -> None:
        self._hashes = [h.encode() for h in hashes]

    @property
    def empty(self) -> bool:
        return not self._hashes

    def accepts(self, key: str | None) -> bool:
        if not key:
            return False
        candidate = hash_key(key).encode()
        ok = False
        for stored in self._hashes:  # no early exit: time does not depend on which key matched
            ok |= hmac.compare_digest(candidate, stored)
        return ok

    @classmethod
    def from_settings(cls, keys: str, key_file: str) -> KeyRing:
        hashes = [hash_key(k) for k in keys.split(",") if k.strip()]
        if key_file:
            path = Path(key_file)
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise UserError(f"{path}: cannot read the API key file ({exc.strerror})") from exc
            for n, line in enumerate(lines, 1):
                text = line.split("#", 1)[0].strip()
                if not text:
                    continue
                digest = text.removeprefix("sha256:").lower()
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                    raise UserError(
                        f"{path}: line {n} is not a SHA-256 hash (make one with `leadscore hash-key`)"
                    )
                hashes.append(digest)
        return cls(hashes)


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
