"""Shared fixtures: a demo warehouse built once per test session by the real dbt, the
stand-in for Microsoft (as the sync tests, the client tests and the SDK tests each want it),
and the crash-safety harness with its per-module summary."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bingads.util import _PollingBlocker

from sync.standin import StandIn
from tests.harness import bing as bing_harness
from tests.harness import kills
from tests.harness.crash import RecordingStandIn, Sync
from tests.harness.dbt import Build, copy_build, dbt, new_build
from tests.harness.sync import OUTPUTS, TOKEN, identifiers_in, sync_env

#: Seconds the test stand-in takes to process each uploaded file (never 0: no instant world).
PROCESSING_SECONDS = 0.05


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """`dbt build` on the demo seeds, as a fresh clone would run it (read-only for tests)."""
    build = new_build(tmp_path_factory.mktemp("demo"))
    dbt(build, "build")
    return build


@pytest.fixture
def warehouse(demo_build: Build, tmp_path: Path) -> Build:
    """A private copy of the demo warehouse (and its manifest) that a test may change."""
    return copy_build(demo_build, tmp_path)


@pytest.fixture
def bing() -> Iterator[StandIn]:
    """The loopback stand-in for Microsoft's Bulk service (the only thing replaced). Like
    Microsoft, it takes a while to process each file (short here): the sync must poll."""
    with StandIn(token=TOKEN, processing_seconds=PROCESSING_SECONDS) as server:
        yield server


@pytest.fixture
def env(warehouse: Build, bing: StandIn, tmp_path: Path) -> dict[str, str]:
    """The environment a scheduled `sync run` would have, pointed at the stand-in."""
    return sync_env(warehouse, bing.url, str(tmp_path / "work"))


@pytest.fixture
def standin() -> Iterator[StandIn]:
    """A bare stand-in (no processing delay) for the tests of sync.bing and of the stand-in
    itself, accepting tests.harness.bing.TOKEN."""
    with StandIn(token=bing_harness.TOKEN) as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty folder for sync.bing's bulk files, so a test can check none are left behind."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def fast_sdk_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's own poll loop (used directly by the stand-in tests) waits 1 s per poll by
    default."""
    monkeypatch.setattr(_PollingBlocker, "INITIAL_STATUS_CHECK_INTERVAL_IN_MS", 10)


@pytest.fixture
def harness(warehouse: Build, tmp_path: Path) -> Iterator[Sync]:
    """`sync run` as a process against a recording stand-in, for the crash-safety tests."""
    with RecordingStandIn() as recording:
        sync = Sync(warehouse, recording, tmp_path / "work", tmp_path / "logs")
        try:
            yield sync
        finally:
            sync.stop()


@pytest.fixture(scope="module")
def crash_summary(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a crash-safety module: kill points tried, where they landed, process starts,
    time (the ledger in tests.harness.kills starts empty for each module)."""
    kills.KILLS.clear()
    kills.STARTS.clear()
    started = time.monotonic()
    yield
    if not kills.KILLS and not kills.STARTS:
        return
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n".join(kills.summary(time.monotonic() - started)))


class _SyncLogCapture(logging.Handler):
    """Keeps every record of the sync's and the stand-in's loggers, at DEBUG."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("sync"):
            OUTPUTS.append(self.format(record))


@pytest.fixture(scope="session", autouse=True)
def capture_sync_logs() -> Iterator[None]:
    handler = _SyncLogCapture(level=logging.DEBUG)
    logging.getLogger().addHandler(handler)
    logging.getLogger("sync").setLevel(logging.DEBUG)
    yield
    logging.getLogger().removeHandler(handler)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No email, hash or token in anything the sync printed or logged during the suite."""
    leaks = [(i, found) for i, text in enumerate(OUTPUTS) for found in identifiers_in(text or "")]
    leaks += [(i, TOKEN) for i, text in enumerate(OUTPUTS) if TOKEN in (text or "")]
    print(
        f"\nleak scan: {len(OUTPUTS)} outputs and log records of the sync scanned, {len(leaks)} identifier(s) found"
    )
    if leaks:
        for i, found in leaks[:20]:
            print(f"  LEAK in output {i}: {found[:12]}...")
        session.exitstatus = 1
