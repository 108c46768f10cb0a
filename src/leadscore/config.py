"""Typed runtime settings (env prefix LEADSCORE_), and where named configs (specs, contracts, rules) live."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from leadscore.errors import UserError

DEFAULT_PLACEHOLDERS = ("Select", "N/A", "NA", "n/a", "null", "NULL", "None", "-", "")


class Settings(BaseSettings):
    """Runtime settings, read once from the environment (prefix ``LEADSCORE_``)."""

    model_config = SettingsConfigDict(env_prefix="LEADSCORE_", extra="ignore")

    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    artifact_root: str = "mlruns/artifacts"
    models_dir: str = "models"
    configs_dir: str = "configs"
    seed: int = 42
    api_keys: str = ""
    api_key_file: str = ""
    admin_keys: str = ""  # keys that may also call /v1/admin/* (scoring keys get 403 there)
    docs: str = "key"  # /docs and /openapi.json: "key" (with an API key, like the rest) or "off"
    model: str = "models/synthetic"
    accounts_model: str | None = (
        None  # an account model served at /v1/accounts/score (serve --accounts-model)
    )
    insecure_dev: bool = False
    max_batch: int = 1000
    max_body_bytes: int = 2_000_000
    num_threads: int = 2
    workers: int = 1  # set by `leadscore serve --workers`
    reload_dir: str = ""  # set by `leadscore serve --workers`: where workers coordinate reloads
    max_batches: int = 2  # batch scorings at once per worker; more are answered 503 with Retry-After
    batch_timeout: float = 60.0  # seconds a batch may take in its scorer process before a 504
    warm_scorers: bool = True  # start the batch scorers with the server (false: with the first batch)
    feedback_store: str = "data/feedback.parquet"  # replaced by the database: store migrate-feedback
    # The store (decisions, the score log): a SQLite file by default, postgresql+psycopg://... for teams.
    database_url: str = "sqlite:///data/leadscore.db"
    log_scores: bool = True  # the service logs every answer to the store (buffered, off the event loop)
    trend_threshold: float = 0.05  # a change in P(SQL) of at least this is improving or declining
    score_log_buffer: int = 50_000  # answers waiting to be written; more are dropped and counted
    # Alerts (issue 33): URLs the service POSTs signed events to (comma-separated; empty: off), the
    # secret they are signed with, json or chat, the public URL chat links point at, and retries.
    webhooks: str = ""
    webhook_secret: str = ""
    webhook_format: str = "json"
    public_url: str = ""
    webhook_max_backoff: float = 300.0  # seconds between tries at most (doubling from 1 s)
    webhook_give_up_hours: float = 48.0  # an event still not taken after this is failed
    # Sales' pages (/app): the session cookie's signing secret (unset: derived from the accepted
    # keys' hashes), how long a session lasts, failed sign-ins a client may make in 5 minutes, and
    # the origins (space or comma separated) that may embed the lead card in a frame.
    session_secret: str = ""
    session_hours: float = 12.0
    signin_attempts: int = 10
    frame_ancestors: str = ""
    search_trials: int | None = None  # the capacity search's trials (unset: by its row budget; 0: off)


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()


SHIPPED_CONFIGS = Path(__file__).resolve().parent / "configs"


def config_dirs() -> list[Path]:
    """Where named configs are looked up: the project's own ``configs/`` first, then the shipped ones."""
    return [Path(get_settings().configs_dir), SHIPPED_CONFIGS]


def find_config(kind: str, name_or_path: str) -> Path:
    """Resolve a config given as a path, or as a bare name under ``configs/<kind>/``.

    A project's own ``configs/`` (``LEADSCORE_CONFIGS_DIR``) overrides the configs shipped in the package.
    """
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    stem = candidate.name if candidate.suffix in {".yaml", ".yml"} else f"{candidate.name}.yaml"
    for base in config_dirs():
        path = base / kind / stem
        if path.is_file():
            return path
    raise UserError(f"{kind} config not found: {name_or_path}")


MAX_YAML_NODES = 200_000  # a spec or contract is a few hundred; aliases may not multiply it past this


def read_yaml(path: Path) -> dict[str, Any]:
    """A spec, contract or rules file: YAML read safely, its aliases counted as what they expand to
    (a "billion laughs" file is refused in one line, whatever key it hides under)."""
    try:
        data = _limited_load(path.read_text(encoding="utf-8"), path)
    except RecursionError:
        raise UserError(f"{path}: nested too deeply to be a leadscore file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UserError(f"{path}: not valid YAML{where}") from exc
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    return data


def _limited_load(text: str, path: Path) -> Any:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded(node, {})
        if size > MAX_YAML_NODES:
            raise UserError(
                f"{path}: its aliases (&anchor / *alias) expand to over {MAX_YAML_NODES:,} values: "
                "not a leadscore file"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values ``node`` stands for once every alias is written out (each shared node counted
    where it is used, computed once)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_YAML_NODES + 1  # a node that contains itself expands without end
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded(item, memo) for item in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded(k, memo) + _expanded(v, memo) for k, v in node.value)
    memo[key] = min(size, MAX_YAML_NODES + 1)
    return memo[key]


def validation_message(path: Path | str, exc: ValidationError) -> str:
    """One line naming the spec key. Of a union's errors (a list of columns or named definitions),
    the deepest is the one that says what is wrong."""
    first = max(exc.errors(), key=lambda e: len(e["loc"]))
    parts = [str(p) for p in first["loc"] if not _UNION_BRANCH.match(str(p))]
    where = ".".join(parts) or "(top level)"
    return f"{path}: field '{where}': {first['msg']}"


_UNION_BRANCH = re.compile(
    r"^[a-z_-]+\[.*\]$"
)  # pydantic's name of a union branch, e.g. dict[str,Aggregation]
