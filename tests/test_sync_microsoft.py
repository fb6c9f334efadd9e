"""Microsoft as it behaves in production, through the whole CLI: its own error named when an
upload fails, rows it keeps rejecting parked instead of retried forever, and suppression
first enforced when a suppression list cannot be synced."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from click.testing import CliRunner

from sync.cli import main
from sync.standin import StandIn
from tests.harness.dbt import ROOT, Build, dbt
from tests.harness.sync import (
    OUTPUTS,
    audience_hashes,
    mismatches,
    no_identifiers,
    run_sync,
    sql,
    sync_command,
)

FAST = ("--retry-max-delay", "0.05", "--request-timeout", "2")
LTV = "audience_ltv_high"


def _start_sync(warehouse: Build, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`sync run` as a real process (to kill it, or to run dbt beside it)."""
    return subprocess.Popen(
        sync_command(warehouse, "run", *args),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for_files(sync: subprocess.Popen[str], bing: StandIn, files: int) -> None:
    """Until the stand-in has received `files` file POSTs in all (the sync still running)."""
    deadline = time.monotonic() + 60
    while bing.calls.count("UploadFile") < files:
        assert sync.poll() is None and time.monotonic() < deadline, "it never sent the file"
        time.sleep(0.01)


def _finish(sync: subprocess.Popen[str]) -> dict[str, dict[str, Any]]:
    """Wait for the process; its lists by audience (exit code 0 required)."""
    try:
        out, err = sync.communicate(timeout=120)
    finally:
        sync.kill()
    OUTPUTS.extend([out, err])
    assert sync.returncode == 0, err
    return {item["audience"]: item for item in json.loads(out)["lists"]}


def _kill_when(sync: subprocess.Popen[str], bing: StandIn, files: int) -> None:
    """SIGKILL the sync once the stand-in has received its `files`-th file POST."""
    _wait_for_files(sync, bing, files)
    sync.kill()
    sync.communicate(timeout=30)


def test_a_failed_upload_names_microsofts_error(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    bing.inject(kind="upload_failed", count=None)
    failed = run_sync(warehouse, env, "run", *FAST, "--max-attempts", "2", "-s", "ltv_high")
    assert failed.exit_code == 1
    ltv = failed.lists()[LTV]
    assert ltv["microsoft_error"]["code"] == 0
    assert ltv["microsoft_error"]["name"] == "InternalError"
    assert ltv["microsoft_error"]["message"]  # Microsoft's own words, as it sent them
    for text in (ltv["message"], failed.stderr):
        assert "Microsoft error 0 InternalError: " + ltv["microsoft_error"]["message"] in text
    assert "CIO__LTV_High__NoOtherState" in ltv["message"]
    bing.clear_faults()
    assert run_sync(warehouse, env, "run", *FAST, "-s", "ltv_high").exit_code == 0


def test_a_row_rejected_on_three_runs_is_parked(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    victim = sorted(audience_hashes(warehouse, LTV))[0]
    bing.inject("reject_rows", hashes=[victim], code=8004, count=None)
    for attempt in (1, 2, 3):
        result = run_sync(warehouse, env, "run", *FAST)
        assert result.exit_code == 2, attempt
        assert result.lists()[LTV]["rejected"] == 1
    rows = sql(warehouse, "select attempts, parked_at is not null from sync_state.row_errors")
    assert rows == [(3, True)]  # one row per list and hash, however many runs

    fourth = run_sync(warehouse, env, "run", *FAST)
    assert fourth.exit_code == 0, fourth.stderr
    assert fourth.lists()[LTV]["sent_adds"] == 0  # not sent again
    assert fourth.lists()[LTV]["status"] == "in_sync"
    status = run_sync(warehouse, env, "status").doc["lists"]
    ltv = next(s for s in status if s["audience"] == LTV)
    assert ltv["pending_row_errors"] == []
    assert [(e["error_code"], e["n"], e["attempts"]) for e in ltv["parked_row_errors"]] == [
        (8004, 1, 3)
    ]
    assert run_sync(warehouse, env, "plan").lists()[LTV]["adds"] == 0

    # the audience changes for it: it leaves the table, so it starts over (a remove, accepted)
    bing.clear_faults()
    sql(warehouse, f"delete from {LTV} where email_sha256 = ?", [victim])
    changed = run_sync(warehouse, env, "run", *FAST)
    assert changed.exit_code == 0
    resolved = "select count(*) from sync_state.row_errors where resolved_at is null"
    assert sql(warehouse, resolved) == [(0,)]
    assert not mismatches(warehouse, bing, changed.lists())
    assert no_identifiers(changed.stderr)


def test_a_refused_suppression_list_holds_the_target_lists_adds(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    assert run_sync(warehouse, env, "run", *FAST).exit_code == 0
    sql(warehouse, "delete from audience_recent_purchaser_0_7d")  # a broken upstream: refused
    sql(warehouse, f"insert into {LTV} values (?, 'n', 'high', now())", ["ab" * 32])
    leaving = sorted(audience_hashes(warehouse, "audience_lapsed_90d_plus"))[0]
    sql(warehouse, "delete from audience_lapsed_90d_plus where email_sha256 = ?", [leaving])

    result = run_sync(warehouse, env, "run", *FAST, "--max-remove-share", "1")
    assert result.exit_code == 3  # the suppression list's refusal
    lists = result.lists()
    assert lists["audience_recent_purchaser_0_7d"]["status"] == "refused"
    ltv = lists[LTV]
    assert (ltv["status"], ltv["held_adds"], ltv["sent_adds"]) == ("held", 1, 0)
    assert "CIO__Suppress__Purchased_0-7d" in ltv["message"]
    lapsed = lists["audience_lapsed_90d_plus"]
    assert lapsed["confirmed_removes"] == 1  # removes still go out
    assert "ab" * 32 not in bing.lists()[ltv["list_id"]]["members"]

    allowed = run_sync(warehouse, env, "run", *FAST, "--allow-empty")
    assert allowed.exit_code == 0
    assert allowed.lists()[LTV]["confirmed_adds"] == 1
    assert not mismatches(warehouse, bing, allowed.lists())


def test_guards_count_hashes_sent_without_a_result(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    """A first upload whose rows all failed leaves no confirmed member, only hashes whose
    fate is unknown: an audience emptied afterwards must still be refused, not wipe them."""
    bing.inject("reject_rows", hashes=sorted(audience_hashes(warehouse, LTV)), count=None)
    assert run_sync(warehouse, env, "run", *FAST, "-s", "ltv_high").exit_code == 2
    bing.clear_faults()
    sql(warehouse, f"delete from {LTV}")
    plan = run_sync(warehouse, env, "plan", "-s", "ltv_high").lists()[LTV]
    assert (plan["members"], plan["removes"], plan["verdict"]) == (0, 4, "refused")
    refused = run_sync(warehouse, env, "run", *FAST, "-s", "ltv_high")
    assert refused.exit_code == 3
    assert refused.lists()[LTV]["sent_removes"] == 0


def test_lists_changed_in_the_ui_are_noticed_on_a_run_with_nothing_to_send(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    first = run_sync(warehouse, env, "run", *FAST)
    assert first.exit_code == 0
    ids = {name: item["list_id"] for name, item in first.lists().items()}
    lapsed, cart = "audience_lapsed_90d_plus", "audience_cart_abandon_0_1d"
    bing.delete_list(ids[LTV])  # as someone in the Microsoft Advertising UI would
    bing.edit_list(ids[lapsed], membership_duration=30)
    bing.edit_list(ids[cart], name="Cart people (renamed by hand)")

    second = run_sync(warehouse, env, "run", *FAST)  # the audiences did not change
    assert second.exit_code == 1
    lists = second.lists()
    ltv = lists[LTV]
    assert ltv["status"] == "in_sync" and ltv["list_id"] != ids[LTV]
    assert "no longer existed at Microsoft" in ltv["message"]
    assert bing.lists()[ltv["list_id"]]["members"] == audience_hashes(warehouse, LTV)
    assert lists[lapsed]["status"] == "failed"
    assert "membership duration 30" in lists[lapsed]["message"]
    assert "meta.bing says -1" in lists[lapsed]["message"]
    assert (
        lists[cart]["status"] == "in_sync" and "renamed outside the sync" in lists[cart]["message"]
    )
    assert [op for op in bing.calls if op == "DownloadCampaignsByAccountIds"] != []

    bing.edit_list(ids[lapsed], membership_duration=-1)
    bing.clear_calls()
    third = run_sync(warehouse, env, "run", *FAST)
    assert third.exit_code == 0, third.stderr
    assert bing.calls.count("DownloadCampaignsByAccountIds") == 1  # one lookup per run
    assert not mismatches(warehouse, bing, third.lists())


def test_dbt_build_runs_while_a_sync_waits_on_microsoft(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    """The sync gives the warehouse file back while Microsoft processes an upload: a
    `dbt build` started meanwhile succeeds, and the sync then finishes in sync."""
    bing.inject(kind="pending", polls=100_000, count=1)  # the first file: held InProgress
    sync = _start_sync(warehouse, env)
    _wait_for_files(sync, bing, 1)  # the sync is now waiting on Microsoft
    dbt(warehouse, "build")  # would wait for (or fail on) a held DuckDB file
    assert sync.poll() is None, "the sync finished before dbt build did: nothing proven"
    bing.finish_processing()
    assert not mismatches(warehouse, bing, _finish(sync))


def test_the_stand_in_changes_a_list_only_when_processing_completes(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    """Microsoft's pace: an uploaded file is InProgress for a while and the list does not
    change until it is processed; the sync waits for the result, then is in sync."""
    bing.set_processing(seconds=1.5)
    sync = _start_sync(warehouse, env, "-s", "ltv_high")
    _wait_for_files(sync, bing, 2)  # the list's creation, then its members
    (listed,) = bing.lists().values()
    assert listed["members"] == set()  # received, not processed yet
    _finish(sync)
    assert bing.calls.count("GetBulkUploadStatus") >= 4  # polled while it was InProgress
    (listed,) = bing.lists().values()
    assert listed["members"] == audience_hashes(warehouse, LTV)


def test_an_upload_slower_than_the_run_is_collected_later_not_sent_again(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    bing.set_processing(seconds=2.5)  # longer than the runs below wait for it
    first = run_sync(warehouse, env, "run", *FAST, "--no-wait", "-s", "ltv_high")
    assert first.exit_code == 0, first.stderr  # in flight is a normal state
    ltv = first.lists()[LTV]
    assert ltv["status"] == "in_flight" and ltv["in_flight"][0]["rows"] == 4
    assert bing.lists()[ltv["list_id"]]["members"] == set()  # Microsoft is still at it

    second = run_sync(warehouse, env, "run", *FAST, "--no-wait", "-s", "ltv_high")
    assert second.exit_code == 0, second.stderr
    assert second.lists()[LTV]["status"] == "in_flight"
    assert second.lists()[LTV]["sent_adds"] == 0  # nothing sent again
    status = run_sync(warehouse, env, "status", "-s", "ltv_high").doc["lists"][0]
    assert [(u["action"], u["rows"], u["state"]) for u in status["in_flight_uploads"]] == [
        ("Add", 4, "sent")
    ]
    plan = run_sync(warehouse, env, "plan", "-s", "ltv_high").lists()[LTV]
    assert (plan["adds"], plan["in_flight"]) == (0, 4)

    third = run_sync(warehouse, env, "run", *FAST, "-s", "ltv_high")  # waits, and collects
    assert third.exit_code == 0, third.stderr
    ltv = third.lists()[LTV]
    assert (ltv["status"], ltv["confirmed_adds"], ltv["sent_adds"]) == ("in_sync", 4, 0)
    assert bing.lists()[ltv["list_id"]]["members"] == audience_hashes(warehouse, LTV)
    assert bing.calls.count("UploadFile") == 2  # the list's creation and its members, once
    status = run_sync(warehouse, env, "status", "-s", "ltv_high").doc["lists"][0]
    assert status["in_flight_uploads"] == [] and status["members"] == 4


def test_killed_after_recording_an_upload_the_next_run_collects_it(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    """Killed between "upload recorded" and "file sent" (the POST still under way, so
    Microsoft gets the file after all), then between "file sent" and "result collected":
    each time the next run collects the upload by its request id; no file is sent twice
    and no change is lost."""
    assert run_sync(warehouse, env, "run", *FAST, "-s", "ltv_high").exit_code == 0
    new = ["e1" * 32, "e2" * 32]
    for cut, h in enumerate(new):
        sql(warehouse, f"insert into {LTV} values (?, 'n', 'high', now())", [h])
        files = bing.calls.count("UploadFile")
        if cut == 0:  # the POST is held up before Microsoft answers it; the sync dies meanwhile
            bing.inject(kind="delay", seconds=3.0, operation="UploadFile", count=1)
        else:  # Microsoft has the file and takes its time processing it
            bing.set_processing(seconds=2.0)
        sync = _start_sync(warehouse, env, "-s", "ltv_high")
        _kill_when(sync, bing, files + 1)
        recorded = sql(warehouse, "select state from sync_state.uploads order by recorded_at")
        assert recorded[-1] in (("recorded",), ("sent",)), recorded  # durable before the POST
        collected = 0
        if cut == 0:  # right away, Microsoft may not have the file yet: it is not sent again
            early = run_sync(warehouse, env, "run", *FAST, "--no-wait", "-s", "ltv_high")
            assert early.exit_code == 0, early.stderr
            assert early.lists()[LTV]["status"] in ("in_flight", "in_sync")  # slow machine: landed
            assert early.lists()[LTV]["sent_adds"] == 0
            collected = early.lists()[LTV]["confirmed_adds"]
            time.sleep(3.5)  # the dead run's POST lands
        bing.set_processing()
        again = run_sync(warehouse, env, "run", *FAST, "-s", "ltv_high")
        assert again.exit_code == 0, again.stderr
        ltv = again.lists()[LTV]
        assert (collected + ltv["confirmed_adds"], ltv["sent_adds"]) == (1, 0)  # not resent
        assert bing.calls.count("UploadFile") == files + 1  # that file, once
        assert bing.lists()[ltv["list_id"]]["members"] == audience_hashes(warehouse, LTV)
        assert not mismatches(warehouse, bing, again.lists())


def test_an_upload_in_flight_too_long_is_an_error_naming_it(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    bing.set_processing(seconds=5)  # the list's creation waits for it; its members do not
    first = run_sync(warehouse, env, "run", *FAST, "--no-wait", "-s", "ltv_high")
    assert first.exit_code == 0
    request_id = first.lists()[LTV]["in_flight"][0]["request_id"]
    time.sleep(1.2)
    late = run_sync(
        warehouse, env, "run", *FAST, "--no-wait", "--max-upload-age", "0.0003", "-s", "ltv_high"
    )
    assert late.exit_code == 1
    message = late.lists()[LTV]["message"]
    assert request_id in message and "--max-upload-age" in message


def test_an_adopted_list_with_stale_members_is_replaced_only_with_the_flag(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    """A list of that name made in the UI, holding people who are not (or no longer) in the
    audience: the sync cannot count who else is on it, so it plans a Replace, which its own
    guard refuses without --allow-replace; with it the list ends equal to the audience."""
    audience = audience_hashes(warehouse, LTV)
    stale = {f"{n:064x}" for n in (1, 2, 3)}
    existing = bing.add_list("CIO__LTV_High__NoOtherState", members={*stale, min(audience)})

    refused = run_sync(warehouse, env, "run", *FAST, "-s", "ltv_high")
    assert refused.exit_code == 3, refused.stderr
    ltv = refused.lists()[LTV]
    assert (ltv["status"], ltv["list_id"], ltv["replace"]) == ("refused", existing, True)
    assert "--allow-replace" in ltv["message"] and f"list {existing}" in ltv["message"]
    assert bing.lists()[existing]["members"] == {*stale, min(audience)}  # untouched
    assert bing.calls.count("UploadFile") == 0

    plan = run_sync(warehouse, env, "plan", "-s", "ltv_high").lists()[LTV]
    assert (plan["verdict"], plan["replace"], plan["adds"]) == ("refused", True, len(audience))
    plan = run_sync(warehouse, env, "plan", "-s", "ltv_high", "--allow-replace").lists()[LTV]
    assert plan["verdict"] == "ok"
    args = ["plan", "-s", "ltv_high", "--project-dir", str(ROOT), "--target-path"]
    text = CliRunner().invoke(main, [*args, str(warehouse.target_path)], env=env).stdout
    assert "all others (Replace)" in text and "Pass --allow-replace" in text

    done = run_sync(warehouse, env, "run", *FAST, "-s", "ltv_high", "--allow-replace")
    assert done.exit_code == 0, done.stderr
    assert done.lists()[LTV]["confirmed_adds"] == len(audience)
    assert not mismatches(warehouse, bing, done.lists())
    assert bing.calls.count("UploadFile") == 1  # one Replace file
    assert sql(warehouse, "select action from sync_state.uploads") == [("Replace",)]

    again = run_sync(warehouse, env, "run", *FAST, "-s", "ltv_high")  # known now: deltas
    assert again.exit_code == 0 and again.lists()[LTV]["sent_adds"] == 0
    assert run_sync(warehouse, env, "plan", "-s", "ltv_high").lists()[LTV]["replace"] is False


def test_a_replace_longer_than_one_file_wipes_once(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    """A Replace split into files: only the first file wipes the list, the others add."""
    existing = bing.add_list("CIO__LTV_High__NoOtherState", members={f"{9:064x}"})
    args = ("-s", "ltv_high", "--allow-replace", "--max-rows-per-file", "1")
    done = run_sync(warehouse, env, "run", *FAST, *args)
    assert done.exit_code == 0, done.stderr
    assert bing.lists()[existing]["members"] == audience_hashes(warehouse, LTV)
    assert not mismatches(warehouse, bing, done.lists())
    actions = [
        a for (a,) in sql(warehouse, "select action from sync_state.uploads order by recorded_at")
    ]
    assert actions == ["Replace", "Add", "Add", "Add"]


def test_a_rebuilt_warehouse_refuses_the_replaces_then_reconciles_with_the_flag(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    """The warehouse file is lost and rebuilt by `dbt build` days later: the sync's state is
    gone and the audiences moved on. Each list is found by name with unknown members, so the
    next run refuses every Replace (exit 3, lists untouched); with the flag it reconciles
    every list, people who left the audiences meanwhile included."""
    first = run_sync(warehouse, env, "run", *FAST)
    assert first.exit_code == 0, first.stderr
    ids = {name: item["list_id"] for name, item in first.lists().items()}
    for path in (warehouse.database, warehouse.database.with_suffix(".duckdb.wal")):
        path.unlink(missing_ok=True)
    dbt(warehouse, "build", vars={"as_of": "2026-12-05T12:00:00Z"})
    stale = [
        n for n, i in ids.items() if bing.lists()[i]["members"] - audience_hashes(warehouse, n)
    ]
    assert stale, "the rebuilt audiences must have lost someone, or nothing is proven"
    before = bing.lists()
    bing.clear_calls()

    refused = run_sync(warehouse, env, "run", *FAST)
    assert refused.exit_code == 3, refused.stderr
    assert {n: (i["status"], i["list_id"]) for n, i in refused.lists().items()} == {
        n: ("refused", i) for n, i in ids.items()
    }
    assert bing.lists() == before and bing.calls.count("UploadFile") == 0
    assert len(bing.lists()) == len(ids)  # found by name, none created twice

    # the cart abandoners of a week later are empty: emptying a list of unknown members
    # takes --allow-empty too (an item-less Replace)
    empty = [n for n in ids if not audience_hashes(warehouse, n)]
    assert empty and all("--allow-empty" in refused.lists()[n]["message"] for n in empty)
    done = run_sync(warehouse, env, "run", *FAST, "--allow-replace", "--allow-empty")
    assert done.exit_code == 0, done.stderr
    assert not mismatches(warehouse, bing, done.lists())
    assert {n: i["list_id"] for n, i in done.lists().items()} == ids
    assert all(bing.lists()[ids[n]]["members"] == set() for n in empty)
    again = run_sync(warehouse, env, "run", *FAST)  # every list is known again: deltas only
    assert again.exit_code == 0 and bing.calls.count("UploadFile") == len(ids)


def _until_in_sync(warehouse: Build, env: dict[str, str], runs: int = 12) -> dict[str, Any]:
    """`sync run --no-wait` (as a 10-minute schedule would) until every list is in sync."""
    for _ in range(runs):
        result = run_sync(warehouse, env, "run", *FAST, "--no-wait")
        assert result.exit_code == 0, result.stderr
        if all(item["status"] == "in_sync" for item in result.lists().values()):
            return result.lists()
        time.sleep(0.35)
    raise AssertionError(f"not in sync after {runs} runs")


def test_uploads_processed_out_of_order_still_converge(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    """Microsoft promises no order between uploads: here every file overtakes those still
    processing. The sync never has two uploads of one hash in flight, holds target adds
    while the suppression list is processing, and converges with each file sent once."""
    # 2 s: long enough that a loaded machine cannot let the first file finish before the
    # run that sent it returns (0.3 s could, under a busy CI)
    bing.set_processing(seconds=2.0, out_of_order=True)
    first = run_sync(warehouse, env, "run", *FAST, "--no-wait")
    assert first.exit_code == 0, first.stderr
    lists = first.lists()
    assert lists["audience_recent_purchaser_0_7d"]["status"] == "in_flight"
    for name, item in lists.items():
        if not audience_hashes(warehouse, name):
            continue
        if item["role"] == "exclude":  # sent first; a later file may overtake the others
            assert item["status"] in ("in_flight", "in_sync"), name
        else:
            assert (item["status"], item["sent_adds"]) == ("held", 0), name
            assert "still processing at Microsoft" in item["message"]
    _until_in_sync(warehouse, env, runs=30)

    leaver = min(audience_hashes(warehouse, LTV))  # the next build: one leaves, one enters
    sql(warehouse, f"delete from {LTV} where email_sha256 = ?", [leaver])
    sql(
        warehouse,
        f"insert into {LTV} values (?, 'new', 'high', timestamp '2026-11-28 12:00')",
        ["ef" * 32],
    )
    done = _until_in_sync(warehouse, env, runs=30)
    assert not mismatches(warehouse, bing, done)
    assert bing.reordered > 0, "no upload overtook another: nothing proven"
    (files,) = sql(warehouse, "select count(*) from sync_state.uploads")[0]
    assert bing.calls.count("UploadFile") == files + len(done)  # + one create per list


def test_microsofts_matched_sizes_are_shown_beside_the_members(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    """Microsoft sizes a list ~48 h after an upload: before that there is no size; then the
    run's list check records it and `status` shows it beside the members (the match rate)."""
    first = run_sync(warehouse, env, "run", *FAST)
    assert first.exit_code == 0, first.stderr
    status = run_sync(warehouse, env, "status").doc["lists"]
    assert all(item["microsoft_size"] is None for item in status)  # not sized yet
    bing.match_share = 0.6  # Microsoft matched 60 % of each list's people
    assert run_sync(warehouse, env, "run", *FAST).exit_code == 0  # nothing to send
    status = run_sync(warehouse, env, "status").doc["lists"]
    for item in status:
        size = item["microsoft_size"]
        members = len(audience_hashes(warehouse, item["audience"]))
        assert item["members"] == members > 0
        assert size["search_size"] == size["network_size"] == round(0.6 * members)
        assert size["match_rate"] == round(size["search_size"] / members, 3)
        assert size["serving"] is False  # fewer than 300 matched people
        assert size["changed_at"] == size["observed_at"]
    bing.match_share = 1.0
    assert run_sync(warehouse, env, "run", *FAST).exit_code == 0
    assert run_sync(warehouse, env, "run", *FAST).exit_code == 0
    ltv = next(i for i in run_sync(warehouse, env, "status").doc["lists"] if i["audience"] == LTV)
    size = ltv["microsoft_size"]
    assert (size["search_size"], size["match_rate"]) == (4, 1.0)
    assert size["changed_at"] < size["observed_at"]  # the size changed one run before
    page = warehouse.workdir / "report.html"
    assert run_sync(warehouse, env, "report", "-o", str(page)).exit_code == 0
    assert "Matched (Microsoft)" in page.read_text() and "4 (100%)" in page.read_text()
