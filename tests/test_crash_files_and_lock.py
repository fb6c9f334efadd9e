"""Crash safety of `sync run`'s bulk files and warehouse lock, the real program killed by
SIGKILL or run twice at once (the sync spec, sync.md):

    Temporary bulk files ... those of a killed run are deleted by the next run.
    Two runs at once: the second waits for the lock up to a set time, then exits 1 with a
    clear message; the state is never corrupted.

One test pins down a sync bug this suite found, now fixed: a run must not delete a live run's
bulk folder (each run holds a lock on its own). The process starts are printed after the
module (conftest.py's `crash_summary`).
"""

import os
import signal
import time
from pathlib import Path

import pytest

from tests.harness.crash import RecordingStandIn, Sync, snapshot
from tests.harness.dbt import Build, copy_build
from tests.harness.kills import DELAY, STARTS

pytestmark = pytest.mark.usefixtures("crash_summary")


# ---------------------------------------------------------------------------------- bulk files
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
