"""Reference implementation of shared/spec/audiences.md: the whole audience logic in one DuckDB
query (bench/reference.sql), independent of the dbt models.

It is the speed floor the dbt build is benchmarked against, and a cross-check of the models'
output. Inputs are Customer.io Pipelines `tracks` / `identifies` files: CSV (properties and
traits as JSON text, like the fixtures), Parquet or JSON lines, local paths or globs.

    python bench/reference.py --tracks 'bench/data/base/tracks/*.parquet' \\
        --identifies 'bench/data/base/identifies/*.parquet' --as-of 2026-11-28T12:00:00Z

Library use:

    con = duckdb.connect()
    names = compute(con, tracks, identifies, "2026-11-28T12:00:00Z", schema="reference")
    con.sql(f"select * from {names['audience_states']}")

Tables made in `schema` (default `reference`, so it never clobbers the dbt models' tables):

- `person_states`: one row per person (a user_id with a track event by T), state nullable,
  with every fact the rules use (first_order_at, gross_revenue, refunds, is_cart_open too).
- `audience_states`: the spec's mart, one row per person with a state.
- `audience_members`: one row per non-null `email_sha256`, the highest-priority state among the
  people carrying it (ties in person: the smallest person_id), with person_id, ltv_tier, as_of.
- views `audience_<state>` (email_sha256, person_id, ltv_tier, as_of), one per state.
"""

from __future__ import annotations

import argparse
import glob
import resource
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import duckdb

SQL_PATH = Path(__file__).with_name("reference.sql")

# Thresholds: the dbt vars of audiences.md, with the spec's defaults.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "recent_purchase_days": 7,
    "cart_window_hours": 24,
    "high_aov_threshold": 80,
    "once_min_days": 21,
    "once_max_days": 45,
    "lapsed_days": 90,
    "ltv_high_threshold": 500,
    "ltv_mid_threshold": 150,
}

# The seed: normalised event name -> canonical kind (the spec's table).
DEFAULT_EVENT_KINDS: dict[str, str] = {
    "product_added": "cart_add",
    "added_to_cart": "cart_add",
    "add_to_cart": "cart_add",
    "product_removed": "cart_remove",
    "removed_from_cart": "cart_remove",
    "checkout_started": "checkout",
    "order_completed": "order",
    "purchase": "order",
    "order_placed": "order",
    "order_refunded": "refund",
    "support_escalated": "support_escalation",  # read by no exclusive state
    "ticket_escalated": "support_escalation",
}

# Priority order (index + 1 = state_priority).
STATES: tuple[str, ...] = (
    "recent_purchaser_0_7d",
    "cart_abandon_high_aov_0_1d",
    "cart_abandon_0_1d",
    "purchased_once_21_45d",
    "lapsed_90d_plus",
    "ltv_high",
)

_TRACK_COLUMNS = {
    "id": "text",
    "event": "text",
    "event_text": "text",
    "user_id": "text",
    "anonymous_id": "text",
    "timestamp": "time",
    "received_at": "time",
    "properties": "json",
}
_IDENTIFY_COLUMNS = {
    "id": "text",
    "user_id": "text",
    "anonymous_id": "text",
    "timestamp": "time",
    "received_at": "time",
    "traits": "json",
}
# JSON-lines files may carry the API's camelCase keys.
_ALIASES = {
    "id": ("id", "messageid", "message_id"),
    "user_id": ("user_id", "userid"),
    "anonymous_id": ("anonymous_id", "anonymousid"),
    "received_at": ("received_at", "receivedat"),
    "event_text": ("event_text", "eventtext"),
}

# Unicode whitespace (audiences.md, "Identity"): White_Space + U+200B, U+FEFF, as SQL text.
_WHITESPACE_CODES = [9, 10, 11, 12, 13, 32, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200C)]
_WHITESPACE_CODES += [0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF]
_WHITESPACE = " || ".join(f"chr({c})" for c in _WHITESPACE_CODES)

# Plain decimal number after trimming; JSON numbers are taken as they are.
_NUM_MACRO = rf"""
create or replace temp macro ref_num(j) as case
    when json_type(j) in ('BIGINT', 'UBIGINT', 'HUGEINT', 'DOUBLE') then cast(j as double)
    when json_type(j) = 'VARCHAR'
        and regexp_full_match(
            trim(j ->> '$', {_WHITESPACE}), '[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)'
        )
        then cast(trim(j ->> '$', {_WHITESPACE}) as double)
end
"""

_OFFSET_RE = r"[Tt ][0-9:.]+([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$"


def parse_as_of(value: str | datetime) -> datetime:
    """ISO-8601 UTC (`...Z`, `+00:00`, or no offset = UTC) -> naive UTC datetime."""
    if isinstance(value, datetime):
        dt = value
    else:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text)
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _expand(paths: str | Path | Sequence[str | Path]) -> list[str]:
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    out: list[str] = []
    for item in items:
        p = str(item)
        if Path(p).is_dir():
            for ext in ("parquet", "csv", "jsonl", "ndjson", "json"):
                if glob.glob(f"{p}/**/*.{ext}", recursive=True):
                    out.append(f"{p}/**/*.{ext}")
                    break
            else:
                raise FileNotFoundError(f"no data files under {p}")
        else:
            out.append(p)
    return out


def _reader(paths: str | Path | Sequence[str | Path]) -> str:
    files = _expand(paths)
    listing = "[" + ", ".join(_sql_str(f) for f in files) + "]"
    ext = files[0].lower().rsplit(".", 1)[-1]
    if ext == "csv":
        return f"read_csv({listing}, header = true, all_varchar = true, union_by_name = true)"
    if ext in ("parquet", "pq"):
        return f"read_parquet({listing}, union_by_name = true)"
    if ext in ("json", "jsonl", "ndjson"):
        return f"read_json({listing}, format = 'newline_delimited', union_by_name = true)"
    raise ValueError(f"unknown file type: {files[0]}")


def _column_expr(source: str | None, dtype: str | None, role: str) -> str:
    if source is None:
        return "cast(null as timestamp)" if role == "time" else "cast(null as varchar)"
    col = '"' + source.replace('"', '""') + '"'
    t = (dtype or "").upper()
    if role == "time":
        if t == "TIMESTAMP WITH TIME ZONE":
            # the UTC instant as a naive timestamp (cheaper than timezone('UTC', ...))
            return f"make_timestamp(epoch_us({col}))"
        if t.startswith("TIMESTAMP") or t == "DATE":
            return f"cast({col} as timestamp)"
        text = f"nullif(trim(cast({col} as varchar)), '')"
        return (
            f"case when regexp_matches({text}, '{_OFFSET_RE}') "
            f"then timezone('UTC', cast({text} as timestamptz)) "
            f"else cast({text} as timestamp) end"
        )
    if role == "json" and (t.startswith("STRUCT") or t.startswith("MAP") or t.endswith("[]")):
        return f"cast(to_json({col}) as varchar)"
    return f"cast({col} as varchar)"


def _source_view(con: duckdb.DuckDBPyConnection, name: str, reader: str, columns: dict) -> None:
    described = con.execute(f"describe select * from {reader}").fetchall()
    by_lower = {row[0].lower(): (row[0], row[1]) for row in described}
    exprs = []
    for column, role in columns.items():
        found = next(
            (by_lower[a] for a in _ALIASES.get(column, (column,)) if a in by_lower), (None, None)
        )
        exprs.append(f'{_column_expr(found[0], found[1], role)} as "{column}"')
    con.execute(f"create or replace temp view {name} as select {', '.join(exprs)} from {reader}")


def compute(
    con: duckdb.DuckDBPyConnection,
    tracks_path: str | Path | Sequence[str | Path],
    identifies_path: str | Path | Sequence[str | Path],
    as_of: str | datetime,
    *,
    schema: str = "reference",
    event_kinds: dict[str, str] | None = None,
    **thresholds: float,
) -> dict[str, str]:
    """Compute the audience states as of `as_of` into `schema` of `con`.

    `thresholds` override DEFAULT_THRESHOLDS by name; `event_kinds` replaces the
    name -> kind seed. Returns the qualified names of the tables and views made.
    """
    unknown = set(thresholds) - set(DEFAULT_THRESHOLDS)
    if unknown:
        raise TypeError(f"unknown thresholds: {sorted(unknown)}")
    kinds = DEFAULT_EVENT_KINDS if event_kinds is None else event_kinds
    params: dict[str, object] = {**DEFAULT_THRESHOLDS, **thresholds}
    params["as_of"] = parse_as_of(as_of)
    params["event_names"] = list(kinds)
    params["event_kinds"] = list(kinds.values())

    q = '"' + schema.replace('"', '""') + '"'
    con.execute(f"create schema if not exists {q}")
    _source_view(con, "ref_src_tracks", _reader(tracks_path), _TRACK_COLUMNS)
    _source_view(con, "ref_src_identifies", _reader(identifies_path), _IDENTIFY_COLUMNS)
    con.execute(_NUM_MACRO)

    sql = SQL_PATH.read_text()
    sql = sql.replace("from src_tracks", "from ref_src_tracks").replace(
        "from src_identifies", "from ref_src_identifies"
    )
    con.execute(f"create or replace table {q}.person_states as {sql}", params)
    con.execute(
        f"""
        create or replace table {q}.audience_states as
        select person_id, state, state_priority, email_sha256, ltv_tier, order_count,
               net_revenue, aov, last_order_at, last_cart_at, cart_value, as_of
        from {q}.person_states
        where state is not null
        """
    )
    con.execute(
        f"""
        create or replace table {q}.audience_members as
        select email_sha256, state, state_priority, person_id, ltv_tier, as_of
        from {q}.audience_states
        where email_sha256 is not null
        qualify row_number() over (
            partition by email_sha256 order by state_priority, person_id
        ) = 1
        """
    )
    names = {
        "person_states": f"{q}.person_states",
        "audience_states": f"{q}.audience_states",
        "audience_members": f"{q}.audience_members",
    }
    for state in STATES:
        con.execute(
            f"""
            create or replace view {q}.audience_{state} as
            select email_sha256, person_id, ltv_tier, as_of
            from {q}.audience_members
            where state = {_sql_str(state)}
            """
        )
        names[f"audience_{state}"] = f"{q}.audience_{state}"
    return names


def _peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Reference audience states (audiences.md) on Pipelines files, in DuckDB.",
        epilog="example: python bench/reference.py --tracks 'bench/data/base/tracks/*.parquet' "
        "--identifies 'bench/data/base/identifies/*.parquet' --as-of 2026-11-28T12:00:00Z",
    )
    parser.add_argument("--tracks", nargs="+", required=True, help="files, globs or folders")
    parser.add_argument("--identifies", nargs="+", required=True, help="files, globs or folders")
    parser.add_argument("--as-of", required=True, help="ISO-8601 UTC, e.g. 2026-11-28T12:00:00Z")
    parser.add_argument("--database", default=":memory:", help="DuckDB file (default: memory)")
    parser.add_argument("--schema", default="reference")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 4GB")
    for name, default in DEFAULT_THRESHOLDS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=default)
    args = parser.parse_args(argv)

    con = duckdb.connect(args.database)
    if args.threads:
        con.execute(f"set threads = {int(args.threads)}")
    if args.memory_limit:
        con.execute(f"set memory_limit = {_sql_str(args.memory_limit)}")
    thresholds = {name: getattr(args, name) for name in DEFAULT_THRESHOLDS}

    started = time.perf_counter()
    names = compute(con, args.tracks, args.identifies, args.as_of, schema=args.schema, **thresholds)
    seconds = time.perf_counter() - started

    events = con.execute("select count(*) from ref_src_tracks").fetchone()[0]
    persons = con.execute(f"select count(*) from {names['person_states']}").fetchone()[0]
    per_state = dict(
        con.execute(
            f"select state, count(*) from {names['audience_states']} group by state"
        ).fetchall()
    )
    per_member = dict(
        con.execute(
            f"select state, count(*) from {names['audience_members']} group by state"
        ).fetchall()
    )
    print(
        f"as_of {parse_as_of(args.as_of).isoformat()}Z  track rows {events:,}  persons {persons:,}"
    )
    print(f"{'state':<28} {'people':>10} {'emails':>10}")
    for state in STATES:
        print(f"{state:<28} {per_state.get(state, 0):>10,} {per_member.get(state, 0):>10,}")
    print(f"{'(any)':<28} {sum(per_state.values()):>10,} {sum(per_member.values()):>10,}")
    print(f"compute {seconds:.2f} s, peak RSS {_peak_rss_mib():,.0f} MiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
