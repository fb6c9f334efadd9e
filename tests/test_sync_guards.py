"""The sync refuses what would hurt a paid-media list, and says why; nothing is sent then."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sync.standin import StandIn
from tests.harness.dbt import AUDIENCES, Build
from tests.harness.sync import (
    audience_hashes,
    env_without,
    run_sync,
    sql,
    state_members,
)


@pytest.fixture
def synced(warehouse: Build, bing: StandIn, env: dict[str, str]) -> dict[str, int]:
    """A first run done: audience -> list id."""
    first = run_sync(warehouse, env, "run")
    assert first.exit_code == 0, first.stderr
    bing.clear_calls()
    return {a: v["list_id"] for a, v in first.lists().items()}


def test_an_emptied_audience_is_refused_unless_allowed(
    warehouse: Build, bing: StandIn, env: dict[str, str], synced: dict[str, int]
) -> None:
    sql(warehouse, "delete from audience_lapsed_90d_plus")
    plan = run_sync(warehouse, env, "plan")
    assert plan.exit_code == 3
    assert "empty" in plan.lists()["audience_lapsed_90d_plus"]["reasons"][0]

    refused = run_sync(warehouse, env, "run")
    assert refused.exit_code == 3
    lapsed = refused.lists()["audience_lapsed_90d_plus"]
    assert lapsed["status"] == "refused" and "--allow-empty" in lapsed["message"]
    list_id = synced["audience_lapsed_90d_plus"]
    assert len(bing.lists()[list_id]["members"]) == 2  # untouched
    assert len(state_members(warehouse, list_id)) == 2
    assert "UploadFile" not in bing.calls

    allowed = run_sync(warehouse, env, "run", "--allow-empty", "-s", "lapsed_90d_plus")
    assert allowed.exit_code == 0
    assert bing.lists()[list_id]["members"] == set()


def test_removing_more_than_the_share_is_refused_unless_allowed(
    warehouse: Build, bing: StandIn, env: dict[str, str], synced: dict[str, int]
) -> None:
    keep = sorted(audience_hashes(warehouse, "audience_ltv_high"))[0]
    sql(warehouse, "delete from audience_ltv_high where email_sha256 <> ?", [keep])  # 3 of 4
    refused = run_sync(warehouse, env, "run", "-s", "ltv_high")
    assert refused.exit_code == 3
    assert "75%" in refused.lists()["audience_ltv_high"]["message"]
    assert len(bing.lists()[synced["audience_ltv_high"]]["members"]) == 4

    allowed = run_sync(warehouse, env, "run", "-s", "ltv_high", "--max-remove-share", "0.8")
    assert allowed.exit_code == 0
    assert bing.lists()[synced["audience_ltv_high"]]["members"] == {keep}


def test_short_window_lists_may_turn_over_entirely(
    warehouse: Build, bing: StandIn, env: dict[str, str], synced: dict[str, int]
) -> None:
    """Cart lists set max_remove_share 1.0 in their meta: a whole day's turnover is normal."""
    sql(warehouse, "delete from audience_cart_abandon_0_1d where person_id <> 'st05'")
    result = run_sync(warehouse, env, "run", "-s", "cart_abandon_0_1d")
    assert result.exit_code == 0
    assert result.lists()["audience_cart_abandon_0_1d"]["confirmed_removes"] == 3


def test_unhashed_emails_are_refused_and_other_lists_still_sync(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    sql(
        warehouse,
        "insert into audience_ltv_high values ('Someone@Example.com', 'x', 'high', now()), "
        "('ABCDEF', 'y', 'high', now())",
    )
    result = run_sync(warehouse, env, "run")
    assert result.exit_code == 1
    ltv = result.lists()["audience_ltv_high"]
    assert ltv["status"] == "failed"
    assert "main.audience_ltv_high has 2 row(s)" in ltv["message"]
    assert "Example.com" not in result.stderr and "Someone" not in ltv["message"]
    assert "CIO__LTV_High__NoOtherState" not in {v["name"] for v in bing.lists().values()}
    assert len(bing.lists()) == len(AUDIENCES) - 1  # one failing list does not stop the others


def test_missing_table_is_named(warehouse: Build, bing: StandIn, env: dict[str, str]) -> None:
    sql(warehouse, "drop table audience_lapsed_90d_plus")
    result = run_sync(warehouse, env, "run")
    assert result.exit_code == 1
    message = result.lists()["audience_lapsed_90d_plus"]["message"]
    assert "main.audience_lapsed_90d_plus does not exist" in message and "dbt build" in message
    assert len(bing.lists()) == len(AUDIENCES) - 1


def test_unknown_select_is_a_clear_error(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    result = run_sync(warehouse, env, "run", "-s", "nope")
    assert result.exit_code == 1
    assert "--select 'nope' matches no audience" in result.stderr
    assert "audience_ltv_high" in result.stderr
    assert bing.calls == []


def test_missing_and_stale_manifest(warehouse: Build, bing: StandIn, env: dict[str, str]) -> None:
    manifest = warehouse.target_path / "manifest.json"
    old = time.time() - 10 * 365 * 86400
    os.utime(manifest, (old, old))
    stale = run_sync(warehouse, env, "plan")
    assert stale.exit_code == 1 and "older than" in stale.stderr
    assert run_sync(warehouse, env, "plan", "--allow-stale-manifest").exit_code == 0
    manifest.unlink()
    missing = run_sync(warehouse, env, "run")
    assert missing.exit_code == 1 and "no dbt manifest" in missing.stderr
    assert bing.calls == []


@pytest.mark.parametrize(
    ("unset", "named"),
    [("BING_DEVELOPER_TOKEN", "BING_DEVELOPER_TOKEN"), ("BING_ACCOUNT_ID", "BING_ACCOUNT_ID")],
)
def test_missing_microsoft_setting_stops_before_sending(
    warehouse: Build, bing: StandIn, env: dict[str, str], unset: str, named: str
) -> None:
    result = run_sync(warehouse, env_without(env, unset), "run")
    assert result.exit_code == 1
    assert named in result.stderr
    assert bing.calls == []


def test_bad_meta_is_named(warehouse: Build, bing: StandIn, env: dict[str, str]) -> None:
    manifest = warehouse.target_path / "manifest.json"
    text = manifest.read_text().replace('"role": "target"', '"role": "targett"', 1)
    manifest.write_text(text)
    result = run_sync(warehouse, env, "plan", "--allow-stale-manifest")
    assert result.exit_code == 1
    assert "meta.bing.role is 'targett'" in result.stderr


def test_second_run_waits_for_the_lock_then_gives_up(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(30)",
         str(warehouse.database)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        result = run_sync(warehouse, env, "run", "--lock-timeout", "1.5")
        waited = time.monotonic() - started
        assert result.exit_code == 1
        assert "locked by another process" in result.stderr
        assert waited >= 1.5
        assert bing.calls == []
    finally:
        holder.kill()
        holder.wait()
    assert run_sync(warehouse, env, "run").exit_code == 0


def test_profile_problems_are_named(
    warehouse: Build, bing: StandIn, env: dict[str, str], tmp_path: Path
) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text(
        "cio_bing_audiences:\n  target: duckdb\n  outputs:\n    duckdb:\n"
        "      type: duckdb\n      path: \"{{ env_var('NOT_SET_ANYWHERE') }}\"\n"
    )
    result = run_sync(warehouse, {**env, "DBT_PROFILES_DIR": str(profiles)}, "plan")
    assert result.exit_code == 1 and "NOT_SET_ANYWHERE" in result.stderr
    wrong_target = run_sync(warehouse, env, "plan", "--target", "prod")
    assert wrong_target.exit_code == 1
    assert "target 'prod' is not in profile" in wrong_target.stderr


def test_an_unreadable_audience_fails_only_its_list_and_leaks_nothing(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    """A view whose email column is not text fails in the engine: that list fails, cleanly."""
    sql(warehouse, "drop table audience_ltv_high")
    sql(
        warehouse,
        "create view audience_ltv_high as select cast('someone@example.com' as integer) "
        "as email_sha256, 'x' as person_id, 'high' as ltv_tier, now() as as_of",
    )
    result = run_sync(warehouse, env, "run")
    assert result.exit_code == 1
    assert result.lists()["audience_ltv_high"]["status"] == "failed"
    assert "cannot be read" in result.lists()["audience_ltv_high"]["message"]
    assert sum(v["status"] == "in_sync" for v in result.lists().values()) == len(AUDIENCES) - 1
    assert "example.com" not in result.stderr + str(result.doc)


def test_two_audiences_pinning_one_list_is_refused(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    manifest = warehouse.target_path / "manifest.json"
    text = manifest.read_text()
    for name in ("CIO__LTV_High__NoOtherState", "CIO__Lapsed_90d-plus__NoPurchase"):
        text = text.replace(f'"list_name": "{name}"', f'"list_name": "{name}", "list_id": 42')
    manifest.write_text(text)
    result = run_sync(warehouse, env, "plan", "--allow-stale-manifest")
    assert result.exit_code == 1 and "both pin list_id 42" in result.stderr


def test_an_adopted_list_with_another_membership_duration_is_refused(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    bing.add_list("CIO__LTV_High__NoOtherState", membership_duration=30)
    result = run_sync(warehouse, env, "run", "-s", "ltv_high")
    assert result.exit_code == 1
    assert "membership duration 30" in result.lists()["audience_ltv_high"]["message"]
