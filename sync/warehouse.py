"""The one door to the warehouse: run SQL, fetch results as polars, load a frame, one transaction.

Every engine-specific line of the sync lives here (DuckDB today). Moving to Snowflake or
Databricks means another implementation of `Warehouse`, not edits across the package.
Connection details come from the same dbt profile and target `dbt build` used.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import polars as pl

from sync.errors import ConfigError, LockTimeout, WarehouseError
from sync.redact import scrub

log = logging.getLogger("sync.warehouse")
T = TypeVar("T")

#: DuckDB memory_limit of the sync's connection (env SYNC_DUCKDB_MEMORY_LIMIT overrides it).
SYNC_MEMORY_LIMIT = "128MB"


def quote_ident(name: str) -> str:
    """Quote one identifier part for SQL (names come from the manifest, not from users' data)."""
    return '"' + name.replace('"', '""') + '"'


class Warehouse:
    """A DuckDB database opened from a dbt-duckdb target.

    DuckDB lets one process open a database file at a time. So that `dbt build` can run
    while `sync run` waits on Microsoft, the run gives the file back between its short
    transactions (`release`; the next statement opens it again, waiting for the file up to
    the lock timeout), and two runs are kept apart by a lock of their own (`run_lock`).
    """

    engine = "duckdb"

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        database_name: str,
        reopen: Callable[[], duckdb.DuckDBPyConnection] | None = None,
    ) -> None:
        self._open: duckdb.DuckDBPyConnection | None = con
        self._reopen = reopen
        self._in_transaction = False
        self._scratch: list[str] = []  # in-memory schemas attached by scratch_schema
        self.database_name = database_name

    @property
    def _con(self) -> duckdb.DuckDBPyConnection:
        if self._open is None:
            assert self._reopen is not None
            self._open = self._reopen()
        return self._open

    def release(self) -> None:
        """Give the database file back (other processes may open it) until the next
        statement; kept open inside a transaction, or when it cannot be opened again."""
        if (
            self._open is not None
            and self._reopen is not None
            and not self._in_transaction
            and not self._scratch
        ):
            self._open.close()
            self._open = None

    @staticmethod
    @contextmanager
    def run_lock(target: Mapping[str, Any], *, lock_timeout: float) -> Iterator[None]:
        """One `sync run` per warehouse: an exclusive lock on a file beside the database
        (the kernel drops it if the process dies), waited for up to `lock_timeout` s. Taken
        before the database is opened, so a waiting run never holds the file."""
        lock_path = Path(f"{_database_path(target)}.sync-run.lock")
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)

        def take() -> None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                raise _Busy from exc

        try:
            _while_busy(
                take,
                lock_timeout,
                waiting="another sync run is running; waiting for its run lock",
                timed_out=(
                    f"another `sync run` holds the run lock of this warehouse and kept it for "
                    f"{lock_timeout:.0f} s; try again when it finishes, or raise --lock-timeout"
                ),
            )
            yield
        finally:
            os.close(fd)  # releases the lock

    @classmethod
    def open(cls, target: Mapping[str, Any], *, lock_timeout: float) -> Warehouse:
        """Open the target's database, waiting up to `lock_timeout` s for another writer.

        A relative `path` is taken from the current folder, as dbt-duckdb does, so `dbt build`
        and `sync run` started from the same place open the same file.
        """
        path = _database_path(target)
        config = {k: str(v) for k, v in (target.get("settings") or {}).items()}

        def reopen() -> duckdb.DuckDBPyConnection:
            return _connect(path, config, lock_timeout)

        con = reopen()
        name = con.sql("select current_database()").fetchall()[0][0]
        return cls(con, name, reopen)

    def close(self) -> None:
        if self._open is not None:
            for name in self._scratch:  # attached to the process's shared database instance
                self._open.execute(f"detach {quote_ident(name)}")
            self._scratch.clear()
            self._open.close()
            self._open = None
        self._reopen = None

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
        """All or nothing: a crash or error inside leaves the state as it was before. Inside
        another transaction it is part of that one."""
        if self._in_transaction:
            yield
            return
        self.execute("begin transaction")
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self.execute("rollback")
            raise
        finally:
            self._in_transaction = False
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

    def scratch_schema(self, schema: str) -> None:
        """`schema` as an empty in-memory database of this connection only (attached under
        that name, so `schema.table` resolves to it): read-only commands read empty state
        tables without creating anything in the warehouse. Detached again by `close`, and
        never given back by `release` (it would be lost)."""
        self.execute(f"attach ':memory:' as {quote_ident(schema)}")
        self._scratch.append(schema)

    def is_sha256_hex(self, column: str) -> str:
        """SQL predicate: `column` is a lowercase 64-hex SHA-256."""
        return f"regexp_full_match({column}, '[0-9a-f]{{64}}')"


def _database_path(target: Mapping[str, Any]) -> str:
    """The target's DuckDB file, resolved as dbt-duckdb does (a relative path is taken from
    the current folder, so `dbt build` and `sync run` started there open the same file)."""
    if target.get("type") != "duckdb":
        raise ConfigError(
            f"profile target type {target.get('type')!r} is not supported by the sync yet "
            "(DuckDB only); the warehouse module is the one place to add it"
        )
    raw_path = str(target.get("path") or ":memory:")
    if raw_path == ":memory:" or raw_path.startswith(("md:", "motherduck:")):
        raise ConfigError(
            f"profile path {raw_path!r}: the sync needs a DuckDB file (its state lives there)"
        )
    resolved = Path(raw_path).expanduser().resolve()
    if not resolved.exists():
        raise ConfigError(
            f"warehouse file {resolved} does not exist: run `dbt build` first "
            "(from the same folder: a relative profile path is taken from it)"
        )
    return str(resolved)


class _Busy(Exception):
    """Someone else holds the lock an attempt needs; worth waiting for."""


def _while_busy(
    attempt: Callable[[], T], lock_timeout: float, *, waiting: str, timed_out: str
) -> T:
    """`attempt()` until it does not raise _Busy, backing off 0.2 s doubling to 5 s, for up
    to `lock_timeout` s; then LockTimeout(`timed_out`)."""
    deadline = time.monotonic() + lock_timeout
    delay, said = 0.2, False
    while True:
        try:
            return attempt()
        except _Busy as busy:
            if time.monotonic() >= deadline:
                raise LockTimeout(timed_out) from busy.__cause__
            if not said:
                log.info("%s", waiting)
                said = True
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _connect(path: str, config: dict[str, str], lock_timeout: float) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting up to `lock_timeout` s while another process (a `dbt build`)
    has it, and apply the profile's settings."""

    def connect() -> duckdb.DuckDBPyConnection:
        try:
            return duckdb.connect(path)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise ConfigError(f"cannot open the warehouse: {exc}") from exc
            raise _Busy from exc

    con = _while_busy(
        connect,
        lock_timeout,
        waiting="warehouse busy (another sync or dbt build); waiting for its lock",
        timed_out=(
            f"the warehouse is locked by another process (a running `sync run` or `dbt build`) "
            f"and stayed locked for {lock_timeout:.0f} s; try again when it finishes, or raise "
            "--lock-timeout"
        ),
    )
    # The sync's queries are joins over hash sets: its own budget, not the one the profile
    # gives `dbt build`, keeps its peak RSS low (first run of a 1M-member list: ~480 MB
    # at 128MB, ~660 MB at the profile's 2GB; DuckDB spills a little instead).
    settings = {
        **config,
        "memory_limit": os.environ.get("SYNC_DUCKDB_MEMORY_LIMIT") or SYNC_MEMORY_LIMIT,
    }
    for key, value in settings.items():  # as dbt-duckdb does: SET after connecting
        try:
            con.execute(f"set {quote_ident(key)} = ?", [value]).fetchall()
        except duckdb.Error as exc:
            con.close()
            raise ConfigError(f"profile setting {key!r}: {exc}") from exc
    return con
