"""What the report shows, read from the warehouse as counts: the lists, the run window,
rejected and parked rows, uploads in flight, and the state transitions between two builds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from sync import sizes
from sync.project import Audience
from sync.report.format import MARKERS, PALETTE, _utc
from sync.state import State
from sync.state_schema import IN_FLIGHT_SQL
from sync.warehouse import Warehouse, quote_ident

SNAPSHOT_NAME = "audience_states_snapshot"
DEFAULT_MAX_RUNS = 60
NONE_STATE = "none"


# ---------------------------------------------------------------------------------- data


@dataclass
class ListInfo:
    audience: Audience
    colour: str
    marker: str
    list_id: int | None = None
    members: int = 0
    size: dict[str, Any] | None = None  # Microsoft's matched size and rate (sync/sizes.py)
    coverage: dict[str, Any] | None = None  # identifier coverage (sync/coverage.py)
    last_run_at: datetime | None = None
    last_status: str | None = None


@dataclass
class Transitions:
    """From-state x to-state people counts between two snapshot builds."""

    relation: str
    before: datetime | None = None
    after: datetime | None = None
    states: list[str] = field(default_factory=list)  # the matrix axes, `none` last
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    note: str | None = None  # set when there is no matrix to draw


@dataclass
class ReportData:
    generated_at: datetime
    database: str
    state_schema: str
    lists: list[ListInfo]
    runs: pl.DataFrame  # one row per run in the window: run_id, started_at (in order)
    per_list: pl.DataFrame  # run_id, audience, size_after, confirmed_adds, ..., rejected
    errors: pl.DataFrame  # error_code, audience, message, rows
    in_flight: pl.DataFrame  # audience, action, rows, state, recorded_at
    parked: pl.DataFrame  # audience, error_code, message, rows, since
    total_runs: int
    transitions: Transitions


def _list_infos(
    wh: Warehouse,
    state_schema: str,
    s: str,
    audiences: Sequence[Audience],
    coverage: Mapping[str, dict[str, Any]],
) -> list[ListInfo]:
    ids = wh.fetch(f"select audience, list_id, updated_at from {s}.lists")
    latest = ids.sort("updated_at").group_by("audience").agg(pl.col("list_id").last())
    id_of = dict(zip(latest["audience"].to_list(), latest["list_id"].to_list(), strict=True))
    counts = wh.fetch(f"select list_id, count(*) as n from {s}.members group by list_id")
    members = dict(zip(counts["list_id"].to_list(), counts["n"].to_list(), strict=True))
    state = State(wh, state_schema)
    out = []
    for i, a in enumerate(audiences):
        list_id = id_of.get(a.name, a.list_id)
        n = int(members.get(list_id, 0)) if list_id is not None else 0
        out.append(
            ListInfo(
                audience=a,
                colour=PALETTE[i % len(PALETTE)],
                marker=MARKERS[i % len(MARKERS)],
                list_id=list_id,
                members=n,
                size=sizes.latest(state, list_id, n),
                coverage=coverage.get(a.name),
            )
        )
    return out


def _runs(
    wh: Warehouse, s: str, lists: list[ListInfo], max_runs: int
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """The run window, and per run and list: members after it, confirmed adds/removes."""
    names = [li.audience.name for li in lists]
    runs = wh.fetch(
        f"""select run_id, audience, status, started_at, audience_rows, members_before,
            planned_adds, planned_removes, confirmed_adds, confirmed_removes, rejected
        from {s}.runs order by started_at, audience"""
    ).filter(pl.col("audience").is_in(names))
    empty_window = pl.DataFrame(schema={"run_id": pl.String, "started_at": pl.Datetime("us")})
    if runs.is_empty():
        return empty_window, runs, 0
    # members_before is measured (in the warehouse) when a run plans a list, so the next
    # measured run of the same list knows exactly how many members the previous run left;
    # a list's latest run left what `members` holds now. That is members_before +
    # confirmed_adds - confirmed_removes, except that it does not count refreshed members
    # twice. A run whose plan failed measured nothing (it records zeros) and changed nothing.
    unmeasured = (
        (pl.col("status") == "failed")
        & (pl.col("members_before").fill_null(0) == 0)
        & (pl.col("audience_rows").fill_null(0) == 0)
        & (pl.col("planned_adds").fill_null(0) == 0)
        & (pl.col("planned_removes").fill_null(0) == 0)
    ) | pl.col("members_before").is_null()
    current = pl.DataFrame(
        {"audience": names, "members_now": [li.members for li in lists]},
        schema={"audience": pl.String, "members_now": pl.Int64},
    )
    runs = (
        runs.with_columns(measured=pl.when(~unmeasured).then(pl.col("members_before")))
        .with_columns(
            next_measured=pl.col("measured")
            .shift(-1)
            .fill_null(strategy="backward")
            .over("audience", order_by="started_at")
        )
        .join(current, on="audience", how="left")
        .with_columns(
            size_after=pl.when(unmeasured)
            .then(None)
            .otherwise(pl.coalesce("next_measured", "members_now"))
            .cast(pl.Int64)
        )
    )
    order = (
        runs.group_by("run_id")
        .agg(pl.col("started_at").min())
        .sort("started_at", "run_id")
        .with_row_index("n")
    )
    total = order.height
    window = order.tail(max_runs).select("run_id", "started_at")
    per_list = runs.join(window.select("run_id"), on="run_id", how="semi").select(
        "run_id",
        "audience",
        "status",
        "size_after",
        *(pl.col(c).fill_null(0).cast(pl.Int64) for c in ("confirmed_adds", "confirmed_removes")),
        pl.col("rejected").fill_null(0).cast(pl.Int64),
    )
    last = (
        runs.sort("started_at")
        .group_by("audience")
        .agg(pl.col("started_at").last(), pl.col("status").last())
    )
    for li in lists:
        row = last.filter(pl.col("audience") == li.audience.name)
        if row.height:
            li.last_run_at, li.last_status = row["started_at"][0], row["status"][0]
    return window, per_list, total


def _errors(wh: Warehouse, s: str, lists: list[ListInfo], window: pl.DataFrame) -> pl.DataFrame:
    """Rejected rows of the window's runs, by Microsoft error code and list (counts only)."""
    frame = wh.fetch(
        f"""select run_id, audience, error_code, min(error_message) as message,
            count(*) as rows
        from {s}.row_errors group by run_id, audience, error_code"""
    )
    names = [li.audience.name for li in lists]
    return (
        frame.filter(pl.col("audience").is_in(names))
        .join(window.select("run_id"), on="run_id", how="semi")
        .group_by("error_code", "audience")
        .agg(pl.col("message").min(), pl.col("rows").sum().cast(pl.Int64))
        .sort("error_code", "audience", nulls_last=True)
    )


def _waiting(wh: Warehouse, s: str, lists: list[ListInfo]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(uploads still in flight at Microsoft, rows parked per list and error code), now."""
    names = [li.audience.name for li in lists]
    in_flight = wh.fetch(
        f"""select audience, action, rows, state, recorded_at from {s}.uploads
        where state in {IN_FLIGHT_SQL} order by recorded_at"""
    ).filter(pl.col("audience").is_in(names))
    parked = wh.fetch(
        f"""select audience, error_code, min(error_message) as message, count(*) as rows,
            min(parked_at) as since
        from {s}.row_errors where parked_at is not null and resolved_at is null
        group by audience, error_code order by audience, error_code"""
    ).filter(pl.col("audience").is_in(names))
    return in_flight, parked


def _snapshot_relation(
    wh: Warehouse, audiences: Sequence[Audience], history_source: str | None
) -> tuple[str | None, str, str, str]:
    """(database, schema, identifier, display name) of the audience_states snapshot."""
    first = audiences[0] if audiences else None
    database = first.database if first else None
    schema = first.schema if first else "main"
    identifier = SNAPSHOT_NAME
    if history_source:
        parts = [p.strip().strip('"') for p in history_source.split(".")]
        identifier = parts[-1]
        if len(parts) >= 2:
            schema = parts[-2]
        if len(parts) >= 3:
            database = parts[-3]
    shown = ".".join(p for p in (schema, identifier) if p)
    return database, schema, identifier, shown


def _columns(wh: Warehouse, database: str | None, schema: str, name: str) -> dict[str, str] | None:
    if database in (None, wh.database_name):
        return wh.columns(schema, name)
    rows = wh.fetch(
        "select column_name, data_type from information_schema.columns "
        "where table_catalog = ? and table_schema = ? and table_name = ?",
        [database, schema, name],
    )
    return dict(rows.iter_rows()) or None


def _transitions(
    wh: Warehouse, audiences: Sequence[Audience], history_source: str | None, now: datetime
) -> Transitions:
    """People per (state at the previous build, state at the last build) from the snapshot.

    Builds are the snapshot's distinct dbt_valid_from and dbt_valid_to instants (a build in
    which people only left shows as dbt_valid_to); far-future dbt_valid_to placeholders
    (dbt_valid_to_current) are not builds. A person's state at a build is the row valid at
    that instant; no row (or a dbt_is_deleted row) is `none`.
    """
    database, schema, identifier, shown = _snapshot_relation(wh, audiences, history_source)
    out = Transitions(relation=shown)
    columns = _columns(wh, database, schema, identifier)
    if columns is None:
        out.note = (
            f"No snapshot table {shown} in the warehouse, so there is no history of states to "
            "compare. It is written by `dbt build` (or `dbt snapshot`) from "
            "snapshots/_snapshots.yml; run one build, and the next build's transitions will "
            "show here."
        )
        return out
    needed = ("person_id", "state", "dbt_valid_from", "dbt_valid_to")
    missing = [c for c in needed if c not in {k.lower() for k in columns}]
    if missing:
        out.note = f"The snapshot table {shown} has no column {', '.join(missing)}."
        return out
    rel = wh.relation(database, schema, identifier)
    times = wh.fetch(
        f"""select distinct t from (
            select dbt_valid_from as t from {rel}
            union all select dbt_valid_to as t from {rel}
        ) as instants where t is not null order by t desc"""
    )
    horizon = now + timedelta(days=1)
    builds = [t for t in times["t"].to_list() if _utc(t) <= horizon]
    if len(builds) < 2:
        out.note = (
            f"The snapshot table {shown} holds {len(builds)} build"
            f"{'' if len(builds) == 1 else 's'} so far; the matrix needs two. It will show "
            "after the next `dbt build` that changes a state."
        )
        out.after = builds[0] if builds else None
        return out
    after, before = builds[0], builds[1]
    out.before, out.after = _utc(before), _utc(after)
    alive = "true"
    if "dbt_is_deleted" in {k.lower() for k in columns}:  # hard_deletes: new_record
        alive = "coalesce(lower(cast(dbt_is_deleted as varchar)), 'false') <> 'true'"
    at = f"""select distinct person_id, state from {rel}
        where person_id is not null and {alive}
        and dbt_valid_from <= ? and (dbt_valid_to is null or dbt_valid_to > ?)"""
    pairs = wh.fetch(
        f"""with a as ({at}), b as ({at})
        select coalesce(a.state, '{NONE_STATE}') as from_state,
            coalesce(b.state, '{NONE_STATE}') as to_state, count(*) as people
        from a full outer join b on a.person_id = b.person_id
        group by 1, 2""",
        [before, before, after, after],
    )
    priority = "min(state_priority)" if "state_priority" in columns else "0"
    known = wh.fetch(
        f"select state, {priority} as priority from {rel} where state is not null group by state"
    )
    ranked = sorted(known.iter_rows(), key=lambda r: (r[1] is None, r[1], r[0]))
    states = [r[0] for r in ranked if r[0] != NONE_STATE]
    for s in [*pairs["from_state"].to_list(), *pairs["to_state"].to_list()]:
        if s not in states and s != NONE_STATE:
            states.append(s)
    out.states = [*states, NONE_STATE]
    out.counts = {(f, t): int(n) for f, t, n in pairs.iter_rows()}
    return out


def collect(
    wh: Warehouse,
    state_schema: str,
    audiences: Sequence[Audience],
    history_source: str | None = None,
    *,
    max_runs: int = DEFAULT_MAX_RUNS,
    generated_at: datetime | None = None,
    coverage: Mapping[str, dict[str, Any]] | None = None,
) -> ReportData:
    """Everything the page shows, as counts. Reads only; the state tables must be readable
    (`State.ensure()` or `State.readable()`, as every command's Context makes them).
    `coverage`: per audience, the figures of sync/coverage.py (none: not shown)."""
    now = _utc(generated_at) or datetime.now(UTC).replace(tzinfo=None)
    s = quote_ident(state_schema)
    lists = _list_infos(wh, state_schema, s, audiences, coverage or {})
    window, per_list, total = _runs(wh, s, lists, max_runs)
    in_flight, parked = _waiting(wh, s, lists)
    return ReportData(
        generated_at=now,
        database=wh.database_name,
        state_schema=state_schema,
        lists=lists,
        runs=window,
        per_list=per_list,
        errors=_errors(wh, s, lists, window),
        in_flight=in_flight,
        parked=parked,
        total_runs=total,
        transitions=_transitions(wh, audiences, history_source, now),
    )
