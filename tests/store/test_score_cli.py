"""What ``leadscore score --log`` adds to its output (each lead's previous logged answer, the trend and
whether it crossed the cutoff), with the trend's threshold from the settings, and the store's own
commands (purge, upgrade) run as a user runs them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.store.db import open_store
from leadscore.store.decisions import add_decisions, load_decisions
from leadscore.store.scores import latest, store_counts
from tests.helpers import Trained, make_leads, private_env

LOGGED = ["previous_p_sql", "previous_scored_at", "trend", "crossed_cutoff"]


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _score(trained: Trained, leads: Path, out: Path, env: dict[str, str]) -> pd.DataFrame:
    with private_env({**trained["env"], **env}):
        code, said = _cli(
            "score", str(leads), "--model", str(trained["model_path"]), "--out", str(out), "--log"
        )
    assert code == 0, said
    return pd.read_csv(out, dtype={"lead_id": "string"})


@pytest.mark.parametrize("threshold", [0.05, 0.2])
def test_score_log_adds_the_previous_answer_the_trend_and_the_crossing(
    trained: Trained, tmp_path: Path, database_url: str, threshold: float
) -> None:
    env = {"LEADSCORE_DATABASE_URL": database_url, "LEADSCORE_TREND_THRESHOLD": str(threshold)}
    leads = make_leads(400, 91, fault_rate=0.0)
    first_file, second_file = tmp_path / "first.csv", tmp_path / "second.csv"
    leads.to_csv(first_file, index=False)
    started = pd.Timestamp.now(tz="UTC")
    first = _score(trained, first_file, tmp_path / "a.csv", env)
    finished = pd.Timestamp.now(tz="UTC")
    assert first[LOGGED].isna().all().all()  # never logged before: nothing to compare with
    # A week later half the leads came back to pricing and asked for a demo.
    later = leads.copy()
    hot = np.arange(len(later)) % 2 == 0
    later.loc[hot, ["pricing_page_views_7d", "demo_requests"]] = [6, 1]
    later.to_csv(second_file, index=False)
    second = _score(trained, second_file, tmp_path / "b.csv", env)
    assert second["lead_id"].tolist() == first["lead_id"].tolist()
    np.testing.assert_allclose(second["previous_p_sql"], first["p_sql"])
    seen = pd.to_datetime(second["previous_scored_at"], utc=True)
    assert seen.between(started, finished).all()  # the first run's logged time, not the second's
    change = second["p_sql"] - first["p_sql"]
    expected = np.where(
        change >= threshold, "improving", np.where(change <= -threshold, "declining", "steady")
    )
    assert second["trend"].tolist() == expected.tolist()
    assert (second["trend"] == "improving").sum() > 20 and (second["trend"] == "steady").sum() > 20
    assert second["crossed_cutoff"].astype(bool).tolist() == (second["mql"] != first["mql"]).tolist()
    assert second["crossed_cutoff"].astype(bool).sum() > 5


def _decisions(leads: list[str], at: datetime) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": leads,
            "decision": ["accepted"] * len(leads),
            "reason": [None] * len(leads),
            "decided_at": [at] * len(leads),
            "mql_at": [at] * len(leads),
            "rep": ["ana"] * len(leads),
        }
    )


def test_store_purge_and_upgrade_from_the_command_line(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from leadscore.store.schema import latest_scores, scores
    from tests.store.test_store import _row

    now = datetime.now(UTC).replace(tzinfo=None)
    store = open_store(database_url)
    config = Config()
    config.set_main_option("script_location", "src/leadscore/store/migrations")
    with store.write() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")  # a store left by the first release
    old, recent = now - timedelta(days=400), now - timedelta(days=3)
    rows = [_row("a", 0.1, old), _row("b", 0.2, recent), _row("c", 0.3, recent)]
    first = ("lead_id", "scored_at", "p_sql", "mql", "grade", "model_version")  # latest_scores then
    with store.write() as conn:  # as the first release wrote them
        conn.execute(scores.insert(), rows)
        conn.execute(latest_scores.insert(), [{c: r[c] for c in first} for r in rows])
    add_decisions(store, _decisions(["a", "b", "c"], recent))
    code, out = _cli("store", "upgrade", "--store", database_url)
    assert code == 0 and f"{store.shown}: schema at revision 0008" in out, out
    assert store_counts(store)["scores"] == 3  # upgraded with its rows

    code, out = _cli("store", "purge", "--before", (now - timedelta(days=365)).date().isoformat(), "--store",
                     database_url, "--json")  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["deleted"] == {"scores": 1, "latest_scores": 1, "decisions": 0}
    code, out = _cli("store", "purge", "--lead", "b", "--store", database_url, "--json")
    assert code == 0 and json.loads(out)["deleted"] == {"scores": 1, "latest_scores": 1, "decisions": 1}
    assert set(latest(store, ["a", "b", "c"])) == {"c"}
    assert sorted(load_decisions(store)["lead_id"]) == ["a", "c"]  # a's decision outlives its old scores
    code, out = _cli("store", "purge", "--store", database_url)
    assert code == 2 and "give --before DATE (retention) or --lead ID" in out
