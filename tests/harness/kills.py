"""What the crash-safety test modules share: the stand-in delay a killed run gets, the ledger of
every kill and process start (read by the `crash_summary` fixture of conftest.py, which
prints it after each module), fresh hashes and the line-per-kill printout.

The kill machinery itself (RecordingStandIn, Sync, the phases) is in tests.harness.crash."""

from __future__ import annotations

import hashlib
from collections import Counter

from tests.harness.crash import Kill, phase_table

DELAY = 0.08  # seconds the stand-in waits before answering any request while a run is killed

KILLS: list[Kill] = []  # every kill of the current module, for the summary
STARTS: Counter[str] = Counter()  # process starts per test of the current module


def new_hash(tag: str) -> str:
    """A member hash no audience holds yet, stable per tag."""
    return hashlib.sha256(f"crash-safety:{tag}".encode()).hexdigest()


def survived(kills: list[Kill]) -> None:
    """Mark kills whose chain ended in a converged complete run."""
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


def summary(seconds: float) -> list[str]:
    """The module's summary: kill points tried, where they landed, process starts, time."""
    lines = [""]
    if KILLS:
        ok = sum(k.survived for k in KILLS)
        lines += [
            f"crash safety: {len(KILLS)} kill points tried, {ok} survived (the complete run "
            f"after them converged), {len(KILLS) - ok} did not; "
            f"{sum(STARTS.values())} `sync run` processes, {seconds:.0f} s; phases:",
            phase_table(KILLS),
        ]
    else:
        lines.append(f"crash safety: {sum(STARTS.values())} `sync run` processes, {seconds:.0f} s")
    lines.append("  process starts per test: " + ", ".join(f"{k} {v}" for k, v in STARTS.items()))
    return lines
