"""Crash safety of `sync run`, the real program killed by SIGKILL (the sync spec, sync.md):

    Killing the process at any point, then running again, ends in the same state as an
    uninterrupted run.

`sync run` runs as a process (the console script) against a stand-in served by this test
process and slowed down with `set_delay`, so a run lasts a few seconds and a kill can land in
every step. Kills are chained: each killed run is followed by another run on the same
warehouse (itself killed, or the completing one), so each kill point costs one process start.
Kill times are spread deterministically (a golden-ratio sequence over windows measured in an
uninterrupted calibration run) and anchored on events where it matters (the process start,
its first request, Microsoft applying an upload), and every kill is classified afterwards by
what the stand-in had received and applied. A summary (kill points, phases hit, process
starts, time) is printed after the module (conftest.py's `crash_summary`); run with `-s` for
a line per kill.
"""

import statistics
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
    change_audiences,
    phase_table,
    snapshot,
)
from tests.harness.dbt import Build, copy_build
from tests.harness.kills import DELAY, KILLS, STARTS, new_hash, show, survived

pytestmark = pytest.mark.usefixtures("crash_summary")

KILL_POINTS = 30  # in the sweep alone
PHI = 0.6180339887498949  # golden-ratio step: a deterministic, evenly spread sequence in [0, 1)


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
