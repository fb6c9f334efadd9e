"""The `sync` command line: a thin click layer over plan, runner and state.

    dbt build && sync run        # the scheduled job
    sync plan                    # what run would send, and the guards' verdicts
    sync status                  # lists, members, last runs, pending row errors

Exit codes (for schedulers): 0 every list in sync; 1 a failure; 3 a guard refused a list;
2 finished but Microsoft rejected some rows (retried next run). The first of 1, 3, 2 wins.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import click

from sync import __version__, tokens
from sync.options import Context, common_options, handle_errors
from sync.output import (
    emit_json,
    left_project_text,
    print_plan,
    print_run,
    print_status,
    setup_logging,
)
from sync.plan import Overrides, plan_list

log = logging.getLogger("sync")


def guard_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--allow-empty", is_flag=True,
                     help="Let an empty audience empty its list (refused by default)."),
        click.option("--max-remove-share", type=click.FloatRange(0, 1), metavar="SHARE",
                     help="Allow removing up to this share of a list's members in this run "
                          "(overrides each list's meta max_remove_share, default 0.5)."),
        click.option("--allow-replace", is_flag=True,
                     help="Let a list whose members the sync does not know (an existing list "
                          "adopted by name or pinned, or any list after the warehouse state "
                          "was lost or rebuilt) be replaced by its audience: everyone else on "
                          "it is removed (refused by default, because nobody can count them)."),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="sync")
@click.option("-q", "--quiet", count=True, help="Only warnings and errors on stderr.")
@click.option("-v", "--verbose", count=True, help="More detail on stderr (never identifiers).")
def main(quiet: int, verbose: int) -> None:
    """Mirror dbt audience tables into Microsoft Advertising Customer Match lists.

    Reads the audiences from the dbt manifest (models with meta.bing), the warehouse from
    the same dbt profile, and Microsoft credentials from BING_* environment variables.
    Sends only hashed deltas; remembers what Microsoft confirmed in the warehouse.

    \b
    Typical schedule (hourly):
      dbt build && sync run
    """
    setup_logging(verbose - quiet)


@main.command()
@common_options
@guard_options
@handle_errors
def plan(
    as_json: bool,
    allow_empty: bool,
    max_remove_share: float | None,
    allow_replace: bool,
    **kw: Any,
) -> None:
    """Show what `run` would send per list: adds, removes, guard verdicts. Sends nothing.

    Needs no Microsoft credentials. Exit code 0 when every list could run, 3 when a guard
    would refuse one, 1 when one cannot be planned (missing table, bad hashes).

    \b
    Examples:
      sync plan
      sync plan --select cart_abandon_0_1d --json
      sync plan --max-remove-share 1.0     # preview with the removal guard relaxed
    """
    ctx = Context(kw)
    with ctx.wh:
        overrides = Overrides(allow_empty, max_remove_share, allow_replace)
        plans = [plan_list(ctx.wh, ctx.state, a, overrides).as_dict() for a in ctx.audiences]
    verdicts = {p["verdict"] for p in plans}
    code = 1 if "error" in verdicts else 3 if "refused" in verdicts else 0
    if as_json:
        emit_json({"command": "plan", "lists": plans, "exit_code": code})
    else:
        print_plan(plans)
    sys.exit(code)


@main.command()
@common_options
@guard_options
@click.option("--max-rows-per-file", type=click.IntRange(1, 3_999_998), default=1_000_000,
              show_default=True, help="Split uploads into files of at most this many rows "
              "(Microsoft: 4M rows / 100 MB per file; sandbox: 20k).")  # fmt: skip
@click.option("--max-attempts", type=click.IntRange(1, 20), default=5, show_default=True,
              help="Tries per Microsoft call before a transient fault fails the list.")  # fmt: skip
@click.option("--retry-max-delay", type=click.FloatRange(0, 600), default=30, show_default=True,
              metavar="SECONDS", help="Cap of the exponential backoff (with jitter) between "
              "tries; throttling (117, 4204) waits this long.")  # fmt: skip
@click.option(
    "--request-timeout",
    type=click.FloatRange(1, 3600),
    default=120,
    show_default=True,
    metavar="SECONDS",
    help="Bound on each call to Microsoft (a hung call is retried).",
)
@click.option("--max-row-attempts", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Runs a row Microsoft rejects is sent on before it is parked: no longer sent, "
              "no longer exit code 2, listed by `sync status` (a change of the audience for it "
              "starts over).")  # fmt: skip
@click.option("--upload-timeout", type=click.FloatRange(1, 86400), default=600, show_default=True,
              metavar="SECONDS", help="Bound on sending one file, and on waiting for Microsoft to "
              "process it (about a minute per 10k rows); a file still processing then stays in "
              "flight and a later run collects its result.")  # fmt: skip
@click.option("--no-wait", is_flag=True,
              help="Send the files and return: results are collected by the next runs (exit 0 "
              "while Microsoft processes them; `sync status` shows them in flight).")  # fmt: skip
@click.option("--max-upload-age", type=click.FloatRange(0.0001, 720), default=24, show_default=True,
              metavar="HOURS", help="An upload still processing after this long is an error "
              "naming its Microsoft request id.")  # fmt: skip
@handle_errors
def run(
    as_json: bool,
    allow_empty: bool,
    max_remove_share: float | None,
    allow_replace: bool,
    max_rows_per_file: int,
    max_attempts: int,
    retry_max_delay: float,
    request_timeout: float,
    upload_timeout: float,
    no_wait: bool,
    max_upload_age: float,
    max_row_attempts: int,
    **kw: Any,
) -> None:
    """Make each Bing list hold exactly its audience table's hashes, sending only deltas.

    Exclusion (suppression) lists go first. Every upload's confirmed rows are recorded in
    the warehouse as they finish, so re-running after any crash converges.

    \b
    Examples:
      dbt build && sync run
      sync run --select recent_purchaser_0_7d --select cart_abandon_0_1d
      sync run --allow-empty --select ltv_high      # the audience really is empty now
      BING_BULK_SERVICE_URL=http://127.0.0.1:8765/... sync run    # against the stand-in

    \b
    Exit codes: 0 all lists in sync; 1 a failure; 3 a guard refused a list; 2 Microsoft
    rejected some rows this run (recorded in row_errors, retried on the next runs, then
    parked). When a suppression list fails or is refused, target lists send removes only.
    """
    from sync.bing import Bing, BingSettings, RetryPolicy
    from sync.outcome import exit_code, new_run_id
    from sync.runner import Runner
    from sync.workdir import private_workdir

    started = time.monotonic()
    settings = BingSettings.from_env()
    ctx = Context(kw, run=True)
    run_id = new_run_id()
    with ctx.run_lock, ctx.wh, private_workdir(run_id) as workdir:
        interrupted = ctx.state.abandon_running()
        if interrupted:
            log.warning(
                "%d list run(s) of an interrupted sync were marked so; redoing their work",
                interrupted,
            )
        overrides = Overrides(allow_empty, max_remove_share, allow_replace)
        plans = [plan_list(ctx.wh, ctx.state, a, overrides) for a in ctx.audiences]

        def connect() -> Bing:
            stored = tokens.stored_refresh_token(ctx.state, settings.refresh_token)
            poll = os.environ.get("SYNC_POLL_INTERVAL_MS")
            return Bing(
                settings,
                workdir,
                on_refresh_token=lambda t: tokens.save_refresh_token(
                    ctx.state, t, settings.refresh_token
                ),
                refresh_token_override=stored,
                retry=RetryPolicy(
                    max_attempts=max_attempts,
                    base_delay=min(1.0, retry_max_delay),
                    max_delay=retry_max_delay,
                    request_timeout=request_timeout,
                    upload_timeout=upload_timeout,
                    processing_wait=0.0 if no_wait else None,
                ),
                max_rows_per_file=max_rows_per_file,
                poll_interval_ms=int(poll) if poll else None,
            )

        progress = _progress_printer() if sys.stderr.isatty() and not as_json else None
        log.info("run %s: %d list(s)", run_id, len(plans))
        runner = Runner(
            ctx.state,
            connect,
            run_id,
            replan=lambda a: plan_list(ctx.wh, ctx.state, a, overrides),
            progress=progress,
            max_row_attempts=max_row_attempts,
            wait=0.0 if no_wait else upload_timeout,
            max_upload_age=timedelta(hours=max_upload_age),
        )
        results = runner.run(plans)
        for item in ctx.state.left_project(ctx.all_audiences):
            log.warning("not synced: %s", left_project_text(item))
    code = exit_code(results)
    seconds = time.monotonic() - started
    lists = [r.as_dict() for r in results]
    if as_json:
        emit_json(
            {
                "command": "run",
                "run_id": run_id,
                "lists": lists,
                "seconds": round(seconds, 3),
                "exit_code": code,
            }
        )
    else:
        print_run(lists, seconds, code)
    sys.exit(code)


def _progress_printer() -> Callable[[str, str, int, int], None]:
    def show(audience: str, action: str, done: int, total: int) -> None:
        end = "\n" if done >= total else ""
        click.echo(f"\r  {audience}: {action.lower()} {done:,}/{total:,} rows", err=True, nl=False)
        if end:
            click.echo("", err=True)

    return show


@main.command()
@common_options
@click.option("--history", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="How many recent runs to show per list (with --json).")  # fmt: skip
@handle_errors
def status(as_json: bool, history: int, **kw: Any) -> None:
    """Per list: its Bing id, confirmed members, Microsoft's matched size (the match rate),
    identifier coverage (people in the audience with a usable email), last runs, uploads in
    flight, row errors.

    Reads only the warehouse; sends nothing and needs no credentials.

    \b
    Examples:
      sync status
      sync status --json --history 20 | jq '.lists[] | {list_name, members}'
    """
    from sync import coverage, sizes
    from sync.uploads import Uploads

    ctx = Context(kw)
    with ctx.wh:
        lists = ctx.state.status(ctx.audiences, history)
        uploads = Uploads(ctx.state)
        covered = coverage.read(ctx.wh, ctx.project)
        for item in lists:
            item["in_flight_uploads"] = uploads.summary(item["list_id"])
            item["microsoft_size"] = sizes.latest(ctx.state, item["list_id"], item["members"])
            item["coverage"] = covered.get(item["audience"])
            item["coverage_warning"] = coverage.warning(item["list_name"], item["coverage"])
        left = ctx.state.left_project(ctx.all_audiences)
    disabled = [a.name for a in ctx.all_audiences if not a.enabled]
    if as_json:
        emit_json({"command": "status", "lists": lists, "left_project": left, "disabled": disabled})
    else:
        print_status(lists, left, disabled)


def _register_report() -> None:
    """`sync report` lives in its own package (queries, charts, page); registered here."""
    from sync.report import report_command

    main.add_command(report_command)


_register_report()
