"""The lists at Microsoft as one run sees them: the account's customer lists (one bulk
download per run, on first need), each audience's list checked every run against what
someone may have changed in the Microsoft Advertising UI (deleted, renamed, another
membership duration), and the list an audience syncs to resolved: stored, pinned, found by
name or created."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sync import sizes
from sync.bing import Bing, RemoteList
from sync.errors import SyncError
from sync.outcome import ListResult
from sync.plan import ListPlan
from sync.project import Audience
from sync.state import State

log = logging.getLogger("sync.run")

# The run named in the description of the lists the sync creates (see `AccountLists.resolve`).
_CREATED_BY = re.compile(r"created by sync run (\S+);")


@dataclass(eq=False)
class AccountLists:
    """The account's customer lists for one run of `sync run`. `bing` gives the connected
    client (the runner's, which gives the warehouse back first); `plan_again` makes a list's
    plan afresh when its list is gone or adopted."""

    state: State
    bing: Callable[[], Bing]
    run_id: str
    plan_again: Callable[[ListPlan], None]
    _remote: list[RemoteList] | None = field(default=None, init=False)

    def all(self) -> list[RemoteList]:
        """Every customer list of the account: one bulk download per run, on first need."""
        if self._remote is None:
            self._remote = self.bing().find_lists()
        return self._remote

    def check(self, plan: ListPlan, result: ListResult) -> None:
        """The list as Microsoft has it now, checked every run (also with nothing to send):
        someone may have deleted it, renamed it or changed its membership duration in the
        Microsoft Advertising UI since the last run.

        Deleted: a stored list is forgotten and the audience planned again (all adds, through
        the guards), so it is recreated and refilled; a pinned one fails. Another duration:
        refused with an error naming both values (Microsoft would expire members the sync
        counts as present). Renamed: kept by id, and said.
        """
        a = plan.audience
        list_id = plan.list_id
        remote = next((r for r in self.all() if r.list_id == list_id), None)
        if remote is None:
            if a.list_id is not None:
                raise SyncError(
                    f"the pinned list {list_id} (meta.bing.list_id) no longer exists at Microsoft "
                    "(deleted in the UI?): pin the list that replaces it, or remove the pin so "
                    "the sync creates one"
                )
            log.warning("%s: list %s no longer exists at Microsoft; recreating it", a.name, list_id)
            self.state.forget_list(a, list_id)
            plan.list_id = result.list_id = None
            self.plan_again(plan)
            result.message = (
                f"list {list_id} no longer existed at Microsoft (deleted outside the sync); "
                "recreated and refilled"
            )
            return
        _require_duration(a, remote)
        sizes.record(self.state, self.run_id, remote)
        if remote.name == a.list_name:
            return
        if remote.name == self.state.stored_list_name(a, list_id):  # the YAML changed
            result.message = (
                f"meta.bing.list_name is now {a.list_name!r}; list {list_id} is still named "
                f"{remote.name!r} at Microsoft. It keeps its id and members and is still "
                "synced; the sync does not rename lists, so rename it in the Microsoft "
                "Advertising UI"
            )
        else:
            result.message = (
                f"list {list_id} is named {remote.name!r} at Microsoft (renamed outside the "
                f"sync); it is still synced by its id. Rename it back to {a.list_name!r}, or "
                "set meta.bing.list_name"
            )
        log.warning("%s: %s", a.name, result.message)

    def resolve(self, plan: ListPlan) -> int:
        """A stored id, a pinned id, a list of that name at Microsoft, or a new list.

        The new list's id is stored at once; if the process dies before that, the next run
        finds the list by name instead of creating a second one.
        """
        a = plan.audience
        if plan.list_id is not None:
            if self.state.list_id(a) != plan.list_id:  # a new pin: its members are unknown
                self.state.save_list(a, plan.list_id, needs_replace=True)
            return plan.list_id
        same_name = [r for r in self.all() if r.name == a.list_name]
        if len(same_name) > 1:
            raise SyncError(
                f"{len(same_name)} lists at Microsoft are named {a.list_name!r}; pin the right "
                "one with meta.bing.list_id"
            )
        if same_name:
            found = same_name[0]
            _require_duration(a, found)
            list_id = found.list_id
            creator = _CREATED_BY.search(found.description)
            ours = creator is not None and self.state.created_by_own_run(a, creator[1])
            log.info("%s: found existing list %s at Microsoft%s", a.name, list_id,
                     " (created by an interrupted run of this sync)" if ours else "")  # fmt: skip
            self.state.save_list(a, list_id, needs_replace=not ours)
            plan.list_id = list_id
            if not ours:  # who is on it is unknown: planned again as a Replace, guarded
                self.plan_again(plan)
            return list_id
        list_id = self.bing().create_list(
            name=a.list_name,
            description=f"Managed by cio-bing-audiences from model {a.name}, created by sync "
            f"run {self.run_id}; do not edit.",
            membership_duration=a.membership_duration_days,
            client_id=a.name,
        )
        log.info("%s: created list %s at Microsoft", a.name, list_id)
        self.all().append(RemoteList(list_id, a.list_name, a.membership_duration_days))
        self.state.save_list(a, list_id)
        plan.list_id = list_id
        return list_id


def _require_duration(a: Audience, remote: RemoteList) -> None:
    """The list's membership duration at Microsoft must be the YAML's: otherwise Microsoft
    expires members the sync counts as present, so nothing is sent to it."""
    duration = remote.membership_duration if remote.membership_duration is not None else -1
    if duration != a.membership_duration_days:
        raise SyncError(
            f"list {remote.list_id} has membership duration {duration} at Microsoft (set "
            f"outside the sync?), meta.bing says {a.membership_duration_days}: Microsoft would "
            "expire members the sync counts as present, so nothing is sent. Set it back in the "
            "Microsoft Advertising UI, or set meta.bing.membership_duration_days to "
            f"{duration}"
        )
