"""The dbt project end to end: the demo build, and the same rules on files read in place."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest

from tests.harness.dbt import (
    AUDIENCE_FIXTURES,
    Build,
    dbt,
    exclusive_states,
    new_build,
    registry,
)

STATES = exclusive_states()
SUPPRESSION_STATES = [
    str(e["name"]).removeprefix("audience_")
    for e in registry()
    if e["family"] == "suppression" and e["enabled"]
]

# The demo seeds' audiences, worked out by hand (person_ids per audience table). st21 is a
# recent purchaser without a valid email, so it is in audience_states but in no table; st22a
# is a cart abandoner whose hash belongs to st22b's recent-purchaser row.
DEMO_AUDIENCES = {
    "recent_purchaser_0_7d": {
        "st01",
        "st03",
        "st08",
        "st19",
        "st20",
        "st22b",
        "st23",
        "st28",
        "d08",
    },
    "cart_abandon_high_aov_0_1d": {"st04", "st07", "st17", "st25", "d07"},
    "cart_abandon_0_1d": {"st05", "d01", "d05", "d06"},
    "purchased_once_21_45d": {"st09", "st10", "st29", "d02"},
    "lapsed_90d_plus": {"st12", "st18"},
    "ltv_high": {"st14", "st26", "d03", "d04"},
}

# The suppression lists, beside the exclusive ones. Left out at their windows' edges: st29's
# coupon order exactly 30 d before T, st14's escalation exactly 14 d before; st02's blank
# coupon and zero discount; st12's no_discount set then cleared (false); st10's set after T.
DEMO_SUPPRESSIONS = {
    "suppress_refunded_0_30d": {"st15", "d03"},  # d03's refund names an unknown order: 0
    "suppress_offer_redeemed_0_30d": {"st01", "st09"},  # a "5.00" discount; a coupon
    "suppress_no_discount": {"st05"},
    "suppress_support_escalation_0_14d": {"st04", "d04"},  # a Ticket Escalated event; the trait
}


def expected_fixture_states() -> dict[str, tuple[str | None, str | None]]:
    """person_id -> (state, email_sha256) from shared/fixtures/audiences/expected_states.csv."""
    with open(AUDIENCE_FIXTURES / "expected_states.csv", newline="") as f:
        return {
            r["person_id"]: (r["state"] or None, r["email_sha256"] or None)
            for r in csv.DictReader(f)
        }


def states_of(build: Build) -> dict[str, tuple[str, str | None]]:
    rows = build.query("select person_id, state, email_sha256 from audience_states").iter_rows()
    return {person: (state, email) for person, state, email in rows}


def test_demo_build_gives_the_hand_worked_audiences(demo_build: Build) -> None:
    for state in STATES:
        members = demo_build.query(f"select person_id from audience_{state}")["person_id"].to_list()
        assert set(members) == DEMO_AUDIENCES[state], state
        assert len(members) == len(set(members))


def test_demo_suppression_lists_stand_beside_the_target_lists(demo_build: Build) -> None:
    """Each suppression list holds its people whatever their state: st09, st05, st04, d03 and
    d04 are in a target list at the same time, and the campaigns exclude them."""
    assert set(SUPPRESSION_STATES) == set(DEMO_SUPPRESSIONS)
    targeted = {p for state, people in DEMO_AUDIENCES.items() if state != STATES[0] for p in people}
    for state, expected in DEMO_SUPPRESSIONS.items():
        members = demo_build.query(f"select person_id from audience_{state}")["person_id"].to_list()
        assert set(members) == expected, state
        assert len(members) == len(set(members))
    in_both = {p for people in DEMO_SUPPRESSIONS.values() for p in people} & targeted
    assert in_both == {"st09", "st05", "st04", "d03", "d04"}


def test_coverage_counts_what_the_audiences_hold(demo_build: Build) -> None:
    """audience_coverage against counts taken here from the states and the audience tables."""
    coverage = {
        r["audience"]: r
        for r in demo_build.query("select * from audience_coverage").iter_rows(named=True)
    }
    people = demo_build.query("select * from int_person_states")
    assert set(coverage) == {f"audience_{s}" for s in (*STATES, *SUPPRESSION_STATES)}
    for name, row in coverage.items():
        state = name.removeprefix("audience_")
        rule = pl.col("state") == state if state in STATES else pl.col(f"rule_{state}")
        members = people.filter(rule)
        hashes = demo_build.query(f"select count(distinct email_sha256) as n from {name}")["n"][0]
        counted = (members.height, members["email_sha256"].drop_nulls().len(), hashes)
        assert (row["people"], row["people_with_identifier"], row["hashes"]) == counted, name
        assert float(row["coverage_share"]) == round(counted[1] / counted[0], 6), name
    # st21 has no valid email; st22a's hash is st22b's, in the better state
    assert (
        coverage["audience_recent_purchaser_0_7d"]["people"],
        coverage["audience_recent_purchaser_0_7d"]["people_with_identifier"],
    ) == (10, 9)
    assert coverage["audience_cart_abandon_0_1d"]["people_with_identifier"] == 5
    assert coverage["audience_cart_abandon_0_1d"]["hashes"] == 4


def test_demo_build_matches_every_fixture_person(demo_build: Build) -> None:
    actual = states_of(demo_build)
    for person, (state, email) in expected_fixture_states().items():
        if state is None:
            assert person not in actual, person
        else:
            assert actual[person] == (state, email), person


def test_demo_facts_of_the_messy_rows(demo_build: Build) -> None:
    facts = {
        r["person_id"]: r
        for r in demo_build.query(
            "select * from audience_states where person_id like 'd%'"
        ).iter_rows(named=True)
    }
    assert float(facts["d02"]["net_revenue"]) == 40  # "$5", "n/a", "50xyz" skipped, " 40 " read
    assert float(facts["d03"]["net_revenue"]) == 550  # 700 + "100.00" - 250
    assert float(facts["d01"]["cart_value"]) == 0  # malformed JSON: price 0
    assert float(facts["d05"]["cart_value"]) == 50  # 50 x 2 - "50" x 1
    assert float(facts["d06"]["cart_value"]) == 30  # checkout without a readable value: item sum
    assert (
        facts["d07"]["email_sha256"]
        == "7a126a993c9ece5663288f1e48a453a6b4b12656af38d84103cb6beb8a5862b9"
    )
    assert (
        str(facts["d07"]["last_cart_at"]) == "2026-11-28 11:30:00"
    )  # bad timestamp -> received_at


def test_each_hash_in_at_most_one_audience_and_well_formed(demo_build: Build) -> None:
    union = " union all ".join(
        f"select email_sha256, '{s}' as state from audience_{s}" for s in STATES
    )
    all_rows = demo_build.query(union)
    assert all_rows["email_sha256"].is_unique().all()
    assert all_rows["email_sha256"].str.contains(r"^[0-9a-f]{64}$").all()
    assert (
        demo_build.query("select count(*) as n from audience_states where person_id = 'st22a'")[
            "n"
        ][0]
        == 1
    )


def test_bad_as_of_is_a_clear_error(tmp_path: Path) -> None:
    build = new_build(tmp_path)
    with pytest.raises(AssertionError, match="ISO-8601"):
        dbt(build, "compile", "-s", "int_person_facts", vars={"as_of": "yesterday"})
