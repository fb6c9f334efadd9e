"""What every `sync` command shares: the options saying where the dbt project, profile and
state are, the `Context` they open (project, warehouse, selected audiences, state), and one
way to turn a configuration or lock problem into one clear line and exit code 1. `sync.cli`
and `sync.report` both import it; it imports neither.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click

from sync.errors import ConfigError, LockTimeout, SyncError
from sync.output import emit_json
from sync.project import Audience, Project, load_audiences, load_project, select_audiences
from sync.redact import scrub
from sync.state import State
from sync.warehouse import Warehouse

log = logging.getLogger("sync")

DEFAULT_STATE_SCHEMA = "sync_state"


def common_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options every command shares: where the dbt project, profile and state are."""
    options = [
        click.option("--project-dir", envvar="DBT_PROJECT_DIR", type=click.Path(file_okay=False),
                     help="The dbt project folder (default: current folder)."),
        click.option("--profiles-dir", envvar="DBT_PROFILES_DIR", type=click.Path(file_okay=False),
                     help="Folder of profiles.yml, as for dbt (default: ., then ~/.dbt)."),
        click.option("--target", "-t", envvar="DBT_TARGET",
                     help="Profile target, as for dbt (default: the profile's own)."),
        click.option("--target-path", envvar="DBT_TARGET_PATH",
                     help="dbt's target folder holding manifest.json (default: target)."),
        click.option("--select", "-s", "select", multiple=True, metavar="NAME",
                     help="Only these audiences: model name (audience_ltv_high), short name "
                          "(ltv_high) or Bing list name. Repeatable."),
        click.option("--state-schema", envvar="SYNC_STATE_SCHEMA", default=DEFAULT_STATE_SCHEMA,
                     show_default=True, help="Warehouse schema of the sync's own state tables."),
        click.option("--lock-timeout", type=float, default=600, show_default=True, metavar="SECONDS",
                     help="How long to wait for another sync run to finish, or a dbt build to "
                          "release the warehouse file (the sync gives it back while it waits "
                          "on Microsoft, so a dbt build can run meanwhile)."),
        click.option("--allow-stale-manifest", is_flag=True,
                     help="Use target/manifest.json even if model files changed after it."),
        click.option("--json", "as_json", is_flag=True,
                     help="Print one JSON document on stdout (logs stay on stderr)."),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


class Context:
    """What every command needs: the project, the selected audiences, the warehouse and state.

    `run=True` (`sync run`): the run lock (one run per warehouse) and the state tables created
    or migrated. Otherwise (`plan`, `status`, `report`) nothing is written: the state is read
    as it is, or as empty where the sync never ran."""

    def __init__(self, kw: dict[str, Any], *, run: bool = False) -> None:
        self.project: Project = load_project(
            kw["project_dir"], kw["profiles_dir"], kw["target"], kw["target_path"]
        )
        # `run`: one per warehouse, waited for before the database is opened
        self.run_lock = contextlib.ExitStack()
        if run:
            self.run_lock.enter_context(
                Warehouse.run_lock(self.project.target, lock_timeout=kw["lock_timeout"])
            )
        # The database next: the manifest is read once no `dbt build` can be rewriting it.
        try:
            self.wh = Warehouse.open(self.project.target, lock_timeout=kw["lock_timeout"])
        except BaseException:
            self.run_lock.close()
            raise
        try:
            audiences = load_audiences(self.project, allow_stale=kw["allow_stale_manifest"])
            if not any(a.enabled for a in audiences):
                raise ConfigError(
                    "the dbt manifest has no enabled audience models (no model has meta.bing, "
                    "or all have meta.audience.enabled: false); see docs/audiences.md"
                )
            #: every audience of the manifest, also those --select leaves out or disabled
            self.all_audiences: list[Audience] = audiences
            self.audiences: list[Audience] = select_audiences(audiences, tuple(kw["select"]))
            self.state = State(self.wh, kw["state_schema"])
            if run:
                self.state.ensure()
            else:
                self.state.readable()
            for move in self.state.carry_over(audiences, write=run):
                log.warning(
                    "%s %s list %s (%s) of %s, which is no longer in the dbt project (renamed): "
                    "its members carry over, nothing is re-sent",
                    move["audience"], "takes over" if run else "would take over",
                    move["list_id"], move["list_name"], move["from"],
                )  # fmt: skip
        except BaseException:
            self.wh.close()
            self.run_lock.close()
            raise


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Configuration and lock problems: one clear line on stderr, exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ConfigError, LockTimeout, SyncError) as exc:
            message = str(exc)
        except Exception as exc:  # a bug or an engine error: one scrubbed line, never a value
            log.debug(
                "traceback (values left out):\n%s", "".join(traceback.format_tb(exc.__traceback__))
            )
            message = (
                f"unexpected {type(exc).__name__}: {scrub(str(exc))} (rerun with -v for where)"
            )
        if kwargs.get("as_json"):
            emit_json({"error": message, "exit_code": 1})
        click.echo(f"sync: error: {message}", err=True)
        sys.exit(1)

    return wrapper
