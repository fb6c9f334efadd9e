"""The benchmark's reference implementation (bench/reference.py, plain DuckDB) as the tests
use it: bench/ is not a package, so its scripts are loaded from their files, and a run of
the reference gives a connection and the names of the tables it computed."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb

from tests.harness.dbt import DEMO_AS_OF, ROOT

BENCH = ROOT / "bench"


def load_bench(name: str) -> ModuleType:
    """bench/<name>.py as the module `bench_<name>` (registered, so dataclasses resolve)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None, f"no bench/{name}.py"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


reference = load_bench("reference")

Paths = str | Path | Sequence[str | Path]


def run_reference(
    tracks: Paths, identifies: Paths, as_of: str = DEMO_AS_OF, **kwargs: Any
) -> tuple[duckdb.DuckDBPyConnection, dict[str, str]]:
    """The reference over the given files, in a fresh in-memory DuckDB: (connection, table
    names by model)."""
    con = duckdb.connect()
    names = reference.compute(con, tracks, identifies, as_of, **kwargs)
    return con, names


def person_rows(
    con: duckdb.DuckDBPyConnection, names: dict[str, str], columns: str
) -> dict[str, tuple[Any, ...]]:
    """person_id -> the given columns (comma-separated SQL) of a run's person_states."""
    rows = con.execute(f"select person_id, {columns} from {names['person_states']}").fetchall()
    return {r[0]: r[1:] for r in rows}
