"""The state tables' definitions (DDL), the migrations of state written by earlier versions,
and what a read-only command needs: the state as it is, or an empty stand-in for a warehouse
the sync never ran on (nothing is created in the warehouse)."""

from __future__ import annotations

import re

from sync.errors import ConfigError
from sync.warehouse import Warehouse, quote_ident

DDL = (
    """create table if not exists {s}.lists (
        audience varchar not null,
        list_id bigint not null,
        list_name varchar not null,
        role varchar not null,
        created_at timestamp not null,
        updated_at timestamp not null,
        needs_replace boolean not null default false
    )""",
    """create table if not exists {s}.members (
        list_id bigint not null,
        email_sha256 varchar not null,
        confirmed_at timestamp not null,
        run_id varchar not null
    )""",
    """create table if not exists {s}.pending (
        list_id bigint not null,
        email_sha256 varchar not null,
        action varchar not null,
        run_id varchar not null,
        upload_id varchar
    )""",
    # one row per member upload file: its life (sync/uploads.py)
    """create table if not exists {s}.uploads (
        upload_id varchar not null,
        run_id varchar not null,
        audience varchar not null,
        list_id bigint not null,
        action varchar not null,
        rows bigint not null,
        request_id varchar not null,
        tracking_id varchar,
        state varchar not null,
        recorded_at timestamp not null,
        sent_at timestamp,
        finished_at timestamp,
        error_code integer,
        error_name varchar,
        error_message varchar
    )""",
    """create table if not exists {s}.runs (
        run_id varchar not null,
        audience varchar not null,
        list_name varchar not null,
        role varchar not null,
        list_id bigint,
        status varchar not null,
        started_at timestamp not null,
        finished_at timestamp,
        seconds double,
        audience_rows bigint,
        members_before bigint,
        planned_adds bigint,
        planned_removes bigint,
        sent_adds bigint default 0,
        sent_removes bigint default 0,
        confirmed_adds bigint default 0,
        confirmed_removes bigint default 0,
        rejected bigint default 0,
        guard varchar,
        message varchar,
        request_ids varchar
    )""",
    """create table if not exists {s}.row_errors (
        run_id varchar not null,
        audience varchar not null,
        list_id bigint not null,
        action varchar not null,
        email_sha256 varchar not null,
        error_code integer,
        error_message varchar,
        recorded_at timestamp not null,
        attempts integer not null default 1,
        parked_at timestamp,
        resolved_at timestamp
    )""",
    # Microsoft's sizes of each list, as the run's list check saw them (sync/sizes.py)
    """create table if not exists {s}.list_sizes (
        list_id bigint not null,
        run_id varchar not null,
        observed_at timestamp not null,
        search_size bigint,
        network_size bigint
    )""",
    """create table if not exists {s}.oauth_tokens (
        name varchar not null,
        refresh_token varchar not null,
        source_fingerprint varchar not null,
        updated_at timestamp not null
    )""",
)


# State made by earlier versions: row_errors grew attempts/parked_at and one row per hash;
# lists grew needs_replace (lists synced by an earlier version keep their members as known).
ADDED_COLUMNS = (
    ("lists", "needs_replace", "boolean default false"),
    ("pending", "upload_id", "varchar"),
    ("row_errors", "attempts", "integer default 1"),
    ("row_errors", "parked_at", "timestamp"),
    ("row_errors", "resolved_at", "timestamp"),
)
MIGRATIONS = (
    *(f"alter table {{s}}.{t} add column if not exists {c} {kind}" for t, c, kind in ADDED_COLUMNS),
    """delete from {s}.row_errors where rowid not in (
        select max_by(rowid, recorded_at) from {s}.row_errors group by list_id, email_sha256
    )""",
)
#: States of an upload still at Microsoft, result not collected (sync/uploads.py), and
#: the same as an SQL list.
IN_FLIGHT = ("recorded", "sent")
IN_FLIGHT_SQL = "(" + ", ".join(f"'{state}'" for state in IN_FLIGHT) + ")"
TABLES = tuple(re.search(r"\.(\w+) \(", ddl)[1] for ddl in DDL)


def create(wh: Warehouse, schema: str) -> None:
    """Create the state tables, or bring those of an earlier version up to date (`sync run`)."""
    wh.ensure_schema(schema)
    for ddl in (*DDL, *MIGRATIONS):
        wh.execute(ddl.format(s=quote_ident(schema)))


def readable(wh: Warehouse, schema: str) -> None:
    """Make the state readable without writing to the warehouse: as it is; empty, for this
    connection only, when the sync never ran here; an error naming the fix when an earlier
    version wrote it (only `sync run` migrates)."""
    columns = {t: wh.columns(schema, t) for t in TABLES}
    missing = [t for t, cols in columns.items() if cols is None]
    if len(missing) == len(TABLES):
        wh.scratch_schema(schema)
        for ddl in DDL:
            wh.execute(ddl.format(s=quote_ident(schema)))
        return
    stale = [f"{t} ({c})" for t, c, _ in ADDED_COLUMNS if t not in missing
             and c not in (columns[t] or {})]  # fmt: skip
    if missing or stale:
        raise ConfigError(
            f"the sync's state in schema {schema!r} was written by an earlier version (missing: "
            f"{', '.join(missing + stale)}): run `sync run` once, which brings it up to date"
        )
