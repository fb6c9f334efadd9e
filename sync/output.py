"""All console output of the CLI: human tables on stdout, or one JSON document with --json.

Logs go to stderr (see `setup_logging`), so `sync run --json | jq` always parses. Colour and
progress bars appear only on a terminal. No identifier (email, hash, token) is ever printed:
only counts, list names and ids.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import date, datetime
from typing import Any

import click

from sync import coverage, sizes

QUIET_LOGGERS = ("suds", "bingads", "urllib3", "requests", "dbt", "asyncio")
_handler: logging.Handler | None = None


def setup_logging(verbosity: int) -> None:
    """-q: warnings only; default: progress; -v: debug of our own modules. Third-party
    loggers stay at WARNING whatever the verbosity: suds at DEBUG would print whole SOAP
    envelopes, tokens included."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    root.addHandler(_handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def emit_json(document: dict[str, Any]) -> None:
    click.echo(json.dumps(document, indent=2, default=_default))


def _table(rows: list[list[str]], header: list[str]) -> str:
    """Aligned columns; the last column (a verdict) is coloured after padding."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str], colour: bool = False) -> str:
        padded = [str(c).ljust(w) for c, w in zip(cells, widths, strict=True)]
        if colour:
            padded[-1] = _verdict(str(cells[-1]))
        return "  ".join(padded).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out += [line(r, colour=True) for r in rows]
    return "\n".join(out)


def _n(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return f"{value:,}" if isinstance(value, int) else str(value)


VERDICT_COLOURS = {
    "ok": "green",
    "in_sync": "green",
    "partial": "yellow",
    "in_flight": "cyan",
    "held": "yellow",
    "refused": "yellow",
}


def _verdict(text: str) -> str:
    return click.style(text, fg=VERDICT_COLOURS.get(text, "red"))


def print_plan(lists: list[dict[str, Any]]) -> None:
    rows = [
        [
            p["list_name"], p["role"], str(p["list_id"] or "-"), _n(p["audience_rows"]), _n(p["members"]),
            _n(p["adds"]), _n(p["refresh"]),
            "all others (Replace)" if p.get("replace") else _n(p["removes"]), p["verdict"],
        ]
        for p in lists
    ]  # fmt: skip
    header = [
        "list",
        "role",
        "list id",
        "audience",
        "members",
        "adds",
        "refresh",
        "removes",
        "verdict",
    ]
    click.echo(_table(rows, header))
    for p in lists:
        for reason in p["reasons"]:
            click.echo(f"  {p['list_name']}: {reason}")
    if any(p["list_id"] is None and p["verdict"] == "ok" for p in lists):
        click.echo(
            "  lists without an id are created by the next run; one that already exists at "
            "Microsoft under that name is adopted and replaced instead (needs --allow-replace)"
        )


def print_run(lists: list[dict[str, Any]], seconds: float, code: int) -> None:
    rows = [
        [
            r["list_name"], r["role"], str(r["list_id"] or "-"), _n(r["confirmed_adds"]),
            _n(r["confirmed_removes"]), _n(r["rejected"]), f"{r['seconds']:.1f}s",
            r["status"],
        ]
        for r in lists
    ]  # fmt: skip
    click.echo(
        _table(rows, ["list", "role", "list id", "added", "removed", "rejected", "time", "status"])
    )
    for r in lists:
        if r["message"]:
            click.echo(f"  {r['list_name']}: {r['message']}")
    click.echo(f"{len(lists)} list(s) in {seconds:.1f} s, exit code {code}")


def left_project_text(item: dict[str, Any]) -> str:
    """One list whose audience is disabled or left the dbt project, and what the sync does."""
    if item.get("reason") == "disabled":
        why, undo = "is disabled (meta.audience.enabled: false)", "Enable the audience again"
    else:
        why, undo = "is no longer in the dbt project", "Restore the audience"
    return (
        f"{item['list_name']} (list {item['list_id']}, {item['members']:,} member(s) at the last "
        f"run): its audience {item['audience']} {why}, so the sync no longer touches it and "
        f"its members stay at Microsoft. {undo}, or remove the list from your campaigns and "
        "delete it in Microsoft Advertising"
    )


def print_status(
    lists: list[dict[str, Any]], left_project: list[dict[str, Any]], disabled: list[str]
) -> None:
    rows = []
    for s in lists:
        last = s["runs"][0] if s["runs"] else {}
        errors = sum(e["n"] for e in s["pending_row_errors"])
        parked = sum(e["n"] for e in s["parked_row_errors"])
        rows.append(
            [
                s["list_name"], s["role"], str(s["list_id"] or "-"), _n(s["members"]),
                sizes.matched_text(s.get("microsoft_size")), coverage.text(s.get("coverage")),
                _n(last.get("started_at")), last.get("status", "never"),
                _n(last.get("confirmed_adds")), _n(last.get("confirmed_removes")), _n(errors),
                _n(parked),
            ]
        )  # fmt: skip
    header = [
        "list",
        "role",
        "list id",
        "members",
        "matched",
        "coverage",
        "last run",
        "status",
        "added",
        "removed",
        "row errors",
        "parked",
    ]
    click.echo(_table(rows, header))
    for s in lists:
        if s.get("coverage_warning"):
            click.echo(f"  warning: {s['coverage_warning']}")
    for item in left_project:
        click.echo(f"  not synced: {left_project_text(item)}")
    if disabled:
        click.echo(f"  disabled, not synced (meta.audience.enabled: false): {', '.join(disabled)}")
    for s in lists:
        for u in s.get("in_flight_uploads", []):
            click.echo(
                f"  {s['list_name']}: {u['action'].lower()} of {u['rows']:,} row(s) in flight at "
                f"Microsoft for {u['age_seconds']:.0f} s (request {u['request_id']}); the next "
                "run collects it"
            )
        for e in s["pending_row_errors"]:
            click.echo(
                f"  {s['list_name']}: {e['n']} row(s) error {e['error_code']}: {e['error_message']}"
                " (retried next run)"
            )
        for e in s["parked_row_errors"]:
            click.echo(
                f"  {s['list_name']}: {e['n']} row(s) parked after {e['attempts']} rejected runs, "
                f"error {e['error_code']}: {e['error_message']} (no longer sent; a change of "
                "the audience for them starts over)"
            )
