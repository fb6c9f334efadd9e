"""``sync-standin``: run the Bulk v13 stand-in until interrupted."""

from __future__ import annotations

import logging
import signal
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .faults import FAULT_KINDS
from .server import CONTROL_PREFIX, StandIn

_KINDS = textwrap.fill(", ".join(FAULT_KINDS) + ".", width=88, subsequent_indent="  ")
EPILOG = f"""
\b
Example:
  sync-standin --port 8765 --token demo-token --state /tmp/bing-standin.json &
  export BING_BULK_SERVICE_URL=$(...the line printed on stdout...)
  export BING_ACCESS_TOKEN=demo-token
  sync run

\b
Control API (JSON), for tests and demos:
  GET    {CONTROL_PREFIX}lists    lists with their members
  POST   {CONTROL_PREFIX}lists    {{"name": ..., "list_id": ..., "members": [...]}}
  POST   {CONTROL_PREFIX}faults   {{"kind": "http_error", "status": 503, "count": 2}}
  GET    {CONTROL_PREFIX}faults   armed faults;  DELETE clears them
  POST   {CONTROL_PREFIX}reset    forget lists, faults and calls
  GET    {CONTROL_PREFIX}calls    operation names received so far

\b
Faults: {_KINDS}
Every fault takes "count" (default 1, null = until cleared) and "operation"
(a SOAP operation, UploadFile or DownloadFile; default any).
"""


def _seconds(flag: str, text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """An option of seconds, 0 or more, 0 by default: the delay and the processing times,
    all off unless asked for."""
    return click.option(
        flag, type=click.FloatRange(min=0), default=0.0, show_default=True, help=text
    )


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG,
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=int, default=8765, show_default=True, help="Port to listen on (0: any free)."
)
@click.option(
    "--token",
    default=None,
    help="Expected AuthenticationToken; requests with another get Microsoft's error 105.",
)
@_seconds("--delay", "Seconds to delay every request (slow runs for kill tests).")
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON file holding lists and members; loaded at start, rewritten after each change.",
)
@_seconds(
    "--processing-seconds",
    "Seconds Microsoft takes to process each uploaded file (InProgress until then; the "
    "lists change only when it is done).",
)
@_seconds(
    "--processing-seconds-per-10k-rows",
    "More processing time per 10,000 rows of a file (Microsoft: about 60).",
)
@click.option(
    "--out-of-order",
    is_flag=True,
    help="A file that arrives while others are processing is processed before them "
    "(Microsoft promises no order between uploads).",
)
@click.option(
    "--match-share",
    type=click.FloatRange(0, 1),
    default=None,
    help="Report this share of each list's members as matched (Audience Search Size); "
    "unset: no size, as Microsoft before it has sized a list (~48 h).",
)
@click.option("--quiet", is_flag=True, help="Log warnings only.")
def main(quiet: bool, **standin_options: Any) -> None:
    """Serve a loopback stand-in for Microsoft Advertising's Bulk v13 service.

    Prints the Bulk service URL (the value for BING_BULK_SERVICE_URL) on one line on stdout,
    then logs requests to stderr (never hashes) until interrupted (Ctrl-C or SIGTERM).
    """
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    # every other option is a StandIn parameter of the same name, handed on as it is
    standin = StandIn(**standin_options)
    try:
        standin.start()
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {standin.host}:{standin.port}: {exc.strerror}"
        ) from exc
    click.echo(standin.url)
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()


if __name__ == "__main__":
    main()
