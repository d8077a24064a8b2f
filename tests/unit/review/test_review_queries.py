"""What the review pages compute: calendar marks, segment labels, approval state, drivers."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest
from review_data import D

from tessera.campaigns.catalog import parse_catalog
from tessera.review import queries, svg
from tessera.review.approvals import Decision, DirectDecisions

CATALOG = parse_catalog(
    """
version: 1
dimensions:
  - id: tenure
    attribute: tenure_days
    bins: [7, 365]
    labels: [week1, mid, veteran]
  - id: affinity
    attribute: top_category
    values: [ski, shoes]
    null_label: no_affinity
target_groups:
  - id: everyone
    where: {tenure_days: {ge: 0}}
campaigns:
  - id: welcome
    name: Welcome series
    target_groups: [everyone]
    channels: [email]
    priority: 10
    duration_days: 3
    start: 2026-01-01
    templates: {email: d-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}
  - id: deals
    target_groups: [everyone]
    channels: [email]
    priority: 5
    duration_days: 1
    start: 2026-01-01
    templates: {email: d-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb}
"""
)


@pytest.fixture
def con(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as c:
        yield c


def test_segment_ids_read_as_the_catalogs_bucket_meanings() -> None:
    label = queries.segment_label(CATALOG, "veteran|ski")
    assert label.short == "veteran · ski"
    assert "tenure: tenure_days >= 365" in label.long
    assert "affinity: top_category = ski" in label.long
    middle = queries.segment_label(CATALOG, "mid|no_affinity").long
    assert "7 <= tenure_days < 365" in middle and "top_category unknown" in middle


def test_calendar_counts_treated_customers_past_and_planned(con) -> None:
    cal = queries.calendar(con, CATALOG)
    assert cal.latest == D
    assert cal.dates[0] == D - dt.timedelta(days=13) and cal.dates[-1] == D + dt.timedelta(days=14)
    assert cal.counts[("welcome", D)] == 5  # 6 targeted, 1 in control
    assert cal.counts[("welcome", D - dt.timedelta(days=1))] == 4
    assert cal.counts[("welcome", D + dt.timedelta(days=1))] == 6  # the plan made on D
    assert cal.counts[("deals", D)] == 7


def test_calendar_marks_capacity_cuts_collisions_and_gaps(con) -> None:
    cal = queries.calendar(con, CATALOG)
    assert cal.capacity_cuts == {("deals", D): 2}
    assert cal.collisions == {D: 1}  # C1 gets welcome and deals on D
    # runs on D-3 and D: the two dates between had no matrix run
    assert cal.gaps == [D - dt.timedelta(days=2), D - dt.timedelta(days=1)]


def test_empty_warehouse_gives_an_empty_calendar() -> None:
    with duckdb.connect() as c:
        cal = queries.calendar(c, CATALOG)
    assert cal.dates == [] and cal.latest is None


def test_matrix_puts_the_biggest_segments_first(con) -> None:
    grid = queries.matrix(con, D)
    assert list(grid.index) == ["week1|heavy", "week1|light", "veteran|heavy"]
    assert grid.loc["week1|light", "deals"] == 4


def test_dry_run_counts_and_samples_show_the_rendered_text(con) -> None:
    counts, samples = queries.dry_run(con, D)
    assert dict(zip(counts["campaign_id"], counts["messages"], strict=True)) == {
        "welcome": 2,
        "deals": 2,
    }
    assert "Hi C1" in set(samples["text"])


def test_drivers_of_targeted_customers_count_each_feature(con) -> None:
    drivers = queries.campaign_drivers(con, "welcome", D)
    assert dict(zip(drivers["feature"], drivers["customers"], strict=True)) == {
        "tenure_days": 2,
        "events_30d": 1,
    }
    assert drivers.loc[drivers["feature"] == "tenure_days", "mean_contribution"].item() == (
        pytest.approx(0.4)
    )


def test_customer_lookup_lists_messages_and_exclusions_with_reasons(con) -> None:
    view = queries.customer(con, "C1")
    assert sorted(view.messages["campaign_id"]) == ["deals", "welcome"]
    assert set(view.messages["status"]) == {"not sent yet"}
    assert view.exclusions[["campaign_id", "reason", "taken_by"]].values.tolist() == [
        ["welcome", "lower_priority", "deals"]
    ]
    assert view.drivers["feature"].tolist() == ["tenure_days"]


def test_a_date_without_approval_awaits_one(con) -> None:
    state = queries.approval_state(con, D)
    assert not state.approved and state.approved_by is None


def test_approval_state_says_what_changed_since_the_approval(warehouse) -> None:
    _approve(warehouse, "anna", "ok")
    with duckdb.connect(str(warehouse), read_only=True) as c:
        state = queries.approval_state(c, D)
    assert state.approved and state.approved_by == "anna" and state.messages == 4
    with duckdb.connect(str(warehouse)) as c:
        c.execute(
            "update activations.outbound_messages set address = 'new@x.example' "
            "where message_key = 'k010'"
        )
    with duckdb.connect(str(warehouse), read_only=True) as c:
        state = queries.approval_state(c, D)
    assert not state.approved
    assert state.changed == "1 address changed"
    assert state.approved_by == "anna"
    assert state.fingerprint and state.current_messages == 4


def test_a_held_date_shows_who_held_it_and_is_not_approved(warehouse) -> None:
    _approve(warehouse, "anna", "ok")
    DirectDecisions(warehouse).decide(Decision(D, "hold", "ben", "wrong offer"))
    with duckdb.connect(str(warehouse), read_only=True) as c:
        state = queries.approval_state(c, D)
        log = queries.approval_log(c, D)
    assert not state.approved
    assert (state.held_by, state.hold_note) == ("ben", "wrong offer")
    assert log[["action", "actor"]].values.tolist() == [["hold", "ben"], ["approve", "anna"]]


def _approve(warehouse, who: str, note: str = "") -> None:
    DirectDecisions(warehouse).decide(Decision(D, "approve", who, note))


def test_programme_is_not_yet_without_a_global_control_table(con) -> None:
    assert queries.programme(con) is None


def test_interval_plot_leaves_out_unmeasured_windows() -> None:
    frame = pd.DataFrame(
        {
            "d": ["2026-05-30", "2026-05-31", "2026-06-01"],
            "lift": [0.1, float("nan"), -0.05],
            "lo": [0.02, float("nan"), -0.2],
            "hi": [0.2, float("nan"), 0.1],
        }
    )
    out = svg.interval_plot(frame, "d", "lift", "lo", "hi", "lift")
    assert out.count("<circle") == 2
    assert "#2a8a3a" in out  # the first interval lies above zero
    empty = svg.interval_plot(frame.iloc[[1]], "d", "lift", "lo", "hi", "lift")
    assert "no measured window" in empty


def test_customer_lookup_shows_other_departments_messages_by_id_or_address(warehouse) -> None:
    with duckdb.connect(str(warehouse)) as c:
        c.execute("create schema raw")
        c.execute(
            "create table raw.external_contacts as select * from (values "
            "('C1', null, 'email', '2026-05-31 09:00', 'service', 'transactional', null, "
            "'Your order shipped'), "
            "(null, 'C1@X.example', 'email', '2026-05-31 10:00', 'crm', 'newsletter', "
            "'may_news', null), "
            "('C2', null, 'sms', '2026-05-31 11:00', 'service', 'transactional', null, 'x')) "
            "t(customer_id, address, channel, sent_at, department, message_type, campaign, "
            "subject)"
        )
        c.execute(
            "create table marts.dim_customers as select 'C1' as customer_id, "
            "'Anna' as first_name, 'c1@x.example' as email, null as phone, 'DE' as country, "
            "timestamp '2026-01-01' as created_at, true as is_email_opt_in, "
            "false as is_sms_opt_in, 1 as customer_version"
        )
    with duckdb.connect(str(warehouse), read_only=True) as c:
        view = queries.customer(c, "C1")
    assert view.external[["department", "campaign_or_subject"]].values.tolist() == [
        ["crm", "may_news"],
        ["service", "Your order shipped"],
    ]


def test_the_date_shows_its_collision_report_once_the_audit_exists(warehouse) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as c:
        assert queries.date_collisions(c, D) is None
    with duckdb.connect(str(warehouse)) as c:
        c.execute("create schema audit")
        c.execute(
            "create table audit.collisions as select date '2026-06-01' as as_of_date, "
            "'C1' as customer_id, 'departments' as rule, 3 as messages, 'crm, service' as detail"
        )
    with duckdb.connect(str(warehouse), read_only=True) as c:
        found = queries.date_collisions(c, D)
    assert found.values.tolist() == [["C1", "departments", 3, "crm, service"]]


def test_customer_lookup_says_when_the_customer_was_in_the_global_control(warehouse) -> None:
    with duckdb.connect(str(warehouse)) as c:
        assert queries.customer(c, "C2").controls.empty  # no global control table yet
        c.execute(
            "create table campaigns.global_control as select date '2026-06-01' as as_of_date,"
            " 'C2' as customer_id, 'seg' as micro_segment_id, 'salt' as salt, 0.05 as share"
        )
        controls = queries.customer(c, "C2").controls
    assert controls["campaign_id"].tolist() == ["(global control: every marketing campaign)"]
