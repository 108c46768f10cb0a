"""Sales' pages over a large score log: the queue and a lead page, rendered server-side, against a
plain JSON route of the same app measured in the same run.

Run: .venv/bin/python benchmarks/bench_pages.py [--answers 1000000] [--leads 200000] [--open 10000]

Targets (issue 33): the queue page over a score log of 1,000,000 answers and 10,000 open MQLs in
under 150 ms server-side; the lead page in under 50 ms. The app is the one ``leadscore serve`` runs
(``web.app.create_app``) called in-process (no network: what the server spends), on a SQLite store
filled through the score log's own write path: ``--leads`` leads with ``--answers`` answers between
them, ``--open`` of them over the cutoff and undecided at the end, and as many again decided.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from fastapi.testclient import TestClient

from bench_service import KEY, train_model
from leadscore.config import Settings
from leadscore.data.synthetic import GeneratorConfig, generate
from leadscore.scoring.bundle import ModelBundle
from leadscore.service.auth import hash_key
from leadscore.store.db import open_store
from leadscore.store.decisions import add_decisions
from leadscore.store.scores import ScoreRow, write_score_chunks
from leadscore.web.app import create_app

REP_KEY = "bench-rep-key-0123456789abcdef"
NOW = datetime(2026, 12, 5, 12, 0)


def fill(url: str, bundle: ModelBundle, n_leads: int, n_answers: int, n_open: int) -> None:
    """The score log: every lead answered ``n_answers / n_leads`` times, the last answer decides
    whether it is an open MQL (``n_open`` of them) or decided (as many) or under the cutoff."""
    leads = generate(GeneratorConfig(leads=2000, seed=4))["leads"].to_pandas()
    fields = list(bundle.fields)
    inputs = [orjson.dumps(r).decode() for r in leads[fields].to_dict("records")]
    rounds = max(1, n_answers // n_leads)
    rng = np.random.default_rng(0)
    store = open_store(url)
    for k in range(rounds):
        last = k == rounds - 1
        at = NOW - timedelta(hours=3 * (rounds - k))
        chunk: list[ScoreRow] = []
        for i in range(n_leads):
            mql = last and i < 2 * n_open
            p = float(rng.uniform(0.5, 0.99) if mql else rng.uniform(0.0, 0.09))
            chunk.append(
                _row(f"L{i:07d}", at + timedelta(seconds=i % 3600), p, mql, inputs[i % len(inputs)], i)
            )
            if len(chunk) == 20_000:
                write_score_chunks(store, [chunk])
                chunk = []
        write_score_chunks(store, [chunk])
    decided = pd.DataFrame(
        {
            "lead_id": [f"L{i:07d}" for i in range(n_open, 2 * n_open)],
            "decision": "accepted",
            "reason": None,
            "decided_at": NOW,
            "mql_at": None,
            "rep": "Bench",
        }
    )
    add_decisions(store, decided)


def _row(lead: str, at: datetime, p: float, mql: bool, inputs: str, i: int) -> ScoreRow:
    return ScoreRow(
        lead_id=lead,
        scored_at=at,
        model_name="bench",
        model_version="1",
        cutoff_version="c1",
        p_sql=p,
        mql=mql,
        grade="A1" if p > 0.8 else "B2",
        fit=0.1,
        engagement=0.2,
        reasons='["job_title"]',
        inputs=inputs,
        request_id=None,
        source="batch",
        top_reasons='["Requested a demo", "Visited the pricing page 4 times"]',
        segment=("EMEA", "NA", "APAC")[i % 3],
        respond_within="1h" if i % 7 == 0 else "24h",
        lead_source=("Webinar", "Paid Search", "Referral", "Outbound")[i % 4],
        display=orjson.dumps(
            {"Name": f"Person {i}", "Company": f"Company {i % 997}", "Owner": "Sam"}
        ).decode(),
    )


def timed(client: TestClient, path: str, runs: int) -> tuple[float, float]:
    """Median and 95th percentile milliseconds of ``runs`` GETs (after two to warm up)."""
    for _ in range(2):
        assert client.get(path).status_code == 200, path
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return float(np.median(times)), float(np.percentile(times, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--open", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    logging.getLogger("leadscore.access").disabled = True  # one line per request: not what is timed
    with tempfile.TemporaryDirectory() as tmp:
        model_path, _ = train_model(Path(tmp), 20_000)
        url = f"sqlite:///{tmp}/pages.db"
        started = time.perf_counter()
        fill(url, ModelBundle.load(model_path), args.leads, args.answers, args.open)
        print(
            f"score log: {args.answers:,} answers of {args.leads:,} leads written in {time.perf_counter() - started:.1f} s"
        )
        keys = Path(tmp) / "keys"
        keys.write_text(f"sha256:{hash_key(REP_KEY)} rep Bench Rep\n")
        keys.chmod(0o600)
        settings = Settings(
            api_keys=KEY, api_key_file=str(keys), database_url=url, log_scores=False, warm_scorers=False
        )
        with TestClient(create_app(str(model_path), settings=settings)) as client:
            token = client.get("/app/sign-in").cookies["leadscore_signin"]
            client.post("/app/sign-in", data={"key": REP_KEY, "csrf": token}, follow_redirects=False)
            ref = timed(client, "/app/sign-in", args.runs)
            pages = {
                "queue, page 1": "/app/queue",
                "queue, filtered": "/app/queue?segment=EMEA&source=Webinar",
                "queue, last page": f"/app/queue?page={args.open // 50}",
                "lead page": "/app/leads/L0000003",
                "lead card": "/app/leads/L0000003/card",
            }
            print(
                f"reference: the sign-in page (no store, no model) median {ref[0]:.2f} ms, p95 {ref[1]:.2f} ms"
            )
            for name, path in pages.items():
                median, p95 = timed(client, path, args.runs)
                target = 50 if name.startswith("lead") else 150
                print(
                    f"{name:<18} median {median:7.2f} ms, p95 {p95:7.2f} ms ({median / ref[0]:5.1f}x the reference; "
                    f"target under {target} ms)"
                )


if __name__ == "__main__":
    main()
