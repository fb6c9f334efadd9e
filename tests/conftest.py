"""Shared fixtures: a demo warehouse built once per test session by the real dbt."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.standin import StandIn
from tests.harness.dbt import Build, dbt, new_build
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
    copy = Build(
        tmp_path, tmp_path / "warehouse.duckdb", demo_build.profiles_dir, tmp_path / "target"
    )
    shutil.copy(demo_build.database, copy.database)
    shutil.copytree(demo_build.target_path, copy.target_path)
    return copy


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
