"""`sync report`: one self-contained HTML page of the sync's history, for people.

    sync report -o sync-report.html     # then open the file; it needs no network

The page is built from the warehouse only (the sync's state tables and, when it exists, the
dbt snapshot of audience_states): audience sizes after each run, adds and removes per run,
rejected rows by Microsoft error code, what is waiting (uploads Microsoft is still processing,
with their age, and rows parked after too many rejections), and the state transitions between
the last two builds.
Charts are server-side SVG with inline CSS, each with a title, axis titles, a legend and a
data table as its text alternative. Only counts, list names, list ids, run ids, states and
error codes are written: never an email, a hash or a person id (free text from Microsoft is
scrubbed of anything that looks like one).

API (the CLI is a thin layer over it):

    build_report(wh, state_schema, audiences, history_source) -> str   # the HTML
    write_report(html, path) -> None                                   # atomic write
    report_command                                                     # the click command
"""

from __future__ import annotations

import functools
import html as htmlmod
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import polars as pl

from sync import __version__
from sync.errors import ConfigError
from sync.project import Audience
from sync.warehouse import Warehouse, quote_ident

SNAPSHOT_NAME = "audience_states_snapshot"
STATE_TABLES = ("lists", "members", "runs", "row_errors", "uploads")
DEFAULT_MAX_RUNS = 60
NONE_STATE = "none"
DASH, MINUS = "\u2013", "\u2212"

# Okabe-Ito (colour-blind safe) without its yellow, then two neutrals; markers vary too.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#8C6D31", "#555555")
MARKERS = ("circle", "square", "diamond", "triangle", "triangle-down", "cross")
STATUS_CLASS = {
    "in_sync": "ok",
    "in_flight": "ok",
    "partial": "warn",
    "held": "warn",
    "refused": "warn",
}

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


# ---------------------------------------------------------------------------------- text


def _scrub(text: str) -> str:
    """Anything shaped like an identifier (a 64-hex hash, an email) is redacted."""
    return _EMAIL.sub("[redacted]", _HEX64.sub("[redacted]", text))


def _t(value: Any) -> str:
    """Data-derived text for HTML/SVG: scrubbed, then escaped."""
    return htmlmod.escape(_scrub("" if value is None else str(value)), quote=True)


def _md(value: str) -> str:
    """Like `_t`, with `code` spans set as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _t(value))


def _n(value: int | float | None) -> str:
    return DASH if value is None else f"{int(value):,}"


def _utc(value: datetime | None) -> datetime | None:
    """Naive UTC (the state tables' convention) from naive or aware timestamps."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    value = _utc(value)
    return DASH if value is None else value.strftime(fmt)


# ---------------------------------------------------------------------------------- data


@dataclass
class ListInfo:
    audience: Audience
    colour: str
    marker: str
    list_id: int | None = None
    members: int = 0
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
    in_flight: pl.DataFrame  # audience, action, rows, state, request_id, recorded_at
    parked: pl.DataFrame  # audience, error_code, message, rows, since
    total_runs: int
    transitions: Transitions


def _list_infos(wh: Warehouse, s: str, audiences: Sequence[Audience]) -> list[ListInfo]:
    ids = wh.fetch(f"select audience, list_id, updated_at from {s}.lists")
    latest = ids.sort("updated_at").group_by("audience").agg(pl.col("list_id").last())
    id_of = dict(zip(latest["audience"].to_list(), latest["list_id"].to_list(), strict=True))
    counts = wh.fetch(f"select list_id, count(*) as n from {s}.members group by list_id")
    members = dict(zip(counts["list_id"].to_list(), counts["n"].to_list(), strict=True))
    out = []
    for i, a in enumerate(audiences):
        list_id = id_of.get(a.name, a.list_id)
        out.append(
            ListInfo(
                audience=a,
                colour=PALETTE[i % len(PALETTE)],
                marker=MARKERS[i % len(MARKERS)],
                list_id=list_id,
                members=int(members.get(list_id, 0)) if list_id is not None else 0,
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
        f"""select audience, action, rows, state, request_id, recorded_at from {s}.uploads
        where state in ('recorded', 'sent') order by recorded_at"""
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
) -> ReportData:
    """Everything the page shows, as counts (read-only; state tables must exist)."""
    missing = [t for t in STATE_TABLES if wh.columns(state_schema, t) is None]
    if missing:
        raise ConfigError(
            f"the sync's state tables ({', '.join(missing)}) are not in schema {state_schema!r}: "
            "check --state-schema, or run `sync run` (or `sync status`) once to create them"
        )
    now = _utc(generated_at) or datetime.now(UTC).replace(tzinfo=None)
    s = quote_ident(state_schema)
    lists = _list_infos(wh, s, audiences)
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


# ---------------------------------------------------------------------------------- SVG


def _ticks(hi: float, lo: float = 0.0, n: int = 5) -> list[int]:
    """Round integer ticks covering [lo, hi] (counts)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next((m * mag for m in (1, 2, 5, 10) if (hi - lo) / (m * mag) <= n), 10 * mag)
    step = max(1, int(step))
    start = math.floor(lo / step) * step
    end = math.ceil(hi / step) * step
    return list(range(int(start), int(end) + step, step))


def _marker(shape: str, x: float, y: float, colour: str, r: float = 4.5) -> str:
    style = f'fill="{colour}" stroke="var(--bg)" stroke-width="1.2"'
    if shape == "circle":
        return f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="{r}" {style}/>'
    if shape == "square":
        return (
            f'<rect class="mark" x="{x - r:.1f}" y="{y - r:.1f}" '
            f'width="{2 * r}" height="{2 * r}" {style}/>'
        )
    points = {
        "diamond": [(0, -1.3), (1.3, 0), (0, 1.3), (-1.3, 0)],
        "triangle": [(0, -1.3), (1.2, 1), (-1.2, 1)],
        "triangle-down": [(0, 1.3), (1.2, -1), (-1.2, -1)],
        "cross": [
            (-0.4, -1.2),
            (0.4, -1.2),
            (0.4, -0.4),
            (1.2, -0.4),
            (1.2, 0.4),
            (0.4, 0.4),
            (0.4, 1.2),
            (-0.4, 1.2),
            (-0.4, 0.4),
            (-1.2, 0.4),
            (-1.2, -0.4),
            (-0.4, -0.4),
        ],
    }[shape]
    d = " ".join(f"{x + dx * r:.1f},{y + dy * r:.1f}" for dx, dy in points)
    return f'<polygon class="mark" points="{d}" {style}/>'


class _Svg:
    """A chart's SVG: accessible name and description, plot area, axes."""

    def __init__(self, key: str, title: str, desc: str, width: int, height: int) -> None:
        self.key, self.width, self.height = key, width, height
        self.parts = [
            f'<svg class="chart" id="chart-{key}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-labelledby="chart-{key}-title chart-{key}-desc" '
            f'preserveAspectRatio="xMidYMid meet">',
            f'<title id="chart-{key}-title">{_t(title)}</title>',
            f'<desc id="chart-{key}-desc">{_t(desc)}</desc>',
        ]

    def add(self, part: str) -> None:
        self.parts.append(part)

    def text(
        self,
        x: float,
        y: float,
        text: str,
        cls: str = "tick",
        anchor: str = "middle",
        extra: str = "",
    ) -> None:
        self.add(
            f'<text class="{cls}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>'
            f"{text}</text>"
        )

    def y_axis(
        self,
        left: float,
        right: float,
        scale: Callable[[float], float],
        ticks: list[int],
        title: str,
        fmt: Callable[[int], str] = _n,
    ) -> None:
        for v in ticks:
            y = scale(v)
            cls = "zero" if v == 0 else "grid"
            self.add(f'<line class="{cls}" x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>')
            self.text(left - 8, y + 4, fmt(v), anchor="end")
        mid = (scale(ticks[0]) + scale(ticks[-1])) / 2
        self.text(18, mid, _t(title), "axis-title", extra=f'transform="rotate(-90 18 {mid:.1f})"')

    def x_title(self, x: float, title: str) -> None:
        self.text(x, self.height - 8, _t(title), "axis-title")

    def render(self) -> str:
        return "\n".join([*self.parts, "</svg>"])


@dataclass
class _RunAxis:
    """Runs as equal bands along x (both run charts share it, so they line up)."""

    runs: pl.DataFrame
    left: float
    right: float

    @property
    def band(self) -> float:
        return (self.right - self.left) / max(1, self.runs.height)

    def x(self, i: int) -> float:
        return self.left + self.band * (i + 0.5)

    def labels(self, most: int = 10) -> list[tuple[int, str, str]]:
        """(run index, time, day) of at most `most` evenly spaced runs, the last included."""
        times = [_utc(t) for t in self.runs["started_at"].to_list()]
        fmt = "%H:%M"
        if len({t.strftime("%Y-%m-%d %H:%M") for t in times if t}) < len(times):
            fmt = "%H:%M:%S"  # runs minutes apart
        every = max(1, math.ceil(len(times) / most))
        keep = [i for i in range(len(times)) if i % every == 0]
        last = len(times) - 1
        if keep and keep[-1] != last:
            if last - keep[-1] < every / 2:
                keep.pop()
            keep.append(last)
        return [(i, t.strftime(fmt), t.strftime("%b %d")) for i in keep if (t := times[i])]

    def draw(self, svg: _Svg, baseline: float, most: int = 10, labels: bool = True) -> None:
        svg.add(
            f'<line class="axis" x1="{self.left:.1f}" x2="{self.right:.1f}" '
            f'y1="{baseline:.1f}" y2="{baseline:.1f}"/>'
        )
        for i, hm, day in self.labels(most):
            x = self.x(i)
            svg.add(
                f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{baseline:.1f}" '
                f'y2="{baseline + 5:.1f}"/>'
            )
            if labels:
                svg.text(x, baseline + 18, _t(hm))
                svg.text(x, baseline + 31, _t(day), "tick small")


def _sizes_chart(data: ReportData) -> str:
    """Small multiples: one panel per list, each with its own y scale (a 20,000-member list
    would flatten a 50-member one on a shared axis), all on the same run axis."""
    lists = data.lists
    cols = 2 if len(lists) > 1 else 1
    rows = math.ceil(len(lists) / cols)
    width, outer_left, gap_x, gap_y = 960, 34, 40, 14
    panel_w = (width - outer_left - 8 - gap_x * (cols - 1)) / cols
    title_h, plot_h, labels_h = 24, 104, 36
    # run labels only under the lowest panel of each column: only those rows make room
    labelled = [k + cols >= len(lists) for k in range(len(lists))]
    row_h = [
        title_h + plot_h + 8 + (labels_h if any(labelled[r * cols : (r + 1) * cols]) else 0)
        for r in range(rows)
    ]
    row_y = [sum(row_h[:r]) + gap_y * r for r in range(rows)]
    height = row_y[-1] + row_h[-1] + 30
    frame = data.per_list.join(
        data.runs.with_row_index("i").select("run_id", "i"), on="run_id"
    ).filter(pl.col("size_after").is_not_null())
    svg = _Svg(
        "sizes",
        "Audience size over time, per list",
        "Line charts, one panel per Bing list: confirmed members after each run, each panel "
        "with its own scale. The table below the chart holds the same numbers.",
        width,
        height,
    )
    mid = (row_y[-1] + row_h[-1]) / 2
    svg.text(14, mid, "Confirmed members", "axis-title", extra=f'transform="rotate(-90 14 {mid})"')
    svg.x_title(outer_left + (width - outer_left) / 2, "Run (start time, UTC)")
    most = max(2, int(panel_w // 70))
    for k, li in enumerate(lists):
        row, col = divmod(k, cols)
        x0 = outer_left + col * (panel_w + gap_x)
        y0 = row_y[row]
        left, right = x0 + 48, x0 + panel_w - 52
        top, bottom = y0 + title_h + 6, y0 + title_h + plot_h
        name = _t(li.audience.list_name)
        svg.add(
            f'<rect x="{x0:.1f}" y="{y0 + 4:.1f}" width="11" height="11" rx="2" '
            f'fill="{li.colour}"/>'
        )
        svg.text(x0 + 17, y0 + 14, name, "panel-title", "start")
        pts = frame.filter(pl.col("audience") == li.audience.name).sort("i")
        values = pts["size_after"].to_list()
        ticks = _ticks(max([1, *values]) * 1.1, n=3)

        def y(v: float, top: float = top, bottom: float = bottom, hi: int = ticks[-1]) -> float:
            return bottom - (bottom - top) * v / hi

        for v in ticks:
            cls = "zero" if v == 0 else "grid"
            svg.add(
                f'<line class="{cls}" x1="{left:.1f}" x2="{right:.1f}" '
                f'y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
            )
            svg.text(left - 6, y(v) + 4, _n(v), anchor="end")
        axis = _RunAxis(data.runs, left, right)
        axis.draw(svg, bottom, most=most, labels=labelled[k])
        coords = [(axis.x(i), y(v)) for i, v in zip(pts["i"], values, strict=True)]
        if not coords:
            svg.text((left + right) / 2, (top + bottom) / 2, "no run yet", "note")
            continue
        d = " ".join(
            f"{'M' if j == 0 else 'L'}{x:.1f},{yy:.1f}" for j, (x, yy) in enumerate(coords)
        )
        svg.add(f'<g class="series"><title>{name}</title>')
        svg.add(
            f'<path d="{d}" fill="none" stroke="{li.colour}" stroke-width="2.5" '
            'stroke-linejoin="round" stroke-linecap="round"/>'
        )
        dense = len(coords) > 24  # then only the latest run gets a marker
        for j, ((x, yy), v) in enumerate(zip(coords, values, strict=True)):
            if dense and j < len(coords) - 1:
                continue
            svg.add(f"<g><title>{name}: {_n(v)} members</title>")
            svg.add(_marker(li.marker, x, yy, li.colour))
            svg.add("</g>")
        svg.add("</g>")
        last_x, last_y = coords[-1]
        svg.text(last_x + 8, last_y + 4, _n(values[-1]), "value", "start")
    return svg.render()


def _changes_chart(data: ReportData) -> str:
    width, height = 960, 340
    left, right, top, bottom = 76, width - 24, 24, height - 76
    axis = _RunAxis(data.runs, left, right)
    frame = data.per_list.join(data.runs.with_row_index("i").select("run_id", "i"), on="run_id")
    sums = frame.group_by("i").agg(
        pl.col("confirmed_adds").sum().alias("a"), pl.col("confirmed_removes").sum().alias("r")
    )
    hi = max([0, *sums["a"].to_list()])
    lo = max([0, *sums["r"].to_list()])
    if hi == 0 and lo == 0:
        hi = 1
    ticks = _ticks(hi * 1.05 if hi else 0, -lo * 1.05 if lo else 0, n=6)
    y_lo, y_hi = ticks[0], ticks[-1]

    def y(v: float) -> float:
        return bottom - (bottom - top) * (v - y_lo) / (y_hi - y_lo)

    svg = _Svg(
        "changes",
        "Members added and removed per run",
        "Stacked bars: rows Microsoft confirmed per run and list; added above the zero line, "
        "removed below it. The table below the chart holds the same numbers.",
        width,
        height,
    )
    svg.y_axis(left, right, y, ticks, "Rows (added ↑ / removed ↓)", fmt=lambda v: _n(abs(v)))
    axis.draw(svg, bottom)
    svg.x_title((left + right) / 2, "Run (start time, UTC)")
    bar = min(axis.band * 0.66, 56)
    svg.add(f"<defs>{''.join(_hatch(k, li.colour) for k, li in enumerate(data.lists))}</defs>")
    cells = {(r["i"], r["audience"]): r for r in frame.iter_rows(named=True)}
    for i in range(data.runs.height):
        up, down = 0, 0
        for k, li in enumerate(data.lists):
            row = cells.get((i, li.audience.name))
            if row is None:
                continue
            adds, removes = row["confirmed_adds"], row["confirmed_removes"]
            name = _t(li.audience.list_name)
            x = axis.x(i) - bar / 2
            if adds:
                y0, y1 = y(up), y(up + adds)
                svg.add(
                    f'<rect class="mark" x="{x:.1f}" y="{y1:.1f}" width="{bar:.1f}" '
                    f'height="{y0 - y1:.1f}" fill="{li.colour}"><title>{name}: '
                    f"{_n(adds)} added</title></rect>"
                )
                up += adds
            if removes:
                y0, y1 = y(-down), y(-down - removes)
                svg.add(
                    f'<rect class="mark" x="{x:.1f}" y="{y0:.1f}" width="{bar:.1f}" '
                    f'height="{y1 - y0:.1f}" fill="url(#hatch-{k})" stroke="{li.colour}" '
                    f'stroke-width="1.2"><title>{name}: {_n(removes)} removed</title></rect>'
                )
                down += removes
    svg.text(left + 6, top + 12, "▲ added (solid)", "note", anchor="start")
    if lo:
        svg.text(left + 6, bottom - 8, "▼ removed (hatched)", "note", anchor="start")
    return svg.render()


def _hatch(k: int, colour: str) -> str:
    """A diagonal hatch of a list's colour: its removals, told apart from its adds."""
    return (
        f'<pattern id="hatch-{k}" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="var(--bg)"/>'
        f'<rect width="3" height="6" fill="{colour}"/></pattern>'
    )


def _errors_chart(data: ReportData, lists: list[ListInfo]) -> str:
    codes = data.errors.group_by("error_code").agg(pl.col("rows").sum()).sort("error_code")
    band = 46
    width = 960
    left, right, top = 300, width - 70, 30
    height = top + band * codes.height + 62
    bottom = top + band * codes.height
    hi = max([1, *codes["rows"].to_list()])
    ticks = _ticks(hi * 1.05)

    def x(v: float) -> float:
        return left + (right - left) * v / ticks[-1]

    svg = _Svg(
        "errors",
        "Rejected rows by Microsoft error code",
        "Horizontal stacked bars: rows Microsoft rejected in the runs of this report, per "
        "error code, split by list. The table below the chart holds the same numbers.",
        width,
        height,
    )
    for v in ticks:
        svg.add(
            f'<line class="{"zero" if v == 0 else "grid"}" x1="{x(v):.1f}" x2="{x(v):.1f}" '
            f'y1="{top}" y2="{bottom}"/>'
        )
        svg.text(x(v), bottom + 18, _n(v))
    svg.text((left + right) / 2, height - 10, "Rejected rows", "axis-title")
    svg.text(left - 10, top - 12, "Microsoft error code", "axis-title", "end")
    colour = {li.audience.name: li.colour for li in lists}
    order = {li.audience.name: k for k, li in enumerate(lists)}
    label = {li.audience.name: li.audience.list_name for li in lists}
    for k, (code, total) in enumerate(codes.iter_rows()):
        yc = top + band * k + band / 2
        rows = data.errors.filter(pl.col("error_code").eq_missing(code)).sort(
            pl.col("audience").replace_strict(order, default=len(order))
        )
        message = next((m for m in rows["message"].to_list() if m), "")
        short = message if len(message) <= 44 else message[:43] + "…"
        svg.text(left - 10, yc - 2, _t(code if code is not None else "no code"), "code", "end")
        svg.text(left - 10, yc + 13, _t(short), "tick small", "end")
        acc = 0
        for aud, n in zip(rows["audience"], rows["rows"], strict=True):
            x0, x1 = x(acc), x(acc + n)
            svg.add(
                f'<rect class="mark" x="{x0:.1f}" y="{yc - 14:.1f}" width="{x1 - x0:.1f}" '
                f'height="28" fill="{colour.get(aud, "#888")}"><title>{_t(label.get(aud, aud))}: '
                f"{_n(n)} row(s) rejected with {_t(code)}</title></rect>"
            )
            acc += n
        svg.text(x(acc) + 6, yc + 4, _n(total), "value", "start")
    return svg.render()


def _heat(value: int, top: int) -> tuple[str, str]:
    """Cell fill and text colour: light to deep blue on a square-root scale."""
    if value <= 0:
        return "var(--cell-empty)", "var(--muted)"
    t = math.sqrt(value / max(1, top))
    lo, hi = (0xE3, 0xEE, 0xFA), (0x08, 0x30, 0x6B)
    rgb = [round(a + (b - a) * t) for a, b in zip(lo, hi, strict=True)]
    # the text colour of better contrast (WCAG relative luminance; dark ink is #10243e)
    lin = [c / 255 / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    luminance = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    white = 1.05 / (luminance + 0.05)
    dark = (luminance + 0.05) / 0.067
    return "#" + "".join(f"{c:02x}" for c in rgb), ("#ffffff" if white > dark else "#10243e")


def _matrix_chart(tr: Transitions) -> str:
    states = tr.states
    n = len(states)
    cw, ch = 96, 40
    left, top = 236, 150
    width = max(960, left + cw * n + 40)
    height = top + ch * n + 96
    top_count = max([1, *(v for (f, t), v in tr.counts.items() if (f, t) != (NONE_STATE,) * 2)])
    svg = _Svg(
        "transitions",
        "State transitions between the last two builds",
        f"Matrix: people by state at the build of {_when(tr.before)} UTC (rows) and at the "
        f"build of {_when(tr.after)} UTC (columns); 'none' means in no state. "
        "The table below the chart holds the same numbers.",
        width,
        height,
    )
    svg.add(
        f'<defs><linearGradient id="heat-scale" x1="0" x2="1" y1="0" y2="0">'
        f'<stop offset="0" stop-color="{_heat(1, 10**9)[0]}"/>'
        f'<stop offset="1" stop-color="{_heat(1, 1)[0]}"/></linearGradient></defs>'
    )
    for j, s in enumerate(states):
        x = left + cw * j + cw / 2
        svg.text(
            x,
            top - 10,
            _t(s),
            "tick state",
            "start",
            extra=f'transform="rotate(-35 {x:.1f} {top - 10})"',
        )
    for i, f in enumerate(states):
        yc = top + ch * i + ch / 2
        svg.text(left - 10, yc + 4, _t(f), "tick state", "end")
        for j, t in enumerate(states):
            x0, y0 = left + cw * j, top + ch * i
            if (f, t) == (NONE_STATE, NONE_STATE):
                svg.add(
                    f'<rect x="{x0 + 1}" y="{y0 + 1}" width="{cw - 2}" height="{ch - 2}" '
                    'fill="none" class="cell-na"/>'
                )
                svg.text(x0 + cw / 2, y0 + ch / 2 + 4, "n/a", "tick small")
                continue
            v = tr.counts.get((f, t), 0)
            fill, ink = _heat(v, top_count)
            what = "stayed in" if f == t else "moved from"
            tip = f"{_n(v)} people {what} {_t(f)}" + ("" if f == t else f" to {_t(t)}")
            diag = ' stroke="var(--ink)" stroke-width="1.5"' if f == t else ""
            svg.add(
                f'<g><title>{tip}</title><rect class="mark" x="{x0 + 1}" y="{y0 + 1}" '
                f'width="{cw - 2}" height="{ch - 2}" rx="3" fill="{fill}"{diag}/>'
            )
            weight = "cell" if v else "cell none"
            svg.add(
                f'<text class="{weight}" x="{x0 + cw / 2}" y="{y0 + ch / 2 + 5}" '
                f'text-anchor="middle" style="fill:{ink}">{_n(v)}</text></g>'
            )
    mid_y = top + ch * n / 2
    svg.text(
        20,
        mid_y,
        f"From: state at {_when(tr.before, '%Y-%m-%d %H:%M')}",
        "axis-title",
        extra=f'transform="rotate(-90 20 {mid_y:.1f})"',
    )
    svg.text(
        left + cw * n / 2, 18, f"To: state at {_when(tr.after, '%Y-%m-%d %H:%M')}", "axis-title"
    )
    ly = top + ch * n + 34
    svg.text(left, ly + 4, "People:", "tick", "end", extra='dx="-8"')
    svg.add(
        f'<rect x="{left}" y="{ly - 8}" width="220" height="14" fill="url(#heat-scale)" '
        'class="legend-bar"/>'
    )
    svg.text(left, ly + 24, "1", "tick small", "start")
    svg.text(left + 220, ly + 24, _n(top_count), "tick small", "end")
    svg.add(
        f'<rect x="{left + 250}" y="{ly - 8}" width="14" height="14" rx="3" '
        'fill="var(--cell-empty)" stroke="var(--ink)" stroke-width="1.5"/>'
    )
    svg.text(left + 272, ly + 4, "outlined: stayed in the same state", "tick", "start")
    return svg.render()


# ---------------------------------------------------------------------------------- HTML

CSS = """
:root { --bg:#ffffff; --ink:#16202b; --muted:#5b6876; --grid:#e3e7ec; --axis:#8a96a3;
  --panel:#f5f7f9; --border:#d9dee4; --cell-empty:#f3f5f7; --ok:#1a7f37; --warn:#9a6700;
  --bad:#c62828; color-scheme: light dark; }
@media (prefers-color-scheme: dark) {
  :root { --bg:#11161c; --ink:#e6ebf0; --muted:#9aa7b4; --grid:#26303a; --axis:#5f6d7a;
    --panel:#18202a; --border:#2c3742; --cell-empty:#1c252f; --ok:#4ac26b; --warn:#d4a72c;
    --bad:#ff7b72; }
}
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans",
  "DejaVu Sans", sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 28px 24px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 2px; }
p { margin: 4px 0 10px; }
.meta, .sub, .note-text { color: var(--muted); }
.sub { margin: 0 0 10px; font-size: 14px; }
section { margin-top: 22px; padding: 18px 20px 14px; border: 1px solid var(--border);
  border-radius: 10px; background: var(--bg); }
.cards { display:flex; gap:12px; flex-wrap:wrap; margin:16px 0 6px; }
.card { flex:1 1 150px; background:var(--panel); border:1px solid var(--border);
  border-radius:10px; padding:10px 14px; }
.card b { display:block; font-size:24px; line-height:1.2; }
.card span { color:var(--muted); font-size:13px; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px;
  font-variant-numeric: tabular-nums; }
th, td { padding: 5px 7px; border-bottom: 1px solid var(--border); text-align: left;
  vertical-align: top; }
thead th { background: var(--panel); font-weight: 600; }
td.num, th.num { text-align: right; }
.wrap { overflow-x: auto; }
.swatch { display:inline-block; width:12px; height:12px; border-radius:3px;
  vertical-align:-1px; margin-right:6px; }
.legend { display:flex; flex-wrap:wrap; gap:6px 18px; list-style:none; padding:0;
  margin:8px 0 4px; font-size:13px; }
.legend li { display:flex; align-items:center; gap:6px; }
.legend svg { width:26px; height:14px; flex:none; }
.badge { display:inline-block; padding:0 7px; border-radius:9px; font-size:12px;
  border:1px solid currentColor; white-space:nowrap; }
.badge.ok { color: var(--ok); } .badge.warn { color: var(--warn); }
.badge.bad { color: var(--bad); } .badge.role { color: var(--muted); }
details { margin-top: 8px; }
summary { cursor: pointer; color: var(--muted); font-size: 13.5px; }
.notice { background: var(--panel); border-left: 4px solid var(--axis); padding: 10px 14px;
  border-radius: 6px; margin: 8px 0; }
svg.chart { display:block; width:100%; height:auto; margin-top:6px; }
svg.chart text { fill: var(--ink); font-family: inherit; }
svg.chart .tick { fill: var(--muted); font-size: 12px; }
svg.chart .small { font-size: 10.5px; }
svg.chart .state { font-size: 12.5px; fill: var(--ink); }
svg.chart .axis-title { font-size: 13px; font-weight: 600; }
svg.chart .note { fill: var(--muted); font-size: 11.5px; }
svg.chart .code { font-size: 14px; font-weight: 600; }
svg.chart .value { font-size: 12.5px; font-weight: 600; }
svg.chart .cell { font-size: 14px; font-weight: 600; }
svg.chart .cell.none { font-weight: 400; opacity: 0.75; }
svg.chart .grid { stroke: var(--grid); stroke-width: 1; }
svg.chart .zero, svg.chart .axis { stroke: var(--axis); stroke-width: 1.2; }
svg.chart .cell-na { stroke: var(--grid); stroke-dasharray: 3 3; }
footer { margin-top: 26px; color: var(--muted); font-size: 13px; }
code { font-size: 0.92em; }
caption { text-align: left; caption-side: top; padding: 0 0 6px; }
#table-lists th[scope="row"], .nowrap { white-space: nowrap; }
#table-lists code { font-size: 12px; }
svg.chart .panel-title { font-size: 13px; font-weight: 600; }
"""

# Marks the page as drawn once the browser laid the charts out (read by automated checks);
# the page is complete without it.
SCRIPT = """
(function () {
  var charts = 0, marks = 0;
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    var box = svg.getBoundingClientRect();
    if (box.width > 0 && box.height > 0) { charts += 1; }
    svg.querySelectorAll(".mark").forEach(function (el) {
      var b = el.getBBox();
      if (b.width > 0 && b.height > 0) { marks += 1; }
    });
  });
  document.body.setAttribute("data-charts-rendered", String(charts));
  document.body.setAttribute("data-marks-rendered", String(marks));
})();
"""


HATCH_KEY = (
    '<li><svg viewBox="0 0 34 14" aria-hidden="true" style="width:34px">'
    '<rect x="1" y="1" width="14" height="12" fill="var(--muted)"/>'
    '<rect x="19" y="1" width="14" height="12" fill="url(#hatch-key)" stroke="var(--muted)"/>'
    '<defs><pattern id="hatch-key" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="3" height="6" fill="var(--muted)"/></pattern>'
    "</defs></svg>solid: added · hatched: removed</li>"
)


def _legend(lists: list[ListInfo], lines: bool, extra: str = "") -> str:
    items = []
    for li in lists:
        if lines:
            icon = (
                f'<svg viewBox="0 0 26 14" aria-hidden="true"><line x1="1" x2="25" y1="7" '
                f'y2="7" stroke="{li.colour}" stroke-width="2.5"/>'
                f"{_marker(li.marker, 13, 7, li.colour, 4)}</svg>"
            )
        else:
            icon = f'<span class="swatch" style="background:{li.colour}" aria-hidden="true"></span>'
        items.append(f"<li>{icon}{_t(li.audience.list_name)}</li>")
    return f'<ul class="legend" aria-label="Legend">{"".join(items)}{extra}</ul>'


def _status_badge(status: str | None) -> str:
    if not status:
        return '<span class="badge role">never run</span>'
    return f'<span class="badge {STATUS_CLASS.get(status, "bad")}">{_t(status)}</span>'


def _table(
    table_id: str, caption: str, header: list[str], rows: list[list[str]], numeric: set[int]
) -> str:
    """An HTML table (first column: row headers); header and cells are already escaped."""

    def num(k: int) -> str:
        return ' class="num"' if k in numeric else ""

    ths = "".join(f'<th scope="col"{num(k)}>{h}</th>' for k, h in enumerate(header))
    body = "".join(
        "<tr>"
        + "".join(
            f'<th scope="row"{num(k)}>{c}</th>' if k == 0 else f"<td{num(k)}>{c}</td>"
            for k, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return (
        f'<div class="wrap"><table id="{table_id}"><caption class="sub">{caption}</caption>'
        f"<thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _data_table(table: str, open_: bool = False) -> str:
    return (
        f"<details{' open' if open_ else ''}><summary>Data table (the chart's numbers)</summary>"
        f"{table}</details>"
    )


def _header(data: ReportData) -> str:
    members = sum(li.members for li in data.lists)
    rejected = int(data.errors["rows"].sum()) if data.errors.height else 0
    parked = int(data.parked["rows"].sum()) if data.parked.height else 0
    if data.runs.height:
        first, last = data.runs["started_at"][0], data.runs["started_at"][-1]
        span = f"{_when(first, '%Y-%m-%d %H:%M')} → {_when(last, '%Y-%m-%d %H:%M')} UTC"
        shown = (
            f"the last {data.runs.height:,} of {data.total_runs:,} runs"
            if data.total_runs > data.runs.height
            else f"all {data.total_runs:,} runs"
            if data.total_runs > 1
            else "the only run"
        )
        window = f"Charts show {shown}, {span}."
    else:
        window = "No run recorded yet: run `sync run` to fill this report."
    rows = [
        [
            f'<span class="swatch" style="background:{li.colour}" aria-hidden="true"></span>'
            f"{_t(li.audience.list_name)}",
            f"<code>{_t(li.audience.name)}</code>",
            f'<span class="badge role">{_t(li.audience.role)}</span>',
            _t(li.list_id) if li.list_id is not None else DASH,
            _n(li.members),
            (
                f'<span class="nowrap">{_when(li.last_run_at, "%Y-%m-%d %H:%M")}</span> '
                if li.last_run_at
                else ""
            )
            + _status_badge(li.last_status),
        ]
        for li in data.lists
    ]
    table = _table(
        "table-lists",
        "Lists: Bing list, dbt model, role, Bing list id, members Microsoft confirmed now, "
        "last run.",
        ["List", "Audience model", "Role", "List id", "Confirmed members", "Last run (UTC)"],
        rows,
        numeric={3, 4},
    )
    return f"""<header>
<h1>Customer Match sync report</h1>
<p class="meta">Generated {_when(data.generated_at)} UTC
 · warehouse <code>{_t(data.database)}</code>
 · state schema <code>{_t(data.state_schema)}</code></p>
<p class="meta">{_md(window)}</p>
<div class="cards">
<div class="card"><b>{len(data.lists):,}</b><span>lists</span></div>
<div class="card"><b>{members:,}</b><span>confirmed members now</span></div>
<div class="card"><b>{data.total_runs:,}</b><span>runs recorded</span></div>
<div class="card"><b>{rejected:,}</b><span>rejected rows in these runs</span></div>
<div class="card"><b>{data.in_flight.height:,}</b><span>uploads in flight</span></div>
<div class="card"><b>{parked:,}</b><span>rows parked</span></div>
</div>
</header>
<section aria-labelledby="h-lists"><h2 id="h-lists">Lists</h2>{table}</section>"""


def _run_rows(data: ReportData, cell: Callable[[dict[str, Any]], str]) -> list[list[str]]:
    by_key = {(r["run_id"], r["audience"]): r for r in data.per_list.iter_rows(named=True)}
    rows = []
    for k, (run_id, started) in enumerate(data.runs.iter_rows(), start=1):
        row = [f"{k}", _when(started), f"<code>{_t(run_id)}</code>"]
        for li in data.lists:
            found = by_key.get((run_id, li.audience.name))
            row.append(cell(found) if found else DASH)
        rows.append(row)
    return rows


def _list_headers(data: ReportData) -> list[str]:
    return ["#", "Started (UTC)", "Run id", *(_t(li.audience.list_name) for li in data.lists)]


def _sizes_section(data: ReportData) -> str:
    head = '<section aria-labelledby="h-sizes"><h2 id="h-sizes">Audience size over time</h2>'
    sub = (
        '<p class="sub">Members Microsoft confirmed in each list after each run (a list '
        "missing from a run kept its size).</p>"
    )
    if not data.runs.height:
        return f'{head}{sub}<p class="notice">No runs recorded yet.</p></section>'
    table = _table(
        "table-sizes",
        f"Confirmed members after each run, per list ({DASH}: the list was not in that run, or "
        "its plan failed and changed nothing).",
        _list_headers(data),
        _run_rows(data, lambda r: _n(r["size_after"])),
        numeric={0, *range(3, 3 + len(data.lists))},
    )
    return (
        f"{head}{sub}{_legend(data.lists, lines=True)}{_sizes_chart(data)}"
        f"{_data_table(table)}</section>"
    )


def _changes_section(data: ReportData) -> str:
    head = '<section aria-labelledby="h-changes"><h2 id="h-changes">Adds and removes per run</h2>'
    sub = (
        '<p class="sub">Rows Microsoft confirmed, per run and list: adds (refreshes of '
        "expiring members included) above the line, removes below it.</p>"
    )
    if not data.runs.height:
        return f'{head}{sub}<p class="notice">No runs recorded yet.</p></section>'
    table = _table(
        "table-changes",
        "Confirmed adds / removes per run and list.",
        _list_headers(data),
        _run_rows(
            data, lambda r: f"+{_n(r['confirmed_adds'])} / {MINUS}{_n(r['confirmed_removes'])}"
        ),
        numeric={0, *range(3, 3 + len(data.lists))},
    )
    return (
        f"{head}{sub}{_legend(data.lists, lines=False, extra=HATCH_KEY)}{_changes_chart(data)}"
        f"{_data_table(table)}</section>"
    )


def _errors_section(data: ReportData) -> str:
    head = (
        '<section aria-labelledby="h-errors"><h2 id="h-errors">Rejected rows by Microsoft '
        "error code</h2>"
    )
    sub = (
        '<p class="sub">Rows Microsoft refused in the runs above; they are kept in '
        "<code>row_errors</code> and sent again by the next runs, up to "
        "<code>--max-row-attempts</code> runs, then parked (see Waiting).</p>"
    )
    if data.errors.is_empty():
        note = "No rejected rows in these runs." if data.runs.height else "No runs recorded yet."
        return f'{head}{sub}<p class="notice">{note}</p></section>'
    involved = set(data.errors["audience"].to_list())
    lists = [li for li in data.lists if li.audience.name in involved]
    name = {li.audience.name: li.audience.list_name for li in data.lists}
    rows = [
        [
            _t(code if code is not None else "no code"),
            _t(message or ""),
            _t(name.get(aud, aud)),
            _n(n),
        ]
        for code, aud, message, n in data.errors.select(
            "error_code", "audience", "message", "rows"
        ).iter_rows()
    ]
    table = _table(
        "table-errors",
        "Rejected rows per Microsoft error code and list.",
        ["Error code", "Microsoft's error", "List", "Rows"],
        rows,
        numeric={3},
    )
    return (
        f"{head}{sub}{_legend(lists, lines=False)}{_errors_chart(data, lists)}"
        f"{_data_table(table, open_=True)}</section>"
    )


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _waiting_section(data: ReportData) -> str:
    """Uploads Microsoft still processes (a later run collects them) and parked rows."""
    head = '<section aria-labelledby="h-waiting"><h2 id="h-waiting">Waiting</h2>'
    name = {li.audience.name: li.audience.list_name for li in data.lists}
    if data.in_flight.height:
        rows = [
            [
                _t(name.get(aud, aud)), _t(action), _n(n), _t(state), _t(request_id),
                _t(_age(max(0.0, (data.generated_at - at).total_seconds()))),
            ]
            for aud, action, n, state, request_id, at in data.in_flight.iter_rows()
        ]  # fmt: skip
        flights = _table(
            "table-in-flight",
            "Uploads sent to Microsoft whose result is not collected yet: the next run "
            "collects each by its request id (never sends it again); one older than "
            "<code>--max-upload-age</code> fails its list.",
            ["List", "Action", "Rows", "State", "Microsoft request id", "Age"],
            rows,
            numeric={2, 5},
        )
    else:
        flights = '<p class="notice">No upload in flight: every result is collected.</p>'
    if data.parked.height:
        rows = [
            [_t(name.get(aud, aud)), _t(code if code is not None else "no code"),
             _t(message or ""), _n(n), _t(_when(since))]
            for aud, code, message, n, since in data.parked.iter_rows()
        ]  # fmt: skip
        parked = _table(
            "table-parked",
            "Rows Microsoft rejected on too many runs: no longer sent, no longer exit code 2. "
            "A change of the audience for one of them starts it over.",
            ["List", "Error code", "Microsoft's error", "Rows", "Parked since (UTC)"],
            rows,
            numeric={3},
        )
    else:
        parked = '<p class="notice">No parked rows.</p>'
    return f"{head}{flights}{parked}</section>"


def _transitions_section(data: ReportData) -> str:
    tr = data.transitions
    head = (
        '<section aria-labelledby="h-transitions"><h2 id="h-transitions">State transitions '
        "between the last two builds</h2>"
    )
    if tr.note:
        return f'{head}<p class="notice" id="transitions-note">{_md(tr.note)}</p></section>'
    moved = sum(v for (f, t), v in tr.counts.items() if f != t and NONE_STATE not in (f, t))
    entered = sum(v for (f, t), v in tr.counts.items() if f == NONE_STATE and t != NONE_STATE)
    left = sum(v for (f, t), v in tr.counts.items() if t == NONE_STATE and f != NONE_STATE)
    stayed = sum(v for (f, t), v in tr.counts.items() if f == t != NONE_STATE)
    sub = (
        f'<p class="sub">People per state at the build of {_when(tr.before)} UTC (rows) and '
        f"of {_when(tr.after)} UTC (columns), from <code>{_t(tr.relation)}</code>. "
        "<em>none</em>: in no state (entering or leaving).</p>"
        f'<p id="transitions-summary">{stayed:,} stayed · {moved:,} changed state · '
        f"{entered:,} entered · {left:,} left</p>"
    )
    rows = []
    for f in tr.states:
        cells = [_t(f)]
        for t in tr.states:
            cells.append("n/a" if f == t == NONE_STATE else _n(tr.counts.get((f, t), 0)))
        total = sum(tr.counts.get((f, t), 0) for t in tr.states)
        rows.append([*cells, _n(total)])
    totals = [sum(tr.counts.get((f, t), 0) for f in tr.states) for t in tr.states]
    rows.append(["<strong>total</strong>", *(_n(v) for v in totals), _n(sum(totals))])
    table = _table(
        "table-transitions",
        "People: rows are the state at the earlier build, columns the state at the later one.",
        ["from \\ to", *(_t(s) for s in tr.states), "total"],
        rows,
        numeric=set(range(1, len(tr.states) + 2)),
    )
    return f"{head}{sub}{_matrix_chart(tr)}{_data_table(table)}</section>"


def render(data: ReportData) -> str:
    """The whole page as one HTML string (inline CSS, inline SVG, no external resource)."""
    body = "\n".join(
        [
            _header(data),
            _sizes_section(data),
            _changes_section(data),
            _errors_section(data),
            _waiting_section(data),
            _transitions_section(data),
        ]
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="sync report {_t(__version__)}">
<title>Customer Match sync report · {_when(data.generated_at, "%Y-%m-%d %H:%M")} UTC</title>
<style>{CSS}</style>
</head>
<body>
<main>
{body}
<footer>Counts only: this page holds no email address, hash or person id. Made by
<code>sync report</code> {_t(__version__)} from the warehouse's <code>{_t(data.state_schema)}</code>
tables{"" if data.transitions.note else " and the audience_states snapshot"}.</footer>
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""


# ---------------------------------------------------------------------------------- API


def build_report(
    wh: Warehouse,
    state_schema: str,
    audiences: list[Audience],
    history_source: str | None = None,
    *,
    max_runs: int = DEFAULT_MAX_RUNS,
    generated_at: datetime | None = None,
) -> str:
    """The report page for `audiences` as one self-contained HTML string.

    `history_source` names the dbt snapshot of audience_states: None for
    `audience_states_snapshot` in the audience tables' schema, else `name`, `schema.name` or
    `database.schema.name`. A missing snapshot gives a note instead of the transition
    matrix. Charts cover the last `max_runs` runs. Reads only; the state tables must exist
    (`State.ensure()`, as every command's Context does).
    """
    return render(
        collect(
            wh,
            state_schema,
            audiences,
            history_source,
            max_runs=max_runs,
            generated_at=generated_at,
        )
    )


def write_report(html: str, path: Path) -> None:
    """Write the page atomically (a reader never sees half a file); folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@functools.cache
def _report_command() -> click.Command:
    # sync.cli imports this module; importing it back only when the command is asked for
    # keeps that free of import cycles.
    from sync.cli import Context, common_options, handle_errors
    from sync.output import emit_json

    @click.command("report")
    @common_options
    @click.option(
        "--output",
        "-o",
        type=click.Path(dir_okay=False, path_type=Path),
        default="sync-report.html",
        show_default=True,
        help="Where to write the HTML page.",
    )
    @click.option(
        "--history-source",
        metavar="RELATION",
        help="The dbt snapshot of audience_states ([schema.]name; default: "
        f"{SNAPSHOT_NAME} next to the audience tables).",
    )
    @click.option(
        "--max-runs",
        type=click.IntRange(1, 10_000),
        default=DEFAULT_MAX_RUNS,
        show_default=True,
        help="How many recent runs the charts show.",
    )
    @handle_errors
    def report_command(
        as_json: bool, output: Path, history_source: str | None, max_runs: int, **kw: Any
    ) -> None:
        """Write one self-contained HTML page: audience sizes over time, adds and removes
        per run, rejected rows by Microsoft error code, state transitions between the last
        two builds. Reads only the warehouse; counts only, no identifiers.

        \b
        Examples:
          sync report                       # ./sync-report.html
          sync report -o reports/today.html --max-runs 200
        """
        ctx = Context(kw)
        with ctx.wh:
            page = build_report(
                ctx.wh, kw["state_schema"], ctx.audiences, history_source, max_runs=max_runs
            )
        write_report(page, output)
        if as_json:
            emit_json(
                {"command": "report", "path": str(output.resolve()), "bytes": len(page.encode())}
            )
        else:
            click.echo(f"report written to {output} ({len(page.encode()):,} bytes)")

    return report_command


def __getattr__(name: str) -> Any:
    """`report_command` is built on first use (it needs sync.cli, which imports this)."""
    if name == "report_command":
        return _report_command()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
