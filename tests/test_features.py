"""Point-in-time features and the encoder shared by training and serving."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.features import (
    FeatureEncoder,
    canonical_category,
    parse_date,
    parse_dates,
    to_number,
)
from leadscore.features.rollups import rollups_for_spec
from leadscore.features.values import clean_text, most_common_spelling
from leadscore.spec import load_spec
from tests.helpers import make_leads, make_tables

SPEC = load_spec("synthetic")
ENGAGEMENT_COLUMNS = list(SPEC.declared)


def engagement_rollups(events: pd.DataFrame, anchors: pd.DataFrame) -> pd.DataFrame:
    """The synthetic spec's declared roll-ups (the generator's own columns)."""
    return rollups_for_spec(events, anchors, SPEC)


def _anchors_and_events(n: int = 2000, seed: int = 21) -> tuple[pd.DataFrame, pd.DataFrame]:
    tables = make_tables(n, seed, fault_rate=0.0)
    leads = tables["leads"].to_pandas()[["lead_id", "scored_at"]]
    return leads, tables["events"].to_pandas()


def test_changing_or_removing_events_after_scoring_time_changes_no_feature() -> None:
    anchors, events = _anchors_and_events()
    before = engagement_rollups(events, anchors)
    scored = events["lead_id"].map(anchors.set_index("lead_id")["scored_at"])
    after = events["occurred_at"] > scored
    assert after.sum() > 500
    removed = engagement_rollups(events[~after], anchors)
    pd.testing.assert_frame_equal(before, removed)
    changed = events.copy()
    changed.loc[after, "event_type"] = "demo_request"
    changed.loc[after, "occurred_at"] = changed.loc[after, "occurred_at"] + pd.Timedelta(days=3)
    pd.testing.assert_frame_equal(before, engagement_rollups(changed, anchors))
    # ...while one event moved before the scoring time does change them.
    moved = events.copy()
    first = np.flatnonzero(after.to_numpy())[0]
    moved.loc[first, "occurred_at"] = scored.iloc[first] - pd.Timedelta(hours=1)
    moved.loc[first, "event_type"] = "demo_request"
    assert not engagement_rollups(moved, anchors).equals(before)


def test_rollups_count_windows_by_hand() -> None:
    t0 = pd.Timestamp("2025-03-31 12:00")
    anchors = pd.DataFrame({"lead_id": [1, 2], "scored_at": [t0, t0]})
    rows = [
        (1, t0 - pd.Timedelta(days=1), "web_visit", None),
        (1, t0 - pd.Timedelta(days=2), "web_visit", None),
        (1, t0 - pd.Timedelta(days=3), "web_visit", None),
        (1, t0 - pd.Timedelta(days=4), "web_visit", None),
        (1, t0 - pd.Timedelta(days=20), "web_visit", None),
        (1, t0 - pd.Timedelta(days=40), "web_visit", None),
        (1, t0 - pd.Timedelta(days=2), "pricing_page_view", None),
        (1, t0 - pd.Timedelta(days=9), "pricing_page_view", None),
        (1, t0 - pd.Timedelta(days=5), "content_download", "mid"),
        (1, t0 - pd.Timedelta(days=6), "content_download", "bottom"),
        (1, t0 + pd.Timedelta(days=1), "demo_request", None),
        (3, t0 - pd.Timedelta(days=1), "demo_request", None),
    ]
    events = pd.DataFrame(rows, columns=["lead_id", "occurred_at", "event_type", "funnel_stage"])
    out = engagement_rollups(events, anchors)
    assert out.loc[0, "web_visits_30d"] == 5
    assert out.loc[0, "return_visits_7d"] == 3
    assert out.loc[0, "pricing_page_views_7d"] == 1
    assert out.loc[0, "pricing_page_views_total"] == 2
    assert out.loc[0, "downloads_mid"] == 1 and out.loc[0, "downloads_bottom"] == 1
    assert out.loc[0, "demo_requests"] == 0
    assert out.loc[0, "days_since_last_activity"] == pytest.approx(1.0)
    assert out.loc[1, list(ENGAGEMENT_COLUMNS[:-1])].sum() == 0
    assert math.isnan(out.loc[1, "days_since_last_activity"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-07", "2025-03-07T00:00:00"),
        ("2025-03-07T10:30:00", "2025-03-07T10:30:00"),
        ("2025-03-07T10:30:00+02:00", "2025-03-07T08:30:00"),
        ("07-03-2025", "2025-03-07T00:00:00"),
        ("03/07/2025", "2025-03-07T00:00:00"),
        ("03/07/2025 14:05", "2025-03-07T14:05:00"),
    ],
)
def test_parse_date_reads_common_formats(text: str, expected: str) -> None:
    assert parse_date(text) == pd.Timestamp(expected).value // 1_000_000


@pytest.mark.parametrize("junk", ["", "soon", "31-02-2025", "13/45/2025", None, 42])
def test_parse_date_gives_nan_for_non_dates(junk: object) -> None:
    assert math.isnan(parse_date(junk))


def test_parse_dates_matches_scalar() -> None:
    values = pd.Series(["2025-03-07", "07-03-2025", "03/07/2025", "junk", None])
    out = parse_dates(values)
    assert out[0] == out[1] == out[2]
    assert np.isnat(out[3]) and np.isnat(out[4])


def test_placeholders_and_aliases_are_missing_or_merged() -> None:
    ph = frozenset({"select", "n/a"})
    assert canonical_category(" Select ", ph) is None
    assert canonical_category("N/A", ph) is None
    assert canonical_category("  Google ", ph) == canonical_category("google", ph)
    assert canonical_category("USA", ph, {"usa": "united states"}) == "united states"
    assert to_number("1,200", ph) == 1200.0
    assert math.isnan(to_number("Select", ph))
    assert math.isnan(to_number("twelve", ph))


def _encoder(frame: pd.DataFrame) -> FeatureEncoder:
    spec = load_spec("synthetic")
    return FeatureEncoder.fit(
        frame,
        [*spec.features, "created_at"],
        kinds={**dict.fromkeys(spec.categorical, "categorical"), "created_at": "date"},
        placeholders=spec.placeholders,
        aliases=spec.aliases,
        ranges=spec.ranges,
        time_col=spec.time,
    )


def test_batch_and_single_lead_encoding_agree() -> None:
    leads = make_leads(3000, 5)
    enc = _encoder(leads)
    batch = enc.transform(leads)
    for i in range(0, len(leads), 97):
        record = leads.iloc[i].to_dict()
        np.testing.assert_array_equal(enc.encode_record(record), batch[i])


def test_encoder_survives_a_round_trip_and_handles_unknowns() -> None:
    leads = make_leads(3000, 5)
    enc = FeatureEncoder.from_dict(_encoder(leads).to_dict())
    row = enc.encode_record({"industry": "Aerospace", "country": "USA", "employee_count": -5, "extra": 1})
    names = enc.feature_names
    industry = enc.field("industry")
    assert row[names.index("industry")] == len(industry.categories)  # unseen -> "other"
    assert row[names.index("country")] == enc.field("country").categories.index("united states")
    assert math.isnan(row[names.index("employee_count")])  # impossible value -> missing
    assert (
        row[names.index("seniority")] == len(enc.field("seniority").categories) + 1
    )  # absent -> missing code
    assert enc.describe_value("country", "usa") == "United States"


def test_encoder_turns_dates_into_parts() -> None:
    leads = make_leads(500, 5)
    enc = _encoder(leads)
    row = enc.encode_record({"created_at": "01-03-2025", "scored_at": "2025-03-11"})
    names = enc.feature_names
    assert row[names.index("created_at__month")] == 3
    assert row[names.index("created_at__weekday")] == 5  # a Saturday
    assert row[names.index("created_at__age_days")] == 10


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["industry", "employee_count", "country", "web_visits_30d", "created_at"]),
        st.one_of(st.none(), st.text(max_size=12), st.integers(-(10**9), 10**9), st.floats(allow_nan=True)),
    )
)
def test_encoder_never_fails_on_odd_values(record: dict[str, object]) -> None:
    enc = _ENC
    record = {**record, "scored_at": "2025-01-01"}  # a fixed reference time keeps ages exact
    row = enc.encode_record(record)
    assert row.shape == (len(enc.feature_names),)
    frame = pd.DataFrame([record])
    np.testing.assert_array_equal(enc.transform(frame)[0], row)


_ENC = _encoder(make_leads(500, 5))


def test_many_records_encode_like_one_record_each() -> None:
    leads = make_leads(500, 6)
    records = [
        {k: (None if v is pd.NaT or (isinstance(v, float) and math.isnan(v)) else v) for k, v in r.items()}
        for r in leads.to_dict(orient="records")
    ]
    records[3] = {"industry": "Software"}  # sparse leads are normal in a batch
    records[7] = {**records[7], "employee_count": "1,200", "country": "usa", "extra": [1, 2]}
    # values the fast paths must hand to the slow ones: booleans, overflowing numbers, numbers as
    # categories, infinities, negative counts
    odd = {9: True, 10: "1e400", 11: 10**400, 12: float("inf"), 13: -5, 14: 3.0}
    for i, value in odd.items():
        records[i] = {**records[i], "employee_count": value, "industry": i}
    many = _ENC.encode_records(records)
    for i in [*range(0, len(records), 23), 3, 7, *odd]:
        np.testing.assert_array_equal(many[i], _ENC.encode_record(records[i]), err_msg=str(i))


_TEXT = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from(list("aZ @.\t\n\x0b\x0c\r\x1c\x1f\xa0ßǅÄ-_") + ["\u2003"]), max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_TEXT, min_size=1, max_size=30))
def test_canonical_texts_of_a_column_are_canonical_category_value_by_value(values: list[str | None]) -> None:
    """The whole-column fold (Arrow for ASCII text, Python's rules for the rest) gives what the scalar
    rule gives: ASCII and Unicode spaces, ``\\x1c``-``\\x1f`` (spaces to ``str.split``), case folds."""
    from leadscore.features.values import canonical_category, canonical_texts

    column = pd.Series(values, dtype="str")
    assert canonical_texts(column).tolist() == [canonical_category(v) for v in column]


@pytest.mark.parametrize(
    "column",
    [
        pd.Series([1, 2, 10**15, -7]),
        pd.Series([1.5, np.inf, -np.inf, np.nan, 1e300, -0.0]),
        pd.Series([True, False, True]),
        pd.Series([1, None, 3], dtype="Int64"),
        pd.Series(["1,200", " 7 ", "n/a", None, "x"], dtype="str"),
    ],
    ids=["int", "float", "bool", "nullable", "text"],
)
def test_to_numbers_of_a_column_is_to_number_value_by_value(column: pd.Series) -> None:
    from leadscore.features.values import to_number, to_numbers

    placeholders = frozenset({"n/a"})
    want = np.array([to_number(v, placeholders) for v in column], dtype=np.float64)
    np.testing.assert_array_equal(to_numbers(column, placeholders), want)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [" Foo", "foo", "FOO ", "n/a", None, "bar", "Bar", "1", 1.0, *[f"c{i}" for i in range(60)]]
        ),
        max_size=400,
    ),
    st.integers(1, 3),
)
def test_categories_and_their_spellings_are_counted_as_from_every_row(
    values: list[object], floor: int
) -> None:
    """The encoder counts each distinct value once and weighs it by its rows: the categories kept
    (ties at the limit broken by first appearance, as counting every row does) and each one's most
    common spelling are those of the row by row count."""
    column = pd.Series(values, dtype=object)
    enc = FeatureEncoder.fit(
        pd.DataFrame({"a": column}),
        ["a"],
        kinds={"a": "categorical"},
        placeholders=["n/a"],
        min_count=floor,
        max_categories=5,
    )
    canon = column.map(lambda v: canonical_category(v, frozenset({"n/a"}), None)).dropna()
    counts = canon.value_counts()
    kept = sorted(str(c) for c in counts[counts >= floor].head(5).index)
    info = enc.field("a")
    assert info.categories == kept
    rows = canon[canon.isin(set(kept))]
    assert info.display == most_common_spelling(rows, column.loc[rows.index].map(clean_text))


def test_most_common_spelling_with_counts_is_the_same_as_repeated_rows() -> None:
    keys, shown, n = ["a", "a", "b", "b"], ["A", "a", "B", "b"], [2, 3, 1, 1]
    assert most_common_spelling(keys, shown, n) == {"a": "a", "b": "B"}
    repeated = [(k, s) for k, s, c in zip(keys, shown, n, strict=True) for _ in range(c)]
    assert most_common_spelling(*zip(*repeated, strict=True)) == {"a": "a", "b": "B"}
