"""The account model: trained on the generator's accounts by ``train --level``, registered and
exported as ``leadscore-<dataset>-accounts``, near the truth's ROC AUC on the same held-out moments,
with the account team's own policy from the contract."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score
from sqlalchemy import select
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
from leadscore.store.db import open_store
from leadscore.store.schema import latest_accounts
from tests.helpers import current_contract, mlflow_env, private_env, train_accounts_spec


@pytest.fixture(scope="module")
def accounts_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("accounts") / "data"
    write_dataset(generate(GeneratorConfig(leads=4000, seed=21, accounts=True)), out)
    return out


def test_the_account_model_is_trained_registered_and_near_the_truth(
    accounts_data: Path, tmp_path: Path
) -> None:
    from leadscore.data.account_table import account_table
    from leadscore.jobs.accounts import train_accounts_and_log
    from leadscore.spec import load_spec

    contract, _ = current_contract(tmp_path)
    doc = yaml.safe_load(contract.read_text())
    doc["accounts"] = {"mql_capacity": 40}  # qualified accounts per week
    contract.write_text(yaml.safe_dump(doc))
    with private_env({"LEADSCORE_SEARCH_TRIALS": "2", **mlflow_env(tmp_path)}):
        result, payload = train_accounts_and_log(
            accounts_data, load_spec("synthetic-accounts"), cutoff=contract
        )
    assert payload["registered_model"] == "leadscore-synthetic-accounts-accounts"
    assert payload["level"] == "account" and Path(payload["model_path"]).name == "synthetic-accounts-accounts"
    assert payload["account_moments"]["in_pipeline"] > 0
    truth = pd.read_parquet(accounts_data / "account_moments.parquet")
    truth["account_id"] = truth["account_id"].astype(str)
    test = result.test_frame.merge(truth, on=["account_id", "moment"], how="left")
    assert test["true_p_opportunity"].notna().all()
    truth_auc = roc_auc_score(result.test_y, test["true_p_opportunity"])
    assert result.metrics["roc_auc"] > truth_auc - 0.03, (result.metrics["roc_auc"], truth_auc)
    # the account team's policy: 40 qualified accounts a week
    assert result.cutoff.contract.policy == "mql_capacity" and result.cutoff.contract.mql_capacity == 40
    assert result.cutoff.expected_mql_per_week == pytest.approx(40, rel=0.15)
    # the moments are split by time: the test is every account moment from a day on, the latest fifth
    moments = account_table(accounts_data, load_spec("synthetic-accounts")).frame["moment"]
    first_test = result.test_frame["moment"].min()
    assert (moments >= first_test).sum() == result.n_test == len(result.test_frame)
    assert 0.1 <= result.n_test / len(moments) <= 0.3  # whole moments: about a fifth


def test_level_names_what_is_trained_and_a_spec_without_accounts_says_so(tmp_path: Path) -> None:
    out = tmp_path / "plain"
    write_dataset(generate(GeneratorConfig(leads=300, seed=1)), out)
    for level, says in (("account", "has no 'accounts' block"), ("team", "unknown level 'team'")):
        result = CliRunner().invoke(app, ["train", str(out), "--spec", "synthetic", "--level", level])
        assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output


@pytest.fixture(scope="module")
def both(accounts_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``train`` of a spec with accounts: the lead model and the account model, once for the module."""
    root = tmp_path_factory.mktemp("both")
    env, payload = train_accounts_spec(accounts_data, root)
    return {"env": env, "payload": payload, "root": root}


def test_train_json_keeps_the_lead_payload_and_adds_the_accounts(
    accounts_data: Path, both: dict[str, Any], tmp_path: Path
) -> None:
    env, payload = both["env"], both["payload"]
    assert payload["registered_model"] == "leadscore-synthetic-accounts"  # the lead model, as before
    assert payload["accounts"]["registered_model"] == "leadscore-synthetic-accounts-accounts"
    assert (both["root"] / "models" / "synthetic-accounts-accounts").is_dir()
    # lead scores with their accounts: each lead's account as matched, its P(opportunity) that day
    leads_out, accounts_out = tmp_path / "leads.csv", tmp_path / "accounts.csv"
    lead_model, account_model = payload["model_path"], payload["accounts"]["model_path"]
    day = ["--as-of", "2025-03-01"]
    with private_env(env):
        for args in (
            ["--model", lead_model, "--accounts-model", account_model, "--out", str(leads_out), *day],
            ["--model", account_model, "--out", str(accounts_out), *day],
        ):
            result = CliRunner().invoke(app, ["score", str(accounts_data), *args])
            assert result.exit_code == 0, result.output
        wrong = CliRunner().invoke(
            app,
            [
                "score",
                str(accounts_data),
                "--model",
                lead_model,
                "--accounts-model",
                lead_model,
                "--out",
                "x.csv",
            ],
        )
        assert wrong.exit_code == 2 and "is a lead model, not an account model" in wrong.output
    leads = pd.read_csv(leads_out, dtype={"lead_id": str, "account_id": str})
    accounts = pd.read_csv(accounts_out, dtype={"account_id": str}).set_index("account_id")["p_opportunity"]
    truth = pd.read_parquet(accounts_data / "leads.parquet", columns=["lead_id", "true_account_id"])
    truth = truth.drop_duplicates("lead_id")
    truth = pd.Series(truth["true_account_id"].to_numpy(), index=truth["lead_id"].astype(str).to_numpy())
    found = leads.dropna(subset=["account_id"])
    assert len(found) / len(leads) > 0.95
    assert (found["account_id"] == found["lead_id"].map(truth).astype(str)).mean() > 0.99
    scored = found.loc[found["account_id"].isin(accounts.index)]
    assert len(scored) > 0.5 * len(found)
    assert np.allclose(scored["p_opportunity"], scored["account_id"].map(accounts), atol=1e-6)


def test_an_account_model_scores_every_account_as_of_a_day(accounts_data: Path, tmp_path: Path) -> None:
    """``score FOLDER --model M --as-of DAY``: a row per account with activity by then, its
    P(opportunity) from the same engine as training, the qualified flag and the buying group."""
    from leadscore.data.account_table import account_table
    from leadscore.jobs.accounts import train_accounts_and_log
    from leadscore.spec import load_spec

    contract, _ = current_contract(tmp_path)
    with private_env({"LEADSCORE_SEARCH_TRIALS": "0", **mlflow_env(tmp_path)}):
        _, payload = train_accounts_and_log(accounts_data, load_spec("synthetic-accounts"), cutoff=contract)
        out = tmp_path / "accounts.csv"
        args = ["score", str(accounts_data), "--model", payload["model_path"], "--out", str(out)]
        result = CliRunner().invoke(app, [*args, "--as-of", "2025-03-01", "--explain", "2", "--json"])
        assert result.exit_code == 0, result.output
        wrong = CliRunner().invoke(app, [*args, "--as-of", "soon"])
        assert wrong.exit_code == 2 and "--as-of: 'soon' is not a date" in wrong.output
    scores = pd.read_csv(out, dtype={"account_id": str}, keep_default_na=False)
    expected = ["account_id", "scored_at", "p_opportunity", "qualified", "grade", "reason_1", "reason_2"]
    assert list(scores.columns) == [*expected, "contacts_engaged", "roles_engaged", "roles_missing"]
    table = account_table(accounts_data, load_spec("synthetic-accounts"), as_of=_day("2025-03-01"))
    assert scores["account_id"].tolist() == table.frame["account_id"].tolist()
    assert (scores["scored_at"] == "2025-03-01T00:00:00Z").all()
    assert json.loads(result.stdout)["qualified"] == int(scores["qualified"].sum()) > 0
    # the buying group: the roles engaged and missing are the declared roles, each once
    roles = {"decision_maker", "technical", "finance"}
    for engaged, missing in zip(scores["roles_engaged"], scores["roles_missing"], strict=True):
        named = [r for r in f"{engaged}, {missing}".split(", ") if r]
        assert sorted(named) == sorted(roles)
    busy = scores.loc[scores["roles_engaged"] != ""]
    assert (busy["contacts_engaged"] >= 1).all() and len(busy) > 0
    # reasons speak of the buying group, and of opportunities, never of SQL
    reasons = pd.concat([scores["reason_1"], scores["reason_2"]])
    assert reasons.str.contains(r"(?:people|person|decision makers?) active in the last 30 days").any()
    assert not reasons.str.contains("SQL").any()
    # the model scores the accounts' table as of the day, as training reads its moments
    from leadscore.scoring.batch import score_output
    from leadscore.tracking.loading import load_bundle

    direct = score_output(load_bundle(payload["model_path"]), table.frame)["p_sql"].to_numpy()
    assert np.allclose(scores["p_opportunity"].to_numpy(), direct, atol=1e-6)
    assert scores["p_opportunity"].nunique() > 10


def _day(text: str) -> int:
    return int(pd.Timestamp(text).value // 1_000_000)


def _account_body(folder: Path, account_id: str, day: str) -> dict[str, Any]:
    """One account as a CRM would send it: its row, the leads the matcher gives it, their events."""
    from leadscore.data.accounts import read_account_tables
    from leadscore.spec import load_spec

    tables = read_account_tables(folder, load_spec("synthetic-accounts"), every_column=True)
    matches = tables.matches.frame
    mine = set(matches.loc[matches["account_id"] == account_id, "lead_id"])
    leads = tables.leads.loc[tables.leads["lead_id"].astype(str).isin(mine)].drop_duplicates("lead_id")
    events = pd.read_parquet(folder / "events.parquet")
    account = tables.accounts.loc[tables.accounts["account_id"].astype(str) == account_id].iloc[0]
    body: dict[str, Any] = {"account": json.loads(account.to_json()), "leads": [], "as_of": day}
    for _, lead in leads.iterrows():
        fields = json.loads(lead.to_json(date_format="iso"))
        own = events.loc[events["lead_id"] == lead["lead_id"]]
        fields["events"] = [
            {
                "type": e.event_type,
                "time": e.occurred_at.isoformat(),
                "funnel_stage": None if pd.isna(e.funnel_stage) else e.funnel_stage,
            }
            for e in own.itertuples()
        ]
        body["leads"].append(fields)
    return body


def test_the_api_scores_an_account_as_batch_scoring_does(accounts_data: Path, both: dict[str, Any]) -> None:
    """``POST /v1/accounts/score`` on a real server (``serve --accounts-model``): an account sent
    with its leads and their events gets the answer ``score FOLDER --as-of`` gives it."""
    import httpx

    from tests.helpers import ADMIN_KEY, API_KEY, free_port, start_server, stop, wait_ready

    store = f"sqlite:///{both['root']}/accounts-store.db"
    env, payload = {**both["env"], "LEADSCORE_DATABASE_URL": store}, both["payload"]
    out = both["root"] / "accounts-day.csv"
    with private_env(env):
        args = ["score", str(accounts_data), "--model", payload["accounts"]["model_path"], "--out", str(out)]
        logged = CliRunner().invoke(
            app, [*args, "--as-of", "2025-03-01", "--explain", "3", "--log", "--json"]
        )
        assert logged.exit_code == 0, logged.output
        assert (
            json.loads(logged.stdout)["logged"] == json.loads(logged.stdout)["rows"]
        )  # every account's answer
        lead_args = [
            "score",
            str(accounts_data),
            "--model",
            payload["model_path"],
            "--out",
            str(out.with_name("leads-day.csv")),
        ]
        assert CliRunner().invoke(app, lead_args).exit_code == 0
    leads = pd.read_csv(str(out.with_name("leads-day.csv")), dtype={"lead_id": str}).set_index("lead_id")[
        "p_sql"
    ]
    batch = pd.read_csv(out, dtype={"account_id": str}, keep_default_na=False).set_index("account_id")
    chosen = [*batch.sort_values("p_opportunity").index[-2:], batch.index[0]]
    port = free_port()
    server_env = {**env, "LEADSCORE_API_KEYS": API_KEY, "LEADSCORE_ADMIN_KEYS": ADMIN_KEY}
    extra = ("--accounts-model", payload["accounts"]["model_path"])
    proc = start_server(payload["model_path"], server_env, port, *extra, log=both["root"] / "server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        headers = {"X-API-Key": API_KEY}
        recent: list[int] = []
        for account_id in chosen:
            body = _account_body(accounts_data, account_id, "2025-03-01T00:00:00Z")
            answer = httpx.post(f"{url}/v1/accounts/score?explain=3", json=body, headers=headers, timeout=30)
            assert answer.status_code == 200, answer.text
            got, want = answer.json(), batch.loc[account_id]
            assert got["p_opportunity"] == pytest.approx(want["p_opportunity"], abs=1e-6)
            assert (got["qualified"], got["grade"]) == (bool(want["qualified"]), want["grade"])
            assert got["contacts_engaged"] == want["contacts_engaged"]
            assert ", ".join(got["roles_engaged"]) == want["roles_engaged"]
            assert got["reasons"][0] == want["reason_1"]
            recent.append(_lead_with_its_account(url, headers, leads, body, want))
        assert max(recent) > 0  # at least one lead whose P(SQL) its colleagues moved
        bad = httpx.post(f"{url}/v1/accounts/score", json={"leads": []}, headers=headers, timeout=10)
        assert bad.status_code == 422 and bad.json()["field"] == "account.account_id"
        late = {**body, "as_of": "someday"}
        bad = httpx.post(f"{url}/v1/accounts/score", json=late, headers=headers, timeout=10)
        assert bad.status_code == 422 and bad.json()["field"] == "as_of"
        nokey = httpx.post(f"{url}/v1/accounts/score", json=body, timeout=10)
        assert nokey.status_code == 401
        _qualified_accounts_page(url, batch)
    finally:
        stop(proc)
    with open_store(store).read() as conn:  # the service logged its answers over the batch's
        sources = dict(conn.execute(select(latest_accounts.c.account_id, latest_accounts.c.source)).all())
    assert {sources[a] for a in chosen} == {"api"} and set(sources.values()) == {"api", "batch"}


def _qualified_accounts_page(url: str, batch: pd.DataFrame) -> None:
    """The account queue page lists the logged qualified accounts best first (an admin signed in)."""
    import httpx

    from tests.helpers import ADMIN_KEY, sign_in

    qualified = batch[batch["qualified"].astype(str) == "True"].sort_values("p_opportunity", ascending=False)
    with httpx.Client(base_url=url, timeout=30) as web:
        sign_in(web, ADMIN_KEY)
        page = web.get("/app/queue?level=account")
    assert page.status_code == 200 and f"{len(qualified)} over the account cutoff" in page.text
    listed = re.findall(r'data-account="([^"]+)"', page.text)
    assert listed == list(qualified.index[: len(listed)]) and len(listed) == min(50, len(qualified))


def _lead_with_its_account(
    url: str, headers: dict[str, str], batch: pd.Series, body: dict[str, Any], want: Any
) -> int:
    """A lead sent to ``/v1/score`` with its account: its ``scope: account`` features over its
    colleagues (its P(SQL) is batch scoring's, which reads the whole folder) and the account's answer."""
    import httpx

    lead, recent = max(((x, _colleague_events(x, body["leads"])) for x in body["leads"]), key=lambda x: x[1])
    colleagues = [x for x in body["leads"] if x is not lead]  # the one whose colleagues were most active
    sent = {**lead, "account": {**body, "leads": colleagues}}
    answer = httpx.post(f"{url}/v1/score?explain=3", json=sent, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["p_sql"] == pytest.approx(batch.loc[str(lead["lead_id"])], abs=1e-6)
    assert got["account"]["p_opportunity"] == pytest.approx(want["p_opportunity"], abs=1e-6)
    assert got["account"]["account_id"] == str(body["account"]["account_id"])
    ignored = [w.split(": ", 1)[1].split(", ") for w in got["warnings"] if w.startswith("ignored unknown")]
    assert all("account" not in names for names in ignored), got["warnings"]
    alone = httpx.post(f"{url}/v1/score", json=lead, headers=headers, timeout=30).json()
    assert "account" not in alone or alone["account"] is None
    if recent:
        assert alone["p_sql"] != pytest.approx(got["p_sql"], abs=1e-9)  # the colleagues counted
    wrong = {**lead, "account": {"account": {"account_id": "A"}, "leads": "no"}}
    bad = httpx.post(f"{url}/v1/score", json=wrong, headers=headers, timeout=10)
    assert bad.status_code == 422 and bad.json()["field"] == "account.leads", bad.text
    return recent


def _colleague_events(lead: dict[str, Any], leads: list[dict[str, Any]]) -> int:
    """The lead's colleagues' events in the 30 days before it was created."""
    created = pd.Timestamp(lead["created_at"])
    return sum(
        created - pd.Timedelta(days=30) <= pd.Timestamp(e["time"]) < created
        for other in leads
        if other is not lead
        for e in other["events"]
    )


def test_monitor_and_promote_read_the_accounts_at_their_moments(
    accounts_data: Path, both: dict[str, Any], tmp_path: Path
) -> None:
    """The account model is monitored and promoted as a lead model is: on the folder's accounts at
    their labelled moments (the rows it was trained on), not on its leads."""
    from leadscore.data.account_table import account_table
    from leadscore.jobs.accounts import train_accounts_and_log
    from leadscore.spec import load_spec

    env, payload = both["env"], both["payload"]
    moments = len(account_table(accounts_data, load_spec("synthetic-accounts")).frame)
    model = payload["accounts"]["model_path"]
    with private_env(env):
        args = [
            "--reference",
            str(accounts_data),
            "--current",
            str(accounts_data),
            "--out",
            str(tmp_path / "m.html"),
        ]
        watched = CliRunner().invoke(app, ["monitor", "--model", model, *args, "--json"])
        assert watched.exit_code in (0, 3), watched.output
        report = json.loads(watched.stdout)
        contract, _ = current_contract(tmp_path)
        train_accounts_and_log(accounts_data, load_spec("synthetic-accounts"), cutoff=contract, seed=7)
        promote = ["promote", "--dataset", "synthetic-accounts-accounts", "--challenger", "2"]
        compared = CliRunner().invoke(app, [*promote, "--data", str(accounts_data), "--json"])
    assert compared.exit_code == 0, compared.output
    assert report["verdict"] in ("ok", "watch", "retrain") and report["volume"]["mql_share"] > 0
    result = json.loads(compared.stdout)
    assert result["champion"]["leads"] == result["challenger_metrics"]["leads"] == moments


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"account": {"account_id": "1", "industry": [1, 2]}}, "account.industry"),
        ({"account": {"account_id": "1"}, "leads": [{"lead_id": {"a": 1}}]}, "leads[0].lead_id"),
        ({"account": {"account_id": "1"}, "leads": [{"lead_id": 1, "events": "no"}]}, "leads[0].events"),
        (
            {
                "account": {"account_id": "1"},
                "leads": [{"lead_id": 1, "events": [{"type": "x", "time": [1]}]}],
            },
            "leads[0].events[0].time",
        ),
        ({"account": {"account_id": ""}}, "account.account_id"),
        ({"account": {"account_id": "1"}, "leads": "all"}, "leads"),
    ],
)
def test_a_wrong_account_body_names_its_field(both: dict[str, Any], body: dict[str, Any], field: str) -> None:
    from leadscore.scoring.account_request import AccountRequestError, account_answer
    from leadscore.tracking.loading import load_bundle

    bundle = load_bundle(both["payload"]["accounts"]["model_path"])
    with pytest.raises(AccountRequestError) as caught:
        account_answer(bundle, body)
    assert caught.value.field == field


def test_odd_but_plain_values_are_missing_values_not_errors(both: dict[str, Any]) -> None:
    """A time with no UTC equivalent, a number for an event type, a fit field not sent: scored."""
    from leadscore.scoring.account_request import account_answer
    from leadscore.tracking.loading import load_bundle

    bundle = load_bundle(both["payload"]["accounts"]["model_path"])
    odd = {"type": 3, "time": "0001-01-01T00:00:00+00:01"}
    lead = {
        "lead_id": 1,
        "scored_at": "0001-01-01T00:00:00+00:01",
        "events": [odd, {"type": "x", "time": 12}],
    }
    answer = account_answer(bundle, {"account": {"account_id": 7}, "leads": [lead], "as_of": "2025-01-01"})
    assert 0 <= answer["p_opportunity"] <= 1 and answer["contacts_engaged"] == 0


def test_an_accounts_moments_share_a_cross_fitting_fold() -> None:
    """The shipped account model's folds keep an account's moments together (its fit fields nearly
    name it); a lead table that merely has an ``account_id`` column is grouped by lead moments only."""
    from leadscore.data.account_table import ACCOUNT_ID, account_model_spec
    from leadscore.modeling.dataset import row_groups
    from leadscore.spec import load_spec

    spec = load_spec("synthetic-accounts")
    frame = pd.DataFrame({ACCOUNT_ID: [7, 7, "8", None], "x": [1, 2, 3, 4]})
    groups = row_groups(frame, account_model_spec(spec, 0.0))
    assert groups is not None and list(groups[:3]) == ["7", "7", "8"]
    assert row_groups(frame, spec) is None


def test_the_account_models_card_speaks_of_account_moments_and_opportunities(both: dict[str, Any]) -> None:
    """The model card of an account model names its rows, label, score and flag as the account team
    reads them; the lead model's card keeps the lead words."""
    from leadscore.reports.model_card import model_card
    from leadscore.scoring.bundle import ModelBundle

    accounts = model_card(ModelBundle.load(both["payload"]["accounts"]["model_path"]))
    for words in ("P(opportunity) ≥", "test account moments", "Expected qualified account volume"):
        assert words in accounts, words
    assert "labelled account moments" in accounts and "qualified→opportunity" in accounts
    assert "P(SQL)" not in accounts and "MQL" not in accounts and "test leads" not in accounts
    leads = model_card(ModelBundle.load(both["payload"]["model_path"]))
    assert "P(SQL) ≥" in leads and "test leads" in leads and "MQL→SQL" in leads
