"""`sync run / plan / status` end to end: real CLI, real DuckDB, real bingads SDK, stand-in Bing."""

from __future__ import annotations

import json

from sync.standin import StandIn
from tests.harness.dbt import AUDIENCES, Build, dbt, registry
from tests.harness.sync import (
    audience_hashes,
    env_without,
    mismatches,
    next_build,
    no_identifiers,
    run_sync,
    sql,
    state_members,
)

NEW_HASH = "ab" * 32


def assert_lists_equal_tables(build: Build, bing: StandIn, result_lists: dict) -> None:
    """The invariant: Bing's membership = the audience table = the sync's state, per list."""
    assert set(result_lists) == set(AUDIENCES)
    assert mismatches(build, bing, result_lists) == []


def test_first_run_creates_every_list_and_adds_every_member(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    result = run_sync(warehouse, env, "run")
    assert result.exit_code == 0, result.stderr
    lists = result.lists()
    assert set(lists) == set(AUDIENCES)
    names = {v["name"] for v in bing.lists().values()}
    assert "CIO__Suppress__Purchased_0-7d" in names and len(names) == len(AUDIENCES)
    assert all(v["membership_duration"] == -1 for v in bing.lists().values())
    assert_lists_equal_tables(warehouse, bing, lists)
    assert lists["audience_recent_purchaser_0_7d"]["confirmed_adds"] == 9
    assert all(v["sent_removes"] == 0 for v in lists.values())  # a first sync never removes
    assert no_identifiers(result.stderr)


def test_second_run_sends_nothing(warehouse: Build, bing: StandIn, env: dict[str, str]) -> None:
    assert run_sync(warehouse, env, "run").exit_code == 0
    bing.clear_calls()
    again = run_sync(warehouse, env, "run")
    assert again.exit_code == 0
    # nothing is sent, but every list is checked: one bulk download of the customer lists
    assert bing.calls == ["DownloadCampaignsByAccountIds", "GetBulkDownloadStatus", "DownloadFile"]
    assert all(v["sent_adds"] == 0 and v["sent_removes"] == 0 for v in again.lists().values())


def test_changed_audiences_converge_with_adds_and_removes(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    first = run_sync(warehouse, env, "run")
    assert first.exit_code == 0
    # the next build: one person leaves the suppression list, a new one enters high LTV
    next_build(warehouse, NEW_HASH)
    plan = run_sync(warehouse, env, "plan")
    assert plan.exit_code == 0
    planned = plan.lists()
    assert (
        planned["audience_recent_purchaser_0_7d"]["removes"],
        planned["audience_recent_purchaser_0_7d"]["adds"],
    ) == (1, 0)
    assert (planned["audience_ltv_high"]["adds"], planned["audience_ltv_high"]["removes"]) == (1, 0)
    assert planned["audience_ltv_high"]["members"] == 4

    second = run_sync(warehouse, env, "run")
    assert second.exit_code == 0, second.stderr
    lists = second.lists()
    assert lists["audience_recent_purchaser_0_7d"]["confirmed_removes"] == 1
    assert lists["audience_ltv_high"]["confirmed_adds"] == 1
    assert sum(v["sent_adds"] + v["sent_removes"] for v in lists.values()) == 2
    assert_lists_equal_tables(warehouse, bing, lists)


def test_rejected_rows_are_recorded_exit_2_and_retried(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    victim = sorted(audience_hashes(warehouse, "audience_ltv_high"))[0]
    bing.inject("reject_rows", hashes=[victim], code=8004, count=1)
    first = run_sync(warehouse, env, "run")
    assert first.exit_code == 2
    ltv = first.lists()["audience_ltv_high"]
    assert ltv["status"] == "partial" and ltv["rejected"] == 1
    assert ltv["rejected_by_code"] == {"8004": 1}
    assert victim not in bing.lists()[ltv["list_id"]]["members"]
    assert victim not in state_members(warehouse, ltv["list_id"])
    errors = sql(warehouse, "select email_sha256, error_code, action from sync_state.row_errors")
    assert errors == [(victim, 8004, "Add")]
    assert no_identifiers(first.stderr)

    status = run_sync(warehouse, env, "status")
    pending = {s["audience"]: s["pending_row_errors"] for s in status.doc["lists"]}
    assert pending["audience_ltv_high"][0]["error_code"] == 8004
    assert pending["audience_ltv_high"][0]["n"] == 1

    retry = run_sync(warehouse, env, "run")  # the fault fired once: the retry goes through
    assert retry.exit_code == 0
    assert retry.lists()["audience_ltv_high"]["confirmed_adds"] == 1
    assert_lists_equal_tables(warehouse, bing, retry.lists())


def test_plan_shows_counts_and_verdicts_and_sends_nothing(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    plan = run_sync(
        warehouse, env_without(env, "BING_DEVELOPER_TOKEN", "BING_ACCESS_TOKEN"), "plan"
    )
    assert plan.exit_code == 0  # plan needs no credentials
    lists = plan.lists()
    assert lists["audience_cart_abandon_0_1d"] == lists["audience_cart_abandon_0_1d"] | {
        "members": 0, "adds": 4, "removes": 0, "verdict": "ok", "reasons": [], "list_id": None,
    }  # fmt: skip
    assert bing.calls == [] and bing.lists() == {}


def test_exclusion_lists_are_synced_before_target_lists(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    result = run_sync(warehouse, env, "run")
    assert result.exit_code == 0
    excluded = {str(e["name"]) for e in registry() if e["enabled"] and e["role"] == "exclude"}
    assert "audience_recent_purchaser_0_7d" in excluded and len(excluded) == 5
    order = [
        a for (a,) in sql(warehouse, "select audience from sync_state.runs order by started_at")
    ]
    assert set(order[: len(excluded)]) == excluded
    roles = [item["role"] for item in result.doc["lists"]]
    assert roles == ["exclude"] * len(excluded) + ["target"] * (len(AUDIENCES) - len(excluded))


def test_select_runs_only_the_named_lists(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    result = run_sync(
        warehouse, env, "run", "--select", "ltv_high", "-s", "CIO__Lapsed_90d-plus__NoPurchase"
    )
    assert result.exit_code == 0
    assert set(result.lists()) == {"audience_ltv_high", "audience_lapsed_90d_plus"}
    assert len(bing.lists()) == 2


def test_an_existing_list_of_the_same_name_is_reused(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    """Reused, not duplicated; being of unknown members, it is replaced (with the flag)."""
    existing = bing.add_list("CIO__LTV_High__NoOtherState")
    result = run_sync(warehouse, env, "run", "-s", "ltv_high", "--allow-replace")
    assert result.exit_code == 0
    assert result.lists()["audience_ltv_high"]["list_id"] == existing
    assert len(bing.lists()) == 1
    assert bing.lists()[existing]["members"] == audience_hashes(warehouse, "audience_ltv_high")


def test_expiring_lists_are_refreshed_before_microsoft_drops_members(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    """With a membership duration, members confirmed too long ago are re-added in time."""
    manifest = warehouse.target_path / "manifest.json"
    manifest.write_text(
        manifest.read_text().replace(
            '"list_name": "CIO__LTV_High__NoOtherState", "role": "target", '
            '"membership_duration_days": -1',
            '"list_name": "CIO__LTV_High__NoOtherState", "role": "target", '
            '"membership_duration_days": 30',
        )
    )
    first = run_sync(warehouse, env, "run", "-s", "ltv_high", "--allow-stale-manifest")
    assert first.exit_code == 0
    list_id = first.lists()["audience_ltv_high"]["list_id"]
    assert bing.lists()[list_id]["membership_duration"] == 30
    aged = sorted(audience_hashes(warehouse, "audience_ltv_high"))[:2]
    sql(
        warehouse,
        "update sync_state.members set confirmed_at = confirmed_at - interval 25 day "
        "where email_sha256 in (?, ?)",
        aged,
    )
    plan = run_sync(warehouse, env, "plan", "-s", "ltv_high", "--allow-stale-manifest")
    assert plan.lists()["audience_ltv_high"]["refresh"] == 2
    assert plan.lists()["audience_ltv_high"]["adds"] == 0
    second = run_sync(warehouse, env, "run", "-s", "ltv_high", "--allow-stale-manifest")
    assert second.exit_code == 0
    assert second.lists()["audience_ltv_high"]["sent_adds"] == 2
    fresh = sql(
        warehouse,
        "select count(*) from sync_state.members where confirmed_at < now() - interval 1 day",
    )
    assert fresh == [(0,)]
    assert state_members(warehouse, list_id) == audience_hashes(warehouse, "audience_ltv_high")


def test_plan_status_and_report_write_nothing(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    """The read-only commands create no table: on a warehouse the sync never ran on they read
    an empty state; on one an earlier version wrote they name the fix (`sync run` migrates)."""

    def schemas() -> list[tuple[str, ...]]:
        return sql(warehouse, "select schema_name from information_schema.schemata order by 1")

    before = schemas()
    assert ("sync_state",) not in before
    plan = run_sync(warehouse, env, "plan")
    assert plan.exit_code == 0 and plan.lists()["audience_ltv_high"]["adds"] == 4
    assert run_sync(warehouse, env, "status").exit_code == 0
    report = warehouse.workdir / "report.html"
    assert run_sync(warehouse, env, "report", "-o", str(report)).exit_code == 0
    assert "No runs recorded yet" in report.read_text()
    assert schemas() == before

    sql(warehouse, "create schema sync_state")
    sql(  # the lists table of an earlier version: no needs_replace, no other table yet
        warehouse,
        "create table sync_state.lists (audience varchar, list_id bigint, list_name varchar, "
        "role varchar, created_at timestamp, updated_at timestamp)",
    )
    old = run_sync(warehouse, env, "plan")
    assert old.exit_code == 1 and "run `sync run` once" in old.stderr
    assert run_sync(warehouse, env, "run").exit_code == 0  # creates and migrates
    assert run_sync(warehouse, env, "plan").exit_code == 0


def test_a_list_whose_audience_left_the_project_is_said_not_synced(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    """An audience model deleted from the project (the manifest `dbt parse` then writes has
    no node for it): its list is left as it is at Microsoft, and status and run say so."""
    first = run_sync(warehouse, env, "run")
    assert first.exit_code == 0
    list_id = first.lists()["audience_ltv_high"]["list_id"]
    members = bing.lists()[list_id]["members"]
    manifest_path = warehouse.target_path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["nodes"]["model.cio_bing_audiences.audience_ltv_high"]
    manifest_path.write_text(json.dumps(manifest))

    status = run_sync(warehouse, env, "status", "--allow-stale-manifest")
    assert status.exit_code == 0
    assert "audience_ltv_high" not in status.lists()
    assert status.doc["left_project"] == [
        {
            "audience": "audience_ltv_high",
            "list_name": "CIO__LTV_High__NoOtherState",
            "role": "target",
            "list_id": list_id,
            "members": len(members),
            "reason": "not_in_project",
        }
    ]
    again = run_sync(warehouse, env, "run", "-s", "cart_abandon_0_1d", "--allow-stale-manifest")
    assert again.exit_code == 0
    assert (
        f"not synced: CIO__LTV_High__NoOtherState (list {list_id}, {len(members)} member(s) at "
        "the last run): its audience audience_ltv_high is no longer in the dbt project"
    ) in " ".join(again.stderr.split())
    assert bing.lists()[list_id]["members"] == members  # left as it was
    assert no_identifiers(again.stderr)


def test_a_list_name_changed_in_the_yaml_keeps_the_list_and_says_so(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    """meta.bing.list_name edited after the list exists: the same list, by id, its members
    kept and nothing re-sent; the run says the list is still named the old way at Microsoft."""
    first = run_sync(warehouse, env, "run", "-s", "ltv_high")
    list_id = first.lists()["audience_ltv_high"]["list_id"]
    manifest = warehouse.target_path / "manifest.json"
    manifest.write_text(
        manifest.read_text().replace('"CIO__LTV_High__NoOtherState"', '"CIO__LTV_High_500__Loyal"')
    )
    second = run_sync(warehouse, env, "run", "-s", "ltv_high", "--allow-stale-manifest")
    assert second.exit_code == 0, second.stderr
    item = second.lists()["audience_ltv_high"]
    assert item["list_id"] == list_id and item["sent_adds"] == item["sent_removes"] == 0
    assert item["message"].startswith("meta.bing.list_name is now 'CIO__LTV_High_500__Loyal'")
    assert "still named 'CIO__LTV_High__NoOtherState' at Microsoft" in item["message"]
    assert len(bing.lists()) == 1
    assert bing.lists()[list_id]["members"] == audience_hashes(warehouse, "audience_ltv_high")


def test_status_shows_identifier_coverage_and_warns_below_the_threshold(
    warehouse: Build, env: dict[str, str]
) -> None:
    """Coverage from the audience_coverage mart, per list; st21, a recent purchaser without a
    valid email, is the one person of the demo no list can reach."""
    lists = {i["audience"]: i for i in run_sync(warehouse, env, "status").doc["lists"]}
    assert set(lists) == set(AUDIENCES)
    recent = lists["audience_recent_purchaser_0_7d"]
    assert recent["coverage"] == {
        "identifier": "email",
        "people": 10,
        "people_with_identifier": 9,
        "hashes": 9,
        "coverage_share": 0.9,
        "warning_share": 0.5,
    }
    assert all(i["coverage_warning"] is None for i in lists.values())
    # the analyst asks for 95 %: the mart alone is rebuilt, and status warns for that list only
    dbt(warehouse, "run", "--select", "audience_coverage", vars={"coverage_warning_share": 0.95})
    lists = {i["audience"]: i for i in run_sync(warehouse, env, "status").doc["lists"]}
    warned = {name: i["coverage_warning"] for name, i in lists.items() if i["coverage_warning"]}
    assert list(warned) == ["audience_recent_purchaser_0_7d"]
    assert warned["audience_recent_purchaser_0_7d"].startswith(
        "CIO__Suppress__Purchased_0-7d: only 9 of its 10 people (90%) have a usable email"
    )
