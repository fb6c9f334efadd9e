"""Incremental staging gives exactly the audiences of a full rebuild."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.harness.dbt import AUDIENCE_FIXTURES, AUDIENCES, DEMO_AS_OF, Build, dbt, new_build

TABLES = ("audience_states", *AUDIENCES)


def snapshot(build: Build) -> dict[str, pl.DataFrame]:
    return {t: build.query(f"select * exclude (as_of) from {t} order by all") for t in TABLES}


def test_incremental_build_equals_full_refresh(tmp_path: Path) -> None:
    read = {"infer_schema": False}
    tracks = pl.read_csv(AUDIENCE_FIXTURES / "tracks.csv", **read)
    identifies = pl.read_csv(AUDIENCE_FIXTURES / "identifies.csv", **read)
    cut = "2026-11-27T00:00:00"
    first = tracks.filter(pl.col("received_at") < cut)
    later = tracks.filter(pl.col("received_at") >= cut)
    # the next batch also re-delivers a message already staged (a later copy must not win)
    # and carries a late-loaded event received a day before the last staged one
    redelivered = first.filter(pl.col("id") == "m14a").with_columns(
        received_at=pl.lit("2026-11-27T09:00:00.000000Z"),
        properties=pl.lit('{"order_id": "B1", "total": 1}'),
    )
    late = first.filter(pl.col("id") == "m09").with_columns(
        id=pl.lit("late1"), received_at=pl.lit("2026-11-25T00:00:00.000000Z")
    )
    # and news for the suppression lists only: st04's ticket is escalated, st09 is marked
    # "no discount" by an identify with no new event
    escalated = later.head(1).with_columns(
        id=pl.lit("esc1"),
        event=pl.lit("ticket_escalated"),
        event_text=pl.lit("Ticket Escalated"),
        user_id=pl.lit("st04"),
        anonymous_id=pl.lit(None, dtype=pl.String),
        timestamp=pl.lit("2026-11-27T08:00:00.000000Z"),
        received_at=pl.lit("2026-11-27T08:00:01.000000Z"),
        properties=pl.lit("{}"),
    )
    marked = identifies.head(1).with_columns(
        id=pl.lit("nd1"),
        user_id=pl.lit("st09"),
        anonymous_id=pl.lit(None, dtype=pl.String),
        timestamp=pl.lit("2026-11-27T08:00:00.000000Z"),
        received_at=pl.lit("2026-11-27T08:00:01.000000Z"),
        traits=pl.lit('{"no_discount": true}'),
    )
    landing = tmp_path / "landing"
    landing.mkdir()
    first.write_parquet(landing / "2184.1.1.track.parquet")
    identifies.write_parquet(landing / "2184.2.1.identify.parquet")
    variables = {
        "customerio_tracks": str(landing / "*.track.parquet"),
        "customerio_identifies": str(landing / "*.identify.parquet"),
        "as_of": DEMO_AS_OF,
    }

    incremental = new_build(tmp_path / "incremental")
    dbt(incremental, "build", vars=variables)
    before = snapshot(incremental)
    pl.concat([later, redelivered, late, escalated]).write_parquet(
        landing / "2184.1.2.track.parquet"
    )
    marked.write_parquet(landing / "2184.2.2.identify.parquet")
    dbt(incremental, "build", vars=variables)
    after = snapshot(incremental)

    full = new_build(tmp_path / "full")
    dbt(full, "build", vars=variables)
    expected = snapshot(full)

    assert any(not before[t].equals(after[t]) for t in TABLES)  # the batch changed them
    assert after["audience_suppress_support_escalation_0_14d"]["person_id"].to_list() == ["st04"]
    assert after["audience_suppress_no_discount"]["person_id"].to_list() == ["st09"]
    for table in TABLES:
        assert after[table].equals(expected[table]), table
    staged = incremental.query(
        "select received_at from stg_customerio__tracks where message_id = 'm14a'"
    )
    assert str(staged["received_at"][0]) == "2026-10-28 12:00:01"  # the first delivery kept
    late_rows = "select count(*) as n from stg_customerio__tracks where message_id = 'late1'"
    assert incremental.query(late_rows)["n"][0] == 1  # read back within the lookback

    dbt(incremental, "build", "--full-refresh", vars=variables)
    refreshed = snapshot(incremental)
    for table in TABLES:
        assert refreshed[table].equals(expected[table]), table

    # the staging uniqueness test looks at the latest batch only: it still catches a message
    # staged again later (a duplicate across batches) and one staged twice in one batch
    stage = "stg_customerio__tracks"
    test_stage = ("test", "--select", stage)
    dbt(incremental, *test_stage, vars=variables)
    later = f"(select max(staged_at) + interval 1 second from {stage})"
    for copies in (
        f"select * replace ({later} as staged_at) from {stage} where message_id = 'm09'",
        f"select * replace ('twice' as message_id, {later} as staged_at) from {stage} "
        "where message_id in ('m09', 'm10')",
    ):
        with duckdb.connect(str(incremental.database)) as con:
            latest = con.sql(f"select max(staged_at) from {stage}").fetchall()[0][0]
            con.execute(f"insert into {stage} {copies}")
        with pytest.raises(AssertionError, match="unique_in_latest_batch"):
            dbt(incremental, *test_stage, vars=variables)
        with duckdb.connect(str(incremental.database)) as con:
            con.execute(f"delete from {stage} where staged_at > ?", [latest])


TRACK_COLUMNS = "id,event,event_text,user_id,anonymous_id,timestamp,received_at,properties,context"
IDENTIFY_COLUMNS = "id,user_id,anonymous_id,timestamp,received_at,traits,context"


def write_batch(folder: Path, name: str, header: str, rows: list[str]) -> None:
    """One Pipelines-like file of CSV rows (all text), written as Parquet."""
    table = pl.read_csv(
        ("\n".join([header, *rows]) + "\n").encode(), infer_schema=False, quote_char="'"
    )
    table.write_parquet(folder / name)


def test_incremental_follows_time_identity_and_email_changes(tmp_path: Path) -> None:
    """Per-person rows are rewritten only for the people who changed, and that is enough.

    Each step builds incrementally, then compares with a full build of the same files at
    the same T: a staged future-dated order becomes visible when T passes it (no new
    message names its person); an anonymous cart moves from x to y when the device is
    re-identified (x is left with no events at all); w's email changes with no new track;
    finally T moves back, which recomputes everyone.
    """
    landing = tmp_path / "landing"
    landing.mkdir()
    write_batch(
        landing,
        "1.1.track.parquet",
        TRACK_COLUMNS,
        [
            "a1,product_added,Product Added,,dev1,2026-11-28T11:00:00Z,2026-11-28T11:00:01Z,"
            "'{\"price\": 120}',",
            "w1,product_added,Product Added,w,,2026-11-28T10:00:00Z,2026-11-28T10:00:01Z,"
            "'{\"price\": 30}',",
            # sent with a clock ahead: happens at 12:45, after the first T
            "z1,order_completed,Order Completed,z,,2026-11-28T12:45:00Z,2026-11-28T11:59:00Z,"
            '\'{"order_id": "Z1", "total": 700}\',',
            "z0,page_viewed,Page Viewed,z,,2026-11-01T00:00:00Z,2026-11-01T00:00:01Z,'{}',",
        ],
    )
    write_batch(
        landing,
        "1.1.identify.parquet",
        IDENTIFY_COLUMNS,
        [
            'ix,x,dev1,2026-11-28T11:30:00Z,2026-11-28T11:30:01Z,\'{"email": "x@shop.test"}\',',
            'iw,w,,2026-11-28T09:00:00Z,2026-11-28T09:00:01Z,\'{"email": "w@shop.test"}\',',
            'iz,z,,2026-11-01T00:00:00Z,2026-11-01T00:00:01Z,\'{"email": "z@shop.test"}\',',
        ],
    )
    variables: dict[str, object] = {
        "customerio_tracks": str(landing / "*.track.parquet"),
        "customerio_identifies": str(landing / "*.identify.parquet"),
    }
    incremental = new_build(tmp_path / "incremental")

    def step(as_of: str, number: int) -> dict[str, pl.DataFrame]:
        step_vars = {**variables, "as_of": as_of}
        dbt(incremental, "build", vars=step_vars)
        full = new_build(tmp_path / f"full-{number}")
        dbt(full, "build", vars=step_vars)
        got, expected = snapshot(incremental), snapshot(full)
        for table in TABLES:
            assert got[table].equals(expected[table]), (number, table)
        return got

    def state_of(tables: dict[str, pl.DataFrame], person: str) -> str | None:
        rows = tables["audience_states"].filter(pl.col("person_id") == person)
        return rows["state"][0] if rows.height else None

    first = step("2026-11-28T12:00:00Z", 1)
    assert state_of(first, "x") == "cart_abandon_high_aov_0_1d"
    assert state_of(first, "z") is None
    # a first build rewrites no one incrementally: the changed set is empty
    assert incremental.query("select * from int_people_changed").height == 0

    # next hour: the device is re-identified as y; w changes email; nothing new names z
    write_batch(
        landing,
        "1.2.identify.parquet",
        IDENTIFY_COLUMNS,
        [
            'iy,y,dev1,2026-11-28T12:30:00Z,2026-11-28T12:30:01Z,\'{"email": "y@shop.test"}\',',
            'iw2,w,,2026-11-28T12:10:00Z,2026-11-28T12:10:01Z,\'{"email": "w2@shop.test"}\',',
        ],
    )
    before_w = incremental.query("select email_sha256 from int_person_facts where person_id = 'w'")
    second = step("2026-11-28T13:00:00Z", 2)
    assert state_of(second, "x") is None
    assert state_of(second, "y") == "cart_abandon_high_aov_0_1d"
    assert state_of(second, "z") == "recent_purchaser_0_7d"  # the staged order became visible
    assert incremental.query("select * from int_person_facts where person_id = 'x'").height == 0
    after_w = incremental.query("select email_sha256 from int_person_facts where person_id = 'w'")
    assert not before_w.equals(after_w)
    changed = incremental.query("select person_id from int_people_changed order by all")
    assert changed["person_id"].to_list() == ["w", "x", "y", "z"]

    third = step("2026-11-28T12:00:00Z", 3)  # T moves back: everyone again
    assert state_of(third, "z") is None
