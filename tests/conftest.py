"""Shared fixtures: a demo warehouse built once per test session by the real dbt."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.dbt_project import Build, dbt, new_build


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
