"""The one door to the warehouse: run SQL, fetch results as polars, load a frame, one transaction.

Every engine-specific line of the sync lives here (DuckDB today). Moving to Snowflake or
Databricks means another implementation of `Warehouse`, not edits across the package.
Connection details come from the same dbt profile and target `dbt build` used.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from sync.errors import ConfigError, LockTimeout, WarehouseError
from sync.redact import scrub

log = logging.getLogger("sync.warehouse")

#: DuckDB memory_limit of the sync's connection (env SYNC_DUCKDB_MEMORY_LIMIT overrides it).
SYNC_MEMORY_LIMIT = "128MB"


def quote_ident(name: str) -> str:
    """Quote one identifier part for SQL (names come from the manifest, not from users' data)."""
    return '"' + name.replace('"', '""') + '"'


class Warehouse:
    """A DuckDB database opened from a dbt-duckdb target.

    DuckDB lets one process write a database file at a time, so holding the connection is
    the run lock: a second `sync run` (or a `dbt build`) waits until this one closes it.
    """

    engine = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection, database_name: str) -> None:
        self._con = con
        self.database_name = database_name

    @classmethod
    def open(cls, target: Mapping[str, Any], *, lock_timeout: float) -> Warehouse:
        """Open the target's database, waiting up to `lock_timeout` s for another writer.

        A relative `path` is taken from the current folder, as dbt-duckdb does, so `dbt build`
        and `sync run` started from the same place open the same file.
        """
        if target.get("type") != "duckdb":
            raise ConfigError(
                f"profile target type {target.get('type')!r} is not supported by the sync yet "
                "(DuckDB only); the warehouse module is the one place to add it"
            )
        raw_path = str(target.get("path") or ":memory:")
        if raw_path == ":memory:" or raw_path.startswith(("md:", "motherduck:")):
            raise ConfigError(
                f"profile path {raw_path!r}: the sync needs a DuckDB file (its state lives there "
                "and its file lock keeps two runs apart)"
            )
        resolved = Path(raw_path).expanduser().resolve()
        if not resolved.exists():
            raise ConfigError(
                f"warehouse file {resolved} does not exist: run `dbt build` first "
                "(from the same folder: a relative profile path is taken from it)"
            )
        path = str(resolved)
        config = {k: str(v) for k, v in (target.get("settings") or {}).items()}
        deadline = time.monotonic() + lock_timeout
        delay = 0.2
        while True:
            try:
                con = duckdb.connect(path)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise ConfigError(f"cannot open the warehouse: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"the warehouse is locked by another process (a running `sync run` or "
                        f"`dbt build`) and stayed locked for {lock_timeout:.0f} s; try again "
                        "when it finishes, or raise --lock-timeout"
                    ) from exc
                log.info("warehouse busy (another sync or dbt build); waiting for its lock")
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        # The sync's queries are joins over hash sets: its own budget, not the one the profile
        # gives `dbt build`, keeps its peak RSS low (first run of a 1M-member list: ~480 MB
        # at 128MB, ~660 MB at the profile's 2GB; DuckDB spills a little instead).
        config["memory_limit"] = os.environ.get("SYNC_DUCKDB_MEMORY_LIMIT") or SYNC_MEMORY_LIMIT
        for key, value in config.items():  # as dbt-duckdb does: SET after connecting
            try:
                con.execute(f"set {quote_ident(key)} = ?", [value]).fetchall()
            except duckdb.Error as exc:
                con.close()
                raise ConfigError(f"profile setting {key!r}: {exc}") from exc
        name = con.sql("select current_database()").fetchall()[0][0]
        return cls(con, name)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ SQL
    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Engine errors as WarehouseError, their text scrubbed: DuckDB quotes values it
        could not convert, and those may be emails or hashes."""
        try:
            yield
        except duckdb.Error as exc:
            raise WarehouseError(f"{type(exc).__name__}: {scrub(str(exc))}") from None

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self._errors():
            self._con.execute(sql, params or []).fetchall()  # drained: DuckDB 2 keeps it open

    def fetch(self, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        """Run a query and return its result as a polars DataFrame (via Arrow, no row loop)."""
        with self._errors():
            return self._con.sql(sql, params=list(params or [])).pl()

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        with self._errors():
            rows = self._con.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: a crash or error inside leaves the state as it was before."""
        self.execute("begin transaction")
        try:
            yield
        except BaseException:
            self.execute("rollback")
            raise
        self.execute("commit")

    @contextmanager
    def frame(self, name: str, df: pl.DataFrame) -> Iterator[str]:
        """Expose a polars frame to SQL under `name` for the duration of the block.

        Handed over as Arrow string views, which DuckDB reads in place: the default export
        copies every string (~70 MB more at a million hashes)."""
        self._con.register(name, df.to_arrow(compat_level=pl.CompatLevel.newest()))
        try:
            yield name
        finally:
            self._con.unregister(name)

    # ------------------------------------------------------------------ catalog
    def relation(self, database: str | None, schema: str, identifier: str) -> str:
        """A fully quoted relation name; the database part is dropped when it is this file's."""
        parts = [schema, identifier]
        if database and database != self.database_name:
            parts.insert(0, database)
        return ".".join(quote_ident(p) for p in parts)

    def columns(self, schema: str, identifier: str) -> dict[str, str] | None:
        """Column name -> type of a table or view, or None when it does not exist."""
        rows = self._con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? and table_catalog = current_database() "
            "order by ordinal_position",
            [schema, identifier],
        ).fetchall()
        return {name: dtype for name, dtype in rows} or None

    def ensure_schema(self, schema: str) -> None:
        self.execute(f"create schema if not exists {quote_ident(schema)}")

    def is_sha256_hex(self, column: str) -> str:
        """SQL predicate: `column` is a lowercase 64-hex SHA-256."""
        return f"regexp_full_match({column}, '[0-9a-f]{{64}}')"
