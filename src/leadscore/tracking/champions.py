"""Champions: the ``champion`` and ``challenger`` aliases, and who promoted what, when and why."""

from __future__ import annotations

import getpass
import json
import os
from datetime import UTC, datetime

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_TAG = "champion_history"  # the line of champions, for rollback


def set_aliases(
    client: MlflowClient, name: str, version: str, *, promote: bool, reason: str = ""
) -> list[str]:
    """``challenger`` always; ``champion`` for the first model or when asked."""
    client.set_registered_model_alias(name, CHALLENGER, version)
    aliases = [CHALLENGER]
    has_champion = champion_version(client, name) is not None
    if promote or not has_champion:
        because = reason or ("first model" if not has_champion else "--promote")
        record_champion(client, name, version, by=who(), because=because)
        aliases.append(CHAMPION)
    return aliases


def who(by: str | None = None) -> str:
    if by:
        return by
    try:
        return os.environ.get("LEADSCORE_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def now_utc() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def champion_version(client: MlflowClient, name: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def history(client: MlflowClient, name: str) -> list[str]:
    tags = client.get_registered_model(name).tags
    try:
        return [str(v) for v in json.loads(tags.get(HISTORY_TAG, "[]"))]
    except ValueError:
        return []


def record_champion(client: MlflowClient, name: str, version: str, *, by: str, because: str) -> None:
    """Point ``champion`` at ``version`` and write who, when and why (also used by training)."""
    previous = champion_version(client, name)
    line = history(client, name) or ([previous] if previous else [])
    if not line or line[-1] != version:
        line.append(version)
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(line[-50:]))
    for key, value in {
        "promoted_by": by,
        "promoted_at": now_utc(),
        "promoted_because": because,
        "previous_champion": previous or "",
    }.items():
        client.set_model_version_tag(name, version, key, value)
