"""Build the dbt project the way a user does, through dbt's programmatic runner.

Shared by the dbt tests and the sync tests: every build gets its own DuckDB file, target
folder and profiles.yml (copied from profiles.yml.example, so the example is proven to work
as shipped) under a temporary directory, and never touches the working tree's state.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import yaml
from dbt.cli.main import dbtRunner

ROOT = Path(__file__).resolve().parents[2]
# The hand-worked people of shared/fixtures/audiences, copied so the suite needs no sibling folder.
AUDIENCE_FIXTURES = ROOT / "tests" / "fixtures" / "audiences"
DEMO_AS_OF = "2026-11-28T12:00:00Z"


def registry(project_dir: Path = ROOT) -> list[dict[str, object]]:
    """The audience registry's entries (models/audiences/_audiences.yml), as analysts wrote
    them: name, family, priority, enabled, list_name, role. The tests' audience lists come
    from here, so a new audience is covered without editing a test."""
    doc = yaml.safe_load((project_dir / "models" / "audiences" / "_audiences.yml").read_text())
    entries = []
    for model in doc["models"]:
        meta = model["config"]["meta"]
        entries.append(
            {"name": model["name"], **meta["audience"], **meta["bing"]}
            | {"enabled": meta["audience"].get("enabled", True)}
        )
    return entries


def exclusive_states(project_dir: Path = ROOT) -> tuple[str, ...]:
    """The enabled exclusive states, highest priority first (state_priority = index + 1)."""
    entries = [e for e in registry(project_dir) if e["family"] == "exclusive" and e["enabled"]]
    return tuple(
        str(e["name"]).removeprefix("audience_")
        for e in sorted(entries, key=lambda e: int(str(e["priority"])))
    )


#: The enabled audience tables of the registry, each one Bing list.
AUDIENCES = tuple(str(e["name"]) for e in registry() if e["enabled"])


@dataclass(frozen=True)
class Build:
    """One built warehouse: where its database, profile and manifest are."""

    workdir: Path
    database: Path
    profiles_dir: Path
    target_path: Path
    project: Path = ROOT  # the dbt project (a test that edits audiences builds a copy)

    def env(self) -> dict[str, str]:
        """The environment a user would have set to reach this warehouse."""
        return {"CIO_DUCKDB_PATH": str(self.database), "DBT_PROFILES_DIR": str(self.profiles_dir)}

    def query(self, sql: str) -> pl.DataFrame:
        with duckdb.connect(str(self.database), read_only=True) as con:
            return con.sql(sql).pl()


def dbt(build: Build, *args: str, vars: Mapping[str, object] | None = None) -> None:
    """Run one dbt command against `build`; fail with dbt's own messages."""
    cli = [
        *args,
        "--project-dir", str(build.project),
        "--profiles-dir", str(build.profiles_dir),
        "--target-path", str(build.target_path),
        "--log-path", str(build.workdir / "logs"),
        "--no-use-colors",
    ]  # fmt: skip
    if vars:
        cli += ["--vars", json.dumps(dict(vars))]
    old = os.environ.get("CIO_DUCKDB_PATH")
    os.environ["CIO_DUCKDB_PATH"] = str(build.database)
    try:
        result = dbtRunner().invoke(cli)
    finally:
        _release_duckdb()
        if old is None:
            os.environ.pop("CIO_DUCKDB_PATH", None)
        else:
            os.environ["CIO_DUCKDB_PATH"] = old
    if not result.success:
        failures = []
        for r in getattr(result.result, "results", None) or []:
            if str(r.status) not in ("success", "pass", "skipped"):
                failures.append(f"{r.node.unique_id}: {r.status}: {r.message}")
        raise AssertionError(
            f"dbt {' '.join(args)} failed: {result.exception}\n" + "\n".join(failures)
        )


def _release_duckdb() -> None:
    """dbt-duckdb keeps its database open in-process after a run; close it like the CLI's exit does."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


def copy_build(built: Build, where: Path) -> Build:
    """A private copy of a built warehouse and its manifest (sharing its profile), for a test
    that changes it or runs a second sync beside the first."""
    where.mkdir(parents=True, exist_ok=True)
    copy = Build(
        where, where / "warehouse.duckdb", built.profiles_dir, where / "target", built.project
    )
    shutil.copy(built.database, copy.database)
    shutil.copytree(built.target_path, copy.target_path)
    return copy


def copy_project(where: Path) -> Path:
    """A copy of the dbt project's own files (no state, no target), for a test that edits
    its audiences as an analyst would."""
    for part in ("dbt_project.yml", "models", "macros", "seeds", "snapshots", "tests/dbt"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, where / part)
        else:
            (where / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, where / part)
    return where


def new_build(workdir: Path, project: Path = ROOT) -> Build:
    """A fresh, empty warehouse with a profiles.yml copied from the shipped example."""
    workdir.mkdir(parents=True, exist_ok=True)
    profiles = workdir / "profiles"
    profiles.mkdir(exist_ok=True)
    shutil.copy(ROOT / "profiles.yml.example", profiles / "profiles.yml")
    return Build(workdir, workdir / "warehouse.duckdb", profiles, workdir / "target", project)
