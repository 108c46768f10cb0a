"""Property-based calls against a real server for minutes: server errors and schema violations.

Run: .venv/bin/python benchmarks/fuzz_service.py [--minutes 5] [--leads 3000] [--seed 1]
Trains a model on generated leads (a private MLflow store), starts ``leadscore serve`` on a free
port, and drives every operation of its published OpenAPI document with schemathesis for the time
given, validating each answer against the schema (status code, media type, body). The suite runs
the same check for a bounded number of cases (tests/service/test_schema.py); this runs it for as
long as you let it. Prints one JSON object: cases per operation, status codes seen, server errors
and schema violations (the target is 0 and 0).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _private import private_env  # noqa: E402
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset

KEY = "fuzz-key-for-a-local-run-only"
CONFORMANCE = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _model(root: Path, leads: int, seed: int, env: dict[str, str]) -> str:
    data = root / "data"
    write_dataset(generate(GeneratorConfig(leads=leads, seed=seed)), data)
    cmd = [sys.executable, "-m", "leadscore", "train", str(data), "--spec", "synthetic", "--json"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return str(json.loads(done.stdout)["model_path"])


class _TimeUp(Exception):
    """This operation's share of the time is spent."""


def _fuzz(url: str, seconds: float) -> dict[str, Any]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", headers={"X-API-Key": KEY})
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    report: dict[str, Any] = {"operations": {}, "server_errors": 0, "violations": 0, "examples": []}
    for operation in operations:
        _fuzz_operation(operation, url, seconds / max(len(operations), 1), report)
    return report


def _fuzz_operation(operation: Any, url: str, seconds: float, report: dict[str, Any]) -> None:
    name = f"{operation.method.upper()} {operation.path}"
    seen: dict[str, int] = {}
    stop_at = time.monotonic() + seconds

    @given(case=operation.as_strategy())
    @settings(
        max_examples=10_000_000,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the time is up, not a failure
    )
    def call(case: schemathesis.Case[Any]) -> None:
        if time.monotonic() > stop_at:
            raise _TimeUp
        response = case.call(base_url=url, headers={"X-API-Key": KEY}, timeout=30)
        seen[str(response.status_code)] = seen.get(str(response.status_code), 0) + 1
        try:
            case.validate_response(response, checks=CONFORMANCE)
        except Exception as exc:  # a failed check: counted, and one example kept
            kind = "server_errors" if response.status_code >= 500 else "violations"
            report[kind] += 1
            if len(report["examples"]) < 10:
                report["examples"].append(f"{name} -> {response.status_code}: {str(exc)[:300]}")

    try:
        call()
    except _TimeUp:
        pass
    except Exception as exc:  # hypothesis gives up on an operation it cannot generate for
        report["examples"].append(f"{name}: generation stopped ({str(exc)[:200]})")
    report["operations"][name] = seen


def _up(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=2)
    except httpx.HTTPError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--leads", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = private_env(
            root,
            LEADSCORE_DATABASE_URL=f"sqlite:///{root}/log.db",
            LEADSCORE_API_KEYS=KEY,
            LEADSCORE_SEARCH_TRIALS="2",
        )
        model = _model(root, args.leads, args.seed, env)
        port = _port()
        with (root / "server.log").open("wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "leadscore", "serve", "--model", model, "--port", str(port)],
                env=env, stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while httpx.get(f"{url}/healthz", timeout=2).status_code != 200 if _up(url) else True:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        f"the server did not start:\n{(root / 'server.log').read_text()[-3000:]}"
                    )
                time.sleep(0.3)
            started = time.monotonic()
            report = _fuzz(url, args.minutes * 60)
            report["seconds"] = round(time.monotonic() - started, 1)
            report["cases"] = sum(sum(seen.values()) for seen in report["operations"].values())
        finally:
            server.terminate()
            server.wait(30)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
