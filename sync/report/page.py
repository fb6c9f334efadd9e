"""The report page: its sections (tables, legends, notices) around the charts, put into the
Jinja2 template templates/page.html.j2 (inline CSS, no external resource), and written
atomically."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from sync import __version__, coverage, sizes
from sync.project import Audience
from sync.report.charts import (
    _changes_chart,
    _errors_chart,
    _marker,
    _matrix_chart,
    _sizes_chart,
)
from sync.report.format import DASH, MINUS, STATUS_CLASS, _md, _n, _t, _when
from sync.report.queries import (
    DEFAULT_MAX_RUNS,
    NONE_STATE,
    ListInfo,
    ReportData,
    collect,
)
from sync.warehouse import Warehouse

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
            _t(sizes.matched_text(li.size, missing=DASH)),
            _t(coverage.text(li.coverage)) if li.coverage else DASH,
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
        "the people Microsoft matched (its Audience Search Size, about 48 h after an upload) "
        "with the match rate, the share of the audience's people with a usable email "
        "(audience_coverage), last run.",
        [
            "List",
            "Audience model",
            "Role",
            "List id",
            "Confirmed members",
            "Matched (Microsoft)",
            "Email coverage",
            "Last run (UTC)",
        ],
        rows,
        numeric={3, 4, 5, 6},
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


#: What a section about runs shows in their place before the first run.
_NO_RUNS = '<p class="notice">No runs recorded yet.</p></section>'


def _section_head(key: str, title: str) -> str:
    """A section's opening and heading, the heading's id naming the section (the page's
    links and the screen readers' landmarks go by it)."""
    return f'<section aria-labelledby="h-{key}"><h2 id="h-{key}">{title}</h2>'


def _list_headers(data: ReportData) -> list[str]:
    return ["#", "Started (UTC)", "Run id", *(_t(li.audience.list_name) for li in data.lists)]


def _per_run_section(
    data: ReportData,
    key: str,
    title: str,
    sub: str,
    caption: str,
    cell: Callable[[dict[str, Any]], str],
    figure: Callable[[], str],
) -> str:
    """A section of numbers per run and list, drawn (`figure`: the legend and the chart)
    and then tabled (`cell`: one list's number in one run), the sizes and the changes alike."""
    head = _section_head(key, title)
    sub = f'<p class="sub">{sub}</p>'
    if not data.runs.height:
        return f"{head}{sub}{_NO_RUNS}"
    table = _table(
        f"table-{key}",
        caption,
        _list_headers(data),
        _run_rows(data, cell),
        numeric={0, *range(3, 3 + len(data.lists))},
    )
    return f"{head}{sub}{figure()}{_data_table(table)}</section>"


def _sizes_section(data: ReportData) -> str:
    return _per_run_section(
        data,
        "sizes",
        "Audience size over time",
        "Members Microsoft confirmed in each list after each run (a list missing from a run "
        "kept its size).",
        f"Confirmed members after each run, per list ({DASH}: the list was not in that run, or "
        "its plan failed and changed nothing).",
        lambda r: _n(r["size_after"]),
        lambda: _legend(data.lists, lines=True) + _sizes_chart(data),
    )


def _changes_section(data: ReportData) -> str:
    return _per_run_section(
        data,
        "changes",
        "Adds and removes per run",
        "Rows Microsoft confirmed, per run and list: adds (refreshes of expiring members "
        "included) above the line, removes below it.",
        "Confirmed adds / removes per run and list.",
        lambda r: f"+{_n(r['confirmed_adds'])} / {MINUS}{_n(r['confirmed_removes'])}",
        lambda: _legend(data.lists, lines=False, extra=HATCH_KEY) + _changes_chart(data),
    )


def _errors_section(data: ReportData) -> str:
    head = _section_head("errors", "Rejected rows by Microsoft error code")
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
    head = _section_head("waiting", "Waiting")
    name = {li.audience.name: li.audience.list_name for li in data.lists}
    if data.in_flight.height:
        rows = [
            [
                _t(name.get(aud, aud)), _t(action), _n(n), _t(state),
                _t(_age(max(0.0, (data.generated_at - at).total_seconds()))),
            ]
            for aud, action, n, state, at in data.in_flight.iter_rows()
        ]  # fmt: skip
        flights = _table(
            "table-in-flight",
            "Uploads sent to Microsoft whose result is not collected yet: the next run "
            "collects each by its request id (never sends it again); one older than "
            "<code>--max-upload-age</code> fails its list (<code>sync status</code> names its "
            "Microsoft request id).",
            ["List", "Action", "Rows", "State", "Age"],
            rows,
            numeric={2, 4},
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
    head = _section_head("transitions", "State transitions between the last two builds")
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


_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("sync.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)
_TEMPLATES.filters["t"] = lambda value: markupsafe.Markup(_t(value))


def render(data: ReportData) -> str:
    """The whole page as one HTML string (inline CSS, inline SVG, no external resource)."""
    sections = "\n".join(
        [
            _header(data),
            _sizes_section(data),
            _changes_section(data),
            _errors_section(data),
            _waiting_section(data),
            _transitions_section(data),
        ]
    )
    return _TEMPLATES.get_template("page.html.j2").render(
        version=__version__,
        generated=_when(data.generated_at, "%Y-%m-%d %H:%M"),
        sections=markupsafe.Markup(sections),  # built from escaped parts (format._t)
        state_schema=data.state_schema,
        snapshot=not data.transitions.note,
    )


# ---------------------------------------------------------------------------------- API


def build_report(
    wh: Warehouse,
    state_schema: str,
    audiences: list[Audience],
    history_source: str | None = None,
    *,
    max_runs: int = DEFAULT_MAX_RUNS,
    generated_at: datetime | None = None,
    coverage: Mapping[str, dict[str, Any]] | None = None,
) -> str:
    """The report page for `audiences` as one self-contained HTML string.

    `history_source` names the dbt snapshot of audience_states: None for
    `audience_states_snapshot` in the audience tables' schema, else `name`, `schema.name` or
    `database.schema.name`. A missing snapshot gives a note instead of the transition
    matrix. Charts cover the last `max_runs` runs; `coverage` (sync/coverage.py) fills the
    lists' coverage column. Reads only; the state tables must exist
    (`State.ensure()` or `State.readable()`, as every command's Context makes them).
    """
    return render(
        collect(
            wh,
            state_schema,
            audiences,
            history_source,
            max_runs=max_runs,
            generated_at=generated_at,
            coverage=coverage,
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
