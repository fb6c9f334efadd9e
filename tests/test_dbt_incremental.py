"""Incremental staging gives exactly the audiences of a full rebuild."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.dbt_project import AUDIENCE_FIXTURES, DEMO_AS_OF, Build, dbt, new_build

TABLES = (
    "audience_states",
    "audience_recent_purchaser_0_7d",
    "audience_cart_abandon_high_aov_0_1d",
    "audience_cart_abandon_0_1d",
    "audience_purchased_once_21_45d",
    "audience_lapsed_90d_plus",
    "audience_ltv_high",
)


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
    dbt(incremental, "build", "--exclude", "resource_type:unit_test", vars=variables)
    before = snapshot(incremental)
    pl.concat([later, redelivered, late]).write_parquet(landing / "2184.1.2.track.parquet")
    dbt(incremental, "build", "--exclude", "resource_type:unit_test", vars=variables)
    after = snapshot(incremental)

    full = new_build(tmp_path / "full")
    dbt(full, "build", "--exclude", "resource_type:unit_test", vars=variables)
    expected = snapshot(full)

    assert any(not before[t].equals(after[t]) for t in TABLES)  # the batch changed them
    for table in TABLES:
        assert after[table].equals(expected[table]), table
    staged = incremental.query(
        "select received_at from stg_customerio__tracks where message_id = 'm14a'"
    )
    assert str(staged["received_at"][0]) == "2026-10-28 12:00:01"  # the first delivery kept
    late_rows = "select count(*) as n from stg_customerio__tracks where message_id = 'late1'"
    assert incremental.query(late_rows)["n"][0] == 1  # read back within the lookback

    dbt(
        incremental,
        "build",
        "--full-refresh",
        "--exclude",
        "resource_type:unit_test",
        vars=variables,
    )
    refreshed = snapshot(incremental)
    for table in TABLES:
        assert refreshed[table].equals(expected[table]), table

    # the staging uniqueness test looks at the latest batch only: it still catches a message
    # staged again later (a duplicate across batches) and one staged twice in one batch
    stage = "stg_customerio__tracks"
    dbt(
        incremental,
        "test",
        "--select",
        stage,
        "--exclude",
        "resource_type:unit_test",
        vars=variables,
    )
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
            dbt(
                incremental,
                "test",
                "--select",
                stage,
                "--exclude",
                "resource_type:unit_test",
                vars=variables,
            )
        with duckdb.connect(str(incremental.database)) as con:
            con.execute(f"delete from {stage} where staged_at > ?", [latest])
