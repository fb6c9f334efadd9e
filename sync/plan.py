"""What a run would do per list, and whether its guards let it: computed in the warehouse.

A plan sends nothing and needs no Microsoft credentials. `sync plan` prints it; `sync run`
executes it. Guards protect paid-media lists from a broken upstream: an audience that is
suddenly empty, or a removal wave above the list's `max_remove_share`, is refused and the
list left untouched, unless the run explicitly allows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sync.errors import WarehouseError
from sync.project import Audience
from sync.state import Delta, State
from sync.warehouse import Warehouse

REQUIRED_COLUMNS = ("email_sha256",)


@dataclass(frozen=True)
class Overrides:
    """Guard overrides given on the command line for this run only."""

    allow_empty: bool = False
    max_remove_share: float | None = None
    allow_replace: bool = False


@dataclass
class ListPlan:
    audience: Audience
    relation: str
    list_id: int | None = None
    delta: Delta | None = None
    # a Replace of the full audience: True, False, or None (no list known yet: the run
    # replaces a list of that name if Microsoft has one, else creates it)
    replace: bool | None = None
    refused: list[str] = field(default_factory=list)  # guard reasons (exit 3)
    error: str | None = None  # cannot be planned at all (exit 1)

    @property
    def verdict(self) -> str:
        if self.error:
            return "error"
        return "refused" if self.refused else "ok"

    def as_dict(self) -> dict[str, Any]:
        d = self.delta
        return {
            "audience": self.audience.name,
            "list_name": self.audience.list_name,
            "role": self.audience.role,
            "list_id": self.list_id,
            "audience_rows": d.audience_rows if d else None,
            "members": d.members if d else None,
            "adds": d.adds if d else None,
            "refresh": d.refresh if d else None,
            "removes": d.removes if d else None,
            "in_flight": d.in_flight if d else None,
            "replace": self.replace,
            "max_remove_share": self.audience.max_remove_share,
            "verdict": self.verdict,
            "reasons": self.refused if not self.error else [self.error],
        }


def plan_list(wh: Warehouse, state: State, audience: Audience, overrides: Overrides) -> ListPlan:
    """Plan one list: check its table, count the delta, apply the guards."""
    relation = wh.relation(audience.database, audience.schema, audience.identifier)
    plan = ListPlan(audience, relation)
    table = f"{audience.schema}.{audience.identifier}"
    columns = wh.columns(audience.schema, audience.identifier)
    if columns is None:
        plan.error = (
            f"audience table {table} does not exist in the warehouse: run `dbt build` "
            f"(model {audience.name})"
        )
        return plan
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        plan.error = f"audience table {table} has no column {', '.join(missing)}"
        return plan

    plan.list_id = audience.list_id or state.list_id(audience)  # a pin in the YAML wins
    if plan.list_id is not None:
        plan.replace = state.needs_replace(audience, plan.list_id)
    try:
        delta = plan.delta = state.delta(audience, relation, plan.list_id)
    except WarehouseError as exc:  # e.g. a broken view, or a non-text email_sha256 column
        plan.error = f"audience table {table} cannot be read: {exc}"
        return plan
    if delta.bad_hashes:
        plan.error = (
            f"audience table {table} has {delta.bad_hashes} row(s) whose email_sha256 is not a "
            "64-character lowercase hex SHA-256 (raw or unhashed emails?); nothing of it is sent"
        )
        return plan

    if plan.replace:
        if not overrides.allow_replace:
            plan.refused.append(
                f"list {plan.list_id} was not filled by this sync (adopted by name or pinned, "
                "or the warehouse state was rebuilt): who is on it at Microsoft is unknown, so "
                f"it is brought to the audience by a Replace of all {delta.audience_rows} "
                "row(s), which removes everyone else, however many. Pass --allow-replace once "
                "the list is the right one"
            )
        if delta.audience_rows == 0 and not overrides.allow_empty:
            plan.refused.append(
                "the audience is empty and the list's members are unknown: a Replace would "
                "empty the list (pass --allow-empty if it is really empty)"
            )
        return plan
    # Guards count what may be at Microsoft: confirmed members, and hashes sent by a run
    # that never learned the outcome (after a failed first upload there are only those).
    at_microsoft = delta.maybe_members
    if delta.audience_rows == 0 and at_microsoft > 0 and not overrides.allow_empty:
        plan.refused.append(
            f"the audience is empty while its list has {at_microsoft} member(s) (or maybe "
            "members): a broken upstream must not wipe a list (pass --allow-empty if it is "
            "really empty)"
        )
    share = (
        overrides.max_remove_share
        if overrides.max_remove_share is not None
        else audience.max_remove_share
    )
    emptied_on_purpose = delta.audience_rows == 0 and overrides.allow_empty
    if at_microsoft and delta.removes > share * at_microsoft and not emptied_on_purpose:
        plan.refused.append(
            f"it would remove {delta.removes} of {at_microsoft} members "
            f"({delta.removes / at_microsoft:.0%}), above max_remove_share {share:g} "
            "(pass --max-remove-share to allow more this once, or set it in the model's meta)"
        )
    return plan
