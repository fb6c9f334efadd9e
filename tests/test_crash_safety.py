"""Crash safety of `sync run`, the real program killed by SIGKILL (the sync spec, sync.md):

    Killing the process at any point, then running again, ends in the same state as an
    uninterrupted run.
    Temporary bulk files ... those of a killed run are deleted by the next run.
    Two runs at once: the second waits for the lock up to a set time, then exits 1 with a
    clear message; the state is never corrupted.

`sync run` runs as a process (the console script) against a stand-in served by this test
process and slowed down with `set_delay`, so a run lasts a few seconds and a kill can land in
every step. Kills are chained: each killed run is followed by another run on the same
warehouse (itself killed, or the completing one), so each kill point costs one process start.
Kill times are spread deterministically (a golden-ratio sequence over windows measured in an
uninterrupted calibration run) and anchored on events where it matters (the process start,
its first request, Microsoft applying an upload), and every kill is classified afterwards by
what the stand-in had received and applied. A summary (kill points, phases hit, process
starts, time) is printed after the module; run with `-s` for a line per kill.

Two tests pin down sync bugs this suite found, now fixed: an upload Microsoft applied but
whose result was never committed must still be undone or redone when the audience changes
before the rerun (the `pending` state table), and a run must not delete a live run's bulk
folder (each run holds a lock on its own).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.crash import (
    Applied,
    Finished,
    Kill,
    RecordingStandIn,
    Snapshot,
    Sync,
    audiences,
    change_audiences,
    phase_table,
    snapshot,
)
from tests.harness.dbt import Build

DELAY = 0.08  # seconds the stand-in waits before answering any request while a run is killed
KILL_POINTS = 30  # in the sweep alone
PHI = 0.6180339887498949  # golden-ratio step: a deterministic, evenly spread sequence in [0, 1)

KILLS: list[Kill] = []  # every kill of this module, for the summary
STARTS: Counter[str] = Counter()  # process starts per test


def new_hash(tag: str) -> str:
    return hashlib.sha256(f"crash-safety:{tag}".encode()).hexdigest()


def copy_build(demo: Build, where: Path) -> Build:
    where.mkdir(parents=True, exist_ok=True)
    copy = Build(where, where / "warehouse.duckdb", demo.profiles_dir, where / "target")
    shutil.copy(demo.database, copy.database)
    shutil.copytree(demo.target_path, copy.target_path)
    return copy


@pytest.fixture
def harness(warehouse: Build, tmp_path: Path) -> Iterator[Sync]:
    with RecordingStandIn() as bing:
        sync = Sync(warehouse, bing, tmp_path / "work", tmp_path / "logs")
        try:
            yield sync
        finally:
            sync.stop()


@pytest.fixture
def reference(demo_build: Build, tmp_path: Path) -> Iterator[Sync]:
    """A second warehouse and stand-in, for the uninterrupted runs to compare with."""
    with RecordingStandIn() as bing:
        sync = Sync(
            copy_build(demo_build, tmp_path / "reference"),
            bing,
            tmp_path / "reference" / "work",
            tmp_path / "reference" / "logs",
        )
        try:
            yield sync
        finally:
            sync.stop()


@pytest.fixture(scope="module", autouse=True)
def summary(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module: kill points tried, where they landed, process starts, time."""
    started = time.monotonic()
    yield
    if not KILLS:
        return
    ok = sum(k.survived for k in KILLS)
    lines = [
        "",
        f"crash safety: {len(KILLS)} kill points tried, {ok} survived (the complete run after "
        f"them converged), {len(KILLS) - ok} did not; "
        f"{sum(STARTS.values())} `sync run` processes, {time.monotonic() - started:.0f} s; "
        "phases:",
        phase_table(KILLS),
        "  process starts per test: " + ", ".join(f"{k} {v}" for k, v in STARTS.items()),
    ]
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n".join(lines))


def survived(kills: list[Kill]) -> None:
    for kill in kills:
        kill.survived = True


def show(title: str, kills: list[Kill], extra: str = "") -> None:
    """A line per kill (shown with -s, or when the test fails)."""
    print(f"\n{title}: {len(kills)} kill(s){extra}")
    for k in kills:
        gaps = sum(len(g.ahead) + len(g.behind) + g.unsaved for g in k.gaps.values())
        print(
            f"  {k.label:10s} killed {k.after:5.2f} s after start ({k.trigger:28s}) "
            f"{len(k.calls):2d} calls, {len(k.left_files)} bulk file(s) left, "
            f"{gaps} in flight: {k.phase}"
        )


# ---------------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class Calibration:
    """Timings of an uninterrupted run with the stand-in delay on."""

    first_call: float  # process start -> first request (imports, lock, state, plan)
    seconds: float  # process start -> exit
    calls: int
    after_apply: float  # an upload applied -> the next upload asks for its URL
    after_result: float  # its result file asked for -> the next upload asks for its URL

    @property
    def per_call(self) -> float:
        return (self.seconds - self.first_call) / self.calls


def calibrate(ref: Sync) -> Calibration:
    ref.bing.set_delay(DELAY)
    mark, applied_mark = len(ref.bing.stamps), len(ref.bing.applied)
    result = ref.run()
    ref.bing.set_delay(0)
    ref.assert_converged(result)
    stamps, applied = ref.bing.stamps[mark:], ref.bing.applied[applied_mark:]
    windows, results = [], []
    for a in applied:
        later = [t for t, op in stamps if t > a.at and op == "GetBulkUploadUrl"]
        download = [t for t, op in stamps if t > a.at and op == "DownloadFile"]
        if later and download:
            windows.append(later[0] - a.at)
            results.append(later[0] - download[0])
    assert result.first_call is not None and windows
    return Calibration(
        result.first_call,
        result.seconds,
        len(stamps),
        statistics.median(windows),
        statistics.median(results),
    )


def kill_point(k: int, cal: Calibration) -> tuple[str, float, int]:
    """The k-th kill point: (anchor, seconds after it, which upload). Deterministic.

    Of every six: one timed from the process start (imports, warehouse lock, abandoning the
    runs of the killed process, planning, up to the first request); two from the first
    request, over ten request times (list lookup, creating a list, the first uploads); two
    from the moment Microsoft applied the run's first or second upload, over the later part
    of the window up to the next upload (the early part is the stand-in's own delay); one
    from the run asking for that upload's result file, over the time its answer takes plus
    the client's parsing and commit, up to the next request.
    """
    x = ((k + 1) * PHI) % 1.0
    slot, nth = k % 6, 1 + (k // 6) % 2
    if slot == 0:
        return "start", cal.first_call * (0.5 + 0.5 * x), 1
    if slot in (1, 3):
        return "call", x * 10 * cal.per_call, 1
    if slot in (2, 4):
        return "apply", (0.35 + 0.85 * x) * cal.after_apply, nth
    return "result", DELAY + x * 1.3 * max(cal.after_result - DELAY, 0.01), nth


# ---------------------------------------------------------------------------------- changes
def round_change(
    snap: Snapshot, models: list[str], round_no: int, comeback: dict[str, list[str]]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """A next `dbt build`: per audience up to 40% leave (so no guard refuses), some new people
    enter, one person moves from a cart abandoner list into the suppression list, and those
    who left the suppression list last round come back."""
    removes: dict[str, list[str]] = {}
    adds: dict[str, list[str]] = {}
    for i, model in enumerate(models):
        hashes = sorted(snap.tables[model])
        n = min(len(hashes) * 2 // 5, 1 + (i + round_no) % 2)
        start = (round_no * 3 + i) % max(1, len(hashes))
        removes[model] = (hashes[start:] + hashes[:start])[:n]
        adds[model] = [new_hash(f"{round_no}:{model}:{j}") for j in range((i + round_no) % 3)]
    exclusion, cart = models[0], "audience_cart_abandon_0_1d"
    mover = sorted(snap.tables[cart] - set(removes[cart]))[0]
    removes[cart].append(mover)
    adds[exclusion].append(mover)
    for model, hashes in comeback.items():
        adds[model] += [h for h in hashes if h not in snap.tables[model]]
    return removes, adds


# ---------------------------------------------------------------------------------- the sweep
def test_kill_anywhere_then_rerun_converges(harness: Sync, reference: Sync) -> None:
    """Chains of SIGKILLs over a first run (create lists, add everyone) and over later runs
    with removes and adds; after each chain one complete run must leave Bing = table = state
    for every list, exactly as the same rounds run uninterrupted on another warehouse."""
    cal = calibrate(reference)  # round 1, uninterrupted, also the reference for round 1
    kills: list[Kill] = []
    quotas = [12, 10, 8, 6, 6, 6]  # kill points per round; rounds go on until KILL_POINTS
    models = harness.models
    comeback: dict[str, list[str]] = {}
    k = 0
    for round_no, quota in enumerate(quotas, start=1):
        if len(kills) >= KILL_POINTS:
            break
        if round_no > 1:
            removes, adds = round_change(
                snapshot(harness.build, models), models, round_no, comeback
            )
            comeback = {models[0]: removes[models[0]]}
            change_audiences(harness.build, removes, adds)
            change_audiences(reference.build, removes, adds)
            reference.assert_converged(reference.run())
        chain: list[Applied] = []
        complete: Finished | None = None
        harness.bing.set_delay(DELAY)
        for _ in range(min(quota, KILL_POINTS - len(kills))):
            anchor, seconds, nth = kill_point(k, cal)
            k += 1
            outcome = harness.run_and_kill(anchor, seconds, f"round {round_no}", chain, nth)
            if isinstance(outcome, Finished):  # the round's work was done before the kill:
                complete = outcome  # this run is the chain's complete run
                break
            kills.append(outcome)
            KILLS.append(outcome)
        harness.bing.set_delay(0)
        harness.assert_converged(complete or harness.run())
        survived(kills)
        assert harness.outcome() == reference.outcome(), f"round {round_no} differs"
    STARTS["sweep"] = harness.process_starts + reference.process_starts
    show(
        "kill anywhere, then rerun",
        kills,
        f"; calibration: first call {cal.first_call:.2f} s, run {cal.seconds:.2f} s, "
        f"{cal.calls} calls, upload applied -> next upload {cal.after_apply * 1000:.0f} ms, "
        f"result asked for -> next upload {cal.after_result * 1000:.0f} ms",
    )
    print(phase_table(kills))
    assert len(kills) >= KILL_POINTS
    phases = Counter(kill.phase for kill in kills)
    assert len(phases) >= 4, phases
    assert any("not yet committed" in p for p in phases), phases  # applied, not yet committed
    assert any(kill.left_files for kill in kills)  # bulk files of killed runs were left ...
    # ... and assert_converged proved that the next complete run deleted them


# ---------------------------------------------------------------------------------- changes
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


# ---------------------------------------------------------------------------------- bulk files
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


def test_killed_run_leaves_bulk_files_that_the_next_run_deletes(harness: Sync) -> None:
    """During an upload the run's files are in <SYNC_WORK_DIR>/cio-bing-sync-<uid>/<run id>/
    (0700); a SIGKILL leaves them; the next run deletes them and leaves nothing itself."""
    harness.bing.set_delay(DELAY * 2)
    proc, _out, _err = harness.start()
    started, deadline = time.monotonic(), time.monotonic() + 60
    # wait for the first member upload to be on its way: its zip is in the run's folder
    at = harness.bing.wait_event(
        lambda b: next((t for t, op in b.stamps if op == "UploadFile"), None), proc, deadline
    )
    assert at is not None, "the run ended before its first upload"
    folders = harness.run_folders()
    assert len(folders) == 1
    run_dir = folders[0]
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert files, "no bulk file in the run's folder during an upload"
    assert oct(run_dir.stat().st_mode & 0o777) == oct(0o700)
    assert oct(harness.run_parent.stat().st_mode & 0o777) == oct(0o700)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    harness.bing.wait_idle()
    assert [p for p in run_dir.rglob("*") if p.is_file()] == files  # left by the killed run
    run_id = run_dir.name
    assert run_id in snapshot(harness.build, harness.models).run_ids
    harness.bing.set_delay(0)
    harness.assert_converged(harness.run())
    assert not run_dir.exists()
    assert not harness.run_folders()
    STARTS["bulk files"] = harness.process_starts
    print(f"\nbulk files: run {run_id} killed after {at - started:.2f} s left "
          f"{len(files)} file(s); the next run deleted them")  # fmt: skip


# ---------------------------------------------------------------------------------- the lock
def test_second_run_gives_up_or_waits_for_the_lock(harness: Sync) -> None:
    """One slow run holds the warehouse. A second with --lock-timeout 1 exits 1 saying so,
    while the first is still running; a third with a long timeout waits for the first to
    finish, then runs (with nothing left to send). The state ends consistent."""
    harness.bing.set_delay(0.12)
    mark = len(harness.bing.stamps)
    t0 = time.monotonic()
    first, out1, err1 = harness.start()
    at = harness.bing.wait_event(
        lambda b: b.stamps[mark][0] if len(b.stamps) > mark else None, first, t0 + 60
    )
    assert at is not None, "the first run ended before calling Microsoft"
    t1 = time.monotonic()
    impatient, out2, err2 = harness.start("--lock-timeout", "1")
    patient, out3, err3 = harness.start("--lock-timeout", "120")
    gave_up = harness.finish(impatient, out2, err2, t1, len(harness.bing.stamps))
    assert first.poll() is None, "the first run finished before the second gave up"
    assert gave_up.code == 1, gave_up.stderr
    assert "lock" in gave_up.stderr.lower(), gave_up.stderr
    assert "lock" in gave_up.doc.get("error", "").lower(), gave_up.doc
    done = harness.finish(first, out1, err1, t0, mark)
    first_end = time.monotonic()
    calls_after_first = len(harness.bing.stamps)
    harness.bing.set_delay(0)
    waited = harness.finish(patient, out3, err3, t1, calls_after_first)
    harness.assert_converged(done)
    harness.assert_converged(waited)
    assert waited.seconds > first_end - t1, "the waiting run finished before the first one"
    sent = [op for _, op in harness.bing.stamps[calls_after_first:] if "Upload" in op]
    assert sent == [], "the waiting run sent something"  # it only looked the lists up
    assert all(v["sent_adds"] == v["sent_removes"] == 0 for v in waited.doc["lists"])
    STARTS["lock"] = harness.process_starts
    print(f"\nlock: first run {done.seconds:.1f} s; --lock-timeout 1 gave up after "
          f"{gave_up.seconds:.1f} s; the waiting run ended {waited.seconds:.1f} s after "
          "it started, with nothing to send")  # fmt: skip


class LiveRunDisturbed(AssertionError):
    """A run deleted the bulk folder of another run that was still alive."""


def test_a_run_on_another_warehouse_leaves_a_live_runs_bulk_files_alone(
    harness: Sync, demo_build: Build, tmp_path: Path
) -> None:
    """Leftovers are deleted by 'whoever holds the warehouse lock'; a run on another
    warehouse (another project or target, same machine and temp folder) holds another lock
    and must not delete the folder of a run that is alive."""
    with RecordingStandIn() as other_bing:
        other = Sync(
            copy_build(demo_build, tmp_path / "other"), other_bing, harness.workdir,
            tmp_path / "other" / "logs",
        )  # fmt: skip
        harness.bing.set_delay(0.4)
        mark = len(harness.bing.stamps)
        t0 = time.monotonic()
        proc, out, err = harness.start()
        try:
            at = harness.bing.wait_event(
                lambda b: next((t for t, op in b.stamps[mark:] if op == "UploadFile"), None),
                proc,
                t0 + 60,
            )
            assert at is not None, "the slow run ended before its first upload"
            [live] = harness.run_folders()
            other.assert_converged(other.run(), live=(live,))
            still_running = proc.poll() is None
            kept = live.exists()
            slow = harness.finish(proc, out, err, t0, mark)
            harness.bing.set_delay(0)
            STARTS["other warehouse"] = harness.process_starts + other.process_starts
            assert still_running, "the slow run ended before the other run; slow it down more"
            if not kept or slow.code != 0:
                raise LiveRunDisturbed(
                    f"the other run deleted {live.name} while it ran; it exited {slow.code}: "
                    + slow.stderr.strip().splitlines()[-1]
                )
            harness.assert_converged(slow)
        finally:
            other.stop()
