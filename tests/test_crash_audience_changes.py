"""Crash safety of `sync run` when the audiences change between a kill and the rerun, the real
program killed by SIGKILL (the sync spec, sync.md):

    Killing the process at any point, then running again, ends in the same state as an
    uninterrupted run.

The hourly schedule is `dbt build && sync run`, so the build after a killed run may change the
audiences, even the very people whose upload was in flight. Two tests pin down sync bugs this
suite found, now fixed: an upload Microsoft applied but whose result was never committed must
still be undone or redone when the audience changes before the rerun (the `pending` state
table), and a list Microsoft created for a killed run is adopted, not replaced. A summary is
printed after the module (conftest.py's `crash_summary`); run with `-s` for a line per kill.
"""

import pytest

from tests.harness.crash import Applied, Kill, Sync, audiences, change_audiences, snapshot
from tests.harness.kills import DELAY, KILLS, STARTS, new_hash, show, survived

pytestmark = pytest.mark.usefixtures("crash_summary")


# ---------------------------------------------------------------------------- kill, change, rerun
def test_audience_changes_between_kill_and_rerun_converge(harness: Sync) -> None:
    """Kill, let `dbt build` change the audiences (some leave, some enter), run again, and
    so on: the complete run at the end converges. The changes leave alone the hashes whose
    upload was in flight when the process died (see the test below for those)."""
    kills: list[Kill] = []
    # (anchor, seconds after it, which upload); None: a complete run
    points = [
        ("apply:add", DELAY * 0.5, 1),  # first run: the suppression list's adds, uncommitted
        None,
        ("apply:remove", DELAY * 2.5, 1),  # a run with removes: around the remove's commit
        ("apply:add", DELAY * 0.5, 1),
        ("call", DELAY * 6, 1),
        None,
    ]
    avoided = 0
    chain: list[Applied] = []
    for step, point in enumerate(points, start=1):
        if point is None:
            harness.bing.set_delay(0)
            harness.assert_converged(harness.run())
            survived(kills)
            chain.clear()
            in_flight: set[str] = set()
        else:
            harness.bing.set_delay(DELAY)
            anchor, seconds, nth = point
            outcome = harness.run_and_kill(anchor, seconds, f"change {step}", chain, nth)
            assert isinstance(outcome, Kill), "the run ended before its kill point"
            kills.append(outcome)
            KILLS.append(outcome)
            in_flight = {h for g in outcome.gaps.values() for h in g.ahead | g.behind}
            avoided += len(in_flight)
        if step == len(points):
            break
        change_audiences(harness.build, *small_change(harness, step, in_flight))
    STARTS["changes"] = harness.process_starts
    show("audience changes between kill and rerun", kills,
         f"; {avoided} in-flight hash(es) left unchanged")  # fmt: skip


def small_change(
    harness: Sync, step: int, in_flight: set[str]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """One person leaves some audiences and a new one enters others, never touching
    `in_flight`, and keeping the removes pending against the state under the 0.5 guard."""
    snap = snapshot(harness.build, harness.models)
    removes: dict[str, list[str]] = {}
    adds: dict[str, list[str]] = {}
    for i, model in enumerate(harness.models):
        table = snap.tables[model]
        members = snap.members.get(snap.list_ids.get(model, -1), set())
        pending = len(members - table)
        candidates = sorted(table - in_flight)
        fits = candidates and len(table) >= 3 and pending + 1 <= 0.4 * len(members)
        if (i + step) % 2 == 0 and fits:
            removes[model] = candidates[step % len(candidates) :][:1]
        if (i + step) % 3 != 0:
            adds[model] = [new_hash(f"change {step}:{model}")]
    return removes, adds


class NotConverged(AssertionError):
    """The complete run after a kill did not end where an uninterrupted run would."""


@pytest.mark.parametrize("action", ["add", "remove"])
def test_audience_change_touching_the_upload_in_flight_converges(
    harness: Sync, action: str
) -> None:
    """The hourly schedule `dbt build && sync run`: a run is killed after Microsoft applied an
    upload and before its result was committed; the next build changes exactly those people
    (they leave the audience after an add, come back after a remove); the next run must
    still converge."""
    model = "audience_ltv_high"
    if action == "remove":  # a complete first run, then one person leaves (1 of 4)
        harness.assert_converged(harness.run())
        leaver = sorted(snapshot(harness.build, harness.models).tables[model])[0]
        change_audiences(harness.build, {model: [leaver]}, {})
    harness.bing.set_delay(DELAY)
    chain: list[Applied] = []
    kill = harness.run_and_kill(f"apply:{action}", DELAY * 0.5, f"{action} gap", chain)
    harness.bing.set_delay(0)
    assert isinstance(kill, Kill), "the run ended before its kill point"
    KILLS.append(kill)
    STARTS[f"in-flight {action}"] = harness.process_starts
    show(f"audience change touching an applied, uncommitted {action}", [kill])
    gap = next(g for g in kill.gaps.values() if (g.ahead if action == "add" else g.behind))
    owner = next(a.model for a in audiences(harness.build) if a.list_name == gap.name)
    if action == "add":  # one of the people just added leaves the audience before the rerun
        change_audiences(harness.build, {owner: sorted(gap.ahead)[:1]}, {})
    else:  # the person just removed comes back before the rerun
        change_audiences(harness.build, {}, {owner: sorted(gap.behind)})
    rerun = harness.run()
    try:
        harness.assert_converged(rerun)
    except AssertionError as exc:
        raise NotConverged(str(exc)) from None
    survived([kill])


# -------------------------------------------------------------------- a list made by a killed run
def test_a_list_created_by_a_killed_run_is_adopted_without_a_replace(harness: Sync) -> None:
    """Killed after Microsoft created a list and before the run stored its id: the next run
    finds the list by name, and its description names a run of this warehouse, so it is
    known to be empty and filled with adds; no Replace, no --allow-replace needed."""
    harness.bing.set_delay(DELAY)
    kill = harness.run_and_kill("apply:create", DELAY * 0.5, "create gap", [])
    harness.bing.set_delay(0)
    assert isinstance(kill, Kill), "the run ended before its kill point"
    KILLS.append(kill)
    assert any(gap.unsaved for gap in kill.gaps.values()), kill.gaps  # the id was not stored
    STARTS["create gap"] = harness.process_starts
    harness.assert_converged(harness.run())
    replaces = harness.build.query("select * from sync_state.uploads where action = 'Replace'")
    assert replaces.height == 0
    survived([kill])
