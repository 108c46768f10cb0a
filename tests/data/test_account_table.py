"""Accounts at their moments: the moment grid, the group roll-ups (people, roles, new people, a
role's people), the label from opportunities with moments already in the pipeline left out, and
the point in time (nothing after a moment is read for it), on a hand-made folder and on the
generator's accounts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from leadscore.data.account_table import LABEL, MOMENT, account_table, moment_grid
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
from leadscore.spec import DatasetSpec, load_spec, merged


def _ms(day: str) -> int:
    return int(pd.Timestamp(day).value // 1_000_000)


def test_month_moments_are_first_days_week_moments_mondays_and_days_a_step() -> None:
    months = moment_grid("month", _ms("2025-01-15"), _ms("2025-04-01"))
    assert [str(pd.Timestamp(m, unit="ms").date()) for m in months] == [
        "2025-02-01",
        "2025-03-01",
        "2025-04-01",
    ]
    weeks = moment_grid("week", _ms("2025-01-01"), _ms("2025-01-20"))  # 2025-01-01 was a Wednesday
    assert [pd.Timestamp(m, unit="ms").day_name() for m in weeks] == ["Monday"] * 3
    assert str(pd.Timestamp(weeks[0], unit="ms").date()) == "2025-01-06"
    days = moment_grid(10.0, _ms("2025-01-01 08:00"), _ms("2025-01-25"))
    assert [str(pd.Timestamp(m, unit="ms").date()) for m in days] == ["2025-01-11", "2025-01-21"]
    assert len(moment_grid("month", _ms("2025-03-01"), _ms("2025-02-01"))) == 0


LEADS = pd.DataFrame(
    {
        "Id": ["L1", "L2", "L3", "L4", "L5"],
        "Email": ["a@acme.com", "b@acme.com", "c@acme.com", "d@globex.com", "e@acme.com"],
        "Title": ["VP Sales", "CFO", "Engineer", "Director IT", "Analyst"],
        "CreatedDate": ["2025-01-02", "2025-01-20", "2025-02-10", "2025-01-05", "2025-03-20"],
        "Converted": [0, 0, 0, 0, 0],
    }
)
EVENTS = pd.DataFrame(
    {
        "WhoId": ["L1", "L1", "L2", "L3", "L4", "L4", "L5"],
        "ActivityDate": [
            "2025-01-10",
            "2025-02-20",
            "2025-02-25",
            "2025-02-27",
            "2025-01-06",
            "2025-03-10",
            "2025-03-21",
        ],
        "Type": ["Visit", "Pricing", "Visit", "Pricing", "Visit", "Visit", "Visit"],
    }
)
ACCOUNTS = pd.DataFrame(
    {"Id": ["A1", "A2"], "Website": ["acme.com", "globex.com"], "Industry": ["Software", "Retail"]}
)
OPPORTUNITIES = pd.DataFrame({"AccountId": ["A1", "A2"], "CreatedDate": ["2025-03-10", "2025-02-15"]})


def _spec(tmp_path: Path, change: dict[str, Any] | None = None) -> DatasetSpec:
    doc = {
        "name": "sfdc",
        "id": "Id",
        "time": "CreatedDate",
        "tables": {"leads": "Lead", "events": "Task", "accounts": "Account", "opportunities": "Opportunity"},
        "events": {"id": "WhoId", "time": "ActivityDate", "type": "Type"},
        "label": {"column": "Converted", "positive": [1]},
        "observed_until": "2025-05-31",
        "accounts": {
            "id": "Id",
            "match": {"email": "Email", "website": "Website"},
            "fit": ["Industry"],
            "categorical": ["Industry"],
            "label": {"opportunities": {"id": "AccountId", "time": "CreatedDate"}, "within_days": 30},
            "roles": {
                "decision_maker": {"Title": ["*VP*", "*Director*", "C?O"]},
                "finance": {"Title": ["*CFO*", "*Finance*"]},
            },
            "engagement": {
                "contacts_30d": {"contacts": "any", "days": 30},
                "roles_30d": {"roles": "any", "days": 30},
                "deciders_30d": {"contacts": "any", "role": "decision_maker", "days": 30},
                "pricing_people": {"contacts": "Pricing"},
                "visits": {"count": "Visit"},
                "new_contacts_30d": {"new_contacts": 30},
                "finance_new_60d": {"new_contacts": 60, "role": "finance"},
            },
        },
    }
    path = tmp_path / "sfdc.yaml"
    path.write_text(yaml.safe_dump(merged(doc, change or {}), sort_keys=False))
    return load_spec(str(path))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data = tmp_path / "crm"
    data.mkdir()
    for name, frame in (
        ("Lead", LEADS),
        ("Task", EVENTS),
        ("Account", ACCOUNTS),
        ("Opportunity", OPPORTUNITIES),
    ):
        frame.to_csv(data / f"{name}.csv", index=False)
    return data


def test_accounts_at_their_moments_with_group_rollups_and_labels(folder: Path, tmp_path: Path) -> None:
    table = account_table(folder, _spec(tmp_path))
    got = table.frame.set_index("account_moment")
    # first events: A1 on Jan 10, A2 on Jan 6; moments Feb 1 .. May 1 (May 1 + 30 days is inside the
    # export); each month's accounts in the accounts table's order
    assert list(got.index) == [
        "A1@2025-02-01",
        "A2@2025-02-01",
        "A1@2025-03-01",
        "A2@2025-04-01",
        "A1@2025-05-01",
        "A2@2025-05-01",
    ]
    # A2's opportunity on Feb 15 puts its Mar 1 in the pipeline, A1's on Mar 10 its Apr 1
    assert table.counts["in_pipeline"] == 2
    assert got[LABEL].tolist() == [0, 1, 1, 0, 0, 0]
    feb, mar = got.loc["A1@2025-02-01"], got.loc["A1@2025-03-01"]
    assert (feb["contacts_30d"], feb["roles_30d"], feb["deciders_30d"]) == (1, 1, 1)  # L1 on Jan 10
    # by Mar 1: L1 (VP: decision maker), L2 (CFO: finance, and C?O: decision maker), L3 in 30 days
    assert (mar["contacts_30d"], mar["roles_30d"], mar["deciders_30d"]) == (3, 2, 2)
    assert (mar["pricing_people"], mar["visits"]) == (2, 2)
    # created in the 30 days up to the moment, both ends in, as an event's ``days``: L1 (Jan 2, 00:00)
    # and L2 by Feb 1, L3 by Mar 1
    assert (feb["new_contacts_30d"], mar["new_contacts_30d"]) == (2, 1)
    assert (feb["finance_new_60d"], mar["finance_new_60d"]) == (1, 1)
    assert (
        got.loc["A1@2025-02-01", "Industry"] == "Software"
        and got.loc["A2@2025-02-01", "Industry"] == "Retail"
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("accounts") / "data"
    write_dataset(generate(GeneratorConfig(leads=3000, seed=11, accounts=True)), out)
    return out


def test_the_generators_accounts_are_the_same_bytes_for_the_same_seed() -> None:
    a = generate(GeneratorConfig(leads=800, seed=4, accounts=True))
    b = generate(GeneratorConfig(leads=800, seed=4, accounts=True))
    assert a.keys() == b.keys() and all(a[k].equals(b[k]) for k in a)
    assert {"opportunities", "account_moments"} <= set(a)
    plain = generate(GeneratorConfig(leads=800, seed=4))
    assert "opportunities" not in plain and "website" not in plain["accounts"].column_names


def test_matching_finds_the_true_accounts(generated: Path) -> None:
    from leadscore.data.accounts import read_account_tables

    tables = read_account_tables(generated, load_spec("synthetic-accounts"))
    truth = pd.read_parquet(generated / "leads.parquet", columns=["lead_id", "true_account_id"])
    truth = truth.drop_duplicates("lead_id").assign(lead_id=lambda f: f["lead_id"].astype(str))
    got = tables.matches.frame.merge(truth, on="lead_id")
    matched = got["account_id"].notna()
    right = matched & (got["account_id"] == got["true_account_id"].astype(str))
    assert right.sum() / matched.sum() >= 0.99  # precision
    assert right.sum() / len(got) >= 0.95  # recall
    counts = tables.matches.counts
    assert min(counts["id"], counts["domain"], counts["company"]) > 0  # every method has work


def test_account_labels_follow_the_truth_and_meetings_follow_opportunities(generated: Path) -> None:
    table = account_table(generated, load_spec("synthetic-accounts")).frame
    truth = pd.read_parquet(generated / "account_moments.parquet")
    truth["account_id"] = truth["account_id"].astype(str)
    joined = table.merge(truth, on=["account_id", MOMENT], how="left")
    assert joined["true_p_opportunity"].notna().all()
    se = np.sqrt((joined["true_p_opportunity"] * (1 - joined["true_p_opportunity"])).sum()) / len(joined)
    assert abs(joined[LABEL].mean() - joined["true_p_opportunity"].mean()) < 4 * se
    events = pd.read_parquet(generated / "events.parquet")
    leads = pd.read_parquet(generated / "leads.parquet", columns=["lead_id", "true_account_id"])
    meetings = events.loc[events["event_type"] == "meeting"].merge(
        leads.drop_duplicates("lead_id"), on="lead_id"
    )
    opps = pd.read_parquet(generated / "opportunities.parquet")
    pairs = meetings.merge(opps, left_on="true_account_id", right_on="account_id")
    gap = (pairs["occurred_at"] - pairs["created_at"]).dt.total_seconds() / 86400
    pairs = pairs.assign(ok=(gap > 0) & (gap <= 20))
    assert len(meetings) > 0 and pairs.groupby("event_id")["ok"].any().all()


def test_nothing_after_a_moment_changes_its_features(generated: Path, tmp_path: Path) -> None:
    """Events, and people, dated after the moment are added: no feature as of the moment moves;
    the same events dated before it do move them (the check can fail)."""
    spec = load_spec("synthetic-accounts")
    moment = _ms("2024-09-01")
    before = account_table(generated, spec, as_of=moment).frame
    events = pd.read_parquet(generated / "events.parquet")
    rng = np.random.default_rng(0)
    extra = events.sample(n=4000, random_state=1).copy()
    later = pd.to_datetime(moment + rng.integers(1, 200 * 86_400_000, len(extra)), unit="ms")
    leads = pd.read_parquet(generated / "leads.parquet")
    newcomer = leads.iloc[[0]].assign(lead_id=99_999_999, created_at=later[0], scored_at=later[0])
    for name, when in (("later", later), ("earlier", later - pd.Timedelta(days=400))):
        folder = tmp_path / name
        folder.mkdir()
        for file in generated.iterdir():
            (folder / file.name).symlink_to(file)
        (folder / "events.parquet").unlink()
        moved = pd.concat([events, extra.assign(occurred_at=when.astype(events["occurred_at"].dtype))])
        moved.to_parquet(folder / "events.parquet")
        (folder / "leads.parquet").unlink()
        pd.concat([leads, newcomer]).to_parquet(folder / "leads.parquet")
        after = account_table(folder, spec, as_of=moment).frame
        same = before.equals(after)
        assert same if name == "later" else not same, name


def test_a_leads_scope_account_features_read_its_account_up_to_its_own_time(
    folder: Path, tmp_path: Path
) -> None:
    """Each lead's ``scope: account`` features over its account's leads (itself included) as of its
    own scoring time (here its creation): worked by hand from the tables above."""
    from leadscore.data.folders import read_leads

    change = {
        "engagement": {
            "people_30d": {"contacts": "any", "days": 30, "scope": "account"},
            "visits_all": {"count": "Visit", "scope": "account"},
            "last_active": {"days_since_last": "any", "scope": "account"},
            "deciders_60d": {"contacts": "any", "role": "decision_maker", "days": 60, "scope": "account"},
            "new_people_60d": {"new_contacts": 60, "scope": "account"},
            "own_visits": {"count": "Visit"},
        }
    }
    leads = read_leads(folder, _spec(tmp_path, change)).set_index("Id")
    got = leads[["people_30d", "visits_all", "last_active", "deciders_60d", "new_people_60d", "own_visits"]]
    nan = float("nan")
    expected = pd.DataFrame(
        {
            "people_30d": [0, 1, 0, 0, 3],
            "visits_all": [0, 1, 1, 0, 2],
            "last_active": [nan, 10.0, 31.0, nan, 21.0],
            "deciders_60d": [0, 1, 1, 0, 2],
            "new_people_60d": [1, 2, 3, 1, 3],
            "own_visits": [0, 0, 0, 0, 0],
        },
        index=pd.Index(["L1", "L2", "L3", "L4", "L5"], name="Id"),
    )
    pd.testing.assert_frame_equal(got.astype(float), expected.astype(float))


def test_a_lead_without_an_account_reads_its_own_activity(folder: Path, tmp_path: Path) -> None:
    """A lead the matcher finds no account for (free mail) is its own account of one, as the API
    reads a lead sent without its account: its own events count, up to its own time."""
    from leadscore.data.folders import read_leads

    alone = pd.DataFrame(
        {
            "Id": ["L6"],
            "Email": ["f@gmail.com"],
            "Title": ["CFO"],
            "CreatedDate": ["2025-02-01"],
            "Converted": [0],
        }
    )
    pd.concat([LEADS, alone]).to_csv(folder / "Lead.csv", index=False)
    own = pd.DataFrame(
        {"WhoId": ["L6", "L6"], "ActivityDate": ["2025-01-25", "2025-03-01"], "Type": ["Visit"] * 2}
    )
    pd.concat([EVENTS, own]).to_csv(folder / "Task.csv", index=False)
    change = {
        "engagement": {
            "people_30d": {"contacts": "any", "days": 30, "scope": "account"},
            "visits_all": {"count": "Visit", "scope": "account"},
        }
    }
    leads = read_leads(folder, _spec(tmp_path, change)).set_index("Id")
    assert leads.loc["L6", ["people_30d", "visits_all"]].tolist() == [1, 1]  # itself; the later visit unread
    assert leads.loc["L1", ["people_30d", "visits_all"]].tolist() == [0, 0]  # its account, as before


@pytest.mark.parametrize(
    ("definition", "says"),
    [
        ({"contacts": "any"}, "'contacts' reads an account's people: add scope: account"),
        ({"count": "any", "role": "finance"}, "'role' reads an account's people"),
        ({"unique": "Type", "scope": "account"}, "with scope account use count"),
        ({"count": "any", "scope": "account", "role": "cfo"}, "no role 'cfo'"),
    ],
)
def test_a_wrong_scope_is_one_line(
    folder: Path, tmp_path: Path, definition: dict[str, Any], says: str
) -> None:
    from typer.testing import CliRunner

    from leadscore.cli import app

    path = tmp_path / "wrong.yaml"
    _spec(tmp_path)  # writes sfdc.yaml
    doc = yaml.safe_load((tmp_path / "sfdc.yaml").read_text())
    doc["engagement"] = {"x": definition}
    path.write_text(yaml.safe_dump(doc))
    result = CliRunner().invoke(app, ["validate", str(folder), "--spec", str(path)])
    assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output


def test_a_repeated_lead_id_is_its_first_row_and_the_rows_after_it_keep_theirs() -> None:
    from leadscore.features.accounts import lead_rows

    ids = pd.Series(["a", "b", "a", "c", None])
    assert lead_rows(ids, pd.Series(["c", "a", "z", "b"])).tolist() == [3, 0, -1, 1]
    assert lead_rows(pd.Series([7, 8, 9]), pd.Series([9, 7])).tolist() == [2, 0]


def test_one_moment_read_in_the_logs_order_equals_the_time_ordered_roll_ups(generated: Path) -> None:
    """Scoring as of one moment keeps the log's own order (no sort); every kind of roll-up (the
    attribute ones, ``last`` with ties in time, the group kinds, windows and none) gives what the
    time-ordered activity gives at that moment, with the log shuffled and later events present."""
    from leadscore.data.account_scope import activity_of
    from leadscore.data.accounts import read_account_tables
    from leadscore.features.accounts import AccountRollups
    from leadscore.spec import AccountAggregation

    spec = load_spec("synthetic-accounts")
    assert spec.activity is not None and spec.accounts is not None
    tables = read_account_tables(generated, spec)
    events = pd.read_parquet(generated / "events.parquet")
    tied = events.sample(n=2000, random_state=2)  # same lead, same time, another title: ``last`` ties
    events = pd.concat([events, tied.assign(content_title="Tie " + tied["event_id"].astype(str))])
    events = events.sample(frac=1.0, random_state=3).reset_index(drop=True)  # out of time order
    moment = _ms("2024-09-01")
    definitions = dict(spec.accounts.engagement) | {
        name: AccountAggregation.model_validate(raw)
        for name, raw in {
            "last_title": {"last": "content_title"},
            "titles_90d": {"unique": "content_title", "days": 90},
            "decayed": {"count": "any", "half_life_days": 7},
            "first_days": {"days_since_first": "any"},
            "active_days_30d": {"distinct_days": "any", "days": 30},
            "returns_14d": {"returns": "web_visit", "days": 14},
        }.items()
    }
    spec = spec.model_copy(update={"accounts": spec.accounts.model_copy(update={"engagement": definitions})})
    assert spec.activity is not None
    ordered = activity_of(events, spec.activity, tables, spec)
    one = activity_of(events, spec.activity, tables, spec, until_ms=moment)
    assert ordered.ordered and not one.ordered
    assert (np.diff(one.times) < 0).any() and one.times.max() <= moment < ordered.times.max()
    got = AccountRollups(one, definitions).at(moment)
    want = AccountRollups(ordered, definitions).at(moment)
    pd.testing.assert_frame_equal(got, want)
    assert got["last_title"].astype(str).str.startswith("Tie ").any()  # the ties were read
    assert got["contacts_30d"].sum() > 0 and got["days_since_active"].notna().sum() > 100
