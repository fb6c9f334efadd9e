"""`sync report`: one self-contained HTML page of the sync's history, for people.

    sync report -o sync-report.html     # then open the file; it needs no network

The page is built from the warehouse only (the sync's state tables and, when it exists, the
dbt snapshot of audience_states): audience sizes after each run, adds and removes per run,
rejected rows by Microsoft error code, what is waiting (uploads Microsoft is still
processing, with their age, and rows parked after too many rejections), and the state
transitions between the last two builds. Charts are server-side SVG with inline CSS, each
with a title, axis titles, a legend and a data table as its text alternative. Only counts,
list names, list ids, run ids, states and error codes are written: never an email, a hash or
a person id (every data-derived text goes through sync/redact.py).

One job per module: `queries` (counts from the warehouse), `charts` (SVG), `page` (sections
and the Jinja2 template `templates/page.html.j2`), `command` (the click command), `format`
(escaping, numbers, dates, colours). API:

    build_report(wh, state_schema, audiences, history_source) -> str   # the HTML
    write_report(html, path) -> None                                   # atomic write
    report_command                                                     # the click command
"""

from sync.report.command import report_command
from sync.report.format import PALETTE
from sync.report.page import build_report, write_report

__all__ = ["PALETTE", "build_report", "report_command", "write_report"]
