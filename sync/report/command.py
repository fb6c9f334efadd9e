"""`sync report`: the click command over the report package (options shared with `sync`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sync import coverage
from sync.options import Context, common_options, handle_errors
from sync.output import emit_json
from sync.report.page import build_report, write_report
from sync.report.queries import DEFAULT_MAX_RUNS, SNAPSHOT_NAME


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
    per run, identifier coverage per list, rejected rows by Microsoft error code, state
    transitions between the last two builds. Reads only the warehouse; counts only, no identifiers.

    \b
    Examples:
      sync report                       # ./sync-report.html
      sync report -o reports/today.html --max-runs 200
    """
    ctx = Context(kw)
    with ctx.wh:
        page = build_report(
            ctx.wh,
            kw["state_schema"],
            ctx.audiences,
            history_source,
            max_runs=max_runs,
            coverage=coverage.read(ctx.wh, ctx.project),
        )
    write_report(page, output)
    if as_json:
        emit_json({"command": "report", "path": str(output.resolve()), "bytes": len(page.encode())})
    else:
        click.echo(f"report written to {output} ({len(page.encode()):,} bytes)")
